"""The first stop of a signal's entry is one rule (``risk.stops.initial_stop``): plain Python
for the composer's sizing, its compiled twin for the units loop and the desks (``core.rules``).
The signal's stop price when it has one, else its distance from the entry fill (ema_cross
``stop_atr``) on the losing side, else none (NaN)."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.risk.stops import initial_stop

prices = st.floats(1e-6, 1e7, allow_nan=False)
sides = st.sampled_from([1, -1])
distances = st.floats(0.0, 1e6, allow_nan=False)
compiled_stop = initial_stop.compiled()
compiled = settings(deadline=None)  # the first call compiles (or loads) the kernel


@compiled
@given(side=sides, fill=prices, distance=distances)
def test_a_distance_is_placed_from_the_fill_on_the_losing_side(side, fill, distance):
    stop = initial_stop(side, fill, math.nan, distance)
    assert stop == fill - side * distance
    assert (stop <= fill) if side > 0 else (stop >= fill)
    assert compiled_stop(side, fill, math.nan, distance) == stop


@compiled
@given(side=sides, fill=prices, price=prices, distance=distances | st.just(math.nan))
def test_a_stop_price_wins_over_a_distance_and_no_stop_is_nan(side, fill, price, distance):
    assert initial_stop(side, fill, price, distance) == price
    assert compiled_stop(side, fill, price, distance) == price
    assert math.isnan(initial_stop(side, fill, math.nan, math.nan))
    assert math.isnan(compiled_stop(side, fill, math.nan, math.nan))
