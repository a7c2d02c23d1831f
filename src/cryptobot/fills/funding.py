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
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

FUNDING_INTERVAL_MS = 8 * 3_600_000


def funding_charges(
    ts: np.ndarray,
    funding: "pd.DataFrame | Mapping[str, np.ndarray] | None",
    fallback_rate: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: the rate charged at its open and the price to charge it on; and the funding
    times at which ``fallback_rate`` was assumed for want of history. ``funding``: columns
    timestamp, funding_rate and optionally mark_price (a frame, or arrays by name)."""
    out = np.zeros((len(ts), 2))
    out[:, 1] = np.nan
    missing = np.empty(0, np.int64)
    if len(ts) == 0:
        return out, missing
    stamps, rates, prices = _funding_events(funding)
    if fallback_rate:
        marks = funding_marks(ts[0], ts[-1])
        missing = marks[_far_from(marks, stamps)]
        if len(missing):
            order = np.argsort(np.concatenate([stamps, missing]), kind="stable")
            stamps = np.concatenate([stamps, missing])[order]
            rates = np.concatenate([rates, np.full(len(missing), fallback_rate)])[order]
            prices = np.concatenate([prices, np.full(len(missing), np.nan)])[order]
    rows = np.searchsorted(ts, stamps, side="left")
    inside = (rows > 0) & (rows < len(ts))  # a funding before the first bar's open: not held
    for row, rate, mark in zip(rows[inside], rates[inside], prices[inside], strict=True):
        out[row, 0] += rate
        if not math.isnan(mark):
            out[row, 1] = mark
    return out, missing


def _funding_events(
    funding: "pd.DataFrame | Mapping[str, np.ndarray] | None",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored funding as (times, rates, mark prices; NaN where none is stored)."""
    if funding is None or len(funding) == 0 or len(funding["timestamp"]) == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    stamps = np.asarray(funding["timestamp"], dtype=np.int64)
    rates = np.asarray(funding["funding_rate"], dtype=np.float64)
    if "mark_price" not in funding:
        return stamps, rates, np.full(len(stamps), np.nan)
    return stamps, rates, np.asarray(funding["mark_price"], dtype=np.float64)


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
