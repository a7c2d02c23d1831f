"""NaN and infinity cannot switch the circuit breaker off: not as an event, not in the stored
state, not in the configuration (the hardening issue's item 1)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError, DataError
from cryptobot.core.timeutil import parse_time
from cryptobot.journal import breakers as journal
from cryptobot.risk import gates
from cryptobot.risk.breakers import (
    CORRUPT,
    BreakerState,
    Clock,
    Equity,
    MarginLevel,
    Mode,
    Price,
    Reset,
    step,
)
from cryptobot.risk.context import current_breaker
from tests.conftest import Cli
from tests.test_risk_breakers_gates import order

ACCOUNT = "paper:paper"  # the configured account (mode paper, paper.account: paper)

RISK = load_settings(env={}).risk
LIMIT = RISK.breakers.daily_loss_pct
T0 = parse_time("2025-03-03T00:00Z")  # a Monday
NON_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize(
    "make",
    [
        lambda v: Equity(T0, v),
        lambda v: Price(T0, "BTC/USDT:USDT", v),
        lambda v: MarginLevel(T0, v),
    ],
)
def test_a_non_finite_event_is_refused_and_changes_nothing(make, bad):
    state, _ = step(BreakerState(), Equity(T0, 1000.0), RISK)
    with pytest.raises(DataError, match=r"must be a finite number.*unchanged"):
        step(state, make(bad), RISK)
    assert state.day_start == 1000.0 and state.mode is Mode.active


@pytest.mark.parametrize("price", [0.0, -5.0])
def test_a_price_at_or_below_zero_is_refused(price):
    with pytest.raises(DataError, match="price must be positive"):
        step(BreakerState(), Price(T0, "BTC/USDT:USDT", price), RISK)


def test_the_issue_sequence_nan_then_1000_then_100_trips_the_breaker():
    state = BreakerState()
    with pytest.raises(DataError):
        step(state, Equity(T0, math.nan), RISK)
    state, _ = step(state, Equity(T0 + 1, 1000.0), RISK)
    state, actions = step(state, Equity(T0 + 2, 100.0), RISK)
    assert state.mode is Mode.stopped and not state.entries_allowed  # 90% down: monthly stop
    assert state.day_start == 1000.0 and actions


@pytest.mark.parametrize("field", ["day_start", "week_start", "month_start", "last_equity"])
@pytest.mark.parametrize("bad", NON_FINITE)
def test_a_stored_state_with_a_non_finite_figure_is_blocked_not_active(field, bad):
    record = BreakerState(day="2025-03-03", day_start=1000.0, last_equity=1000.0).to_record()
    record[field] = bad
    state = BreakerState.from_record(record)
    assert state.mode is Mode.blocked and state.tripped_by == CORRUPT
    assert not state.entries_allowed and field in state.reason
    verdict = gates.circuit_breaker(order(), gates.AccountState(equity=None, breaker=state), RISK)
    assert not verdict.passed and "risk reset" in verdict.reason
    # time alone does not release it: it has no end
    assert step(state, Clock(T0 + 400 * 24 * 3_600_000), RISK)[0].mode is Mode.blocked


def test_a_corrupt_halt_stays_halted_and_a_reset_starts_fresh_figures():
    record = BreakerState(mode=Mode.halted, tripped_by="weekly", reason="weekly").to_record()
    record["week_start"] = math.nan
    halted = BreakerState.from_record(record)
    assert halted.mode is Mode.halted and halted.week_start is None

    record = BreakerState(day="2025-03-03", day_start=math.nan).to_record()
    state, _ = step(BreakerState.from_record(record), Reset(T0 + 5), RISK)
    assert state.mode is Mode.active
    state, _ = step(state, Equity(T0 + 6, 1000.0), RISK)  # a new baseline
    state, _ = step(state, Equity(T0 + 7, 965.0), RISK)
    assert state.mode is Mode.blocked and state.tripped_by == "daily"


def test_a_nan_written_to_the_journal_reads_back_as_blocked(tmp_path):
    poisoned = BreakerState(day="2025-03-03", day_start=math.nan, last_equity=1000.0).to_record()
    journal.save_state(
        tmp_path,
        journal.Update(BreakerState().to_record(), poisoned, T0, "old bug", []),
        account=ACCOUNT,
    )
    assert math.isnan(journal.load_state(tmp_path, account=ACCOUNT)["day_start"])
    state = current_breaker(tmp_path, RISK, T0 + 1, account=ACCOUNT)
    assert state.mode is Mode.blocked and not state.entries_allowed


def test_cli_refuses_nan_equity_and_size_is_blocked_by_a_poisoned_journal(cli: Cli, data_dir):
    cli("risk", "equity", "1000")
    before = journal.load_state(data_dir, account=ACCOUNT)
    bad = cli("risk", "equity", "nan", ok=None)
    assert bad.exit_code in (1, 2) and "finite" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert journal.load_state(data_dir, account=ACCOUNT) == before

    poisoned = dict(before, day_start=math.nan)
    journal.save_state(
        data_dir, journal.Update(before, poisoned, T0, "old bug", []), account=ACCOUNT
    )
    status = json.loads(cli("risk", "status", "-f", "json").stdout)[0]
    assert status["mode"] == "blocked" and status["entries_allowed"] is False
    args = ("--symbol", "BTC/USDT:USDT", "--side", "long", "--entry", "95000", "--stop", "94200")
    out = cli("size", *args, "--risk-usd", "1", "--step", "0.001", "-f", "json").stdout
    (order,) = json.loads(out)
    assert order["status"] == "refused"
    assert order["gates"]["circuit_breaker"].startswith("REJECT: blocked: the stored breaker")


def test_a_zero_loss_limit_is_refused():
    """0 % would trip on a flat account ("down 0.00%"): every loss limit is above zero."""
    for key in ("DAILY_LOSS_PCT", "WEEKLY_LOSS_PCT", "MONTHLY_LOSS_PCT", "FLASH_CRASH_PCT"):
        with pytest.raises(ConfigError, match="must be above 0 and at most 100, got 0"):
            load_settings(env={f"CRYPTOBOT__RISK__BREAKERS__{key}": "0"})


@pytest.mark.parametrize("raw", ["nan", ".inf", "-inf"])
def test_config_refuses_non_finite_breaker_limits(raw):
    for key in ("DAILY_LOSS_PCT", "WEEKLY_LOSS_USD", "RECOVERY_SIZE_MULT", "FLASH_CRASH_PCT"):
        with pytest.raises(ConfigError, match="finite number"):
            load_settings(env={f"CRYPTOBOT__RISK__BREAKERS__{key}": raw})


figure = st.one_of(
    st.floats(min_value=1.0, max_value=1e6), st.sampled_from(NON_FINITE), st.just(0.0)
)
noise = st.lists(
    st.one_of(
        st.tuples(st.just("equity"), st.sampled_from(NON_FINITE)),
        st.tuples(st.sampled_from(["price", "margin", "clock"]), figure),
    ),
    max_size=25,
)


def _event(kind: str, ts: int, value: float):
    if kind == "equity":
        return Equity(ts, value)
    if kind == "price":
        return Price(ts, "BTC/USDT:USDT", value)
    return MarginLevel(ts, value) if kind == "margin" else Clock(ts)


@settings(max_examples=300, deadline=None)
@given(before=noise, after=noise, baseline=st.floats(min_value=10.0, max_value=1e6))
def test_no_non_finite_events_leave_entries_allowed_after_a_real_loss(before, after, baseline):
    """Whatever NaN/inf events arrive around them, the day's first finite equity and a later
    loss past the daily limit leave entries blocked for the hours that follow (a refused event
    changes nothing; a flash-crash block in force does not swallow the daily trip)."""
    state, ts = BreakerState(), T0
    for kind, value in before:
        state, ts = _feed(state, _event(kind, ts + 1000, value)), ts + 1000
    state, _ = step(state, Equity(ts + 1000, baseline), RISK)
    for kind, value in after:
        state, ts = _feed(state, _event(kind, ts + 2000, value)), ts + 2000
    loss = baseline * (LIMIT + 0.5) / 100
    state, _ = step(state, Equity(ts + 3000, baseline - loss), RISK)
    assert not state.entries_allowed, state
    later, _ = step(state, Clock(ts + 3000 + 3_600_000), RISK)
    assert not later.entries_allowed, later


def _feed(state: BreakerState, event) -> BreakerState:
    try:
        return step(state, event, RISK)[0]
    except DataError:
        figure = {Equity: "equity", Price: "price", MarginLevel: "margin_left_pct"}[type(event)]
        value = getattr(event, figure)
        assert not math.isfinite(value) or value <= 0  # refused only for a bad figure
        return state


def test_numpy_figures_are_accepted_and_text_is_refused():
    state, _ = step(BreakerState(), Equity(T0, np.float32(1000)), RISK)
    state, _ = step(state, Equity(T0 + 1, np.int64(960)), RISK)
    assert state.mode is Mode.blocked
    with pytest.raises(DataError, match="finite number"):
        step(state, Equity(T0 + 2, "1000"), RISK)  # type: ignore[arg-type]
