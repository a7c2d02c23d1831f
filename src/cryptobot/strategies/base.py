"""What every strategy shares: its input (one symbol's closed candles per timeframe) and the
helpers that line timeframes up without peeking into unfinished bars."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryptobot.core.errors import DataError
from cryptobot.core.setup import Setup, Side
from cryptobot.core.timeframes import timeframe_ms


@dataclass(frozen=True)
class SymbolData:
    """Closed candles of one symbol, per timeframe, oldest first (lake column layout).

    ``rs_percentile`` is the symbol's relative-strength percentile in the scanned universe,
    indexed by candle timestamp, when a universe was scanned (None for a lone symbol).
    ``context`` holds, per strategy name, what a detector reads besides candles (the COT bias
    and crowd readings of ``cot_crowd``), loaded by that strategy's ``Strategy.context``; each
    value has ``truncated(end_ms)``, so a truncated view cuts it at the same moment.
    """

    exchange: str
    symbol: str
    frames: Mapping[str, pd.DataFrame]
    rs_percentile: pd.Series | None = None
    benchmark: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)

    def frame(self, timeframe: str) -> pd.DataFrame:
        try:
            return self.frames[timeframe]
        except KeyError:
            raise DataError(f"{self.symbol}: no {timeframe} candles loaded") from None

    def truncated(self, end_ms: int) -> "SymbolData":
        """The same data as a scanner standing at ``end_ms`` saw it: bars closed by then."""

        def cut(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
            return {tf: f[f.timestamp + timeframe_ms(tf) <= end_ms] for tf, f in frames.items()}

        rs = self.rs_percentile
        return SymbolData(
            self.exchange,
            self.symbol,
            cut(self.frames),
            None if rs is None else rs[rs.index <= end_ms],
            cut(self.benchmark),
            {name: value.truncated(end_ms) for name, value in self.context.items()},
        )


def closed_count(
    lower: pd.DataFrame, lower_tf: str, higher: pd.DataFrame, higher_tf: str
) -> np.ndarray:
    """For each lower-timeframe bar, how many higher-timeframe bars had closed when it closed."""
    lower_close = lower["timestamp"].to_numpy() + timeframe_ms(lower_tf)
    higher_close = higher["timestamp"].to_numpy() + timeframe_ms(higher_tf)
    return np.searchsorted(higher_close, lower_close, side="right")


def closed_at(lower: pd.DataFrame, lower_tf: str, higher: pd.DataFrame, higher_tf: str):
    """For each lower-timeframe bar, the row of the newest higher-timeframe bar that had closed
    when the lower bar closed; -1 when none had or when that bar is stale (a hole in the
    higher timeframe's data: it closed more than one higher bar before)."""
    step = timeframe_ms(higher_tf)
    lower_close = lower["timestamp"].to_numpy() + timeframe_ms(lower_tf)
    higher_close = higher["timestamp"].to_numpy() + step
    rows = closed_count(lower, lower_tf, higher, higher_tf) - 1
    fresh = (rows >= 0) & (lower_close - higher_close[np.maximum(rows, 0)] < step)
    return np.where(fresh, rows, -1)


def make_setup(
    data: SymbolData,
    *,
    strategy: str,
    timeframe: str,
    side: Side,
    triggered: bool,
    times: tuple[int, int],
    levels: tuple[float, float],
    targets_r: Sequence[float],
    confidence: int,
    reasons: dict[str, Any],
) -> Setup:
    """A setup with targets at ``targets_r`` multiples of its risk; ``times`` = (bar of the
    setup, bar where its context formed), ``levels`` = (entry, stop)."""
    entry, stop = float(levels[0]), float(levels[1])
    sign = 1.0 if side == "long" else -1.0
    return Setup(
        exchange=data.exchange,
        symbol=data.symbol,
        strategy=strategy,
        timeframe=timeframe,
        side=side,
        status="triggered" if triggered else "armed",
        ts=int(times[0]),
        anchor_ts=int(times[1]),
        entry=entry,
        stop=stop,
        targets=[entry + sign * r * abs(entry - stop) for r in targets_r],
        confidence=int(confidence),
        reasons=reasons,
    )


def mirrored(frame: pd.DataFrame) -> pd.DataFrame:
    """Prices negated (highs become lows): bearish structure read as bullish, so a detector
    written for longs serves shorts with exactly mirrored rules."""
    swap = {"open": "open", "high": "low", "low": "high", "close": "close"}
    columns = {
        name: -frame[swap[name]].to_numpy() if name in swap else frame[name].to_numpy()
        for name in frame.columns
    }
    return pd.DataFrame(columns, index=frame.index)
