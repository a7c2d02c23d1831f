"""Stop and target prices put on the market's price tick: the one rule of the fast path and
the composer.

A venue refuses a trigger or limit price off the tick, so the stepwise composer can only send
ticked prices; the kernel books its stops and targets at the same ticked levels, so both paths
fill at the same prices. Each level is rounded towards the price it protects or takes profit
from, never away: a long's stop rounds up and its target down (a short's the other way), so a
stop never risks more than the sized distance and a target is never further than the ladder
asked. A level already on the tick (up to float noise) stays where it is. A
``core.rules.rule``: ``manage.targets`` prices a sized order's rungs by it as plain Python,
without loading numba; the position's compiled step calls its compiled twin.
"""

import math

from cryptobot.core.rules import rule

#: how far from a whole number of ticks a level may be and still count as on the tick: a
#: fixed part and one that grows with the number of ticks (a division's float noise does: a
#: level computed in a few operations is off by a few ulp, ~18 ulp here; 1e-12 was thousands
#: of ulp, and moved a price 1e10 ticks high by 0.0075 of a tick away from its side)
TICK_TOLERANCE = 1e-9
TICK_RELATIVE = 4e-15


@rule(cache=True)
def on_tick(side: int, price: float, tick: float, stop: bool) -> float:
    """A ``side`` position's ``stop`` level (else: a target) at ``price`` put on the ``tick``
    grid (no tick, 0, or a price that is not finite: unchanged, for the caller to refuse),
    towards the position's side of it when it lies between two ticks. Positional: compiled
    code calls it. The result is the float nearest the decimal multiple of the tick
    (``exchange.market_rules.snap`` leaves it as it is): a tick of 1/n divides by n, which
    rounds once, where multiplying by an inexact 0.1 would not."""
    if not tick > 0.0 or not math.isfinite(price):
        return price
    units = price / tick
    whole = math.floor(units + 0.5)
    if abs(units - whole) > TICK_TOLERANCE + TICK_RELATIVE * abs(units):
        up = (side > 0) == stop
        whole = math.ceil(units) if up else math.floor(units)
    per_unit = 1.0 / tick
    inverse = math.floor(per_unit + 0.5)
    if inverse >= 1 and abs(per_unit - inverse) <= TICK_TOLERANCE * inverse:
        return whole / inverse
    return whole * tick
