"""One symbol's candles, funding and detail bars as the arrays the compiled loop reads.

Funding: each funding timestamp is charged at the open of the first bar starting at or after
it (exactly the funding instant for bars of 8h or less; bars longer than the funding interval
charge it at their next open). The notional is taken at the stored mark price when the history
has one, else at the close of the bar before (the price at that instant). Where the history
does not cover the run, a constant ``fallback_rate`` is charged every 8 hours at 00/08/16 UTC;
``funding_warning`` says so for the window a run actually covers.

Detail: for each bar, the span of lower-timeframe bars inside it, used to resolve a bar where
the stop and a target were both touched (``--detail 1m``).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cryptobot.analysis.indicators import atr
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import iso

FUNDING_INTERVAL_MS = 8 * 3_600_000


@dataclass(frozen=True)
class SymbolBars:
    symbol: str
    timeframe: str
    timestamps: np.ndarray  # int64 ms, bar open times
    bars: np.ndarray  # (n, 6) open high low close volume atr
    funding: np.ndarray  # (n, 2) rate charged at the bar's open, price (NaN: previous close)
    detail: np.ndarray  # (m, 3) open high low of the detail bars
    span: np.ndarray  # (n, 2) int64: the detail rows inside each bar
    assumed_funding: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    fallback_rate: float = 0.0  # the constant charged at ``assumed_funding`` times

    def __len__(self) -> int:
        return self.timestamps.shape[0]


def symbol_bars(
    symbol: str,
    timeframe: str,
    candles: pd.DataFrame,
    funding: pd.DataFrame | None = None,
    fallback_rate: float | None = None,
    detail: pd.DataFrame | None = None,
    atr_period: int = 14,
) -> SymbolBars:
    ts = candles["timestamp"].to_numpy(dtype=np.int64)
    bars = np.column_stack(
        [candles[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
        + [atr(candles, atr_period).to_numpy()]
    )
    charges, assumed = funding_charges(ts, funding, fallback_rate)
    detail_bars, span = detail_spans(ts, timeframe_ms(timeframe), detail)
    return SymbolBars(symbol, timeframe, ts, np.ascontiguousarray(bars), charges, detail_bars,
                      span, assumed, fallback_rate or 0.0)  # fmt: skip


def funding_warning(sb: SymbolBars, start: int | None = None, end: int | None = None) -> str | None:
    """What was assumed about funding between ``start`` and ``end`` (ms; default: all bars)."""
    if len(sb) == 0 or len(sb.assumed_funding) == 0:
        return None
    lo = sb.timestamps[0] if start is None else max(start, int(sb.timestamps[0]))
    hi = sb.timestamps[-1] if end is None else min(end, int(sb.timestamps[-1]))
    marks = _marks(lo, hi)
    missing = sb.assumed_funding[(sb.assumed_funding >= lo) & (sb.assumed_funding <= hi)]
    if len(missing) == 0:
        return None
    return (
        f"{sb.symbol}: no stored funding for {len(missing)} of {len(marks)} funding times "
        f"({iso(int(missing[0]))[:10]}..{iso(int(missing[-1]))[:10]}); charging a "
        f"constant {sb.fallback_rate:.4%} there (run `cryptobot fetch --funding`)"
    )


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
        marks = _marks(ts[0], ts[-1])
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


def _marks(start: int, end: int) -> np.ndarray:
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


def detail_spans(
    ts: np.ndarray, tf_ms: int, detail: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    if detail is None or detail.empty:
        return np.empty((0, 3)), np.zeros((len(ts), 2), dtype=np.int64)
    stamps = detail["timestamp"].to_numpy(np.int64)
    arr = np.ascontiguousarray(detail[["open", "high", "low"]].to_numpy(np.float64))
    start = np.searchsorted(stamps, ts, side="left")
    end = np.searchsorted(stamps, ts + tf_ms, side="left")
    return arr, np.column_stack([start, end]).astype(np.int64)
