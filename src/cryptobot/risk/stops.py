"""A signal's first stop: the one rule for every driver (the kernel's units loop, the fast
path's portfolio desk, the stepwise venue desk) and for the sizing of its order.

A strategy gives its stop as a price (a swing, a level) or as a distance from the entry
(ema_cross ``stop_atr``: an ATR multiple). A distance is placed from the entry's fill, on the
losing side, because that is where the reference strategy places it; before the fill (sizing a
market order) the caller passes the price it is sent at. A ``core.rules.rule`` on floats: the
composer calls it as plain Python, without numba, and ``backtest.kernel``'s loop its compiled
twin."""

import math

from cryptobot.core.rules import rule


@rule(cache=True, _nrt=False)
def initial_stop(side: int, fill: float, stop_price: float, stop_distance: float) -> float:
    """The stop for an entry of ``side`` (+1/-1) at ``fill``: ``stop_price`` when it is a
    price, else ``stop_distance`` from the fill, else NaN (no stop)."""
    if not math.isnan(stop_price):
        return stop_price
    return fill - side * stop_distance
