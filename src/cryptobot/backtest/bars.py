"""One symbol's candles, funding and detail bars as the arrays the compiled loop reads.

Funding: charged by the matching model's rule (``fills.funding``: at the open of the first bar
starting at or after each funding time, on the stored mark price or the close before). Where
the history does not cover the run, a constant ``fallback_rate`` is charged every 8 hours at
00/08/16 UTC; ``funding_warning`` says so for the window a run actually covers.

Detail: for each bar, the span of lower-timeframe bars inside it, used to resolve a bar where
the stop and a target were both touched (``--detail 1m``).

Candles, funding and detail bars come as frames or as NumPy columns by name (``Lake
.read_candle_columns``): a backtest of the reference strategy loads no pandas. A backtest reads
its candles straight into the bar block (``BarBlock``): the prices land in the columns the
kernel reads, without arrays of their own copied in again (a million bars: 40 MB of fresh
memory, which this kind of VM zeroes slowly, and five copies less).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from cryptobot.analysis.ta import talib
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import iso
from cryptobot.fills.funding import funding_charges, funding_marks

if TYPE_CHECKING:
    import pandas as pd

#: columns by name: a pandas frame or a mapping of NumPy arrays
Columns = Union["pd.DataFrame", Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class SymbolBars:
    symbol: str
    timeframe: str
    timestamps: np.ndarray  # int64 ms, bar open times
    # (n, 6) open high low close volume atr, column-major (Fortran order): each column is
    # contiguous, so it is filled, and read by TA-Lib and the signals, without strided
    # copies (a million bars: 0.024 -> 0.010 s for the block and the EMAs)
    bars: np.ndarray
    funding: np.ndarray  # (n, 2) rate charged at the bar's open, price (NaN: previous close)
    detail: np.ndarray  # (m, 3) open high low of the detail bars
    span: np.ndarray  # (n, 2) int64: the detail rows inside each bar
    assumed_funding: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    fallback_rate: float = 0.0  # the constant charged at ``assumed_funding`` times

    def __len__(self) -> int:
        return self.timestamps.shape[0]


PRICES = ("open", "high", "low", "close", "volume")  # the block's first columns, in this order


class BarBlock:
    """Where a lake read puts a symbol's prices (``Lake.read_candle_columns(into=...)``): the
    first five columns of a fresh (rows, 6) column-major bar block, the ATR's column left for
    :func:`symbol_bars`; the timestamps in an array of their own."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None  # the block, once the read knows its rows

    def __call__(self, rows: int) -> dict[str, np.ndarray]:
        self.array = np.empty((rows, len(PRICES) + 1), order="F")
        columns = {name: self.array[:, j] for j, name in enumerate(PRICES)}
        return {"timestamp": np.empty(rows, np.int64), **columns}


def symbol_bars(
    symbol: str,
    timeframe: str,
    candles: Columns,
    *,
    funding: Columns | None = None,
    fallback_rate: float | None = None,
    detail: Columns | None = None,
    atr_period: int = 14,
    block: BarBlock | None = None,
) -> SymbolBars:
    """``block``: the one ``candles`` were read into; its array is the bars' block unless the
    read kept fewer rows than it stored (a window's end), then the prices are copied as for any
    ``candles``."""
    ts = np.asarray(candles["timestamp"], dtype=np.int64)
    bars = _bar_block(candles, len(ts), block)
    bars[:, 5] = talib.ATR(bars[:, 1], bars[:, 2], bars[:, 3], atr_period)  # = indicators.atr
    charges, assumed = funding_charges(ts, funding, fallback_rate)
    detail_bars, span = detail_spans(ts, timeframe_ms(timeframe), detail)
    return SymbolBars(symbol, timeframe, ts, bars, charges, detail_bars, span, assumed,
                      fallback_rate or 0.0)  # fmt: skip


def _bar_block(candles: Columns, rows: int, block: BarBlock | None) -> np.ndarray:
    """The (rows, 6) column-major block holding ``candles``' prices (see SymbolBars.bars)."""
    read = block.array if block is not None else None
    if (
        read is not None
        and read.shape[0] == rows
        and all(np.shares_memory(candles[name], read[:, j]) for j, name in enumerate(PRICES))
    ):
        return read
    bars = np.empty((rows, len(PRICES) + 1), order="F")
    for j, name in enumerate(PRICES):
        bars[:, j] = candles[name]
    return bars


def funding_warning(sb: SymbolBars, start: int | None = None, end: int | None = None) -> str | None:
    """What was assumed about funding between ``start`` and ``end`` (ms; default: all bars)."""
    if len(sb) == 0 or len(sb.assumed_funding) == 0:
        return None
    lo = sb.timestamps[0] if start is None else max(start, int(sb.timestamps[0]))
    hi = sb.timestamps[-1] if end is None else min(end, int(sb.timestamps[-1]))
    marks = funding_marks(lo, hi)
    missing = sb.assumed_funding[(sb.assumed_funding >= lo) & (sb.assumed_funding <= hi)]
    if len(missing) == 0:
        return None
    return (
        f"{sb.symbol}: no stored funding for {len(missing)} of {len(marks)} funding times "
        f"({iso(int(missing[0]))[:10]}..{iso(int(missing[-1]))[:10]}); charging a "
        f"constant {sb.fallback_rate:.4%} there (run `cryptobot fetch --funding`)"
    )


def detail_spans(
    ts: np.ndarray, tf_ms: int, detail: Columns | None
) -> tuple[np.ndarray, np.ndarray]:
    if detail is None or len(detail["timestamp"]) == 0:
        return np.empty((0, 3)), np.zeros((len(ts), 2), dtype=np.int64)
    stamps = np.asarray(detail["timestamp"], dtype=np.int64)
    arr = np.column_stack(
        [np.asarray(detail[c], dtype=np.float64) for c in ("open", "high", "low")]
    )
    start = np.searchsorted(stamps, ts, side="left")
    end = np.searchsorted(stamps, ts + tf_ms, side="left")
    return arr, np.column_stack([start, end]).astype(np.int64)
