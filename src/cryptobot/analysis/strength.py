"""Relative strength of a symbol against a benchmark (BTC) and its rank in a universe.

Strength over ``period`` bars is the symbol's log return minus the benchmark's over the same
bars, matched on candle timestamps (so a missing bar never shifts the comparison). The
percentile of a symbol at a bar is its average rank among the symbols that have a value at that
bar, scaled to 0..100: the strongest of 30 scores 100, the weakest 3.3, ties share a rank.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd


def relative_strength(frame: pd.DataFrame, benchmark: pd.DataFrame, period: int) -> pd.Series:
    """Indexed by candle timestamp (ms)."""
    mine = _log_return(frame, period)
    theirs = _log_return(benchmark, period).reindex(mine.index)
    return (mine - theirs).rename(f"rs_{period}")


def universe_percentiles(strengths: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Timestamps x symbols: each symbol's strength percentile at each bar."""
    table = pd.DataFrame(dict(strengths))
    return table.rank(axis=1, method="average", pct=True) * 100.0


def _log_return(frame: pd.DataFrame, period: int) -> pd.Series:
    close = pd.Series(frame["close"].to_numpy(dtype="float64"), index=frame["timestamp"])
    return np.log(close / close.shift(period))
