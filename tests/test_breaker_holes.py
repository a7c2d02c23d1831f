"""The holes a hostile tester found in the circuit breaker (hardening issue, item 1: the breaker
must never be left allowing entries after a loss past its limit): a settings change that
released a monthly stop and forgot the loss, a zero first reading that switched the limits off,
and stored states that were not states."""

import json
import math
from dataclasses import replace

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.timeutil import parse_time
from cryptobot.journal import breakers as journal
from cryptobot.risk.breakers import (
    CORRUPT,
    LIMIT_KEYS,
    BreakerState,
    Clock,
    Equity,
    MarginLevel,
    Mode,
    Reset,
    _labels,  # calendar labels only: the loss rules below are the independent model's own
    limits_key,
    run,
    step,
)
from cryptobot.risk.context import current_breaker
from tests.conftest import Cli

ACCOUNT = "paper:paper"  # the configured account (mode paper, paper.account: paper)

RISK = load_settings(env={}).risk
H = 3_600_000
T0 = parse_time("2025-03-03T00:00Z")  # a Monday
SIZE = (
    *("size", "--symbol", "BTC/USDT:USDT", "--side", "long", "--entry", "95000"),
    *("--stop", "94200", "--risk-usd", "1", "--tick", "0.1", "--step", "0.001"),
    *("--min-qty", "0.001", "--min-notional", "5", "-f", "json"),
)


def limits(**changes):
    return RISK.model_copy(update={"breakers": RISK.breakers.model_copy(update=changes)})


def _env(cli: Cli, **settings: str) -> Cli:
    return Cli(cli.env | {f"CRYPTOBOT__{k.upper()}": v for k, v in settings.items()})


def _status(cli: Cli) -> dict:
    return json.loads(cli("risk", "status", "-f", "json").stdout)[0]


def _sized(cli: Cli) -> dict:
    (order,) = json.loads(cli(*SIZE).stdout)
    return order


# ---- 1. only a change of the loss limits releases a monthly stop, and the loss is re-checked
def test_the_issue_sequence_other_settings_leave_the_monthly_stop_in_force(cli: Cli):
    cli("risk", "equity", "1000")
    tripped = json.loads(cli("risk", "equity", "850", "-f", "json").stdout)[0]
    assert tripped["mode"] == "stopped" and tripped["daily_block_until"]
    leverage = _env(cli, risk__max_leverage="19")
    assert _status(leverage) == _status(cli) | {"mode": "stopped"}
    assert _status(leverage)["entries_allowed"] is False
    order = _sized(leverage)
    assert order["status"] == "refused" and order["reason"].startswith("circuit_breaker: stopped")

    # new limits, the month still 15 % down: stopped again, measured against the new limit
    env = {"risk__breakers__weekly_loss_pct": "20", "risk__breakers__daily_loss_pct": "20"}
    at_13 = _env(cli, risk__breakers__monthly_loss_pct="13", **env)
    status = _status(at_13)
    assert status["mode"] == "stopped" and "limit 13%" in status["reason"]
    assert status["daily_block_until"] == tripped["daily_block_until"]
    assert _sized(at_13)["status"] == "refused"

    # a monthly limit above the loss releases the stop; the daily block runs on
    at_20 = _env(cli, risk__breakers__monthly_loss_pct="20", **env)
    status = json.loads(at_20("risk", "equity", "850", "-f", "json").stdout)[0]
    assert status["mode"] == "blocked" and status["tripped_by"] == "daily"
    assert status["until"] == tripped["daily_block_until"]
    assert status["recovery_until"] == tripped["recovery_until"]
    assert _sized(at_20)["status"] == "refused"


def test_only_the_loss_limits_make_the_key():
    key = limits_key(RISK.breakers)
    others = {"flash_crash_pct": 9.0, "recovery_hours": 1.0, "min_margin_ratio_pct": 5.0}
    for name, value in others.items():
        assert limits_key(limits(**{name: value}).breakers) == key, name
    assert limits_key(RISK.model_copy(update={"max_leverage": 19.0}).breakers) == key
    changed = {"daily_loss_usd": 5.0, "weekly_loss_usd": 9.0}
    changed |= {n: 50.0 for n in LIMIT_KEYS if n.endswith("pct")}
    for name in LIMIT_KEYS:
        assert limits_key(limits(**{name: changed[name]}).breakers) != key, name


STOP_RISK = limits(weekly_loss_pct=50.0, daily_loss_pct=50.0)


def _stopped() -> BreakerState:
    """1,000 on Monday, 960 on Friday morning, 870 an hour later (no daily or weekly trip at
    these limits): 13 % down on the month and the week, 9.4 % on the day; stopped."""
    events = [Equity(T0, 1000), Equity(T0 + 99 * H, 960), Equity(T0 + 100 * H, 870)]
    state, _ = run(BreakerState(), events, STOP_RISK)
    assert state.mode is Mode.stopped and state.until is None
    return state


@pytest.mark.parametrize(
    ("changes", "mode"),
    [
        ({"monthly_loss_pct": 13.0, "weekly_loss_pct": 50.0, "daily_loss_pct": 50.0}, "stopped"),
        ({"monthly_loss_pct": 20.0, "weekly_loss_pct": 50.0, "daily_loss_pct": 50.0}, "active"),
        ({"monthly_loss_pct": 20.0, "weekly_loss_pct": 5.0, "daily_loss_pct": 50.0}, "halted"),
        ({"monthly_loss_pct": 20.0, "weekly_loss_pct": 50.0, "daily_loss_pct": 5.0}, "blocked"),
    ],
)
def test_a_released_stop_is_judged_against_the_new_limits(changes, mode):
    state, _ = step(_stopped(), Clock(T0 + 101 * H), limits(**changes))
    assert state.mode == mode
    assert state.month_start == 1000  # the month's loss still counts from its first reading
    assert state.entries_allowed is (mode == "active")


def test_a_new_month_and_a_change_of_the_limits_start_afresh():
    state = _stopped()
    april = parse_time("2025-04-01T08:00Z")
    assert step(state, Equity(april, 860), STOP_RISK)[0].mode is Mode.stopped  # time alone: no
    changed = STOP_RISK.breakers.model_copy(update={"monthly_loss_pct": 12.5})
    released, _ = step(
        state, Equity(april, 860), STOP_RISK.model_copy(update={"breakers": changed})
    )
    assert released.mode is Mode.active and released.month_start == 860


def test_lowering_a_limit_below_the_current_loss_blocks_at_once(data_dir):
    state, _ = run(BreakerState(), [Equity(T0, 1000), Equity(T0 + H, 975)], RISK)
    assert state.mode is Mode.active  # 2.5 % down, the limit is 3 %
    judged, actions = step(state, Clock(T0 + 2 * H), limits(daily_loss_pct=2.0))
    assert judged.mode is Mode.blocked and "limit 2%" in judged.reason and actions
    update = journal.Update(BreakerState().to_record(), state.to_record(), T0 + H, "e", [])
    journal.save_state(data_dir, update, account=ACCOUNT)
    assert (
        current_breaker(data_dir, limits(daily_loss_pct=2.0), T0 + 2 * H, account=ACCOUNT).mode
        is Mode.blocked
    )


# ---- 2. a zero (or -0) first reading does not switch the limits off --------------------------
@pytest.mark.parametrize("first", [0.0, -0.0])
def test_a_zero_first_reading_does_not_disable_the_limits(first):
    events = [Equity(T0, first), Equity(T0 + 1, 0.0), Equity(T0 + 2, 1000.0)]
    state, _ = run(BreakerState(), events, RISK)
    assert state.day_start == state.week_start == state.month_start == 1000.0
    assert state.start_equity == 1000.0 and state.mode is Mode.active
    state, _ = step(state, Equity(T0 + 3, 10.0), RISK)
    assert state.mode is Mode.stopped and not state.entries_allowed  # 99 % down


def test_minus_zero_is_stored_and_printed_as_zero(cli: Cli, data_dir):
    out = cli("risk", "equity", "-f", "json", "--", "-0").stdout
    row = json.loads(out)[0]
    assert "-0.0" not in out and row["last_equity"] == 0.0
    stored = journal.load_state(data_dir, account=ACCOUNT)
    assert math.copysign(1.0, stored["last_equity"]) == 1.0
    cli("risk", "equity", "0")
    cli("risk", "equity", "1000")
    row = json.loads(cli("risk", "equity", "10", "-f", "json").stdout)[0]
    assert row["entries_allowed"] is False and row["day_start_equity"] == 1000.0


def test_a_drop_to_zero_trips_every_limit():
    state, _ = run(BreakerState(), [Equity(T0, 1000.0), Equity(T0 + 1, 0.0)], RISK)
    assert state.mode is Mode.stopped and "down 100.00%" in state.reason


# ---- 3. a stored state that is not a state reads as blocked until a reset -------------------
GOOD = BreakerState(day="2025-03-03", day_start=1000.0, last_equity=990.0).to_record()
CORRUPT_RECORDS = [
    "[]",
    "{}",
    "null",
    "42",
    '"active"',
    "{not json",
    json.dumps(GOOD | {"mode": "bogus"}),
    json.dumps(GOOD | {"mode": None}),
    json.dumps(GOOD | {"until": "soon"}),
    json.dumps(GOOD | {"mode": "blocked", "until": "soon"}),
    json.dumps(GOOD | {"mode": "recovery", "recovery_until": 1e300}),
    json.dumps(GOOD | {"mode": "recovery", "recovery_until": 10**30}),
    json.dumps(GOOD | {"mode": "recovery", "recovery_until": None}),
    json.dumps(GOOD | {"mode": "blocked", "tripped_by": "daily", "until": None}),
    json.dumps(GOOD | {"day_start": "1000"}),
    json.dumps(GOOD | {"day_start": True}),
    json.dumps(GOOD | {"since": -5}),
    json.dumps(GOOD | {"month": 5}),
    json.dumps(GOOD | {"tripped_by": ["daily"]}),
    json.dumps(GOOD | {"reason": None}),
    json.dumps(GOOD | {"surprise": 1}),
    json.dumps({k: v for k, v in GOOD.items() if k != "week_start"}),
]


def _store_raw(root, text: str | None) -> None:
    """A hand edit of the journal's one state row."""
    with duckdb.connect(str(root / "cryptobot.duckdb")) as con:
        con.execute("UPDATE breaker_state SET state = ?", [text])


@pytest.mark.parametrize("text", [*CORRUPT_RECORDS, None])
def test_a_stored_state_that_is_not_a_state_blocks_until_a_reset(cli: Cli, data_dir, text):
    cli("risk", "equity", "1000")
    _store_raw(data_dir, text)
    status = _status(cli)
    assert status["mode"] == "blocked" and status["tripped_by"] == CORRUPT, status
    assert status["entries_allowed"] is False and "risk reset" in status["reason"]
    order = _sized(cli)
    assert order["status"] == "refused" and "stored breaker state is corrupt" in order["reason"]
    later = json.loads(cli("risk", "equity", "1000", "-f", "json").stdout)[0]
    assert later["mode"] == "blocked" and later["tripped_by"] == CORRUPT
    reset = json.loads(cli("risk", "reset", "-f", "json").stdout)[0]
    assert reset["mode"] == "active" and reset["entries_allowed"] is True
    assert (
        BreakerState.from_record(journal.load_state(data_dir, account=ACCOUNT)).mode is Mode.active
    )


def test_a_stop_with_a_bad_figure_stays_stopped_one_without_its_limits_is_corrupt():
    stop = BreakerState(mode=Mode.stopped, tripped_by="monthly", reason="monthly")
    record = replace(stop, config_key=limits_key(RISK.breakers)).to_record()
    state = BreakerState.from_record(record | {"month_start": "lots", "until": 1.5})
    assert state.mode is Mode.stopped and state.month_start is None and state.until is None
    assert step(state, Reset(T0), RISK)[0].mode is Mode.stopped  # a reset does not undo it
    keyless = BreakerState.from_record(stop.to_record())
    assert keyless.mode is Mode.blocked and keyless.tripped_by == CORRUPT
    assert step(keyless, Clock(T0), RISK)[0].mode is Mode.blocked  # it does not release itself


def test_every_state_the_machine_writes_reads_back_unchanged():
    events = [Equity(T0, 1000), Equity(T0 + H, 960), Clock(T0 + 30 * H), Equity(T0 + 31 * H, 0.0)]
    state = BreakerState()
    for event in events:
        state, _ = step(state, event, RISK)
        assert BreakerState.from_record(json.loads(json.dumps(state.to_record()))) == state


# ---- the invariant -------------------------------------------------------------------------
LIMIT_SETS = [
    RISK,
    limits(daily_loss_pct=20.0, weekly_loss_pct=20.0, monthly_loss_pct=13.0),
    limits(daily_loss_pct=20.0, weekly_loss_pct=20.0, monthly_loss_pct=20.0),
    limits(daily_loss_pct=1.0, weekly_loss_pct=2.0, monthly_loss_pct=3.0),
    limits(daily_loss_usd=5.0, weekly_loss_usd=20.0),
    RISK.model_copy(update={"max_leverage": 19.0}),  # not a breaker limit
]
GAPS_S = [1, 60, 3600, 5 * 3600, 23 * 3600, 50 * 3600, 8 * 24 * 3600]
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["equity", "equity", "equity", "clock", "reset", "limits", "margin"]),
        st.sampled_from(GAPS_S),
        st.one_of(
            st.sampled_from([0.0, -0.0, 1e-300, 0.99, 1.0, 1000.0]),
            st.floats(min_value=800, max_value=1100),
            st.floats(min_value=0, max_value=2000),
        ),
        st.integers(0, len(LIMIT_SETS) - 1),
    ),
    max_size=40,
)


class _Account:
    """What the documented rules say about the account, kept apart from the state machine:
    each period's start is its first reading of a dollar or more; a manual reset of a weekly halt
    starts the day and the week again from the last reading; nothing else moves a start."""

    def __init__(self) -> None:
        self.labels: dict[str, str | None] = dict.fromkeys(("day", "week", "month"))
        self.starts: dict[str, float | None] = dict.fromkeys(("day", "week", "month"))
        self.last: float | None = None

    def reading(self, ts: int, equity: float) -> None:
        for period, label in _labels(ts).items():
            start = self.starts[period]
            if label != self.labels[period] or start is None or start < 1.0:  # a dollar
                self.labels[period], self.starts[period] = label, equity
        self.last = equity

    def reset_budgets(self) -> None:
        self.starts["day"] = self.starts["week"] = self.last

    def past(self, ts: int, risk) -> list[str]:
        """The limits in force that the latest reading is past, in the periods still running."""
        b, now, out = risk.breakers, _labels(ts), []
        for period, pct, usd in (
            ("day", b.daily_loss_pct, b.daily_loss_usd),
            ("week", b.weekly_loss_pct, b.weekly_loss_usd),
            ("month", b.monthly_loss_pct, None),
        ):
            start = self.starts[period]
            if self.labels[period] != now[period] or not start or start < 1.0 or self.last is None:
                continue
            lost = start - self.last
            if lost / start * 100 >= pct or (usd is not None and lost >= usd):
                out.append(period)
        return out


@settings(max_examples=300, deadline=None)
@given(events=EVENTS)
def test_no_sequence_leaves_entries_allowed_past_a_limit(events):
    """Readings (0 and -0 among them), clock ticks, manual resets, margin levels and changes of
    the settings in any order: whenever the latest reading is past a limit in force for a
    period still running, entries are blocked (a weekly halt's reset, the one documented
    release that moves a start, is followed by the account as the rule says). Every state the
    machine holds also reads back from the journal's JSON unchanged."""
    state, account, risk, ts = BreakerState(), _Account(), RISK, T0
    for kind, gap_s, value, which in events:
        ts += gap_s * 1000
        if kind == "limits":
            risk = LIMIT_SETS[which]
            event = Clock(ts)
        elif kind == "equity":
            event = Equity(ts, value)
            account.reading(ts, value + 0.0)
        elif kind == "reset":
            event = Reset(ts)
            if state.mode is Mode.halted:
                account.reset_budgets()
        elif kind == "margin":
            event = MarginLevel(ts, value % 100)
        else:
            event = Clock(ts)
        state, _ = step(state, event, risk)
        past = account.past(ts, risk)
        assert not (past and state.entries_allowed), (past, state)
        assert math.copysign(1.0, state.last_equity or 1.0) == 1.0  # never -0.0
        assert BreakerState.from_record(json.loads(json.dumps(state.to_record()))) == state


# ---- a lost state row: its events still tell a trip that was in force
def _delete_state(root) -> None:
    with duckdb.connect(str(root / "cryptobot.duckdb")) as con:
        con.execute("DELETE FROM breaker_state")


def test_a_deleted_state_row_of_a_tripped_breaker_blocks_until_a_reset(cli: Cli, data_dir):
    cli("risk", "equity", "1000")
    assert json.loads(cli("risk", "equity", "960", "-f", "json").stdout)[0]["mode"] == "blocked"
    _delete_state(data_dir)
    status = _status(cli)
    assert status["mode"] == "blocked" and status["tripped_by"] == CORRUPT, status
    assert "its row is missing, and its last event left the breaker blocked" in status["reason"]
    order = _sized(cli)
    assert order["status"] == "refused" and "stored breaker state is corrupt" in order["reason"]
    later = json.loads(cli("risk", "equity", "1000", "-f", "json").stdout)[0]
    assert later["mode"] == "blocked" and later["tripped_by"] == CORRUPT
    assert json.loads(cli("risk", "reset", "-f", "json").stdout)[0]["mode"] == "active"
    _delete_state(data_dir)  # released: its last event says active, so a fresh start is right
    assert _status(cli)["mode"] == "active"


def test_a_deleted_state_row_of_an_active_breaker_starts_fresh(cli: Cli, data_dir):
    cli("risk", "equity", "1000")
    _delete_state(data_dir)
    assert _status(cli)["mode"] == "active"
