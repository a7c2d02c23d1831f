"""``cryptobot trade --live`` refusing bad input and what the venue refuses (issue 13, the
acceptance's bad-input list), on the real ccxt client against the Binance USDⓈ-M emulator:
a malformed JSON Lines line, an unknown symbol, a quantity below the venue's minimum, a stop
on the wrong side (of the entry, and of the market when it reaches the venue), insufficient
margin. Each: one clear ``error:`` line, exit 1, and no position left without its stop."""

import json
from pathlib import Path

import pytest

from tests import test_trade_live
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import KEY, SECRET, last, posted
from tests.test_trade_live import BTC, BTCID
from tests.trading import sized, table

emu, journal = test_trade_live.emu, test_trade_live.journal  # the same fixtures


def live_cli(emu: BinanceEmulator, journal: Path, **env: str) -> Cli:
    return Cli(emulator_env(emu, journal) | {"CRYPTOBOT_API_KEY": KEY,
               "CRYPTOBOT_API_SECRET": SECRET, "CRYPTOBOT__MODE": "live", **env})  # fmt: skip


def btc(emu: BinanceEmulator, n: int, stop_pct: float = 1.0, **fields) -> dict:
    """A BTC long as ``size`` writes it, ``fields`` replacing its own."""
    record = sized(entry=last(emu), symbol=BTC, qty=0.02, exchange="binanceusdm",
                   cid=f"cb-{n:024d}", target_qty=[0.005] * 3, stop_pct=stop_pct)  # fmt: skip
    return record | fields


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def unprotected(emu: BinanceEmulator) -> list[str]:
    """Symbols holding a position that no reduce-only stop covers whole."""
    out = []
    for symbol, position in emu.account.positions.items():
        if not position.qty:
            continue
        stops = [c for c in emu.engine.book.open_conditionals(symbol)
                 if c.type == "STOP_MARKET" and c.reduce_only]  # fmt: skip
        if sum(c.qty for c in stops) < abs(position.qty) - 1e-9:
            out.append(symbol)
    return out


def test_a_malformed_line_sends_nothing_and_skip_bad_sends_the_rest(emu, journal, tmp_path):
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(btc(emu, 1)) + '\n{"schema": "sized_order/2", "qty": 0.0\n')
    cli = live_cli(emu, journal)
    refused = cli("trade", str(orders), "--live", "--taker", ok=False)
    assert refused.exit_code == 1 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {orders} line 2: not valid JSON")
    assert posted(emu) == [] and not (journal / "cryptobot.duckdb").exists()
    kept = cli("trade", str(orders), "--live", "--taker", "--skip-bad", "-f", "json")
    assert [o["status"] for o in json.loads(kept.stdout)] == ["placed"]
    assert f"skipped {orders} line 2: not valid JSON" in kept.stderr
    assert unprotected(emu) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"symbol": "NOPE/USDT:USDT"}, "the venue lists no market NOPE/USDT:USDT"),
        ({"qty": 0.0004, "target_qty": [0.0, 0.0, 0.0]}, "qty 0.0004 is below one step"),
        ({"stop_pct": -1.0}, "the stop must be below the entry"),
        ({"qty": 0.2, "leverage": 1.0, "stop_pct": 0.25,
          "target_qty": [0.05] * 3}, "reserve_cash: margin in use"),  # $16,000 on $10,000
    ],
)  # fmt: skip
def test_a_bad_order_is_one_line_exit_1_and_nothing_is_placed(emu, journal, tmp_path, change,
                                                              why):  # fmt: skip
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(btc(emu, 1, **change)) + "\n")
    roomy = {
        "CRYPTOBOT__RISK__GATES__MAX_SYMBOL_EXPOSURE_PCT": "1000",
        "CRYPTOBOT__RISK__GATES__MAX_TOTAL_EXPOSURE_PCT": "1000",
        "CRYPTOBOT__RISK__GATES__MAX_CORRELATED_EXPOSURE_PCT": "1000",
        "CRYPTOBOT__RISK__GATES__MAX_ORDER_NOTIONAL_USD": "100000",
    }  # the margin decides
    refused = live_cli(emu, journal, **roomy)("trade", str(orders), "--live", "--taker",
                                              ok=False)  # fmt: skip
    assert refused.exit_code == 1
    (line,) = errors(refused)
    assert why in line, refused.stderr
    assert [h for h in posted(emu) if "order" in h.path.lower()] == []
    assert emu.account.position(BTCID).qty == 0 and emu.engine.book.open_orders() == []


def test_a_stop_the_venue_refuses_closes_the_position_one_line_exit_1(emu, journal, tmp_path):
    """Sized at 100.5% of the market with its stop at 100.2%: right of the entry, but above the
    price the market entry fills at, so the venue will not take it (it would trigger at once).
    The position is closed at once and a CRITICAL event journaled: never left unprotected."""
    price = last(emu)
    record = btc(emu, 1) | {"entry": round(price * 1.005, 1), "stop": round(price * 1.002, 1)}
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(record) + "\n")
    done = live_cli(emu, journal)("trade", str(orders), "--live", "--taker", "-f", "json",
                                  ok=False)  # fmt: skip
    assert done.exit_code == 1
    (out,) = json.loads(done.stdout)
    assert out["status"] == "closed_no_stop", out
    (line,) = errors(done)
    assert BTC in line and "stop" in line
    assert emu.account.position(BTCID).qty == 0 and unprotected(emu) == []
    assert emu.engine.book.open_orders() == [] and emu.engine.book.open_conditionals() == []
    stops = [h for h in emu.hits if h.method == "POST" and h.path == "/fapi/v1/algoOrder"
             and h.params.get("type") == "STOP_MARKET"]  # fmt: skip
    assert stops and all(h.status == 400 for h in stops)  # refused by the venue (-2021)
    critical = table(journal, "SELECT kind FROM events WHERE level = 'CRITICAL'")
    assert critical, "the close for want of a stop is journaled CRITICAL"


def test_an_entry_the_venue_rejects_is_one_line_exit_1_and_nothing_is_left(emu, journal, tmp_path):
    """One step of BTC (about $80) is below the venue's $100 minimum notional: the request goes
    out (the adapter cannot price a market order), the venue answers -4164, nothing opens."""
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(btc(emu, 1, qty=0.001, target_qty=[0.0, 0.0, 0.0])) + "\n")
    done = live_cli(emu, journal)("trade", str(orders), "--live", "--taker", "-f", "json",
                                  ok=False)  # fmt: skip
    assert done.exit_code == 1
    (out,) = json.loads(done.stdout)
    (line,) = errors(done)
    assert out["status"] in ("rejected", "not_placed") and BTC in line, (out, line)
    entries = [h for h in emu.hits if h.method == "POST" and h.path == "/fapi/v1/order"]
    assert [h.status for h in entries] == [400]  # the venue's refusal, asked once
    assert emu.account.position(BTCID).qty == 0 and emu.engine.book.open_conditionals() == []
