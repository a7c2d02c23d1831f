"""What is stored: one row per series with its extent and the validation counts (hard
problems -- NaN or infinite values, bad prices, off-grid times -- are summed up in ``problems``),
and how many stored bars later writes replaced (``revised_bars``, from the series' revision log,
with the time of the latest such write in ``last_revision``).

A series whose files cannot be read (a damaged Parquet file or revision log) is reported with the
reason in ``problems`` and the others are still listed: one bad file must not hide the whole lake
from a health check such as ``commands/update-lake.sh``."""

from typing import Any

from cryptobot.core.errors import DataError
from cryptobot.data.lake import Lake

_SHOWN = ("bars", "first", "last", "gaps", "missing_bars", "duplicates", "zero_volume_bars")


def lake_status(lake: Lake) -> list[dict[str, Any]]:
    return [_series_row(lake, *series) for series in lake.candle_sets()]


def _series_row(lake: Lake, exchange: str, symbol: str, timeframe: str) -> dict[str, Any]:
    row: dict[str, Any] = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
    row |= dict.fromkeys(_SHOWN)
    problems = []
    try:
        report = lake.candle_report(exchange, symbol, timeframe)
        full = report.as_row()
        row |= {k: full[k] for k in _SHOWN}
        problems += report.problems()
    except DataError as exc:
        problems.append(str(exc))
    try:
        revisions = lake.candle_revisions(exchange, symbol, timeframe)
    except DataError as exc:
        problems.append(str(exc))
        revisions = None
    row["problems"] = "; ".join(problems) or None
    row["revised_bars"] = None if revisions is None else sum(r["changed"] for r in revisions)
    row["last_revision"] = revisions[-1]["at"] if revisions else None
    return row
