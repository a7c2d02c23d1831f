"""A loss taken through ``cryptobot trade`` is seen by the safety rules that read the account's
results: ``signal``'s cooldown after a loss and sizing's recent-loss rule (dynamic leverage).
Both read the round trips derived from the journaled fills (``journal.roundtrips.closed``),
the rows ``journal trades`` shows; nothing here writes a trade row by hand. The real ccxt
client against the Binance USDⓈ-M emulator, every step through the CLI."""

import json
from pathlib import Path

import pytest

from cryptobot.core.setup import Setup
from cryptobot.core.timeutil import parse_time
from cryptobot.data import catalog
from cryptobot.journal.setups import ensure_schema, signal_history
from tests import test_trade_live
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import KEY, SECRET, last
from tests.test_trade_live import BTC, BTCID, ETH
from tests.trading import sized

emu, journal = test_trade_live.emu, test_trade_live.journal  # the same fixtures
BAR = 300_000  # the setups' 5m bars
COOLDOWN_BARS = 12  # the default 60 min after a loss, in 5m bars


def live_cli(emu: BinanceEmulator, journal: Path, **env: str) -> Cli:
    return Cli(emulator_env(emu, journal) | {
        "CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET, "CRYPTOBOT__MODE": "live",
        "CRYPTOBOT__SIGNAL__REGIME_FILTER": "false", "CRYPTOBOT__SIGNAL__HTF_BIAS": "false",
        "CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS": "1000", **env,
    })  # fmt: skip


def round_trip(emu: BinanceEmulator, journal: Path, cli: Cli, tmp: Path, *, won: bool) -> dict:
    """A BTC long placed by ``trade``; lost: stopped out while no run watched, the stop's fill
    recorded by ``trade --reconcile``; won: its three targets filled, the rest closed by
    ``trade --close``. The round trip ``journal trades`` lists."""
    record = sized(entry=last(emu), symbol=BTC, qty=0.02, stop_pct=1.0, exchange="binanceusdm",
                   cid="cb-" + "7" * 24, target_qty=[0.005] * 3)  # fmt: skip
    orders = tmp / "orders.jsonl"
    orders.write_text(json.dumps(record) + "\n")
    (placed,) = json.loads(cli("trade", str(orders), "--live", "--taker", "-f", "json").stdout)
    assert placed["status"] == "placed"
    emu.now_ms += 10 * 60_000
    emu.engine.tick(BTCID, record["targets"][-1] + 5.0 if won else record["stop"] - 5.0)
    cli("trade", "--reconcile", "--live", "-f", "json")
    if won:
        cli("trade", "--close", BTC, "--live", "-f", "json")
    assert emu.account.position(BTCID).qty == 0
    (trip,) = json.loads(cli("journal", "trades", "-f", "json").stdout)
    assert trip["status"] == "closed" and (trip["pnl"] > 0) == won, trip
    assert trip["exit_reason"] == ("manual" if won else "stop")
    return trip


def losing_trade(emu: BinanceEmulator, journal: Path, cli: Cli, tmp: Path) -> dict:
    return round_trip(emu, journal, cli, tmp, won=False)


def setup_at(ts: int, symbol: str = BTC) -> dict:
    entry = 80_000.0
    return Setup("binanceusdm", symbol, "momentum", "5m", "long", "triggered", ts, ts - BAR,
                 entry, entry - 500, [entry + 500], 3, {}).to_json()  # fmt: skip


def decisions(cli: Cli, tmp: Path, setups: list[dict]) -> list[dict]:
    path = tmp / "setups.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in setups))
    out = cli("signal", str(path), "--all", "-f", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_loss_through_trade_cools_the_symbol_down_then_lets_it_go(emu, journal, tmp_path):
    cli = live_cli(emu, journal)
    trip = losing_trade(emu, journal, cli, tmp_path)
    loss_ms = parse_time(trip["closed_at"])
    loss_bar = loss_ms // BAR * BAR
    emu.now_ms = loss_bar + (COOLDOWN_BARS + 2) * BAR  # the venue's clock, past the cooldown
    inside = setup_at(loss_bar + (COOLDOWN_BARS - 1) * BAR)  # the last bar still cooling
    other = setup_at(loss_bar, symbol=ETH)  # no loss on ETH
    cooled, free = decisions(cli, tmp_path, [inside, other])
    assert not cooled["accepted"] and cooled["reason"].startswith(f"cooldown: a loss on {BTC}")
    assert free["accepted"], free["reason"]
    (after,) = decisions(cli, tmp_path, [setup_at(loss_bar + COOLDOWN_BARS * BAR)])
    assert after["accepted"], after["reason"]


def test_a_winning_trade_cools_nothing(emu, journal, tmp_path):
    cli = live_cli(emu, journal)
    trip = round_trip(emu, journal, cli, tmp_path, won=True)
    close_bar = parse_time(trip["closed_at"]) // BAR * BAR
    emu.now_ms = close_bar + 2 * BAR
    (decided,) = decisions(cli, tmp_path, [setup_at(close_bar)])
    assert decided["accepted"], decided["reason"]


def test_a_loss_through_trade_is_the_recent_loss_sizing_sees(emu, journal, tmp_path):
    cli = live_cli(emu, journal, CRYPTOBOT__RISK__DYNAMIC_LEVERAGE__ENABLED="true")
    flags = ("size", "--symbol", BTC, "--side", "long", "--entry", "80000", "--stop", "79000",
             "--risk-usd", "10", "--equity", "10000", "--step", "0.001", "--explain",
             "-f", "jsonl")  # fmt: skip
    before = cli(*flags)
    assert "a recent loss" not in before.stderr
    losing_trade(emu, journal, cli, tmp_path)
    after = cli(*flags)
    assert "dynamic: a recent loss -> -1x" in after.stderr
    (order,) = [json.loads(line) for line in after.stdout.splitlines()]
    assert order["status"] == "sized"


def test_a_journal_that_never_traded_holds_no_loss(journal):
    """No journal yet, then one of ``signal``'s tables only (no ``fills``): no loss."""
    assert signal_history(journal, 0, symbols=[BTC]) == ({}, {})
    with catalog.connect(journal) as con:
        ensure_schema(con)
    assert signal_history(journal, 0, symbols=[BTC]) == ({}, {})


@pytest.mark.parametrize("symbols", [[], [ETH]])
def test_a_loss_counts_only_on_its_own_symbol(emu, journal, tmp_path, symbols):
    losing_trade(emu, journal, live_cli(emu, journal), tmp_path)
    assert signal_history(journal, emu.now_ms, symbols=symbols)[0] == {}
