"""``ema_cross``: the reference strategy, defined exactly so two correct engines agree.

EMA(fast) and EMA(slow) of the close with TA-Lib semantics; ``d = fast - slow``; the state is
+1 when d > 0, -1 when d < 0, the previous state when d == 0 and 0 while the slow EMA is
undefined. A cross at bar t is a change of state from -1 to +1 (long) or +1 to -1 (short); it is
executed at bar t+1's open by closing the position and opening one unit the other way (its
signals are its exits). With ``stop_atr``, the stop is the entry fill -/+ ``stop_atr`` x ATR(14)
of bar t, live from bar t+2 (the definition, kept in units mode; sized by risk, a trade's stop
is live on its entry bar t+1, or a stop-out there could lose more than the budget); after a
stop-out the position stays flat until the next cross. See ``backtest.kernel`` for the fills.

Settings: ``strategies.ema_cross`` (``timeframe``, the one ``scan`` reads, any other in a
backtest's ``--timeframe``; ``fast``, ``slow``; ``stop_atr``, null for none; ``targets_r``).

In ``scan`` a setup is a cross on a closed bar: entry its close, stop ``stop_atr`` x ATR(14)
of that bar away (so ``scan`` needs ``stop_atr`` set: a setup without a stop cannot be sized),
targets ``targets_r`` multiples of that risk. A plain cross has no grading: confidence 3, the
middle of the 0..5 scale the other detectors use.
"""

import math
from typing import TYPE_CHECKING

import numpy as np

from cryptobot.analysis.ta import talib
from cryptobot.core.errors import ConfigError
from cryptobot.core.jit import njit
from cryptobot.strategies.spec import BarEntries, Reference, Strategy

if TYPE_CHECKING:
    from cryptobot.core.settings import EmaCrossSettings
    from cryptobot.core.setup import Setup
    from cryptobot.strategies.base import SymbolData

NAME = "ema_cross"
CONFIDENCE = 3


def ema_cross_signals(close: np.ndarray, fast: int = 9, slow: int = 21) -> np.ndarray:
    """+1 / -1 at the bars whose close crosses up / down, 0 elsewhere (int8)."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    d = talib.EMA(close, fast)
    d -= talib.EMA(close, slow)  # in place: a million bars' third 8 MB array not made
    return _crosses(d)


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


def bar_entries(bars: np.ndarray, p: "EmaCrossSettings") -> BarEntries:
    """The crosses over a symbol's bar array (close in column 3, ATR(14) in column 5), each
    with its stop's distance from the entry fill."""
    side = ema_cross_signals(bars[:, 3], p.fast, p.slow)
    return BarEntries(side, None if p.stop_atr is None else p.stop_atr * bars[:, 5])


def detect(data: "SymbolData", p: "EmaCrossSettings") -> list["Setup"]:
    """A triggered setup at every cross whose ATR is known (the same bars as ``bar_entries``)."""
    from cryptobot.analysis.indicators import atr  # pandas: scan's path, not the reference's
    from cryptobot.strategies.base import make_setup

    if p.stop_atr is None:
        raise ConfigError(
            "ema_cross setups need a stop: set strategies.ema_cross.stop_atr (e.g. 2.0)"
        )
    frame = data.frame(p.timeframe)
    close = frame["close"].to_numpy(dtype=np.float64)
    ranges = atr(frame, 14).to_numpy()
    fast, slow = talib.EMA(close, p.fast), talib.EMA(close, p.slow)
    cross = ema_cross_signals(close, p.fast, p.slow)
    setups = []
    for t in np.flatnonzero((cross != 0) & np.isfinite(ranges)).tolist():
        sign = float(cross[t])
        ts = int(frame["timestamp"].iat[t])
        stop = close[t] - sign * p.stop_atr * ranges[t]
        reasons = {"ema_fast": float(fast[t]), "ema_slow": float(slow[t]),
                   "atr": float(ranges[t]), "stop_atr": p.stop_atr}  # fmt: skip
        side = "long" if sign > 0 else "short"
        setups.append(make_setup(data, strategy=NAME, timeframe=p.timeframe, side=side,
                                 triggered=True, times=(ts, ts), levels=(close[t], stop),
                                 targets_r=p.targets_r, confidence=CONFIDENCE,
                                 reasons=reasons))  # fmt: skip
    return setups


STRATEGY = Strategy(
    name=NAME,
    timeframes=lambda p: [p.timeframe],
    detect=detect,
    bar_entries=bar_entries,
    exits_on_signal=True,
    any_timeframe=True,
    reference=Reference(units=1.0, funding=False, taker_fee=0.0004, stop_delay_bars=1),
    stop_param="stop_atr",
)
