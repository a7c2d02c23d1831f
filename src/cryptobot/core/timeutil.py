"""UTC time parsing and formatting: ms since epoch inside, ISO-8601 at the edges."""

from datetime import UTC, datetime

from cryptobot.core.errors import CryptobotError
from cryptobot.core.numbers import finite

DAY_MS = 86_400_000
LAST_MS = 253_402_300_800_000  # 10000-01-01: no time a datetime holds (or a journal keeps) is later


def parse_time(text: str) -> int:
    """Parse ``2024-01-01``, ``2024-01-01T12:00``, ``...Z`` or epoch milliseconds into UTC ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CryptobotError(
            f"malformed date {text!r}; use ISO-8601 such as 2024-01-01 or 2024-01-01T08:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def iso(ms: int | None) -> str | None:
    """UTC ISO-8601 with a ``Z``, to the second (or the millisecond when it has one)."""
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    spec = "milliseconds" if ms % 1000 else "seconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")


_UNITS_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration(text: str) -> int:
    """``90d``, ``12h``, ``2w``, ``30m`` -> milliseconds."""
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        ms = finite(value, name="duration") * _UNITS_MS[unit]
    except (KeyError, ValueError):  # "nand" and "infd" included
        raise ValueError(f"bad duration {text!r}; use e.g. 90d, 12h, 2w or 30m") from None
    if ms <= 0:
        raise ValueError(f"bad duration {text!r}; it must be positive")
    return int(ms)
