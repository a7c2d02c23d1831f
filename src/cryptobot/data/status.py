"""What is stored: one row per series with its extent and the validation counts."""

from typing import Any

from cryptobot.data.lake import Lake


def lake_status(lake: Lake) -> list[dict[str, Any]]:
    rows = []
    for exchange, symbol, timeframe in lake.candle_sets():
        report = lake.candle_report(exchange, symbol, timeframe)
        row = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        row |= report.as_row()
        row["problems"] = "; ".join(report.problems()) or None
        rows.append(row)
    return rows
