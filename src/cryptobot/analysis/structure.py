"""Market structure on closed bars, with no look-ahead.

Swing points. Bar i is a swing high when its high is strictly above the ``left`` highs before
it and at least as high as the ``right`` highs after it (so of two equal highs the first one
counts); swing lows mirror this on lows. A swing can only be known once its ``right`` bars have
closed, so it is reported on its *confirmation* bar ``i + right``: every column at bar t depends
on bars <= t only, and a scanner looking at the last closed bar sees exactly what a backtest saw.

Significance. A 3/3 fractal fires on every wiggle, and each wiggle then "breaks structure". With
``min_size`` a pivot also has to stand out: a swing high's high must be at least ``min_size``
above the lowest low of its own window (the ``left + right + 1`` bars around it), a swing low
mirrors that. ``min_size`` is a price per bar (typically k x ATR at the pivot, known by the
confirmation bar), so the filter adds no look-ahead.
"""

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from cryptobot.core.jit import njit


def swings(
    frame: pd.DataFrame,
    left: int = 3,
    right: int = 3,
    *,
    min_size: np.ndarray | None = None,
) -> pd.DataFrame:
    """Columns, aligned with ``frame``:

    - ``swing_high`` / ``swing_low``: the pivot's price, on the bar that confirms it (else NaN)
    - ``swing_high_pos`` / ``swing_low_pos``: the pivot's row position (on the same bar)
    - ``last_swing_high`` / ``last_swing_low``: the newest confirmed pivot price as of each bar

    ``min_size`` (per bar, aligned with ``frame``; NaN rejects) keeps only pivots that stand
    that far from the opposite extreme of their window (see the module docstring).
    """
    if left < 1 or right < 1:
        raise ValueError("swing windows need left >= 1 and right >= 1")
    high = frame["high"].to_numpy(dtype="float64")
    low = frame["low"].to_numpy(dtype="float64")
    out = {}
    for name, values, sign in (("high", high, 1.0), ("low", low, -1.0)):
        pivots = _pivots(sign * values, left, right)
        if min_size is not None:
            other = sign * (low if sign > 0 else high)  # the opposite extreme, same orientation
            pivots = _significant(pivots, sign * values, other, left, right, min_size)
        price = np.full(len(values), np.nan)
        pos = np.full(len(values), np.nan)
        price[pivots + right] = values[pivots]
        pos[pivots + right] = pivots
        out[f"swing_{name}"] = price
        out[f"swing_{name}_pos"] = pos
        out[f"last_swing_{name}"] = _forward_filled(price, pivots + right)
    return pd.DataFrame(out, index=frame.index)


def _forward_filled(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values`` with each gap after one of the (sorted) ``rows`` filled from it (NaN before
    the first)."""
    if len(rows) == 0:
        return np.full(len(values), np.nan)
    latest = np.searchsorted(rows, np.arange(len(values)), side="right") - 1
    return np.where(latest >= 0, values[rows[np.maximum(latest, 0)]], np.nan)


def _significant(
    pivots: np.ndarray,
    values: np.ndarray,
    other: np.ndarray,
    left: int,
    right: int,
    min_size: np.ndarray,
) -> np.ndarray:
    """The pivots whose value stands ``min_size`` above the lowest ``other`` of their window
    (values and other in the same orientation: negated for swing lows)."""
    if len(pivots) == 0:
        return pivots
    floor = sliding_window_view(other, left + right + 1).min(axis=1)[pivots - left]
    size = np.asarray(min_size, dtype="float64")[pivots]
    return pivots[values[pivots] - floor >= size]


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
    arrays = [frame[k].to_numpy(dtype="float64") for k in ("high", "low", "close")]
    arrays += [swing_frame[k].to_numpy(dtype="float64") for k in _SWING_COLUMNS]
    events, legs = _break_kernel(*arrays, confirm_closes)
    columns = {
        "bos": events[:, 0].astype(np.int8),
        "choch": events[:, 1].astype(np.int8),
        "trend": legs[:, 0].astype(np.int8),
        "break_level": events[:, 2],
        "break_swing_pos": events[:, 3],
    }
    columns.update({name: legs[:, j + 1] for j, name in enumerate(_LEG_COLUMNS)})
    return pd.DataFrame(columns, index=frame.index)


_SWING_COLUMNS = ("swing_high", "swing_high_pos", "swing_low", "swing_low_pos")
_LEG_COLUMNS = (
    "leg_start",
    "leg_start_pos",
    "leg_end",
    "leg_end_pos",
    "leg_break_pos",
    "leg_level",
)


@njit(cache=True)
def _break_kernel(high, low, close, sh, sh_pos, sl, sl_pos, confirm):  # pragma: no cover
    """Bar by bar (compiled). ``events`` rows: bos, choch, level, swing pos (on break bars).
    ``legs`` rows: trend + leg columns as of each bar (trend 0 and NaN before the first break)."""
    n = len(close)
    events = np.zeros((n, 4))
    events[:, 2:] = np.nan
    legs = np.full((n, 7), np.nan)
    legs[:, 0] = 0.0
    up_level = down_level = np.nan
    up_pos = down_pos = -1
    run_up = run_down = 0
    trend = 0
    side = 0
    start = start_pos = end = end_pos = brk = lvl = np.nan
    for t in range(n):
        if not np.isnan(sh[t]):
            up_level, up_pos, run_up = sh[t], int(sh_pos[t]), 0
        if not np.isnan(sl[t]):
            down_level, down_pos, run_down = sl[t], int(sl_pos[t]), 0
        run_up = run_up + 1 if not np.isnan(up_level) and close[t] > up_level else 0
        run_down = run_down + 1 if not np.isnan(down_level) and close[t] < down_level else 0
        if run_up >= confirm or run_down >= confirm:
            side = 1 if run_up >= confirm else -1
            level, pivot = (up_level, up_pos) if side == 1 else (down_level, down_pos)
            events[t, 0 if trend != -side else 1] = side
            events[t, 2], events[t, 3] = level, pivot
            if side == 1:
                s = pivot + np.argmin(low[pivot : t + 1])
                e = s + np.argmax(high[s : t + 1])
                start, end = low[s], high[e]
                up_level, run_up = np.nan, 0
            else:
                s = pivot + np.argmax(high[pivot : t + 1])
                e = s + np.argmin(low[s : t + 1])
                start, end = high[s], low[e]
                down_level, run_down = np.nan, 0
            start_pos, end_pos, brk, lvl, trend = s, e, t, level, side
        elif side == 1 and high[t] > end:
            end, end_pos = high[t], t
        elif side == -1 and low[t] < end:
            end, end_pos = low[t], t
        if trend == 0:
            continue
        legs[t, 0], legs[t, 1], legs[t, 2], legs[t, 3] = trend, start, start_pos, end
        legs[t, 4], legs[t, 5], legs[t, 6] = end_pos, brk, lvl
    return events, legs
