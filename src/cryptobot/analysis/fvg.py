"""Fair value gaps (three-candle imbalances) and how far price has filled them.

Candles a, b, c (c is the newest). A bullish gap exists when ``low[c] > high[a]`` and b closed
up: the range ``(high[a], low[c])`` traded only during b's displacement. A bearish gap mirrors
it: ``high[c] < low[a]`` and b closed down, range ``(high[c], low[a])``. A gap is only known once
c has closed, so it is reported on c's bar (position ``pos``), never on b's.

Mitigation is measured from c's *next* bar on: a bullish gap is touched when a low trades below
its top and fully filled when a low reaches its bottom; ``fill`` is the deepest fraction
reached so far (0..1). Bearish gaps mirror on highs.
"""

import numpy as np
import pandas as pd

from cryptobot.core.jit import njit

GAP_COLUMNS = ["pos", "side", "top", "bottom", "touch_pos", "fill_pos"]


def fair_value_gaps(frame: pd.DataFrame, min_size: float = 0.0) -> pd.DataFrame:
    """One row per gap: ``pos`` (bar that confirmed it), ``side`` (+1/-1), ``top``, ``bottom``,
    ``touch_pos`` / ``fill_pos`` (first bar that entered / fully filled it; -1 if none yet).

    ``min_size`` drops gaps narrower than that fraction of price (0.001 = 0.1%).
    """
    o, h, lo, c = (frame[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
    if len(frame) < 3:
        return pd.DataFrame({k: pd.Series(dtype="float64") for k in GAP_COLUMNS})
    up = (lo[2:] > h[:-2]) & (c[1:-1] > o[1:-1])
    down = (h[2:] < lo[:-2]) & (c[1:-1] < o[1:-1])
    pos = np.flatnonzero(up | down) + 2
    side = np.where(up[pos - 2], 1, -1)
    top = np.where(side == 1, lo[pos], lo[pos - 2])
    bottom = np.where(side == 1, h[pos - 2], h[pos])
    keep = (top - bottom) >= min_size * np.abs(c[pos])
    pos, side, top, bottom = pos[keep], side[keep], top[keep], bottom[keep]
    touch, fill = _mitigation(pos, side, top, bottom, h, lo)
    return pd.DataFrame(
        {
            "pos": pos,
            "side": side,
            "top": top,
            "bottom": bottom,
            "touch_pos": touch,
            "fill_pos": fill,
        }
    )


def gaps_as_of(gaps: pd.DataFrame, t: int) -> pd.DataFrame:
    """The gap table as a scanner standing at bar ``t`` sees it: gaps confirmed by t, with
    touches and fills after t not yet happened."""
    seen = gaps[gaps.pos <= t].copy()
    for col in ("touch_pos", "fill_pos"):
        seen.loc[seen[col] > t, col] = -1
    return seen


def fill_fraction(gap: pd.Series, frame: pd.DataFrame, t: int) -> float:
    """How deep price has traded into ``gap`` by bar ``t`` (0 untouched .. 1 filled)."""
    start = int(gap.pos) + 1
    if t < start:
        return 0.0
    width = gap.top - gap.bottom
    if gap.side == 1:
        depth = gap.top - frame["low"].to_numpy()[start : t + 1].min()
    else:
        depth = frame["high"].to_numpy()[start : t + 1].max() - gap.bottom
    return float(min(max(depth / width, 0.0), 1.0)) if width > 0 else 1.0


@njit(cache=True)
def _mitigation(pos, side, top, bottom, high, low):  # pragma: no cover - compiled
    n = len(high)
    touch = np.full(len(pos), -1, dtype=np.int64)
    fill = np.full(len(pos), -1, dtype=np.int64)
    for g in range(len(pos)):
        for j in range(pos[g] + 1, n):
            if side[g] == 1:
                entered, filled = low[j] < top[g], low[j] <= bottom[g]
            else:
                entered, filled = high[j] > bottom[g], high[j] >= top[g]
            if entered and touch[g] < 0:
                touch[g] = j
            if filled:
                fill[g] = j
                break
    return touch, fill
