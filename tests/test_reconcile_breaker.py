"""A reconcile feeds the breaker the equity the venue states (issue 13 part 7): the account's
balance from the exchange goes through the same rule as ``risk equity``
(``risk.context.observe_equity``) and is journaled as an account snapshot; a drawdown seen at
a reconcile trips the breaker and its actions run in the same cycle. Every step through the
CLI, the real ccxt client against the Binance USDⓈ-M emulator."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from cryptobot.cli import risk_cmd, size
from tests import test_trade_live
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import KEY, SECRET, last
from tests.test_reconcile import by_hand, resting_bid
from tests.test_trade_live import BTC, BTCID, ETHID
from tests.trading import sized, table

emu, journal = test_trade_live.emu, test_trade_live.journal  # the same fixtures
ETH_QTY = 5.0


def live_cli(emu: BinanceEmulator, journal: Path) -> Cli:
    return Cli(emulator_env(emu, journal) | {"CRYPTOBOT_API_KEY": KEY,
               "CRYPTOBOT_API_SECRET": SECRET, "CRYPTOBOT__MODE": "live"})  # fmt: skip


def orders_file(emu: BinanceEmulator, tmp: Path, n: int) -> Path:
    record = sized(entry=last(emu), symbol=BTC, qty=0.02, stop_pct=1.0, exchange="binanceusdm",
                   cid=f"cb-{n:024d}", target_qty=[0.005] * 3)  # fmt: skip
    path = tmp / f"orders-{n}.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def status(cli: Cli) -> dict:
    (row,) = json.loads(cli("risk", "status", "-f", "json").stdout)
    return row


def equity(emu: BinanceEmulator) -> float:
    marks = emu.engine.marks()
    upnl = sum(p.upnl(marks[s]) for s, p in emu.account.positions.items() if p.qty)
    return emu.account.balance + upnl


def lose(emu: BinanceEmulator, pct: float) -> float:
    """The ETH long bought by hand falls until the account's equity is ``pct`` % below the
    day's start (the emulator's start balance); the equity then."""
    price = emu.engine.book.prices[ETHID]
    target = emu.account.start_balance * (1 - pct / 100)
    emu.engine.tick(ETHID, round(price - (equity(emu) - target) / ETH_QTY, 2))
    return equity(emu)


@pytest.fixture
def account(emu, journal, tmp_path, monkeypatch) -> Cli:
    """A BTC bracket placed by ``trade`` (its start-up reconcile: the day's first equity
    reading, the emulator's start balance), an ETH long bought by hand, an ETH bid resting (an
    opening order), and a reconcile reading the equity again (fees paid since)."""
    # the machine's clock is the venue's, as on a live account (``size`` and ``risk`` judge
    # the breaker at the wall clock; the emulator's stands in April 2025)
    wall = SimpleNamespace(time=lambda: emu.now_ms / 1000)
    for module in (size, risk_cmd):
        monkeypatch.setattr(module, "time", wall)
    cli = live_cli(emu, journal)
    (placed,) = json.loads(cli("trade", str(orders_file(emu, tmp_path, 1)), "--live", "--taker",
                               "-f", "json").stdout)  # fmt: skip
    assert placed["status"] == "placed"
    by_hand(emu, ETHID, "BUY", ETH_QTY, reduce_only=False)
    resting_bid(emu, ETHID, "eth-bid")
    cli("trade", "--reconcile", "--live", "-f", "json")
    start = status(cli)
    assert start["mode"] == "active"
    assert start["day_start_equity"] == emu.account.start_balance
    assert start["last_equity"] == pytest.approx(equity(emu))
    assert start["last_equity"] < emu.account.start_balance
    return cli


def test_a_drawdown_seen_at_reconcile_trips_the_daily_breaker_and_its_actions_run(
    emu, journal, tmp_path, account
):
    cli = account
    fallen = lose(emu, 4.0)
    assert (1 - fallen / status(cli)["day_start_equity"]) * 100 == pytest.approx(4.0, abs=0.01)
    dry = cli("trade", "--reconcile", "--live", "--dry-run", "-f", "jsonl")
    assert dry.stdout == "" and status(cli)["mode"] == "active"  # a dry run stores nothing
    rows = json.loads(cli("trade", "--reconcile", "--live", "-f", "json").stdout)
    (done,) = [r for r in rows if r["kind"] == "breaker"]
    assert done["action"] == "cancel_orders, close_directional" and done["failed"] is False
    assert "daily loss limit" in done["message"]
    assert "canceled ETH/USDT:USDT eth-bid" in done["message"]
    assert emu.account.position(BTCID).qty == 0 and emu.account.position(ETHID).qty == 0
    assert emu.engine.book.open_orders() == [] and emu.engine.book.open_conditionals() == []
    now = status(cli)
    assert now["mode"] == "blocked" and now["tripped_by"] == "daily"
    assert now["last_equity"] == pytest.approx(fallen)
    # the block refuses new entries everywhere: size and trade
    sized_out = cli("size", "--symbol", BTC, "--side", "long", "--entry", "80000", "--stop",
                    "79000", "--risk-usd", "10", "--equity", "10000", "--step", "0.001",
                    "-f", "jsonl")  # fmt: skip
    (order,) = [json.loads(line) for line in sized_out.stdout.splitlines()]
    assert order["status"] == "refused"
    assert order["reason"].startswith("circuit_breaker: blocked: daily loss limit")
    refused = cli("trade", str(orders_file(emu, tmp_path, 2)), "--live", "--taker", "-f",
                  "json", ok=False)  # fmt: skip
    assert refused.exit_code == 1
    (out,) = json.loads(refused.stdout)
    assert out["status"] == "refused" and out["reason"].startswith("circuit_breaker: blocked")
    assert emu.account.position(BTCID).qty == 0
    again = json.loads(cli("trade", "--reconcile", "--live", "-f", "json").stdout)
    assert [r for r in again if r["kind"] == "breaker"] == []  # its actions ran once


def test_a_loss_inside_the_daily_limit_trips_nothing_and_is_journaled(emu, journal, account):
    cli = account
    emu.now_ms += 60_000
    fallen = lose(emu, 2.0)
    rows = json.loads(cli("trade", "--reconcile", "--live", "-f", "json").stdout)
    assert [r for r in rows if r["kind"] == "breaker"] == []
    now = status(cli)
    assert now["mode"] == "active" and now["last_equity"] == pytest.approx(fallen)
    (snapshot,) = table(journal, "SELECT equity, unrealized_pnl FROM account_snapshots "
                                 f"WHERE venue = 'binanceusdm' AND ts = {emu.now_ms}")  # fmt: skip
    assert snapshot[0] == pytest.approx(fallen) and snapshot[1] < 0
    assert emu.account.position(ETHID).qty == pytest.approx(ETH_QTY)
    assert [o.client_id for o in emu.engine.book.open_orders()] == ["eth-bid"]


def test_trade_itself_reads_the_drawdown_at_start_up_and_refuses(emu, journal, tmp_path, account):
    """No ``--reconcile`` run in between: ``trade``'s start-up reconcile sees the loss, trips
    the breaker, carries its actions out, and the order is refused."""
    cli = account
    lose(emu, 4.0)
    refused = cli("trade", str(orders_file(emu, tmp_path, 3)), "--live", "--taker", "-f",
                  "json", ok=False)  # fmt: skip
    (out,) = json.loads(refused.stdout)
    assert refused.exit_code == 1 and out["reason"].startswith("circuit_breaker: blocked")
    assert emu.account.position(ETHID).qty == 0 and emu.account.position(BTCID).qty == 0


def test_an_equity_the_venue_cannot_state_is_never_fed_and_says_so(emu, journal, account):
    """A balance the venue answers as NaN (a placeholder while it recomputes) neither feeds
    the breaker nor passes unnoticed: a WARNING event, the last reading kept."""
    cli = account
    before = status(cli)
    emu.now_ms += 60_000
    emu.account.balance = float("nan")
    cli("trade", "--reconcile", "--live", "-f", "json")
    after = status(cli)
    assert (after["mode"], after["last_equity"]) == ("active", before["last_equity"])
    (event,) = table(journal, "SELECT level, message FROM events "
                              "WHERE kind = 'equity_unreadable'")  # fmt: skip
    assert event[0] == "WARNING" and "the breaker keeps its last reading" in event[1]
