"""``trade`` on the live path: the real ccxt client (``CcxtTradingExchange``) against the
loopback Binance USDⓈ-M emulator and its account, built directly or through the factory with
every live switch on. What goes on the wire for a bracket, running twice, and each fault: a
response lost after the order was accepted, 5xx, a duplicate client id (-4116), an order the
venue reports "not found" for a while, a partial entry fill, and a stop the venue refuses."""

import asyncio
import json
from pathlib import Path

import pytest

from cryptobot.engine.bracket import plan
from cryptobot.engine.dispatch import VenueDispatch
from cryptobot.engine.trade import trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.journal.intents import Intent
from cryptobot.journal.trading import TradeJournal
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator, Faults
from tests.test_ccxt_trading import KEY, SECRET, adapter, last, posted
from tests.trading import setup, sized, table

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"
ETH, ETHID = "ETH/USDT:USDT", "ETHUSDT"


@pytest.fixture
def emu(shared: Path):
    with BinanceEmulator(shared) as server:
        server.engine.spec(BTCID)
        server.engine.spec(ETHID)
        yield server


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def btc_order(emu: BinanceEmulator, n: int = 1, **kw) -> TradeOrder:
    price = last(emu)
    kw.setdefault("stop_pct", 1.0)
    record = sized(entry=price, symbol=BTC, qty=0.02, cid=f"cb-{n:024d}", exchange="binanceusdm",
                   target_qty=[0.005, 0.005, 0.005], **kw)  # fmt: skip
    return TradeOrder.from_record(record)


def trade(emu: BinanceEmulator, journal: Path, orders: list[TradeOrder], **kw):
    """One ``trade`` run through a fresh adapter (a new process: it remembers nothing)."""

    async def go():
        venue = adapter(emu)
        try:
            run_setup = setup(journal, venue="binanceusdm", **kw)
            return await trade_orders(venue, orders, setup=run_setup, dry_run=False)
        finally:
            await venue.close()

    return asyncio.run(go())[0]


def test_the_bracket_on_the_wire_and_in_the_journal(emu, journal):
    order = btc_order(emu)
    cid = order.client_order_id
    (out,) = trade(emu, journal, [order])
    assert out.status == "placed", out.reason
    wire = posted(emu)
    assert [h.path for h in wire] == ["/fapi/v1/order", *["/fapi/v1/algoOrder"] * 4]
    entry, stop, *tps = (h.params for h in wire)
    assert (entry["type"], entry["side"], entry["newClientOrderId"]) == ("MARKET", "BUY", cid)
    assert float(entry["quantity"]) == 0.02 and "reduceOnly" not in entry
    assert (stop["type"], stop["side"]) == ("STOP_MARKET", "SELL")
    assert stop["clientAlgoId"] == f"{cid}-sl"
    assert stop["reduceOnly"] == "true" and float(stop["quantity"]) == 0.02
    assert float(stop["triggerPrice"]) == pytest.approx(order.stop)
    assert stop["workingType"] == "CONTRACT_PRICE"
    for n, (tp, price) in enumerate(zip(tps, order.targets, strict=True), start=1):
        assert (tp["type"], tp["clientAlgoId"]) == ("TAKE_PROFIT_MARKET", f"{cid}-tp{n}")
        assert float(tp["triggerPrice"]) == pytest.approx(price) and tp["reduceOnly"] == "true"
        assert float(tp["quantity"]) == 0.005
    settings = [h.path for h in emu.hits if h.method == "POST" and "order" not in h.path.lower()]
    assert settings == ["/fapi/v1/marginType", "/fapi/v1/leverage"]
    assert emu.account.position(BTCID).leverage == 5
    rows = dict(table(journal, "SELECT client_order_id, status FROM orders"))
    targets = {f"{cid}-tp{n}": "open" for n in (1, 2, 3)}
    assert rows == {cid: "closed", f"{cid}-sl": "open", **targets}
    fills = table(journal, "SELECT client_order_id, leg, amount FROM fills")
    assert fills == [(cid, "entry", 0.02)]


def test_running_twice_places_nothing_the_second_time(emu, journal):
    orders = [btc_order(emu, 1), btc_order(emu, 2)]  # a second order on the same symbol
    first = trade(emu, journal, orders)
    assert [o.status for o in first] == ["placed", "refused"]
    assert first[1].reason.startswith("one_position_per_symbol")
    before = len(posted(emu))
    again = trade(emu, journal, orders)
    assert [o.status for o in again] == ["already_placed", "refused"]
    assert len(posted(emu)) == before
    assert all(count == 1 for count in emu.engine.book.placements.values())


def test_a_response_lost_after_the_entry_was_accepted_places_it_once(emu, journal):
    emu.faults = Faults(kinds=("drop",), paths=("/fapi/v1/order",), first=1)
    order = btc_order(emu)
    (out,) = trade(emu, journal, [order])
    assert out.status == "placed" and out.legs[1].leg == "sl"
    assert emu.engine.book.placements[order.client_order_id] == 1
    assert emu.account.position(BTCID).qty == pytest.approx(0.02)


def test_an_order_not_found_for_a_while_is_not_sent_again(emu, journal):
    emu.faults = Faults(not_found=2)  # every new order: "does not exist" for two look-ups
    order = btc_order(emu)
    trade(emu, journal, [order])
    (again,) = trade(emu, journal, [order])  # the entry is looked up: two misses, then found
    assert again.status == "already_placed"
    assert all(count == 1 for count in emu.engine.book.placements.values())


def test_a_crash_between_the_request_and_its_answer_is_resolved_by_client_id(emu, journal):
    """A journal row ``sending`` (the process died before the answer was stored): the next
    run looks the order up; the venue has it, so it is adopted, not sent again."""
    order = btc_order(emu)
    venue_journal = TradeJournal(journal, "binanceusdm")
    bracket = plan(order, _markets(emu)[BTC], split=None)
    venue_journal.intend(Intent.of(bracket.entry.request, venue="binanceusdm",
                                   parent_id=order.client_order_id, leg="entry",
                                   strategy="manual", ts=emu.now_ms))  # fmt: skip

    async def place_behind_the_journal():
        venue = adapter(emu)
        try:
            req = bracket.entry.request
            await venue.create_order(symbol=BTC, type="market", side="buy", amount=req.amount,
                                     client_order_id=req.client_order_id)  # fmt: skip
        finally:
            await venue.close()

    asyncio.run(place_behind_the_journal())
    (out,) = trade(emu, journal, [order])
    assert out.status == "already_placed" and out.legs[0].status == "closed"
    assert [leg.leg for leg in out.legs if leg.action == "placed"] == ["sl", "tp1", "tp2", "tp3"]
    assert emu.engine.book.placements[order.client_order_id] == 1
    rows = dict(table(journal, "SELECT client_order_id, status FROM orders"))
    assert rows[order.client_order_id] == "closed"


def test_a_sending_row_the_venue_never_got_is_sent_once_it_cannot_be_in_flight(emu, journal):
    order = btc_order(emu)
    bracket = plan(order, _markets(emu)[BTC], split=None)
    TradeJournal(journal, "binanceusdm").intend(Intent.of(
        bracket.entry.request, venue="binanceusdm", parent_id=order.client_order_id,
        leg="entry", strategy="manual", ts=emu.now_ms,
    ))  # fmt: skip
    (young,) = trade(emu, journal, [order], in_flight_ms=10_000)
    assert young.status == "unknown" and emu.engine.book.placements[order.client_order_id] == 0
    emu.now_ms += 11_000  # a request older than the venue's recvWindow cannot land any more
    (settled,) = trade(emu, journal, [order], in_flight_ms=10_000)
    assert settled.status == "placed" and emu.engine.book.placements[order.client_order_id] == 1


def test_a_duplicate_client_id_answers_with_the_order_the_venue_has(emu, journal):
    order = btc_order(emu)
    bracket = plan(order, _markets(emu)[BTC], split=None)
    tp1 = bracket.targets[0]

    async def twice():
        venue = adapter(emu)
        try:
            await trade_orders(venue, [order], setup=setup(journal, venue="binanceusdm"),
                               dry_run=False)  # fmt: skip
            dispatch = VenueDispatch(venue, TradeJournal(journal, "binanceusdm"))
            return await dispatch.create(tp1, parent_id=order.client_order_id, strategy="manual")
        finally:
            await venue.close()

    again = asyncio.run(twice())
    assert emu.engine.book.duplicates_refused == 1  # -4116 on the wire
    assert again.client_order_id == tp1.client_order_id and again.status == "open"
    assert emu.engine.book.placements[tp1.client_order_id] == 1


def test_a_partial_entry_gets_a_stop_for_what_filled_grown_as_the_rest_fills(emu, journal):
    emu.faults = Faults(partial=1.0, partial_share=0.5)
    order = btc_order(emu)
    cid = order.client_order_id
    (out,) = trade(emu, journal, [order])
    stop = next(leg for leg in out.legs if leg.leg == "sl")
    assert out.status == "placed" and stop.amount == pytest.approx(0.01)
    emu.engine.tick(BTCID, last(emu))  # the rest of the entry fills
    (again,) = trade(emu, journal, [order])  # its start-up reconcile grows the stop
    actions = {(leg.leg, leg.action) for leg in again.legs}
    assert ("sl2", "kept") in actions
    grown = table(journal, "SELECT data FROM events WHERE kind = 'no_stop'")
    assert [json.loads(d)["action"] for (d,) in grown] == ["sl2 placed, sl canceled"]
    working = {a.client_id: a for a in emu.engine.book.open_conditionals(BTCID)}
    assert f"{cid}-sl" not in working and working[f"{cid}-sl2"].qty == pytest.approx(0.02)
    assert emu.account.position(BTCID).qty == pytest.approx(0.02)


def test_a_stop_the_venue_keeps_failing_closes_the_position_with_a_critical_event(emu, journal):
    """A running process (one adapter for two cycles): its stop is canceled by hand, then the
    conditional-order route answers 5xx to everything: the new stop's fate cannot be known,
    so the position is closed by a reduce-only market order and a CRITICAL event says why."""
    order = btc_order(emu)
    cid = order.client_order_id

    async def two_cycles():
        venue = adapter(emu)
        try:
            run_setup = setup(journal, venue="binanceusdm", lookups=2)
            await trade_orders(venue, [order], setup=run_setup, dry_run=False)
            await venue.cancel_order(f"{cid}-sl", symbol=BTC)  # by hand
            emu.faults = Faults(kinds=("500",), paths=("/fapi/v1/algoOrder",), first=10_000)
            return (await trade_orders(venue, [order], setup=run_setup, dry_run=False))[0]
        finally:
            await venue.close()

    (out,) = asyncio.run(two_cycles())
    assert out.status == "already_placed"  # its start-up reconcile found no stop, and closed
    ((message,),) = table(journal, "SELECT message FROM events WHERE kind = 'no_stop' AND "
                                   "json_extract_string(data, '$.action') IS NOT NULL")  # fmt: skip
    assert "closed by a reduce-only market order" in message
    assert emu.account.position(BTCID).qty == 0
    assert emu.engine.book.placements[f"{cid}-sl2"] == 0
    close = [h.params for h in posted(emu) if h.params.get("reduceOnly") == "true"
             and h.path == "/fapi/v1/order"]  # fmt: skip
    assert [c["newClientOrderId"] for c in close] == [f"{cid}-close"]
    events = table(journal, "SELECT level, kind, message FROM events WHERE level = 'CRITICAL'")
    assert {e[:2] for e in events} == {("CRITICAL", "no_stop")}  # the desk's and the reconcile's
    assert all(f"{cid}-sl2" in e[2] for e in events)


def test_a_stop_above_the_price_is_refused_and_the_position_closed(emu, journal):
    price = last(emu)  # the price fell after sizing: the long's stop is above it now
    record = sized(entry=round(price * 1.008, 1), stop_pct=0.4, symbol=BTC, qty=0.02,
                   exchange="binanceusdm", target_qty=[0.005] * 3)  # fmt: skip
    (out,) = trade(emu, journal, [TradeOrder.from_record(record)])
    assert out.status == "closed_no_stop" and "immediately trigger" in out.reason
    assert emu.account.position(BTCID).qty == 0


def test_live_through_the_cli_needs_every_switch_and_never_shows_the_keys(
    emu, tmp_path: Path, journal: Path
):
    text = json.dumps(sized(entry=last(emu), symbol=BTC, qty=0.02, exchange="binanceusdm",
                            target_qty=[0.005] * 3, stop_pct=1.0)) + "\n"  # fmt: skip
    env = emulator_env(emu, journal) | {"CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET}
    no_flag = Cli(env | {"CRYPTOBOT__MODE": "live"})("trade", "-", input=text, ok=False)
    assert no_flag.exit_code == 1 and "missing: --live" in no_flag.stderr
    assert emu.hits == []  # nothing reached the venue at all
    dry = Cli(env | {"CRYPTOBOT__MODE": "live"})("trade", "-", "--live", "--dry-run",
                                                 "--format", "jsonl", input=text)  # fmt: skip
    assert [json.loads(r)["request"] for r in dry.stdout.splitlines()][2] == "create_order"
    assert posted(emu) == []
    done = Cli(env | {"CRYPTOBOT__MODE": "live"})("trade", "-", "--live", "--taker", "--format",
                                                  "jsonl", input=text)  # fmt: skip
    assert json.loads(done.stdout)["status"] == "placed"
    assert emu.account.position(BTCID).qty == pytest.approx(0.02)
    status = Cli(env | {"CRYPTOBOT__MODE": "live"})("trade", "--status", "--live", "-f", "json")
    (row,) = json.loads(status.stdout)
    assert row["contracts"] == pytest.approx(0.02) and len(row["stops"]) == 1
    assert len(row["targets"]) == 3 and row["liquidation_distance_pct"] > 0
    stored = (journal / "cryptobot.duckdb").read_bytes()
    everything = "".join(r.stdout + r.stderr for r in (no_flag, dry, done, status))
    assert KEY not in everything and SECRET not in everything
    assert KEY.encode() not in stored and SECRET.encode() not in stored


def _markets(emu: BinanceEmulator) -> dict:
    async def load():
        venue = adapter(emu)
        try:
            return await venue.load_markets()
        finally:
            await venue.close()

    return asyncio.run(load())


def test_a_position_closed_by_hand_gets_no_new_stop_and_its_orders_are_canceled(emu, journal):
    order = btc_order(emu)
    cid = order.client_order_id
    trade(emu, journal, [order])

    async def close_by_hand():
        venue = adapter(emu)
        try:
            await venue.create_order(symbol=BTC, type="market", side="sell", amount=0.02,
                                     reduce_only=True, client_order_id="by-hand")  # fmt: skip
        finally:
            await venue.close()

    asyncio.run(close_by_hand())
    assert len(emu.engine.book.open_conditionals(BTCID)) == 4  # Binance leaves them working
    (again,) = trade(emu, journal, [order])  # its start-up reconcile cancels the orphans
    assert again.status == "already_placed" and "the position is closed" in again.reason
    ((action,),) = table(journal, "SELECT json_extract_string(data, '$.action') FROM events "
                                  "WHERE kind = 'manual_close'")  # fmt: skip
    assert action == "canceled sl, tp1, tp2, tp3"
    assert emu.engine.book.open_conditionals(BTCID) == []
    assert emu.engine.book.placements[f"{cid}-sl2"] == 0
