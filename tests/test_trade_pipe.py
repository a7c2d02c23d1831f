"""The whole pipe a user runs, ``cryptobot scan | signal | size | trade``, against the Binance
USDⓈ-M emulator with the real ccxt client (issue 13's acceptance (a)): ema_cross on real BTC
hourly bars, a ladder of four targets, and what goes on the wire and into the journal checked
against the sized order that came down the pipe."""

import json
from pathlib import Path

import pytest

from cryptobot.core.timeutil import parse_time
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import KEY, SECRET, posted
from tests.trading import table

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"
HOUR = 3_600_000
FOUR_RUNGS = json.dumps([{"r": r, "pct": 20} for r in (1.0, 1.5, 2.0, 3.0)])


def env(emu: BinanceEmulator, data: Path) -> dict[str, str]:
    return emulator_env(emu, data) | {
        "CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET, "CRYPTOBOT__MODE": "live",
        "CRYPTOBOT__STRATEGIES__EMA_CROSS__STOP_ATR": "2.0",
        "CRYPTOBOT__MANAGE__TAKE_PROFIT_LADDER": FOUR_RUNGS,
    }  # fmt: skip


def newest_setup_time(shared: Path, data: Path) -> int:
    """When ema_cross last triggered on BTC 1h before the emulator's default clock."""
    with BinanceEmulator(shared) as emu:
        out = Cli(env(emu, data))("scan", "--symbols", BTC, "--strategy", "ema_cross",
                                  "--within", "2000", "--bars", "2000", "--min-confidence",
                                  "0", "-f", "jsonl").stdout  # fmt: skip
    times = [parse_time(json.loads(line)["ts"]) for line in out.splitlines()]
    assert times, "ema_cross triggers on BTC 1h within 2000 bars"
    return max(times)


def test_scan_signal_size_trade_places_the_bracket_the_pipe_sized(shared, tmp_path):
    found = newest_setup_time(shared, tmp_path / "first")
    with BinanceEmulator(shared, now_ms=found + HOUR + 60_000) as emu:  # its bar just closed
        data = tmp_path / "data"
        data.mkdir()
        cli = Cli(env(emu, data))
        setups = cli("scan", "--symbols", BTC, "--strategy", "ema_cross", "--within", "1",
                     "--bars", "2000", "--min-confidence", "0", "-f", "jsonl").stdout  # fmt: skip
        assert len(setups.splitlines()) == 1, setups
        signals = cli("signal", "-", "-f", "jsonl", input=setups).stdout
        assert len(signals.splitlines()) == 1, cli("signal", "-", "--all", input=setups).stdout
        sized_out = cli("size", "-", "--risk-usd", "20", "-f", "jsonl", input=signals).stdout
        (order,) = [json.loads(line) for line in sized_out.splitlines()]
        assert order["status"] == "sized", order
        assert len(order["targets"]) == 4 and len(order["target_qty"]) == 4
        traded = cli("trade", "-", "--live", "--taker", "-f", "json", input=sized_out)
        (out,) = json.loads(traded.stdout)
        assert out["status"] == "placed", out
        check_wire(emu, order)
        check_journal(data, order)
        sign = 1 if order["side"] == "long" else -1
        assert emu.account.position(BTCID).qty == pytest.approx(sign * order["qty"])


def check_wire(emu: BinanceEmulator, order: dict) -> None:
    cid, long = order["client_order_id"], order["side"] == "long"
    exit_side = "SELL" if long else "BUY"
    wire = posted(emu)
    assert [h.path for h in wire] == ["/fapi/v1/order", *["/fapi/v1/algoOrder"] * 5]
    entry, stop, *tps = (h.params for h in wire)
    assert (entry["type"], entry["side"], entry["newClientOrderId"]) == (
        "MARKET", "BUY" if long else "SELL", cid)  # fmt: skip
    assert float(entry["quantity"]) == pytest.approx(order["qty"]) and "reduceOnly" not in entry
    assert (stop["type"], stop["side"], stop["clientAlgoId"]) == ("STOP_MARKET", exit_side,
                                                                 f"{cid}-sl")  # fmt: skip
    assert stop["reduceOnly"] == "true" and float(stop["quantity"]) == pytest.approx(order["qty"])
    assert float(stop["triggerPrice"]) == pytest.approx(order["stop"], abs=0.1)  # on the tick
    for n, (tp, price, qty) in enumerate(zip(tps, order["targets"], order["target_qty"],
                                             strict=True), start=1):  # fmt: skip
        assert (tp["type"], tp["side"], tp["clientAlgoId"]) == (
            "TAKE_PROFIT_MARKET", exit_side, f"{cid}-tp{n}")  # fmt: skip
        assert tp["reduceOnly"] == "true" and float(tp["quantity"]) == pytest.approx(qty)
        assert float(tp["triggerPrice"]) == pytest.approx(price, abs=0.1)
    assert len(order["client_order_id"]) <= 36


def check_journal(data: Path, order: dict) -> None:
    cid = order["client_order_id"]
    rows = table(data, "SELECT client_order_id, leg, status, amount, trigger_price, parent_id "
                       "FROM orders ORDER BY created_at, client_order_id")  # fmt: skip
    by_leg = {leg: (c, status, amount, trigger, parent) for c, leg, status, amount, trigger,
              parent in rows}  # fmt: skip
    assert set(by_leg) == {"entry", "sl", "tp1", "tp2", "tp3", "tp4"}
    assert by_leg["entry"][:3] == (cid, "closed", pytest.approx(order["qty"]))
    assert by_leg["sl"][:3] == (f"{cid}-sl", "open", pytest.approx(order["qty"]))
    assert by_leg["sl"][3] == pytest.approx(order["stop"], abs=0.1)
    for n, qty in enumerate(order["target_qty"], start=1):
        assert by_leg[f"tp{n}"][:3] == (f"{cid}-tp{n}", "open", pytest.approx(qty))
    assert {parent for *_, parent in by_leg.values()} == {cid}
    (fill,) = table(data, "SELECT client_order_id, leg, amount FROM fills")
    assert fill == (cid, "entry", pytest.approx(order["qty"]))
    (decision,) = table(data, "SELECT accepted, setup_id FROM signal_decisions")
    assert decision == (True, order["signal_id"])
    (kept,) = table(data, "SELECT record FROM sized_orders")
    assert json.loads(kept[0])["client_order_id"] == cid
