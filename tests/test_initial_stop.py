"""The first stop of a signal's entry is one rule (``backtest.kernel.initial_stop``), compiled
for the units loop and called by the portfolio and the stepwise composer: the signal's stop
price when it has one, else its distance from the entry fill (ema_cross ``stop_atr``) on the
losing side, else none (NaN)."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.backtest.engine import Signals
from cryptobot.backtest.kernel import initial_stop
from cryptobot.backtest.portfolio import stop_of

prices = st.floats(1e-6, 1e7, allow_nan=False)
sides = st.sampled_from([1, -1])
distances = st.floats(0.0, 1e6, allow_nan=False)
compiled = settings(deadline=None)  # the first call compiles (or loads) the kernel


@compiled
@given(side=sides, fill=prices, distance=distances)
def test_a_distance_is_placed_from_the_fill_on_the_losing_side(side, fill, distance):
    stop = initial_stop(side, fill, math.nan, distance)
    assert stop == fill - side * distance
    assert (stop <= fill) if side > 0 else (stop >= fill)


@compiled
@given(side=sides, fill=prices, price=prices, distance=distances | st.just(math.nan))
def test_a_stop_price_wins_over_a_distance_and_no_stop_is_nan(side, fill, price, distance):
    assert initial_stop(side, fill, price, distance) == price
    assert math.isnan(initial_stop(side, fill, math.nan, math.nan))


def test_the_portfolio_places_a_signals_stop_by_the_same_rule():
    """``portfolio.stop_of`` reads the signal arrays and hands them to the compiled rule."""
    side = np.array([1, -1, 1], dtype=np.int8)
    sg = Signals.of(side, stop_price=np.array([95.0, math.nan, math.nan]),
                    stop_distance=np.array([3.0, 2.5, math.nan]))  # fmt: skip
    assert stop_of(sg, 0, 100.0, 1) == 95.0
    assert stop_of(sg, 1, 100.0, -1) == 102.5
    assert math.isnan(stop_of(sg, 2, 100.0, 1))
