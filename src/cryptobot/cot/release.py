"""When a COT report became public: the time a backtest or ``signal`` may first see it.

The rule (CFTC release schedule, https://www.cftc.gov/MarketReports/CommitmentsofTraders/
ReleaseSchedule): data as of Tuesday is released on the Friday of the same week at 15:30
US Eastern. When a federal holiday (or a one-off closure, ``cot.closures``) falls after that
Tuesday and by the Friday, the release moves to the next business day, normally Monday. A
holiday on the Tuesday itself makes the CFTC use Monday's data instead, and the release stays
on Friday (verified: the report as of Monday 2018-12-24 was scheduled for Friday 2018-12-28,
CFTC notice of 2019-01-29; the one as of Monday 2025-11-10 for Friday 2025-11-14, CFTC
catch-up schedule of 2025-11-18). Checked against the CFTC's 2024 schedule (cftc.gov/es/node/
132401): Juneteenth on Wednesday -> Mon 24 Jun, 4 July on Thursday -> Mon 8 Jul, Thanksgiving
-> Mon 2 Dec, Christmas on Wednesday -> Mon 30 Dec; Monday holidays delay nothing.

Outages (the lapses in appropriations of 2018-19 and 2025, the ION cyber incident of 2023):
the CFTC published the missed reports on a catch-up schedule, which :data:`BACKLOG` holds date
by date (each with its source). A report due in an outage that the table does not list counts
as published the day the backlog was cleared (:data:`LAPSES`): an upper bound, never early.
``cot.publication_overrides`` (as-of date -> publication time) beats every rule. Limits: the
catch-up dates are the CFTC's announced schedules or its notices of the day (as quoted by the
press, public calendar datasets and code), not a record of when each file actually appeared;
the hour of a catch-up release is taken as 15:30 ET, which no source states for 2023; the
holiday rule does not know of closures missing from ``cot.closures``.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cryptobot.core.errors import ConfigError

EASTERN = ZoneInfo("America/New_York")
RELEASE_TIME = time(15, 30)
#: The catch-up publications after the outages, as-of date -> publication day
#: (15:30 ET). 2018-19: the CFTC notice of 2019-01-29 (quoted by thefencepost.com "CFTC
#: releases report schedule" and whiteoakfx.com): the report as of 2018-12-24 on Fri 2019-02-01,
#: then one every Tuesday and Friday until current; the first four dates are also in the
#: ZipLime/commitments-of-traders calendar (huggingface.co), and the end, the report as of
#: 2019-03-05 on its normal Friday 2019-03-08, in commitmentsoftraders.org's notes. The dates
#: from 2019-02-15 to 2019-03-05 follow the announced Tuesday/Friday pattern (not seen listed).
#: 2025: the CFTC's catch-up schedule of 2025-11-18 (quoted in full by mondovisione.com, "CFTC
#: To Resume Publishing COT Reports Wednesday"), normal again from the report as of 2026-01-20.
#: 2023, the ION cyber incident: the CFTC's statements of 2023-02-16 (press release 8662-23:
#: resume "as early as" Fri 2023-02-24 with the report due 2023-02-03, then the missed ones
#: "sequentially ... in an expedited manner", done "by mid-March") and 2023-02-24 (quoted by
#: cotbase.com: the report as of 2023-01-31 issued that day); the later dates are the CFTC's
#: Historical Special Announcements as listed, identically, by several public COT-timing
#: codebases (found by code search: tables keyed "2023-01-31": "2023-02-24" ... "2023-03-14":
#: "2023-03-21"; one of five lists 2023-02-07 on 03-08 with 2023-02-14, against the one-by-one
#: order the CFTC announced). InvestMacro posted its charts of the 2023-02-21 data in March
#: 2023, which fits. The report as of 2023-03-21 came out on its normal Friday, 2023-03-24;
#: none came out on Fri 2023-03-17.
BACKLOG: dict[date, date] = {
    date.fromisoformat(as_of): date.fromisoformat(published)
    for as_of, published in (
        ("2018-12-24", "2019-02-01"),
        ("2018-12-31", "2019-02-05"),
        ("2019-01-08", "2019-02-08"),
        ("2019-01-15", "2019-02-12"),
        ("2019-01-22", "2019-02-15"),
        ("2019-01-29", "2019-02-19"),
        ("2019-02-05", "2019-02-22"),
        ("2019-02-12", "2019-02-26"),
        ("2019-02-19", "2019-03-01"),
        ("2019-02-26", "2019-03-05"),
        ("2023-01-31", "2023-02-24"),
        ("2023-02-07", "2023-03-03"),
        ("2023-02-14", "2023-03-08"),
        ("2023-02-21", "2023-03-10"),
        ("2023-02-28", "2023-03-14"),
        ("2023-03-07", "2023-03-16"),
        ("2023-03-14", "2023-03-21"),
        ("2025-09-30", "2025-11-19"),
        ("2025-10-07", "2025-11-21"),
        ("2025-10-14", "2025-11-25"),
        ("2025-10-21", "2025-12-02"),
        ("2025-10-28", "2025-12-05"),
        ("2025-11-04", "2025-12-09"),
        ("2025-11-10", "2025-12-12"),
        ("2025-11-18", "2025-12-16"),
        ("2025-11-25", "2025-12-19"),
        ("2025-12-02", "2025-12-23"),
        ("2025-12-09", "2025-12-30"),
        ("2025-12-16", "2026-01-06"),
        ("2025-12-23", "2026-01-09"),
        ("2025-12-30", "2026-01-13"),
        ("2026-01-06", "2026-01-16"),
        ("2026-01-13", "2026-01-20"),
    )
}
#: (outage start, the day the backlog was cleared): 2018-12-22 to 2019-03-08 (the report as of
#: 2019-03-05 was the first current one); 2023-02-03 (the first release the ION incident
#: missed) to 2023-03-24 (the report as of 2023-03-21 on time); 2025-10-01 to 2026-01-23 (the
#: CFTC's schedule above).
LAPSES = (
    (date(2018, 12, 22), date(2019, 3, 8)),
    (date(2023, 2, 3), date(2023, 3, 24)),
    (date(2025, 10, 1), date(2026, 1, 23)),
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
        if as_of in BACKLOG:
            return _eastern_ms(BACKLOG[as_of])
        day = self.scheduled_day(as_of)
        for start, caught_up in LAPSES:
            if start <= day < caught_up:
                day = caught_up
        return _eastern_ms(day)

    def scheduled_day(self, as_of: date) -> date:
        """The day the normal rule releases the report as of ``as_of`` (no lapse, no override):
        what the CFTC's catch-up schedules call the "original publish date"."""
        # Monday data means a holiday on Tuesday: that holiday delays nothing
        tuesday = as_of + timedelta(days=1) if as_of.weekday() == 0 else as_of
        friday = as_of + timedelta(days=(4 - as_of.weekday()) % 7)
        between = (tuesday + timedelta(days=n) for n in range(1, (friday - tuesday).days + 1))
        if any(self._closed(d) for d in between):
            return self._next_business_day(friday)
        return friday

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
