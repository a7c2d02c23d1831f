"""``ema_cross``: the reference strategy, defined exactly so two correct engines agree.

EMA(fast) and EMA(slow) of the close with TA-Lib semantics; ``d = fast - slow``; the state is
+1 when d > 0, -1 when d < 0, the previous state when d == 0 and 0 while the slow EMA is
undefined. A cross at bar t is a change of state from -1 to +1 (long) or +1 to -1 (short); it is
executed at bar t+1's open by closing the position and opening one unit the other way. With
``stop_atr``, the stop is the entry fill -/+ ``stop_atr`` x ATR(14) of bar t, live from bar t+2
(the definition, kept in units mode; sized by risk, a trade's stop is live on its entry bar t+1,
or a stop-out there could lose more than the budget); after a stop-out the position stays
flat until the next cross. See ``kernel`` for the fills.
"""

import math

import numpy as np

from cryptobot.analysis.ta import talib
from cryptobot.core.jit import njit


def ema_cross_signals(close: np.ndarray, fast: int = 9, slow: int = 21) -> np.ndarray:
    """+1 / -1 at the bars whose close crosses up / down, 0 elsewhere (int8)."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    return _crosses(talib.EMA(close, fast) - talib.EMA(close, slow))


@njit(cache=True)
def _crosses(d: np.ndarray) -> np.ndarray:
    cross = np.zeros(d.shape[0], dtype=np.int8)
    state = 0
    for t in range(d.shape[0]):
        before = state
        if math.isnan(d[t]):
            state = 0
        elif d[t] > 0.0:
            state = 1
        elif d[t] < 0.0:
            state = -1
        if before == -state and state != 0:
            cross[t] = state
    return cross
