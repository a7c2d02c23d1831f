"""Timeframes as ccxt spells them (``5m``, ``1h``) and their length in milliseconds."""

from cryptobot.core.errors import CryptobotError

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


def last_closed_open(now_ms: int, tf_ms: int) -> int:
    """Open time of the newest bar that has closed at ``now_ms`` (the forming bar is excluded)."""
    return (now_ms // tf_ms) * tf_ms - tf_ms
