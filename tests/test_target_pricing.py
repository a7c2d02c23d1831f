"""One pricing rule for take-profit targets: a sized order's targets (``size``, and from them
``trade``'s ladder) are exactly the compiled position's (the backtest's, ``--stepwise``'s),
for every side, entry, stop, tick and ladder, and for an order without a stop too (R from
``manage.manual_risk_pct``, else from the liquidation price). Every rung is on the market's
tick, a long's rounded down and a short's up, never further than the ladder asked."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.order import Intent
from cryptobot.manage import step
from cryptobot.manage.policy import Policy
from cryptobot.manage.targets import ladder_targets
from cryptobot.risk import gates
from cryptobot.risk.context import brackets_resolver
from cryptobot.risk.orders import SizingSetup, size_orders
from tests.test_risk_sizing import market

SYM = "ETH/USDT:USDT"
SETTINGS = load_settings(None, {}, env={})
TICKS = [0.0, 0.01, 0.1, 0.5, 1.0, 0.0001, 0.25]
LADDERS = st.lists(
    st.tuples(st.floats(0.1, 6.0).map(lambda r: round(r, 2)), st.sampled_from([10, 20, 25, 40])),
    min_size=1,
    max_size=4,
    unique_by=lambda s: s[0],
).filter(lambda rungs: sum(p for _, p in rungs) <= 100)


def _manage(ladder, manual_risk_pct=None):
    steps = [{"r": r, "pct": pct} for r, pct in ladder]
    return SETTINGS.manage.overriding(take_profit_ladder=steps, manual_risk_pct=manual_risk_pct)


def _sized(manage, side, entry, stop, tick):
    """``size``'s order for an intent of ``manual`` (no profile of its own): by risk with a
    stop, by margin (10 % of 10,000 at 5x) without one."""
    sizing = {"method": "fixed_usd", "risk_usd": 1.0} if stop is not None else {
        "method": "margin_pct", "margin_pct": 10.0, "leverage": 5}  # fmt: skip
    risk = SETTINGS.risk.model_copy(
        update={"sizing": SETTINGS.risk.sizing.model_copy(update=sizing),
                "liquidation_buffer_pct": 0.0}
    )  # fmt: skip
    setup = SizingSetup(risk=risk, venue="binance", client_order_prefix="cb", taker_fee=0.0,
                        manage=manage)  # fmt: skip
    intent = Intent("binanceusdm", SYM, side, entry, stop, (), strategy="manual")
    mkt = replace(market(SYM, step=0.0001, min_qty=0.0001, min_notional=0.0), tick_size=tick)
    (order,) = size_orders([intent], {SYM: mkt}, brackets_resolver("binance", 20, None),
                           gates.AccountState(equity=10_000.0), setup)  # fmt: skip
    return order


def _position_targets(manage, side, entry, stop, qty, tick, liquidation=None):
    """The compiled position's target prices (NaN: no R) and the quantity resting at each,
    opened at ``entry``."""
    rules = Policy.from_settings(manage.for_strategy("manual"), 60.0).rules()
    pos = step.new_state(rules)
    liq_ratio = math.nan if liquidation is None else liquidation / entry
    sign = 1 if side == "long" else -1
    step.open_position(pos, rules, sign, qty, entry, 0.0, math.nan if stop is None else stop,
                       liq_ratio, 5.0, 0.0001, tick)  # fmt: skip
    assert pos.vec[step.S_RISK] > 0.0 or not pos.targets[1].any()
    return pos.targets[0].tolist(), pos.targets[1].tolist()


def _untakeable(order, prices, *, sign, entry, stop=None, tick=0.0) -> bool:
    """Whether the position has no ladder to take (then the order has none either): no R (the
    stop on the tick is the entry), or an R of about a tick that puts a rung on the entry (no
    profit to take) or a short's far rung at or below zero (``size`` refuses such an order);
    or the tick puts the stop past the entry (``size`` refuses that order, as ``trade`` does)."""
    if stop is not None and sign * (entry - step.on_tick(sign, stop, tick, True)) < 0:
        assert order.status == "refused" and order.reason.startswith("stop on the entry's tick")
        return True
    if any(math.isnan(p) for p in prices) or all(p == entry for p in prices):
        assert order.intent.targets == () and order.figures["target_qty"] == []
        return True
    if any(sign * (p - entry) <= 0 or p <= 0 for p in prices):
        assert order.status == "refused"  # for that, unless refused for something else first
        assert order.intent.targets == () and order.figures["target_qty"] == []
        return True
    return False


def _on_tick(price: float, tick: float) -> bool:
    units = price / tick
    return abs(units - round(units)) <= 1e-9 + 1e-12 * abs(units)


@settings(max_examples=150, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    entry=st.floats(0.5, 120_000.0),
    stop_pct=st.floats(0.05, 20.0),
    tick=st.sampled_from(TICKS),
    ladder=LADDERS,
)
def test_the_sized_orders_targets_are_the_compiled_positions(side, entry, stop_pct, tick, ladder):
    entry = round(entry, 4)
    sign = 1 if side == "long" else -1
    stop = entry * (1 - sign * stop_pct / 100)
    manage = _manage(ladder)
    order = _sized(manage, side, entry, stop, tick)
    prices, qtys = _position_targets(manage, side, entry, stop, order.figures["qty"], tick)
    if _untakeable(order, prices, sign=sign, entry=entry, stop=stop, tick=tick):
        return
    assert list(order.intent.targets) == prices  # exactly: one rule, not two that agree
    if order.figures["qty"] > 0:
        assert order.figures["target_qty"] == qtys
    stop_on_tick = step.on_tick(sign, stop, tick, True)
    wanted = [entry + sign * r * abs(entry - stop_on_tick) for r, _ in sorted(ladder)]
    for price, want in zip(order.intent.targets, wanted, strict=True):
        assert sign * (price - want) <= 1e-9 * want  # never further than asked
        if tick:
            assert _on_tick(price, tick)
            assert abs(price - want) < tick * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    entry=st.floats(10.0, 120_000.0),
    manual=st.floats(0.1, 10.0),
    tick=st.sampled_from(TICKS),
    ladder=LADDERS,
)
def test_without_a_stop_the_r_is_the_configured_manual_risk(side, entry, manual, tick, ladder):
    entry, manual = round(entry, 2), round(manual, 2)
    manage = _manage(ladder, manual_risk_pct=manual)
    order = _sized(manage, side, entry, None, tick)
    prices, qtys = _position_targets(manage, side, entry, None, order.figures["qty"], tick)
    sign = 1 if side == "long" else -1
    if _untakeable(order, prices, sign=sign, entry=entry):
        return
    assert order.status == "sized", order.reason
    assert order.intent.targets, "an order without a stop still gets its ladder"
    assert list(order.intent.targets) == prices and order.figures["target_qty"] == qtys
    nearest = min(r for r, _ in ladder)
    assert order.intent.targets[0] == pytest.approx(
        entry + sign * nearest * entry * manual / 100, abs=max(tick, 1e-9 * entry)
    )


@pytest.mark.parametrize("side", ["long", "short"])
def test_without_a_stop_or_manual_risk_the_r_is_the_liquidation_distance(side):
    manage = _manage([(1.0, 50), (2.0, 50)])
    order = _sized(manage, side, 2000.0, None, 0.01)
    assert order.status == "sized", order.reason
    liq = order.figures["liquidation_price"]
    assert liq is not None and order.intent.targets
    sign = 1 if side == "long" else -1
    r = abs(2000.0 - liq)
    assert order.intent.targets == pytest.approx((2000 + sign * r, 2000 + sign * 2 * r), abs=0.01)
    # the backtest books the liquidation as a ratio of its entry: the same R up to a float's
    # last bit, so the ticked prices are the same
    prices, qtys = _position_targets(manage, side, 2000.0, None, order.figures["qty"], 0.01,
                                     liquidation=liq)  # fmt: skip
    assert list(order.intent.targets) == prices and order.figures["target_qty"] == qtys
    assert sum(qtys) == pytest.approx(order.figures["qty"])


def test_a_rung_the_tick_puts_on_the_entry_refuses_the_order():
    """R 0.01 on a tick of 0.01: the 0.5R rung rounds down onto the entry."""
    order = _sized(_manage([(0.5, 50), (1.0, 50)]), "long", 1.0, 0.99, 0.01)
    assert order.status == "refused" and order.intent.targets == ()
    assert order.reason == (
        "target on the entry's tick: a take-profit rung on the tick 0.01 is 1, not beyond the "
        "entry 1; the stop is too close for this market"
    )


def test_a_shorts_rung_at_or_below_zero_refuses_the_order():
    order = _sized(_manage([(1.0, 50), (6.0, 50)]), "short", 100.0, 117.0, 0.01)
    assert order.status == "refused" and order.intent.targets == ()
    assert order.reason == ("take-profit rung at or below zero: a rung lies at -2; the stop is "
                            "too far from the entry for this ladder")  # fmt: skip


def test_no_r_no_targets():
    """Neither a stop, a manual risk nor a liquidation price: nothing to price a ladder from."""
    rules = _manage([(1.0, 50)]).for_strategy("manual")
    assert ladder_targets(rules=rules, side="long", entry=100.0, stop=None) == ()
    assert ladder_targets(rules=rules, side="long", entry=100.0, stop=100.0) == ()


def test_the_python_and_the_compiled_rule_are_one_source():
    from cryptobot.manage import targets

    compiled = targets.target_prices_into.compiled()
    assert compiled.py_func is targets.target_prices_into.py_func
    out_py, out_jit = np.zeros(2), np.zeros(2)
    args = (-1, 100.0, 103.37, math.nan, math.nan, np.array([1.0, 2.5]), 0.5)
    assert targets.target_prices_into(out_py, *args) == compiled(out_jit, *args)
    assert out_py.tolist() == out_jit.tolist() == [97.0, 92.5]  # R from the stop on the tick (103)


def test_an_infinite_price_is_left_for_the_caller_to_refuse():
    """An entry of 1e308 prices a rung at infinity: left as it is (``size`` then refuses the
    entry with its figures), not an OverflowError from the tick."""
    from cryptobot.manage import ticks

    for on_tick in (ticks.on_tick, ticks.on_tick.compiled()):
        assert on_tick(1, math.inf, 0.1, False) == math.inf
        assert on_tick(-1, -math.inf, 0.1, True) == -math.inf
