"""Timeframes as ccxt spells them (``5m``, ``1h``), their length in milliseconds and their grid.

Bars open on whole multiples of their length counted from the epoch, except weeks: a venue's
week opens on Monday 00:00 UTC (Binance, Bitget, Bybit, OKX), and 1970-01-01 was a Thursday, so
the weekly grid starts on Monday 1970-01-05. Every rounding of a time to its bar goes through
:func:`bar_open` (and :func:`off_grid`), never ``ts // tf_ms * tf_ms``.
"""

from typing import TypeVar

from cryptobot.core.errors import CryptobotError

_WEEK_MS = 604_800_000
_MONDAY_MS = 4 * 86_400_000  # 1970-01-05T00:00Z, the first Monday after the epoch
T = TypeVar("T")  # an int or an int64 array: the arithmetic is the same

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

#: Timeframes cryptobot stores; calendar months are left out because they have no fixed length.
SUPPORTED = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar; raises a user error for anything not in :data:`SUPPORTED`."""
    if timeframe not in SUPPORTED:
        raise CryptobotError(f"unknown timeframe {timeframe!r}; use one of {', '.join(SUPPORTED)}")
    return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]


def parse_timeframes(text: str) -> list[str]:
    """``"5m,15m"`` -> ``["5m", "15m"]``, validated, order kept, duplicates dropped."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part and part not in out:
            timeframe_ms(part)
            out.append(part)
    if not out:
        raise CryptobotError("no timeframe given; e.g. --timeframes 5m,15m")
    return out


def grid_origin(tf_ms: int) -> int:
    """Where the grid of bars ``tf_ms`` long starts (module docstring)."""
    return _MONDAY_MS if tf_ms % _WEEK_MS == 0 else 0


def bar_open(ts: T, tf_ms: int) -> T:
    """Open time of the bar of ``tf_ms`` that ``ts`` falls in (a time or an int64 array)."""
    origin = grid_origin(tf_ms)
    return (ts - origin) // tf_ms * tf_ms + origin  # type: ignore[operator,return-value]


def off_grid(ts: T, tf_ms: int) -> T:
    """Whether ``ts`` is no bar's open time (a bool, or a bool array for an array)."""
    return (ts - grid_origin(tf_ms)) % tf_ms != 0  # type: ignore[operator,return-value]


def last_closed_open(now_ms: int, tf_ms: int) -> int:
    """Open time of the newest bar that has closed at ``now_ms`` (the forming bar is excluded)."""
    return bar_open(now_ms, tf_ms) - tf_ms
