"""When a COT report became public: the time a backtest or ``signal`` may first see it.

The rule (CFTC release schedule, https://www.cftc.gov/MarketReports/CommitmentsofTraders/
ReleaseSchedule): data as of Tuesday is released on the Friday of the same week at 15:30
US Eastern. When a federal holiday (or a one-off closure, ``cot.closures``) falls between the
as-of date and that Friday, the release moves to the next business day, normally Monday.

Lapses in appropriations are a table (:data:`SHUTDOWNS`): every report whose normal release
fell between the lapse's start and the day the CFTC had caught up with its backlog is taken as
released on that catch-up day. This is an upper bound: it never shows a report early, but
during a backlog it shows some reports later than the CFTC did. Exact dates, where known, go in
``cot.publication_overrides`` (as-of date -> publication time), which beats every rule.
Limits: the catch-up dates below come from the CFTC's announcements as remembered when this
was written, not from a machine-readable source; the holiday rule does not know of closures
missing from ``cot.closures``.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cryptobot.core.errors import ConfigError

EASTERN = ZoneInfo("America/New_York")
RELEASE_TIME = time(15, 30)
#: (lapse start, lapse end, the day the backlog was published in full)
SHUTDOWNS = (
    (date(2018, 12, 22), date(2019, 1, 25), date(2019, 3, 8)),
    (date(2025, 10, 1), date(2025, 11, 12), date(2026, 1, 23)),
)


class Calendar:
    """The publication rule with its configured closures and overrides."""

    def __init__(self, *, closures: Iterable[str] = (), overrides: Mapping[str, str] = ()) -> None:
        self.closures = {_day(d, "cot.closures") for d in closures}
        self.overrides = {
            _day(k, "cot.publication_overrides"): _moment(v) for k, v in dict(overrides).items()
        }

    def published_ms(self, as_of: date) -> int:
        """Publication time of the report as of ``as_of``, in ms UTC."""
        if as_of in self.overrides:
            return self.overrides[as_of]
        friday = as_of + timedelta(days=(4 - as_of.weekday()) % 7)
        day = friday
        between = (as_of + timedelta(days=n) for n in range(1, (friday - as_of).days + 1))
        if any(self._closed(d) for d in between):
            day = self._next_business_day(friday)
        for start, _end, caught_up in SHUTDOWNS:
            if start <= day < caught_up:
                day = caught_up
        return _eastern_ms(day)

    def _closed(self, day: date) -> bool:
        return day in self.closures or day in federal_holidays(day.year)

    def _next_business_day(self, day: date) -> date:
        day += timedelta(days=1)
        while day.weekday() >= 5 or self._closed(day):
            day += timedelta(days=1)
        return day


def federal_holidays(year: int) -> set[date]:
    """US federal holidays as observed (Saturday -> Friday, Sunday -> Monday)."""
    fixed = [date(year, 1, 1), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    if year >= 2021:
        fixed.append(date(year, 6, 19))
    observed = {_observed(d) for d in fixed}
    observed |= {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _last_weekday(year, 5, 0),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    }
    if _observed(date(year + 1, 1, 1)).year == year:  # New Year's Day 2022 was observed in 2021
        observed.add(_observed(date(year + 1, 1, 1)))
    return observed


def _observed(day: date) -> date:
    return (
        day - timedelta(days=1) if day.weekday() == 5 else day + timedelta(days=day.weekday() == 6)
    )


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _eastern_ms(day: date) -> int:
    return int(datetime.combine(day, RELEASE_TIME, EASTERN).timestamp() * 1000)


def _day(text: str, key: str) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a YYYY-MM-DD date") from None


def _moment(text: str) -> int:
    try:
        dt = datetime.fromisoformat(str(text))
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None:
        raise ConfigError(
            f"cot.publication_overrides: {text!r} must be a time with its offset, "
            "e.g. 2025-11-28T15:30:00-05:00"
        )
    return int(dt.astimezone(UTC).timestamp() * 1000)
