"""What is stored: one row per series with its extent and the validation counts (hard
problems -- NaN or infinite values, bad prices, off-grid times -- are summed up in ``problems``),
and how many stored rows later writes replaced (``revised_bars``, from the series' revision log,
with the time of the latest such write in ``last_revision``).

Every kind is listed (``kind``): candles, mark-price candles, and the observation series of
:mod:`cryptobot.data.series` (funding, open interest, long/short ratios, taker volume, Fear &
Greed), whose ``bars`` counts rows and ``gaps`` the holes in a periodic series, and in funding
two settlements further apart than any venue's interval (8 h; its ``missing_bars`` None: the
times are the venue's). Liquidation recordings (:mod:`cryptobot.data.liquidations`)
are listed per exchange: ``bars`` counts events, ``gaps`` the breaks between recording spans.

A series whose files cannot be read (a damaged Parquet file or revision log) or summarised (times
with no date, stored by a version that did not refuse them) is reported with the reason in
``problems`` and the others are still listed: one bad file must not hide the whole lake
from a health check such as ``commands/update-lake.sh``."""

from collections.abc import Callable
from typing import Any

import numpy as np

from cryptobot.core.errors import DataError
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import iso
from cryptobot.data import liquidations
from cryptobot.data.lake import Lake
from cryptobot.data.series import holes, kind_of, problems

_SHOWN = ("bars", "first", "last", "gaps", "missing_bars", "duplicates", "zero_volume_bars")


def lake_status(lake: Lake) -> list[dict[str, Any]]:
    rows = [_candle_row(lake, "candles", *series) for series in lake.candle_sets()]
    marks = lake.mark_prices()
    rows += [_candle_row(marks, "mark", *series) for series in marks.candle_sets()]
    rows += [_series_row(lake, *series) for series in lake.series_sets()]
    return rows + [_liquidation_row(r) for r in liquidations.status_rows(lake)]


def _candle_row(lake: Lake, kind: str, exchange: str, symbol: str, timeframe: str) -> dict:
    row = _blank(kind, exchange, symbol, timeframe)

    def read(row: dict, found: list[str]) -> None:
        report = lake.candle_report(exchange, symbol, timeframe)
        full = report.as_row()
        row |= {k: full[k] for k in _SHOWN}
        if kind == "mark":  # mark candles carry no volume (the venue serves 0)
            row["zero_volume_bars"] = None
        found += report.problems()

    return _checked(row, read, lambda: lake.candle_revisions(exchange, symbol, timeframe))


def _series_row(
    lake: Lake, kind: str, source: str, symbol: str | None, period: str | None
) -> dict[str, Any]:
    spec = kind_of(kind)
    row = _blank(kind, source, symbol, period)

    def read(row: dict, found: list[str]) -> None:
        stored = lake.read_series(kind, source, symbol, period)
        ts = stored["timestamp"].to_numpy()
        period_ms = timeframe_ms(period) if period else None
        gaps, missing = holes(ts, period_ms, kind=spec)
        row |= {
            "bars": len(stored),
            "first": iso(int(ts.min())) if len(ts) else None,
            "last": iso(int(ts.max())) if len(ts) else None,
            "gaps": gaps,
            "missing_bars": missing,
            "duplicates": int(len(ts) - len(np.unique(ts))),
        }
        found += problems(spec, stored, period_ms=period_ms, now_ms=None)

    return _checked(row, read, lambda: lake.series_revisions(kind, source, symbol, period))


def _liquidation_row(recorded: dict[str, Any]) -> dict[str, Any]:
    row = _blank("liquidations", recorded["exchange"], None, None) | recorded
    return row | {"revised_bars": None, "last_revision": None}  # events are never revised


def _blank(kind: str, exchange: str, symbol: str | None, timeframe: str | None) -> dict:
    row: dict[str, Any] = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
    row["kind"] = kind
    return row | dict.fromkeys(_SHOWN)


def _checked(
    row: dict[str, Any],
    read: Callable[[dict, list[str]], None],
    revisions_of: Callable[[], list[dict]],
) -> dict[str, Any]:
    """Fill ``row`` with ``read``; a series that cannot be read says why in ``problems``."""
    found: list[str] = []
    try:
        read(row, found)
    except (DataError, ValueError, OverflowError) as exc:  # a time with no date (year -53697)
        found.append(f"cannot summarise: {exc}" if not isinstance(exc, DataError) else str(exc))
    try:
        revisions = revisions_of()
    except DataError as exc:
        found.append(str(exc))
        revisions = None
    row["problems"] = "; ".join(found) or None
    row["revised_bars"] = None if revisions is None else sum(r["changed"] for r in revisions)
    row["last_revision"] = revisions[-1]["at"] if revisions else None
    return row
