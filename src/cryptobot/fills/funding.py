"""When funding is paid, and on what price: the funding rule of the matching model.

Each funding timestamp is charged at the open of the first bar starting at or after it (exactly
the funding instant for bars of 8h or less; bars longer than the funding interval charge it at
their next open). The notional is taken at the stored mark price when the history has one, else
at the close of the bar before (the price at that instant). A funding time at or before the first
bar's open is not charged (no position can be held there). Where the history does not cover the
bars, a constant ``fallback_rate`` may stand in every 8 hours at 00/08/16 UTC.

The backtest charges a whole series at once; the replay exchange and the paper broker charge the
bars they match, with the same function (prepend the last matched bar's open time, so an event
falling after it is charged on the first new bar).
"""

import math

import numpy as np
import pandas as pd

FUNDING_INTERVAL_MS = 8 * 3_600_000


def funding_charges(
    ts: np.ndarray, funding: pd.DataFrame | None, fallback_rate: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: the rate charged at its open and the price to charge it on; and the funding
    times at which ``fallback_rate`` was assumed for want of history."""
    out = np.zeros((len(ts), 2))
    out[:, 1] = np.nan
    missing = np.empty(0, np.int64)
    if len(ts) == 0:
        return out, missing
    events = _funding_events(funding)
    if fallback_rate:
        marks = funding_marks(ts[0], ts[-1])
        missing = marks[_far_from(marks, events["timestamp"].to_numpy(np.int64))]
        if len(missing):
            extra = pd.DataFrame(
                {"timestamp": missing, "funding_rate": fallback_rate, "mark": np.nan}
            )
            events = pd.concat([events, extra]).sort_values("timestamp")
    rows = np.searchsorted(ts, events["timestamp"].to_numpy(np.int64), side="left")
    inside = (rows > 0) & (rows < len(ts))  # a funding before the first bar's open: not held
    rates, prices = events["funding_rate"].to_numpy(), events["mark"].to_numpy()
    for row, rate, mark in zip(rows[inside], rates[inside], prices[inside], strict=True):
        out[row, 0] += rate
        if not math.isnan(mark):
            out[row, 1] = mark
    return out, missing


def _funding_events(funding: pd.DataFrame | None) -> pd.DataFrame:
    if funding is None or funding.empty:
        return pd.DataFrame({"timestamp": [], "funding_rate": [], "mark": []})
    mark = funding.get("mark_price", np.nan)
    return pd.DataFrame(
        {
            "timestamp": funding["timestamp"].astype("int64"),
            "funding_rate": funding["funding_rate"].astype("float64"),
            "mark": mark,
        }
    ).astype({"mark": "float64"})


def funding_marks(start: int, end: int) -> np.ndarray:
    """The 8-hourly funding times (00/08/16 UTC) within [start, end]."""
    first = -(-start // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
    return np.arange(first, end + 1, FUNDING_INTERVAL_MS, dtype=np.int64)


def _far_from(marks: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Which marks have no stored funding event within half an interval."""
    if len(stamps) == 0:
        return np.ones(len(marks), dtype=bool)
    stamps = np.sort(stamps)
    right = np.clip(np.searchsorted(stamps, marks), 0, len(stamps) - 1)
    left = np.clip(right - 1, 0, len(stamps) - 1)
    nearest = np.minimum(np.abs(stamps[right] - marks), np.abs(stamps[left] - marks))
    return nearest > FUNDING_INTERVAL_MS // 2
