"""Circuit breakers as a state machine, their journal, and the pre-trade gate chain."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.order import Intent
from cryptobot.core.timeutil import parse_time
from cryptobot.fills.brackets import fallback
from cryptobot.journal import breakers as journal
from cryptobot.risk import gates
from cryptobot.risk.breakers import (
    Action,
    BreakerState,
    Clock,
    Equity,
    MarginLevel,
    Mode,
    Price,
    Reset,
    run,
    step,
)
from cryptobot.risk.orders import SizingSetup, size_orders
from tests.test_risk_sizing import market as market_rules

ACCOUNT = "paper:paper"  # the configured account (mode paper, paper.account: paper)

DEFAULTS = load_settings()
RISK = DEFAULTS.risk
H = 3_600_000
T0 = parse_time("2025-03-03T00:00Z")  # a Monday


def with_breakers(**changes):
    return RISK.model_copy(update={"breakers": RISK.breakers.model_copy(update=changes)})


def test_daily_limit_blocks_for_24h_then_half_size_for_48h():
    """Quant plan: 3% a day. 1,000 -> 969 is -3.1%: cancel orders, close directional
    positions, no entries for 24h, then 48h at 50% size, then normal."""
    state, acted = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 985)], RISK)
    assert state.mode is Mode.active and not acted
    state, actions = step(state, Equity(T0 + 2 * H, 969), RISK)
    assert state.mode is Mode.blocked and state.tripped_by == "daily"
    assert actions == (Action.cancel_orders, Action.close_directional)
    assert "down 3.10%" in state.reason and not state.entries_allowed
    state, _ = step(state, Clock(T0 + 25 * H), RISK)
    assert state.mode is Mode.blocked  # 23h later: still blocked
    state, _ = step(state, Clock(T0 + 26 * H), RISK)
    assert state.mode is Mode.recovery and state.size_mult(RISK.breakers) == 0.5
    assert state.entries_allowed
    state, _ = step(state, Clock(T0 + 74 * H), RISK)
    assert state.mode is Mode.active and state.size_mult(RISK.breakers) == 1.0


def test_dollar_limits_of_the_scalping_plan():
    """Plan 1 on a $50 account: $1 a day, $2.50 a week. -$1.10 is only 2.2% but trips the day."""
    risk = with_breakers(daily_loss_usd=1.0, weekly_loss_usd=2.5)
    state, _ = run(BreakerState(), [Equity(T0, 50), Equity(T0 + H, 48.9)], risk)
    assert state.mode is Mode.blocked and "limit $1" in state.reason
    # Tuesday and Wednesday lose a little more each: the week reaches -$2.60 -> halted.
    events = [Equity(T0 + 30 * H, 48.5), Equity(T0 + 50 * H, 47.4)]
    state, acted = run(state, events, risk)
    assert state.mode is Mode.halted and state.tripped_by == "weekly"
    assert acted[-1][1] == (Action.cancel_orders, Action.flatten_all)


def test_weekly_halt_needs_a_manual_reset_and_starts_new_budgets():
    state, _ = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 990)], RISK)
    state, _ = run(state, [Equity(T0 + 30 * H, 960), Equity(T0 + 54 * H, 925)], RISK)
    assert state.mode is Mode.halted  # 7.5% down on the week
    state, _ = step(state, Clock(T0 + 200 * H), RISK)
    assert state.mode is Mode.halted  # time alone does not release it
    state, _ = step(state, Reset(T0 + 201 * H), RISK)
    assert state.mode is Mode.active and state.week_start == 925
    state, _ = step(state, Equity(T0 + 202 * H, 920), RISK)
    assert state.mode is Mode.active  # the new budget starts from 925


def test_a_weekly_reset_does_not_end_the_daily_block_underneath():
    """Monday -3.5 % trips the day (blocked until Tuesday 01:00, recovery to Thursday 01:00);
    Monday evening the week reaches -7.5 %: halted. A reset on Monday night starts new budgets
    but the daily block runs on, then its recovery; a reset after both is a clean start. A
    weekly trip that breaches the day at the same moment brings its own daily block."""
    state, _ = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 965)], RISK)
    state, _ = step(state, Equity(T0 + 20 * H, 925), RISK)
    assert state.mode is Mode.halted and state.until == T0 + 25 * H
    blocked, _ = step(state, Reset(T0 + 22 * H), RISK)
    assert blocked.mode is Mode.blocked and blocked.until == T0 + 25 * H
    assert not blocked.entries_allowed and blocked.week_start == 925
    assert step(blocked, Clock(T0 + 26 * H), RISK)[0].mode is Mode.recovery
    assert step(state, Reset(T0 + 30 * H), RISK)[0].mode is Mode.recovery
    assert step(state, Reset(T0 + 80 * H), RISK)[0].mode is Mode.active
    at_once, _ = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 920)], RISK)
    assert at_once.mode is Mode.halted and at_once.until == T0 + 25 * H
    assert step(at_once, Reset(T0 + 2 * H), RISK)[0].mode is Mode.blocked


def test_monthly_stop_only_a_config_change_releases():
    state, _ = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + 100 * H, 975)], RISK)
    events = [Equity(T0 + 150 * H, 950), Equity(T0 + 200 * H, 925), Equity(T0 + 500 * H, 870)]
    risk = with_breakers(weekly_loss_pct=50.0)  # let the month reach its own limit
    state, _ = run(state, events, risk)
    assert state.mode is Mode.stopped and "monthly loss limit" in state.reason
    state, _ = step(state, Reset(T0 + 501 * H), risk)
    assert state.mode is Mode.stopped
    state, _ = step(state, Clock(T0 + 1000 * H), risk)
    assert state.mode is Mode.stopped
    changed = with_breakers(weekly_loss_pct=50.0, monthly_loss_pct=20.0)
    state, _ = step(state, Clock(T0 + 1001 * H), changed)
    assert state.mode is Mode.active


def test_a_daily_block_is_not_shortened_by_a_reset_or_a_flash_crash():
    state, _ = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 960)], RISK)
    until = state.until
    state, _ = step(state, Reset(T0 + 2 * H), RISK)
    assert state.mode is Mode.blocked and state.until == until
    state, actions = run(
        state, [Price(T0 + 3 * H, "BTC", 100), Price(T0 + 3 * H + 30_000, "BTC", 94)], RISK
    )
    assert state.until == until and state.tripped_by == "daily"
    assert actions[0][1] == (Action.cancel_orders, Action.exit_all)  # still exits everything


def test_flash_crash_exits_everything_once_and_blocks_briefly():
    prices = [
        Price(T0, "BTC", 100.0),
        Price(T0 + 20_000, "BTC", 97.0),
        Price(T0 + 50_000, "BTC", 94.9),
    ]
    state, acted = run(BreakerState(), prices, RISK)
    assert state.mode is Mode.blocked and state.tripped_by == "flash_crash"
    assert "fell 5.10% within 60s" in state.reason
    assert acted == [(prices[-1], (Action.cancel_orders, Action.exit_all))]
    state, again = step(state, Price(T0 + 55_000, "BTC", 93.0), RISK)
    assert again == ()  # one exit per crash
    state, _ = step(state, Clock(T0 + 16 * 60_000), RISK)
    assert state.mode is Mode.active


def test_a_daily_loss_during_a_flash_crash_block_outlasts_it():
    """Found by the non-finite invariant: the daily trip used to be swallowed by the 15-minute
    flash-crash block (same severity), and entries resumed when those minutes ended."""
    events = [Equity(T0, 1000.0), Price(T0, "BTC", 100.0), Price(T0 + 20_000, "BTC", 94.0)]
    state, _ = run(BreakerState(), events, RISK)
    assert state.tripped_by == "flash_crash"
    state, actions = step(state, Equity(T0 + 30_000, 965.0), RISK)
    assert state.tripped_by == "daily" and Action.close_directional in actions
    state, _ = step(state, Clock(T0 + 16 * 60_000), RISK)
    assert state.mode is Mode.blocked and not state.entries_allowed
    state, _ = step(state, Clock(T0 + 30_000 + 24 * H), RISK)
    assert state.mode is Mode.recovery


def test_a_slow_fall_is_not_a_flash_crash():
    prices = [Price(T0 + i * 30_000, "ETH", 100.0 - 2 * i) for i in range(5)]  # -8% in 2 min
    state, acted = run(BreakerState(), prices, RISK)
    assert state.mode is Mode.active and not acted


def test_margin_guard_reduces_until_the_margin_recovers():
    state, actions = step(BreakerState(), MarginLevel(T0, 15.0), RISK)
    assert state.mode is Mode.reducing and actions == (Action.reduce_positions,)
    assert not state.entries_allowed
    state, actions = step(state, MarginLevel(T0 + 60_000, 35.0), RISK)
    assert state.mode is Mode.active and actions == ()


def test_state_round_trips_through_the_journal(tmp_path):
    state, actions = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 960)], RISK)
    before = BreakerState().to_record()
    acts = [a.value for (_, acts) in actions for a in acts]
    update = journal.Update(before, state.to_record(), T0 + H, "equity 960", acts)
    journal.save_state(tmp_path, update, account=ACCOUNT)
    loaded = BreakerState.from_record(journal.load_state(tmp_path, account=ACCOUNT))
    assert loaded == state
    (event,) = journal.events(tmp_path, account=ACCOUNT)
    assert event["mode"] == "blocked" and "cancel_orders" in event["actions"]


# ---- gates -----------------------------------------------------------------------------------
def order(**changes) -> gates.OrderProposal:
    base = gates.OrderProposal(
        symbol="BTC/USDT:USDT",
        side="long",
        entry=95_000,
        notional=950,
        leverage=10,
        risk_usd=5,
        client_order_id="cb-1",
        max_leverage=125,
    )
    return replace(base, **changes)


def test_every_gate_passes_a_modest_order():
    account = gates.AccountState(equity=1000.0, last_prices={"BTC/USDT:USDT": 95_100.0})
    verdicts = gates.check(order(), account, RISK)
    assert gates.approved(verdicts), [str(v) for v in verdicts if not v.passed]
    assert len(verdicts) == 13


@pytest.mark.parametrize(
    ("proposal", "account", "gate"),
    [
        (order(risk_usd=15), gates.AccountState(equity=1000.0), "max_risk_per_trade"),
        (order(notional=20_000, leverage=20), gates.AccountState(equity=1e6), "max_order_notional"),
        (
            order(notional=2500, leverage=20),
            gates.AccountState(
                equity=1000.0, positions=(gates.OpenPosition("ETH/USDT:USDT", "short", 100, 5),)
            ),
            "symbol_exposure",
        ),
        (
            order(),
            gates.AccountState(
                equity=1000.0,
                positions=(gates.OpenPosition("ETH/USDT:USDT", "long", 700, 35),),
                correlations={frozenset(("BTC/USDT:USDT", "ETH/USDT:USDT")): 0.85},
            ),
            "correlated_exposure",
        ),
        (
            order(),
            gates.AccountState(
                equity=1e5,
                positions=tuple(
                    gates.OpenPosition(f"C{i}/USDT:USDT", "long", 10, 1) for i in range(3)
                ),
            ),
            "max_concurrent_positions",
        ),
        (
            order(),
            gates.AccountState(
                equity=1e5, positions=(gates.OpenPosition("BTC/USDT:USDT", "short", 10, 1),)
            ),
            "one_position_per_symbol",
        ),
        (order(), gates.AccountState(equity=1e5, order_ids=frozenset({"cb-1"})), "duplicate_order"),
        (
            order(leverage=950 / 850),
            gates.AccountState(equity=1000.0),
            "reserve_cash",
        ),  # margin 850
        (
            order(leverage=950 / 150),
            gates.AccountState(equity=1e4, free_margin=100.0),  # 150
            "free_margin",
        ),
        (order(leverage=25), gates.AccountState(equity=1e5), "leverage_sanity"),
        (
            order(),
            gates.AccountState(equity=1e5, last_prices={"BTC/USDT:USDT": 97_000.0}),
            "price_sanity",
        ),
    ],
)
def test_each_gate_rejects_with_its_reason(proposal, account, gate):
    verdicts = {v.gate: v for v in gates.check(proposal, account, RISK)}
    assert not verdicts[gate].passed and verdicts[gate].reason
    assert gates.first_rejection(list(verdicts.values())).startswith(gate)


def test_a_reduce_only_close_passes_every_gate_far_from_the_last_price_at_any_leverage():
    """A breaker's close (``engine.breaker_actions``) in a fast market: the position's mark 6%
    from the last trade, opened by hand at 50x over the 20x cap, the account blocked. It goes."""
    close = order(entry=89_300.0, leverage=50, risk_usd=None, reduce_only=True)
    blocked = BreakerState(mode=Mode.blocked, reason="daily")
    account = gates.AccountState(equity=1e4, last_prices={"BTC/USDT:USDT": 95_000.0},
                                 breaker=blocked)  # fmt: skip
    verdicts = gates.check(close, account, RISK)
    assert gates.approved(verdicts), gates.first_rejection(verdicts)
    entry = gates.check(replace(close, reduce_only=False, leverage=5), replace(
        account, breaker=BreakerState()), RISK)  # fmt: skip
    assert gates.first_rejection(entry).startswith("price_sanity")


def test_recovery_mode_passes_the_breaker_gate_with_its_reduction():
    account = gates.AccountState(equity=1000.0, breaker=BreakerState(mode=Mode.recovery))
    verdict = gates.check(order(size_mult=0.5), account, RISK)[0]  # sized in recovery
    assert verdict.passed and "size x0.5" in verdict.reason


TRIPPED = st.builds(
    BreakerState,
    mode=st.sampled_from([Mode.blocked, Mode.halted, Mode.stopped, Mode.reducing]),
    reason=st.sampled_from(["daily loss limit: down 3.1%", "weekly", "flash crash", "margin"]),
)
ORDERS = st.builds(
    order,
    side=st.sampled_from(["long", "short"]),
    notional=st.floats(1, 1e5),
    leverage=st.integers(1, 20),
    risk_usd=st.one_of(st.none(), st.floats(0.01, 100)),
)


@settings(max_examples=200, deadline=None)
@given(state=TRIPPED, proposal=ORDERS, equity=st.one_of(st.none(), st.floats(1, 1e7)))
def test_a_tripped_breaker_blocks_every_entry_and_verdicts_are_deterministic(
    state, proposal, equity
):
    account = gates.AccountState(equity=equity, breaker=state)
    first = gates.check(proposal, account, RISK)
    assert not gates.approved(first)
    assert gates.first_rejection(first).startswith(f"circuit_breaker: {state.mode}")
    assert gates.check(proposal, account, RISK) == first
    closing = gates.check(replace(proposal, reduce_only=True), account, RISK)
    assert closing[0].passed  # reducing risk is always allowed


@settings(max_examples=100, deadline=None)
@given(
    state=TRIPPED,
    side=st.sampled_from(["long", "short"]),
    entry=st.floats(1, 100_000),
    stop_pct=st.floats(0.2, 10),
    equity=st.one_of(st.none(), st.floats(100, 1e6)),
)
def test_a_tripped_breaker_refuses_every_order_the_sizing_path_produces(
    state, side, entry, stop_pct, equity
):
    """The path `size` (and later trade/daemon) takes: ladder, sizing, gates."""
    stop = entry * (1 - stop_pct / 100) if side == "long" else entry * (1 + stop_pct / 100)
    market = market_rules(
        "X/USDT:USDT", step=None, min_qty=None, min_notional=None, max_leverage=50.0
    )
    intents = [Intent("binanceusdm", "X/USDT:USDT", side, entry, stop)]
    account = gates.AccountState(equity=equity, breaker=state)
    (sized,) = size_orders(
        intents,
        {"X/USDT:USDT": market},
        lambda m: fallback(50),
        account,
        SizingSetup(RISK, "binance", "cb"),
    )
    assert sized.status == "refused"
    assert sized.reason.startswith(f"circuit_breaker: {state.mode}")
