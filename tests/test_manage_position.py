"""The position engine on hand-built bars: plan 3's position-manager rule (per leg), positions
opened by hand without a stop, price events, forced closes, and hostile input refused with the
position left as it was. Where a rule runs in the backtest too, the kernel (``run_units``) books
the same fills as the ``Position`` stepped bar by bar."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units
from cryptobot.core.config import load_settings
from cryptobot.core.errors import CryptobotError
from cryptobot.manage import Bar, BarInputs, Policy, Position, PositionError
from tests.test_backtest_fills import candles

H = 3_600_000
NONE = np.empty(0)


def plan3(max_adds: int = 3, **extra) -> Policy:
    """Only the position-manager rule: +100 % ROE on the newest leg, the first leg's margin
    again, half of the triggering leg out, its stop to its entry."""
    return Policy(NONE, NONE, NONE, NONE, scale_trigger_pct=100.0, scale_max_adds=max_adds, **extra)


def opened(policy: Policy, *, side="long", qty=1.0, price=100.0, stop=95.0, leverage=10.0,
           step=0.0, costs=Costs(), liquidation=None) -> Position:  # fmt: skip
    return Position.open(policy=policy, costs=costs, side=side, qty=qty, price=price, ts=0,
                         stop=stop, leverage=leverage, step=step,
                         liquidation=liquidation)  # fmt: skip


def walk(pos: Position, rows, start: int = 0) -> list[tuple]:
    """Step ``rows`` (open, high, low, close[, atr]) from bar ``start``; (bar, kind, reason,
    qty, price) of every action but the decisions."""
    out = []
    for k, row in enumerate(rows, start):
        atr = row[4] if len(row) > 4 else math.nan
        for a in pos.step_bar(Bar(k * H, *row[:4], 1.0, atr)):
            if a.kind != "next_open":
                out.append((k, a.kind, a.reason, round(a.qty, 9), round(a.price, 9)))
    return out


# ---- plan 3: the position-manager rule -----------------------------------------------------
WORKED = [
    (100, 101, 99, 100),  # 0: the entry bar (in at 100: 1 unit, margin 10 at 10x)
    (100, 110, 100, 110),  # 1: +10 % = +100 % ROE of the first leg at the close
    (110, 121, 110, 121),  # 2: in at 110 (leg 2); +100 % ROE of leg 2 at the close
    (121, 122, 115, 116),  # 3: in at 121 (leg 3); leg 2's stop now at 110, not reached
    (116, 117, 108, 109),  # 4: leg 2's own stop (110) is reached
    (109, 110, 99, 100),  # 5: leg 1's own stop (100) is reached
    (100, 100, 94, 95),  # 6: the position's stop (95) closes leg 3
]


def test_the_worked_example_adds_the_same_margin_halves_the_leg_and_moves_its_stop():
    """Entry 100, 10x, 1 unit (margin 10). At +100 % ROE (110): a leg with the same margin,
    10 x 10 / 110 = 0.909 units, half of the original out, its stop to 100. Repeat for leg 2 at
    121: 10 x 10 / 121 = 0.826 units, half of leg 2 (0.4545) out, its stop to 110. Then each
    leg's own stop, tightest first, and the position's stop for the newest leg."""
    pos = opened(plan3())
    acts = walk(pos, WORKED)
    leg2, leg3 = 100 / 110, 100 / 121
    assert acts == [
        (2, "add", "scale_in", round(leg2, 9), 110.0),
        (2, "scale_out", "scale_out", 0.5, 110.0),
        (2, "move_leg_stop", "breakeven", 0.5, 100.0),
        (3, "add", "scale_in", round(leg3, 9), 121.0),
        (3, "scale_out", "scale_out", round(leg2 / 2, 9), 121.0),
        (3, "move_leg_stop", "breakeven", round(leg2 / 2, 9), 110.0),
        (4, "close_leg", "breakeven", round(leg2 / 2, 9), 110.0),
        (5, "close_leg", "breakeven", 0.5, 100.0),
        (6, "close", "stop", round(leg3, 9), 95.0),
    ]
    assert pos.exit_reason == "stop" and not pos.is_open
    # booked against the average entry, the total is each leg's own result
    per_leg = 0.5 * 10 + 0.5 * 0 + leg2 / 2 * 11 + leg2 / 2 * 0 + leg3 * (95 - 121)
    assert pos.realised == pytest.approx(per_leg, rel=1e-12)


def test_the_kernel_books_the_worked_example_as_the_position_does():
    rows = [(100, 100, 100, 100), *WORKED]  # the signal's bar first
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    side = np.zeros(len(rows), np.int8)
    side[0] = 1
    signals = Signals.of(side, stop_price=np.full(len(rows), 95.0))
    run = run_units(sb, signals, qty=1.0, policy=plan3(), costs=Costs(), leverage=10.0)
    fills = run.fills_frame()
    assert fills.kind.tolist() == ["entry", "scale_in", "scale_out", "scale_in", "scale_out",
                                   "breakeven", "breakeven", "stop"]  # fmt: skip
    mine = [a for a in walk(opened(plan3()), WORKED) if a[1] not in ("move_leg_stop",)]
    assert fills.qty.round(9).tolist()[1:] == [a[3] for a in mine]
    assert fills.price.tolist()[1:] == [a[4] for a in mine]
    t = run.trades_frame().iloc[0]
    assert (t.adds, t.reason) == (2, "stop")


def test_at_most_max_adds_rounds_and_the_adds_are_whole_steps():
    """max_adds 1: leg 2 reaching +100 % adds nothing. Step 0.1: the add is 0.909 -> 0.9 and
    half of the original 0.5."""
    pos = opened(plan3(max_adds=1), step=0.1)
    acts = walk(pos, WORKED[:4])
    assert [(a[1], a[3]) for a in acts] == [("add", 0.9), ("scale_out", 0.5),
                                            ("move_leg_stop", 0.5)]  # fmt: skip
    assert pos.pending is None and pos.qty == pytest.approx(1.4)


def test_a_short_mirrors_the_rule():
    """Short 1 at 100, 10x: 90 is +100 % ROE; the add is 10 x 10 / 90 = 1.111 units, half of
    the original bought back, its stop to 100; the bounce to 101 closes that half there."""
    pos = opened(plan3(), side="short", stop=105.0)
    acts = walk(pos, [(100, 101, 99, 100), (100, 100, 90, 90), (90, 91, 89, 91),
                      (91, 101, 91, 100)])  # fmt: skip
    assert acts == [
        (2, "add", "scale_in", round(100 / 90, 9), 90.0),
        (2, "scale_out", "scale_out", 0.5, 90.0),
        (2, "move_leg_stop", "breakeven", 0.5, 100.0),
        (3, "close_leg", "breakeven", 0.5, 100.0),
    ]
    assert pos.legs[1][:2] == (90.0, pytest.approx(100 / 90))


def test_the_new_legs_trigger_is_its_own_entry_not_the_average():
    """After the first round the average entry is ~106.5 but leg 2 entered at 110: a close at
    118 is +108 % ROE on the average and only +73 % on leg 2, so nothing is added."""
    pos = opened(plan3())
    walk(pos, [(100, 101, 99, 100), (100, 110, 100, 110), (110, 118, 110, 118)])
    assert pos.pending is None
    assert 10 * (118 - pos.average_entry) / pos.average_entry * 100 > 100


# ---- a position opened by hand without a stop -------------------------------------------
def ladder_policy(**extra) -> Policy:
    return Policy(np.array([1.0, 2.0]), np.array([0.5, 0.5]), NONE, NONE, breakeven_r=1.0,
                  **extra)  # fmt: skip


def test_without_a_stop_the_r_is_the_configured_share_of_the_entry():
    """manual_risk_pct 2: 1R = 2 at an entry of 100; half at 102, the stop to 100 after it."""
    pos = opened(ladder_policy(manual_risk_pct=2.0), stop=None)
    assert pos.risk == 2.0 and math.isnan(pos.stop)
    assert pos.targets == [(102.0, 0.5), (104.0, 0.5)]
    acts = walk(pos, [(100, 100.5, 99.5, 100), (100, 102.5, 100, 102), (102, 102, 99, 99.5)])
    assert acts == [(1, "take_partial", "target", 0.5, 102.0), (1, "move_stop", "breakeven", 0.5,
                    100.0), (2, "close", "breakeven", 0.5, 100.0)]  # fmt: skip


def test_without_a_stop_or_a_share_the_r_is_the_distance_to_liquidation():
    pos = opened(ladder_policy(), stop=None, liquidation=90.5)
    assert pos.risk == pytest.approx(9.5)
    assert [t[0] for t in pos.targets] == pytest.approx([109.5, 119.0])


def test_without_any_r_the_r_rules_stay_off_and_the_time_stop_still_counts():
    pos = opened(ladder_policy(time_stop_bars=2), stop=None, leverage=1.0)
    assert math.isnan(pos.risk) and [q for _, q in pos.targets] == [0.0, 0.0]
    acts = walk(pos, [(100, 150, 99, 149), (149, 150, 140, 148), (148, 149, 147, 148)])
    assert acts == [(2, "close", "time_stop", 1.0, 148.0)]


def test_the_backtest_gives_a_signal_without_a_stop_the_same_r():
    """Sized by margin (plan 3) a signal may carry no stop: the kernel takes the same R rule."""
    rows = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 102.5, 100, 102),
            (102, 102, 99, 99.5)]  # fmt: skip
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    side = np.array([1, 0, 0, 0], np.int8)
    run = run_units(
        sb, Signals.of(side), qty=1.0, policy=ladder_policy(manual_risk_pct=2.0), costs=Costs()
    )
    t = run.trades_frame().iloc[0]
    assert (t.risk, math.isnan(t.stop), t.reason) == (2.0, True, "breakeven")
    assert run.fills_frame().kind.tolist() == ["entry", "target", "breakeven"]


def test_manual_risk_pct_is_a_setting_with_a_range():
    s = load_settings(None, {"manage.manual_risk_pct": 1.5}, env={})
    assert Policy.from_settings(s.manage, 60.0).manual_risk_pct == 1.5
    assert math.isnan(
        Policy.from_settings(load_settings(None, {}, env={}).manage, 60).manual_risk_pct
    )
    with pytest.raises(CryptobotError, match="manual_risk_pct"):
        load_settings(None, {"manage.manual_risk_pct": 0}, env={})


# ---- price events and forced closes ------------------------------------------------------
def test_a_price_event_carries_out_the_last_decision_at_its_price():
    pos = opened(ladder_policy(time_stop_bars=1), stop=90.0)
    assert walk(pos, [(100, 101, 99, 100)]) == [] and pos.pending == "time_stop"
    (a,) = pos.step_price(100.7, 3_600_123)
    assert (a.kind, a.reason, a.side, a.qty, a.price, a.ts) == (
        "close", "time_stop", "sell", 1.0, 100.7, 3_600_123)  # fmt: skip


def test_a_price_event_fills_targets_and_stops_but_moves_no_stop():
    """1R = 10. 110.5 fills the first half at the price; breakeven needs a close: the stop is
    still 90 until the next bar is stepped."""
    pos = opened(ladder_policy(), stop=90.0, costs=Costs(maker=0.001))
    walk(pos, [(100, 101, 99, 100)])
    (a,) = pos.step_price(110.5, H + 1)
    assert (a.kind, a.reason, a.qty, a.price, a.fee) == ("take_partial", "target", 0.5, 110.5,
                                                         pytest.approx(0.05525))  # fmt: skip
    assert pos.stop == 90.0
    assert walk(pos, [(100, 111, 100, 110)], start=1)[-1][1:] == ("move_stop", "breakeven", 0.5,
                                                                   100.0)  # fmt: skip
    (a,) = pos.step_price(99.0, 2 * H + 5)
    assert (a.kind, a.reason, a.price) == ("close", "breakeven", 99.0)


def test_forced_closes_at_the_bars_open_or_at_a_price():
    pos = opened(ladder_policy(), costs=Costs(taker=0.001, slippage_bps=10))
    walk(pos, [(100, 101, 99, 100)])
    (a,) = pos.step_bar(Bar(H, 100.0, 101.0, 99.0, 100.5), forced=True)
    assert (a.kind, a.reason, a.price) == ("close", "forced", pytest.approx(99.9))
    assert pos.exit_reason == "forced"
    other = opened(ladder_policy())
    (a,) = other.step_price(100.0, 1, forced=True)  # right after the entry: a price, no bar
    assert (a.reason, a.price) == ("forced", 100.0)


# ---- hostile input: refused, the position as it was --------------------------------------
def snapshot(pos: Position) -> tuple:
    return (pos.qty, pos.stop, pos.bars, pos.pending, pos.realised, pos.fees, tuple(pos.legs))


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume", "atr"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_bar_with_a_non_finite_value_is_refused(field, bad):
    pos = opened(ladder_policy())
    walk(pos, [(100, 101, 99, 100)])
    before = snapshot(pos)
    values = dict(ts=H, open=100.0, high=101.0, low=99.0, close=100.0, volume=1.0, atr=1.0)
    values[field] = bad
    if field == "atr" and math.isnan(bad):
        pos.step_bar(Bar(**values))  # an unknown ATR is allowed: the trail waits
        return
    with pytest.raises(PositionError, match=field):
        pos.step_bar(Bar(**values))
    assert snapshot(pos) == before


@pytest.mark.parametrize(
    "row",
    [(100, 99, 98, 100), (100, 101, 100.5, 100), (0, 1, 0, 0.5), (100, 101, 99, 100, -1.0)],
)
def test_an_inconsistent_bar_is_refused(row):
    pos = opened(ladder_policy())
    with pytest.raises(PositionError):
        walk(pos, [row])
    assert pos.bars == 0


def test_a_bar_not_newer_than_the_last_is_refused_and_changes_nothing():
    pos = opened(ladder_policy(), stop=90.0)
    walk(pos, [(100, 101, 99, 100), (100, 111, 100, 110)])
    before = snapshot(pos)
    for ts in (H, 0, -5):
        with pytest.raises(PositionError, match="not newer"):
            pos.step_bar(Bar(ts, 110.0, 111.0, 80.0, 85.0))
    assert snapshot(pos) == before
    with pytest.raises(PositionError, match="older"):
        pos.step_price(85.0, H - 1)
    assert snapshot(pos) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(qty=0.0), "qty must be positive"),
        (dict(qty=-1.0), "qty must be positive"),
        (dict(qty=math.nan), "qty must be a finite"),
        (dict(price=math.inf), "price must be a finite"),
        (dict(stop=101.0), "stop must be below"),
        (dict(side="short", stop=99.0), "stop must be above"),
        (dict(side="flat"), "side must be"),
        (dict(leverage=0.0), "leverage must be positive"),
        (dict(qty=0.05, step=0.1), "less than one step"),
        (dict(liquidation=math.nan), "liquidation must be a finite"),
    ],
)
def test_a_position_that_cannot_exist_is_refused(kwargs, message):
    with pytest.raises(PositionError, match=message):
        opened(ladder_policy(), **kwargs)


def test_bad_inputs_and_events_are_refused():
    pos = opened(Policy.from_settings(load_settings(None, {}, env={}).manage.for_strategy(
        "momentum"), 60.0), stop=90.0)  # fmt: skip
    bar = Bar(0, 100.0, 101.0, 99.0, 100.0)
    with pytest.raises(PositionError, match="the policy reads 2"):
        pos.step_bar(bar, BarInputs(exits=(1,)))
    with pytest.raises(PositionError, match="bit masks"):
        pos.step_bar(bar, BarInputs(exits=(4, 0)))
    with pytest.raises(PositionError, match="signal"):
        pos.step_bar(bar, BarInputs(signal=2, exits=(0, 0)))
    with pytest.raises(PositionError, match="price must be a finite"):
        pos.step_price(math.nan, 5)
    with pytest.raises(PositionError, match="integer milliseconds"):
        pos.step_price(100.0, 5.5)
    assert pos.bars == 0 and pos.qty == 1.0
    pos.step_price(80.0, 10)  # through the stop: closed
    with pytest.raises(PositionError, match="closed"):
        pos.step_bar(bar, BarInputs(exits=(0, 0)))


# ---- any bars: the Position and the kernel are one engine --------------------------------
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(5, 80),
    side=st.sampled_from([1, -1]),
    scale=st.booleans(),
    step=st.sampled_from([0.0, 0.01]),
    slippage=st.sampled_from([0.0, 3.0]),
)
def test_on_any_bars_the_position_books_what_the_kernel_books(seed, n, side, scale, step,
                                                              slippage):  # fmt: skip
    """Random bars with gaps; the configured base management (ladder, breakeven, trail tiers,
    time stop) with or without plan 3 at 10x. Fill by fill the same; legs add up to the
    position; a closed position has sold what it bought."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n + 1)))
    open_ = np.concatenate(([100.0], close[:-1] * np.exp(rng.normal(0, 0.005, n))))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, n + 1))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, n + 1))
    rows = list(zip(open_, high, low, close, strict=True))
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    base = load_settings(None, {}, env={}).manage
    policy = Policy.from_settings(base, 60.0)
    if scale:
        policy = replace(policy, scale_trigger_pct=20.0, scale_max_adds=2)
    costs = Costs(taker=0.0005, maker=0.0002, slippage_bps=slippage)
    signal = np.zeros(n + 1, np.int8)
    signal[0] = side
    stop = np.full(n + 1, close[0] * (1 - side * 0.03))
    run = run_units(sb, Signals.of(signal, stop_price=stop), qty=1.0, policy=policy, costs=costs,
                    leverage=10.0, step=step)  # fmt: skip
    fills = run.fills_frame()
    entry = fills.price.iat[0]
    pos = Position.open(policy=policy, costs=costs, side=side, qty=1.0, price=entry, ts=H,
                        stop=float(stop[0]), leverage=10.0, step=step)  # fmt: skip
    got = [("entry", 1, entry, 1.0, pos.fees)]
    for i in range(1, n + 1):
        if not pos.is_open:
            break
        bar = Bar(i * H, *sb.bars[i, :5], sb.bars[i, 5])
        for a in pos.step_bar(bar):
            if a.is_fill:
                got.append((a.reason, i, a.price, a.qty, a.fee))
        assert sum(q for _, q, _ in pos.legs) == pytest.approx(pos.qty, abs=1e-9)
    bars = (fills.time.to_numpy() - fills.time.iat[0]) // H + 1
    assert got == list(zip(fills.kind, bars.tolist(), fills.price, fills.qty, fills.fee,
                           strict=True))  # fmt: skip
    if not pos.is_open:
        bought = fills.qty[fills.side == ("buy" if side > 0 else "sell")].sum()
        assert fills.qty.sum() - bought == pytest.approx(bought, rel=1e-9)
