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


def breaks(frame: pd.DataFrame, swing_frame: pd.DataFrame, confirm_closes: int = 1) -> pd.DataFrame:
    """Breaks of structure, change of character and the impulse leg of each break.

    A bullish break happens on the ``confirm_closes``-th consecutive close above the newest
    confirmed, not yet broken swing high (a newer swing high replaces an older unbroken one);
    bearish mirrors it on swing lows. Each swing level breaks at most once. The break is a
    change of character (CHoCH) when it flips the prevailing direction and a break of structure
    (BOS) when it continues it or when there was no direction yet.

    The impulse leg of a bullish break starts at the lowest low between the broken swing's
    pivot and the break bar and ends at the highest high since, extended bar by bar until the
    next break in either direction (bearish mirrors). Only closed bars up to t are used at t.

    Columns: ``bos`` / ``choch`` (+1 bullish, -1 bearish, 0), ``break_level``,
    ``break_swing_pos`` (on the break bar) and, on every bar, ``trend`` (direction of the last
    break), ``leg_start`` / ``leg_end`` (prices where the current leg starts and has reached so
    far), ``leg_start_pos`` / ``leg_end_pos`` / ``leg_break_pos`` / ``leg_level`` (the broken
    level of the current leg).
    """
    if confirm_closes < 1:
        raise ValueError("confirm_closes must be >= 1")
    n = len(frame)
    high = frame["high"].to_numpy(dtype="float64")
    low = frame["low"].to_numpy(dtype="float64")
    close = frame["close"].to_numpy(dtype="float64").tolist()
    new_high = _swing_events(swing_frame, "high")
    new_low = _swing_events(swing_frame, "low")
    cols = _BreakColumns(n)
    level_up = level_down = None  # (price, pivot position) of the active swings
    run_up = run_down = 0
    trend = 0
    leg = None  # [side, start_price, start_pos, end_price, end_pos, break_pos, level]
    for t in range(n):
        if t in new_high:
            level_up, run_up = new_high[t], 0
        if t in new_low:
            level_down, run_down = new_low[t], 0
        run_up = run_up + 1 if level_up is not None and close[t] > level_up[0] else 0
        run_down = run_down + 1 if level_down is not None and close[t] < level_down[0] else 0
        if run_up >= confirm_closes:
            leg = _open_leg(1, level_up, t, low, high)
            cols.mark(t, 1, trend, level_up)
            trend, level_up, run_up = 1, None, 0
        elif run_down >= confirm_closes:
            leg = _open_leg(-1, level_down, t, low, high)
            cols.mark(t, -1, trend, level_down)
            trend, level_down, run_down = -1, None, 0
        elif leg is not None:
            _extend_leg(leg, t, low, high)
        cols.state(t, trend, leg)
    return cols.frame(frame.index)


def _swing_events(swing_frame: pd.DataFrame, kind: str) -> dict[int, tuple[float, int]]:
    price = swing_frame[f"swing_{kind}"].to_numpy()
    pos = swing_frame[f"swing_{kind}_pos"].to_numpy()
    return {int(t): (float(price[t]), int(pos[t])) for t in np.flatnonzero(~np.isnan(price))}


def _open_leg(
    side: int, level: tuple[float, int], t: int, low: np.ndarray, high: np.ndarray
) -> list:
    pivot = level[1]
    if side == 1:
        start = pivot + int(np.argmin(low[pivot : t + 1]))
        end = start + int(np.argmax(high[start : t + 1]))
        return [1, low[start], start, high[end], end, t, level[0]]
    start = pivot + int(np.argmax(high[pivot : t + 1]))
    end = start + int(np.argmin(low[start : t + 1]))
    return [-1, high[start], start, low[end], end, t, level[0]]


def _extend_leg(leg: list, t: int, low: np.ndarray, high: np.ndarray) -> None:
    if leg[0] == 1 and high[t] > leg[3]:
        leg[3], leg[4] = high[t], t
    elif leg[0] == -1 and low[t] < leg[3]:
        leg[3], leg[4] = low[t], t


class _BreakColumns:
    """Output arrays of :func:`breaks`, filled bar by bar."""

    def __init__(self, n: int) -> None:
        self.bos = np.zeros(n, dtype=np.int8)
        self.choch = np.zeros(n, dtype=np.int8)
        self.trend = np.zeros(n, dtype=np.int8)
        names = ("break_level", "break_swing_pos", "leg_start", "leg_start_pos", "leg_end")
        names += ("leg_end_pos", "leg_break_pos", "leg_level")
        self.values = {name: np.full(n, np.nan) for name in names}

    def mark(self, t: int, side: int, trend: int, level: tuple[float, int]) -> None:
        (self.choch if trend == -side else self.bos)[t] = side
        self.values["break_level"][t], self.values["break_swing_pos"][t] = level

    def state(self, t: int, trend: int, leg: list | None) -> None:
        self.trend[t] = trend
        if leg is None:
            return
        v = self.values
        _, v["leg_start"][t], v["leg_start_pos"][t], v["leg_end"][t] = leg[:4]
        v["leg_end_pos"][t], v["leg_break_pos"][t], v["leg_level"][t] = leg[4:]

    def frame(self, index: pd.Index) -> pd.DataFrame:
        data = {"bos": self.bos, "choch": self.choch, "trend": self.trend, **self.values}
        return pd.DataFrame(data, index=index)
