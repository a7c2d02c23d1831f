"""What is stored: one row per series with its extent and the validation counts (hard
problems -- NaN, bad prices, off-grid times -- are summed up in ``problems``), and how many
stored bars later writes replaced (``revised_bars``, from the series' revision log, with the
time of the latest such write in ``last_revision``)."""

from typing import Any

from cryptobot.data.lake import Lake

_SHOWN = ("bars", "first", "last", "gaps", "missing_bars", "duplicates", "zero_volume_bars")


def lake_status(lake: Lake) -> list[dict[str, Any]]:
    rows = []
    for exchange, symbol, timeframe in lake.candle_sets():
        report = lake.candle_report(exchange, symbol, timeframe)
        full = report.as_row()
        row = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        row |= {k: full[k] for k in _SHOWN}
        row["problems"] = "; ".join(report.problems()) or None
        revisions = lake.candle_revisions(exchange, symbol, timeframe)
        row["revised_bars"] = sum(r["changed"] for r in revisions)
        row["last_revision"] = revisions[-1]["at"] if revisions else None
        rows.append(row)
    return rows
