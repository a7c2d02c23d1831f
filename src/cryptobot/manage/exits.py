"""What a strategy's own bars tell the management of an open trade, per bar, from closed bars
only (a value at bar t depends on bars <= t, so the compiled loop acts on it at t+1's open).

- **Exit events** are uint8 bit masks: ``EXIT_LONGS`` closes a long, ``EXIT_SHORTS`` a short.
  ``regime_exits`` is the one every strategy can take; the momentum plan's own (opposite EMA
  cross, RSI divergence) are built from its indicators in ``strategies.momentum``.
- **Trend strength** (``weakening``) switches a trail to its tighter weak-trend multiple.
"""

import numpy as np
import pandas as pd

from cryptobot.analysis.indicators import adx
from cryptobot.analysis.regime import regime

EXIT_LONGS, EXIT_SHORTS = 1, 2
BOTH = EXIT_LONGS | EXIT_SHORTS
ADX_PERIOD = 14  # the regime's own ADX


def regime_exits(frame: pd.DataFrame, *, blocked: list[str]) -> np.ndarray:
    """Both sides exit on the close where the regime of the trade's timeframe
    (``analysis.regime``, its defaults) changes into one of ``blocked`` (the regimes the
    strategy skips, ``signal.regime_block``): a breakout bought in a trend is sold when the
    market turns to a range. The event is the change, so a trade entered while the regime was
    already blocked (the backtest does not apply the signal filter) is left to its other exits
    until the regime leaves and enters a blocked one again."""
    inside = regime(frame).isin(blocked).to_numpy() if blocked else np.zeros(len(frame), bool)
    entered = inside & ~np.concatenate(([False], inside[:-1]))
    return np.where(entered, BOTH, 0).astype(np.uint8)


def weakening(frame: pd.DataFrame, *, strong_adx: float) -> np.ndarray:
    """Per bar, whether the trend is not strong: strong = ADX(14) of the trade's timeframe at or
    above ``strong_adx`` (the regime's "trending" threshold by default) and above the bar
    before. A falling ADX, even a high one, means momentum is fading; an unknown ADX (warm-up)
    counts as weak, the tighter choice."""
    strength = adx(frame, ADX_PERIOD)[f"adx_{ADX_PERIOD}"].to_numpy()
    before = np.concatenate(([np.nan], strength[:-1]))
    return ~((strength >= strong_adx) & (strength > before))
