"""``manage.ticks.on_tick``: stops and targets on the price tick, towards the position."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.exchange.market_rules import snap
from cryptobot.manage.ticks import on_tick

compiled_on_tick = on_tick.compiled()  # what the position's compiled step calls

TICKS = st.sampled_from([0.5, 0.1, 0.01, 0.05, 1e-5, 1.0, 5.0, 0.25])
PRICES = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)


@settings(deadline=None)  # the compiled twin compiles on its first call
@given(price=PRICES, tick=TICKS, side=st.sampled_from([1, -1]), stop=st.booleans())
def test_a_level_lands_on_the_tick_within_one_tick_towards_the_position(price, tick, side, stop):
    out = on_tick(side, price, tick, stop)
    assert snap(out, tick) == out  # on the grid: the venue's own rounding leaves it there
    assert abs(out - price) <= tick * (1 + 1e-9)
    up = (side > 0) == stop  # a long's stop up (less risk), its target down (nearer)
    assert (out >= price * (1 - 1e-12)) if up else (out <= price * (1 + 1e-12))
    assert on_tick(side, out, tick, stop) == out
    assert compiled_on_tick(side, price, tick, stop) == out


def test_the_reviewers_prices_and_no_tick():
    assert on_tick(1, 117103.832, 0.1, True) == 117103.9
    assert on_tick(1, 117103.832, 0.1, False) == 117103.8
    assert on_tick(-1, 117103.832, 0.1, True) == 117103.8
    assert on_tick(1, 117103.5, 0.1, True) == 117103.5  # on the tick already
    assert on_tick(1, 101.3, 0.0, True) == 101.3
    assert math.isnan(on_tick(1, math.nan, 0.1, True))
