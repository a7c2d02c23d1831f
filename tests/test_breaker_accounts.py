"""One circuit breaker per account: a paper account's equity and a live account's are different
series, and one breaker fed both judged a live drawdown against paper readings (a paper reading
of 1,000 after a live one of 484 hid the live loss; a live reading after a paper one tripped on
a loss nobody had). ``risk``, ``size``, ``trade`` and its reconcile each judge the account they
act for; a journal written before (one shared row) still binds every account to its trip."""

import json
from pathlib import Path

from cryptobot.core.config import load_settings
from cryptobot.data import catalog
from cryptobot.journal import breakers as journal
from cryptobot.risk.breakers import BreakerState, Mode
from cryptobot.risk.context import current_breaker, observe_equity
from tests.conftest import Cli

PAPER, LIVE = "paper:paper", "binanceusdm"  # the configured accounts in paper and live mode
T0 = 1_740_960_000_000
SIZE = ("size", "--symbol", "BTC/USDT:USDT", "--side", "long", "--entry", "95000", "--stop",
        "94200", "--risk-usd", "1", "--step", "0.001", "-f", "json")  # fmt: skip


def status(cli: Cli, *account: str) -> dict:
    out = cli("risk", "status", *account, "-f", "json").stdout
    return json.loads(out)[0]


def test_a_live_drawdown_is_not_hidden_by_paper_readings(data_dir: Path):
    risk = load_settings(env={}).risk
    readings = [(LIVE, 500.0), (PAPER, 1_000.0), (LIVE, 484.0), (PAPER, 1_000.0)]
    for i, (account, equity) in enumerate(readings):
        observe_equity(data_dir, account=account, equity=equity, now=T0 + i, risk=risk,
                       label=f"equity {equity}")  # fmt: skip
    live = current_breaker(data_dir, risk, T0 + 10, account=LIVE)
    assert live.mode is Mode.blocked and live.tripped_by == "daily"  # 500 -> 484: -3.2 %
    paper = current_breaker(data_dir, risk, T0 + 10, account=PAPER)
    assert paper.mode is Mode.active and paper.last_equity == 1_000.0


def test_risk_and_size_judge_the_configured_account_or_the_one_named(cli: Cli, data_dir: Path):
    cli("risk", "equity", "1000", "--account", LIVE)
    tripped = json.loads(cli("risk", "equity", "960", "--account", LIVE, "-f", "json").stdout)[0]
    assert tripped["account"] == LIVE and tripped["mode"] == "blocked"
    assert status(cli) == status(cli, "--account", PAPER)  # paper mode: paper's breaker
    assert status(cli)["mode"] == "active" and status(cli)["account"] == PAPER
    assert json.loads(cli(*SIZE).stdout)[0]["status"] != "refused"

    live = Cli(cli.env | {"CRYPTOBOT__MODE": "live"})
    assert status(live)["account"] == LIVE and status(live)["mode"] == "blocked"
    (order,) = json.loads(live(*SIZE).stdout)
    assert order["status"] == "refused" and order["reason"].startswith("circuit_breaker")


def test_a_blank_account_is_a_usage_error_that_stores_nothing(cli: Cli, data_dir: Path):
    bad = cli("risk", "equity", "1000", "--account", " ", ok=None)
    assert bad.exit_code == 2 and "--account" in bad.stderr
    assert journal.load_state(data_dir, account=" ") is None
    assert journal.load_state(data_dir, account=PAPER) is None


def _older_halt(data_dir: Path) -> None:
    """A weekly halt as a journal written before breakers were per account holds it: the one
    shared row (name ``account``) and its event, in a table without the account column."""
    halted = BreakerState(mode=Mode.halted, tripped_by="weekly", reason="weekly loss 8%",
                          since=T0)  # fmt: skip
    update = journal.Update(BreakerState().to_record(), halted.to_record(), T0, "old", ["x"])
    journal.save_state(data_dir, update, account=journal.SHARED)
    with catalog.connect(data_dir) as con:
        con.execute("ALTER TABLE breaker_events DROP COLUMN account")


def test_a_trip_stored_before_breakers_were_per_account_binds_every_account(
    cli: Cli, data_dir: Path
):
    """The older journal's one row (name ``account``) and its event (no account column)."""
    _older_halt(data_dir)
    for account in (PAPER, LIVE):
        assert status(cli, "--account", account)["mode"] == "halted"
        assert journal.events(data_dir, account=account)[0]["reason"] == "weekly loss 8%"
    assert journal.trip_actions(data_dir, account=LIVE, ts=T0, mode="halted") == ["x"]
    reset = json.loads(cli("risk", "reset", "--account", LIVE, "-f", "json").stdout)[0]
    assert reset["mode"] == "active"  # the live account's own row from now on
    assert status(cli, "--account", PAPER)["mode"] == "halted"  # still bound by the old trip
    (newest, *_) = journal.events(data_dir, account=LIVE)
    assert newest["account"] == LIVE and newest["mode"] == "active"
    assert journal.events(data_dir, account=PAPER)[0]["account"] is None  # not LIVE's reset


def test_an_untripped_shared_row_passes_on_nothing_not_even_its_equity(cli: Cli, data_dir):
    """The older journal's breaker was fed a paper account's 10,000: a live account's first
    reading of 450 is its own first reading, not a 95.5 % monthly loss (a review's find)."""
    fed = BreakerState(last_equity=10_000.0, start_equity=10_000.0, peak_equity=10_000.0,
                       day="2025-03-03", day_start=10_000.0, week="2025-W10",
                       week_start=10_000.0, month="2025-03", month_start=10_000.0)  # fmt: skip
    update = journal.Update(BreakerState().to_record(), fed.to_record(), T0, "old", [])
    journal.save_state(data_dir, update, account=journal.SHARED)
    row = json.loads(cli("risk", "equity", "450", "--account", LIVE, "-f", "json").stdout)[0]
    assert row["mode"] == "active" and row["actions"] == ""
    assert row["day_start_equity"] == 450.0


def test_an_account_risk_cannot_name_is_a_usage_error(cli: Cli, data_dir: Path):
    """The older journal's shared row (``account``), a typo of an exchange, a paper account
    the config could not name, another kind: refused before anything is stored."""
    for name in ("account", "binanceusdmm", "paper:", "paper:a b", "live:x", "ünï", "replay:a/b"):
        bad = cli("risk", "equity", "1000", "--account", name, ok=None)
        assert bad.exit_code == 2 and "is no account" in bad.stderr, name
    assert not (data_dir / catalog.DB_NAME).exists()
    for name in ("paper:a_b-1", "replay:bitget", "bybit"):
        assert status(cli, "--account", name)["account"] == name


def test_under_replay_the_configured_account_is_the_replay_one_in_either_mode():
    from cryptobot.core.venues import configured_account

    for mode in ("paper", "live"):
        settings = load_settings(env={}, overrides={"exchange": "replay", "mode": mode})
        assert configured_account(settings) == f"replay:{settings.replay.source_exchange}", mode


def test_an_older_journal_whose_shared_row_is_lost_binds_every_account_by_its_events(
    cli: Cli, data_dir: Path
):
    """Its events (no account column, read-only) still say a halt was in force."""
    _older_halt(data_dir)
    with catalog.connect(data_dir) as con:
        con.execute("DELETE FROM breaker_state")
    for account in (PAPER, LIVE):
        row = status(cli, "--account", account)
        assert row["mode"] == "blocked" and row["tripped_by"] == "corrupt_state", row
        assert "last event left the breaker halted" in row["reason"]
