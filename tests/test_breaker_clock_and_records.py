"""The holes a second hostile tester found (2026-12-01): a clock set back a day rolled the
breaker's periods back (a day's losses and its block forgotten once the clock returned); a
block of 1e300 hours and a clock near year 10000 crashed the command; the labels of year 1
read back as corrupt; a stored figure too large for a float crashed every command, ``risk
reset`` included; an order sized at full size before a trip went out at full size in recovery
mode; ``trade`` took a record's ``risk_usd`` on its word."""

import math
from dataclasses import replace

import pytest
from pydantic import ValidationError

from cryptobot.core.config import load_settings
from cryptobot.core.errors import DataError
from cryptobot.core.timeutil import parse_time
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.risk import gates
from cryptobot.risk.breakers import CORRUPT, MAX_TS, BreakerState, Equity, Mode, Reset, run, step

RISK = load_settings(env={}).risk
H = 3_600_000
DAY = 24 * H
T0 = parse_time("2025-12-31T10:00Z")


def test_a_reading_from_an_earlier_day_is_refused_and_the_days_losses_stand():
    state, _ = run(BreakerState(), [Equity(T0, 1000.0), Equity(T0 + H, 980.0)], RISK)
    with pytest.raises(DataError, match=r"earlier than the breaker's last one \(2025-12-31\)"):
        step(state, Equity(T0 - DAY, 980.0), RISK)
    tripped, _ = step(state, Equity(T0 + 2 * H, 960.0), RISK)  # 4 % below the day's 1000
    assert tripped.mode is Mode.blocked and tripped.tripped_by == "daily"
    later_same_day, _ = step(state, Equity(T0 - 5 * H, 990.0), RISK)  # within the day: fine
    assert later_same_day.day == state.day and later_same_day.day_start == 1000.0


def test_a_block_never_ends_past_the_last_time_a_clock_can_show():
    huge = RISK.model_copy(update={"breakers": RISK.breakers.model_copy(
        update={"daily_block_hours": 1e300, "recovery_hours": 1e300})})  # fmt: skip
    late = parse_time("9999-12-30T10:00Z")
    state, _ = run(BreakerState(), [Equity(late, 1000.0), Equity(late + H, 960.0)], huge)
    assert state.mode is Mode.blocked and state.until == MAX_TS == state.recovery_until
    assert BreakerState.from_record(state.to_record()) == state  # stored and read back as it is


def test_block_and_recovery_hours_beyond_a_year_are_refused_by_the_settings():
    for key in ("daily_block_hours", "recovery_hours"):
        with pytest.raises(ValidationError, match=key):
            RISK.breakers.model_validate(RISK.breakers.model_dump() | {key: 1e300})
    RISK.breakers.model_validate(RISK.breakers.model_dump() | {"daily_block_hours": 366 * 24})


def test_a_reading_at_a_time_no_state_can_hold_is_refused_not_stored_as_corrupt():
    """Year 1 (a replay start mistyped): a trip stored there would read back as corrupt, which
    a reset releases; so such a reading is refused before it is judged."""
    state, _ = run(BreakerState(), [Equity(T0, 1000.0)], RISK)
    for ts in (parse_time("0001-01-02T10:00Z"), -1, MAX_TS + 1):
        with pytest.raises(DataError, match="breaker time"):
            step(BreakerState(), Equity(ts, 1000.0), RISK)
        with pytest.raises(DataError, match="breaker time"):
            step(state, Reset(ts), RISK)


def test_the_labels_have_four_digit_years():
    state, _ = run(BreakerState(), [Equity(parse_time("2009-01-05T10:00Z"), 1000.0)], RISK)
    assert (state.day, state.week, state.month) == ("2009-01-05", "2009-W02", "2009-01")


@pytest.mark.parametrize("field", ["last_equity", "day_start", "peak_equity"])
def test_a_stored_figure_too_large_for_a_float_is_corrupt_and_reset_releases_it(field: str):
    state, _ = run(BreakerState(), [Equity(T0, 1000.0)], RISK)
    record = state.to_record() | {field: 10**400}
    read = BreakerState.from_record(record)
    assert read.mode is Mode.blocked and read.tripped_by == CORRUPT and field in read.reason
    released, _ = step(read, Reset(T0 + H), RISK)
    assert released.mode is Mode.active


def _proposal(**changes) -> gates.OrderProposal:
    base = gates.OrderProposal(symbol="BTC/USDT:USDT", side="long", entry=95_000, notional=950,
                               leverage=10, risk_usd=5, client_order_id="cb-1",
                               max_leverage=125)  # fmt: skip
    return replace(base, **changes)


def test_an_order_sized_at_full_size_is_refused_in_recovery_mode_and_one_sized_there_passes():
    recovery = gates.AccountState(equity=1000.0, breaker=BreakerState(mode=Mode.recovery))
    verdict = gates.circuit_breaker(_proposal(), recovery, RISK)
    assert not verdict.passed and "sized at x1: size it again" in verdict.reason
    assert gates.circuit_breaker(_proposal(size_mult=0.5), recovery, RISK).passed
    close = _proposal(reduce_only=True)  # closing risk is never held back
    assert gates.circuit_breaker(close, recovery, RISK).passed
    active = gates.AccountState(equity=1000.0)
    assert gates.circuit_breaker(_proposal(), active, RISK).passed


def _record(**changes) -> dict:
    return {
        "schema": "sized_order/1", "client_order_id": "cb-1", "status": "sized", "reason": "",
        "exchange": "binanceusdm", "symbol": "ETH/USDT:USDT", "side": "long",
        "strategy": "manual", "entry": 3870.0, "stop": 3000.0, "qty": 0.011, "leverage": 5.0,
        "margin_mode": "isolated", "notional": 42.57, "margin": 8.514, "risk_usd": 9.61,
        "targets": [],
    } | changes  # fmt: skip


def test_a_sized_orders_size_mult_is_read_and_one_without_it_is_full_size():
    assert TradeOrder.from_record(_record()).size_mult == 1.0
    assert TradeOrder.from_record(_record(size_mult=0.5)).size_mult == 0.5
    for bad in (0, 1.5, math.nan, "0.5", True):
        with pytest.raises(DataError, match="size_mult"):
            TradeOrder.from_record(_record(size_mult=bad))


@pytest.mark.parametrize("first", [1e-300, 0.01, 0.99])
def test_a_first_reading_under_a_dollar_does_not_switch_the_limits_off(first: float):
    """A placeholder or a typo as the day's first reading: every later loss used to be a gain
    against it. The periods start at the next reading of a dollar or more."""
    state, _ = run(BreakerState(), [Equity(T0, first), Equity(T0 + H, 1000.0)], RISK)
    assert state.day_start == state.week_start == state.month_start == 1000.0
    state, _ = step(state, Equity(T0 + 2 * H, 100.0), RISK)
    assert not state.entries_allowed and state.mode is Mode.stopped  # 90 % down


def test_a_dollar_starts_the_periods():
    state, _ = run(BreakerState(), [Equity(T0, 1.0), Equity(T0 + H, 0.5)], RISK)
    assert state.day_start == 1.0 and state.mode is Mode.stopped  # down 50 % from a dollar
