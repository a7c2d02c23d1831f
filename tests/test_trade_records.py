"""What ``trade`` reads and plans, without a venue: a sized-order record checked field by field
(hostile numbers refused with the field's name), and the bracket it becomes (whole steps, prices
on the tick towards the entry, a ladder never larger than the order, the client ids of each
leg)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.engine.bracket import next_version, plan, price_on_tick
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.manage.ticks import TICK_RELATIVE
from cryptobot.risk.orders import leg_order_id
from tests.trading import sized
from tests.venues import market

MARKET = market(tick_size=0.1, step_size=0.001)


def test_a_sized_order_2_keeps_its_ladder_and_a_1_is_split_25_25_25_25():
    two = TradeOrder.from_record(sized(entry=100.0, qty=2.0))
    assert two.target_qty == (0.5, 0.5, 0.5) and two.targets == (102.0, 104.0, 106.0)
    legs = plan(two, MARKET, split=None)
    assert [(t.name, t.request.amount) for t in legs.targets] == [
        ("tp1", 0.5), ("tp2", 0.5), ("tp3", 0.5)]  # fmt: skip
    one = TradeOrder.from_record(
        sized(entry=100.0, qty=0.007, schema="sized_order/1") | {"targets": [101, 102, 103, 104]}
    )
    assert one.target_qty is None
    ladder = plan(one, MARKET, split=None).targets
    assert [t.request.amount for t in ladder] == [0.001] * 4  # 25 % of 7 steps: 1 step each
    split = plan(two, MARKET, split=(50.0, 30.0)).targets  # --tp-split beats the record's
    assert [t.request.amount for t in split] == [1.0, 0.6]


def test_the_legs_carry_the_backtests_client_ids():
    order = TradeOrder.from_record(sized(entry=100.0, cid="cb-abc"))
    legs = plan(order, MARKET, split=None)
    assert legs.entry.client_order_id == "cb-abc"
    assert legs.stop(amount=2.0, version=1).client_order_id == leg_order_id("cb-abc", "sl")
    assert [t.client_order_id for t in legs.targets] == [
        leg_order_id("cb-abc", f"tp{n}") for n in (1, 2, 3)]  # fmt: skip
    assert legs.stop(amount=2.0, version=2).client_order_id == "cb-abc-sl2"
    assert next_version(legs, "sl", {"cb-abc-sl", "cb-abc-sl2"}) == 3
    assert legs.close(amount=1.0, version=1).request.reduce_only


def test_ids_too_long_for_their_legs_and_quantities_below_a_step_are_refused():
    with pytest.raises(DataError, match="too long for its legs"):
        plan(TradeOrder.from_record(sized(entry=100.0, cid="x" * 31)), MARKET, split=None)
    with pytest.raises(DataError, match="below one step"):
        plan(TradeOrder.from_record(sized(entry=100.0, qty=0.0004)), MARKET, split=None)
    coarse = market(tick_size=5.0, step_size=0.001)  # the stop at 98 goes onto 100, the entry
    with pytest.raises(DataError, match="the stop 98 on the tick 5 is 100, at the entry 100"):
        plan(TradeOrder.from_record(sized(entry=100.0)), coarse, split=None)


BAD = [
    ("qty", math.nan, "qty must be a finite number"),
    ("qty", math.inf, "qty must be a finite number"),
    ("qty", -0.5, "qty must be positive"),
    ("qty", 0, "qty must be positive"),
    ("qty", "1.5", "qty must be a number"),
    ("qty", None, "qty is missing"),
    ("qty", True, "qty must be a number"),
    ("qty", 10**400, "qty must be a finite number"),
    ("client_order_id", "cb x;DROP TABLE orders", "client_order_id"),
    ("client_order_id", "ｃb-ü∆", "client_order_id"),
    ("entry", -math.inf, "entry must be a finite number"),
    ("stop", 150.0, "the stop must be below the entry"),
    ("stop", math.nan, "stop must be a finite number"),
    ("leverage", 0.5, "leverage must be at least 1"),
    ("margin_mode", "portfolio", "margin_mode must be one of isolated, cross"),
    ("side", "buy", "side must be one of long, short"),
    ("targets", [99.0], "a target must be above the entry"),
    ("targets", "oops", "targets must be a list"),
    ("target_qty", [0.5, math.nan, 0.5], "target_qty must be a finite number"),
    ("target_qty", [0.5], "target_qty has 1 quantities for 3 targets"),
    ("client_order_id", "", "client_order_id is missing"),
    ("risk_usd", -1.0, "risk_usd must be zero or more"),
    ("status", "maybe", "status must be one of sized, refused"),
]


@pytest.mark.parametrize(("field", "value", "why"), BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_a_hostile_field_is_refused_naming_it(field, value, why):
    with pytest.raises(DataError, match=why.replace("(", r"\(")):
        TradeOrder.from_record(sized(entry=100.0) | {field: value})


NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
                    st.text(max_size=4), st.none(), st.booleans())  # fmt: skip


@given(field=st.sampled_from(["qty", "entry", "stop", "leverage", "notional", "margin",
                              "risk_usd"]), value=NUMBERS)  # fmt: skip
def test_any_value_is_read_or_refused_never_a_crash(field, value):
    try:
        order = TradeOrder.from_record(sized(entry=100.0) | {field: value})
    except DataError:
        return
    for number in (order.qty, order.entry, order.leverage, order.notional, order.margin):
        assert math.isfinite(number) and number >= 0


@given(
    qty=st.floats(0.001, 50.0),
    shares=st.lists(st.floats(1.0, 60.0), min_size=1, max_size=5),
    step=st.sampled_from([0.001, 0.01, 1.0]),
    tick=st.sampled_from([0.1, 0.01, 0.5]),
    side=st.sampled_from(["long", "short"]),
)
def test_a_ladder_is_whole_steps_never_more_than_the_order_and_on_the_tick(
    qty, shares, step, tick, side
):
    if sum(shares) > 100:
        shares = [s * 100 / sum(shares) for s in shares]
    venue = market(tick_size=tick, step_size=step)
    record = sized(entry=100.0, qty=qty, side=side, schema="sized_order/1")
    record["targets"] = [100 + (n if side == "long" else -n) * 1.37 for n in range(1, 6)]
    order = TradeOrder.from_record(record)
    try:
        legs = plan(order, venue, split=tuple(shares))
    except DataError:
        assert qty < step
        return
    amount = legs.entry.request.amount
    assert amount <= qty + 1e-12 and _whole(amount, step)
    rungs = [t.request.amount for t in legs.targets]
    assert sum(rungs) <= amount + 1e-9 and all(_whole(r, step) and r > 0 for r in rungs)
    for t in legs.targets:
        price = t.request.price
        assert _whole(price, tick)
        assert (price > 100.0) if side == "long" else (price < 100.0)
    stop = legs.stop_price
    assert _whole(stop, tick) and abs(stop - order.stop) < tick + 1e-9
    assert (order.stop <= stop < 100) if side == "long" else (100 < stop <= order.stop)


@given(price=st.floats(0.01, 1e6), entry=st.floats(0.01, 1e6),
       tick=st.sampled_from([0.1, 0.01, 0.0001, 5.0]))  # fmt: skip
def test_a_price_goes_onto_the_tick_towards_the_entry(price, entry, tick):
    on = price_on_tick(price, market(tick_size=tick), toward=entry)
    noise = 1e-9 + TICK_RELATIVE * price  # a price this near a tick counts as on it
    assert _whole(on, tick) and abs(on - price) < tick + noise
    if price < entry:
        assert on >= price - noise
    elif price > entry:
        assert on <= price + noise


def _whole(value: float, step: float) -> bool:
    units = value / step  # a float's own error grows with the number of ticks
    return abs(units - round(units)) < 1e-6 + 1e-12 * abs(units)
