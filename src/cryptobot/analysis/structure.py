"""Market structure on closed bars, with no look-ahead.

Swing points. Bar i is a swing high when its high is strictly above the ``left`` highs before
it and at least as high as the ``right`` highs after it (so of two equal highs the first one
counts); swing lows mirror this on lows. A swing can only be known once its ``right`` bars have
closed, so it is reported on its *confirmation* bar ``i + right``: every column at bar t depends
on bars <= t only, and a scanner looking at the last closed bar sees exactly what a backtest saw.
"""

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view


def swings(frame: pd.DataFrame, left: int = 3, right: int = 3) -> pd.DataFrame:
    """Columns, aligned with ``frame``:

    - ``swing_high`` / ``swing_low``: the pivot's price, on the bar that confirms it (else NaN)
    - ``swing_high_pos`` / ``swing_low_pos``: the pivot's row position (on the same bar)
    - ``last_swing_high`` / ``last_swing_low``: the newest confirmed pivot price as of each bar
    """
    if left < 1 or right < 1:
        raise ValueError("swing windows need left >= 1 and right >= 1")
    high = frame["high"].to_numpy(dtype="float64")
    low = frame["low"].to_numpy(dtype="float64")
    out = {}
    for name, values, sign in (("high", high, 1.0), ("low", low, -1.0)):
        pivots = _pivots(sign * values, left, right)
        price = np.full(len(values), np.nan)
        pos = np.full(len(values), np.nan)
        price[pivots + right] = values[pivots]
        pos[pivots + right] = pivots
        out[f"swing_{name}"] = price
        out[f"swing_{name}_pos"] = pos
        out[f"last_swing_{name}"] = pd.Series(price).ffill().to_numpy()
    return pd.DataFrame(out, index=frame.index)


def _pivots(values: np.ndarray, left: int, right: int) -> np.ndarray:
    """Row positions i with values[i] > every one of the left and >= every one of the right."""
    width = left + right + 1
    if len(values) < width:
        return np.empty(0, dtype=np.int64)
    windows = sliding_window_view(values, width)
    centre = windows[:, left]
    is_pivot = (centre > windows[:, :left].max(axis=1)) & (
        centre >= windows[:, left + 1 :].max(axis=1)
    )
    return np.flatnonzero(is_pivot) + left
