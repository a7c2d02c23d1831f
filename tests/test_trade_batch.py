"""What stands between a sized order and its entry on the wire (issue 13): the batch's reads
made once, no look-up of a new entry's id (never sent: the executor is told so), margin mode and
leverage sent only when a run of the setup has not set them, and the journal held open for the
batch: readable inside the process, closed to other processes until the batch ends (DuckDB's
rule, checked here), every row committed as it is written."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from cryptobot.core.account import Order, OrderRequest
from cryptobot.core.config import load_settings
from cryptobot.core.market import Market
from cryptobot.data import catalog
from cryptobot.engine.bracket import plan
from cryptobot.engine.trade import TradeDesk, TradeSetup, trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.engine.venue_settings import LEVERAGE, MARGIN_MODE, VenueSettings
from cryptobot.exchange.paper import PaperBroker
from cryptobot.journal import breakers as breaker_journal
from cryptobot.journal.intents import Intent
from cryptobot.journal.trading import TradeJournal
from tests import test_trade_live
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import adapter
from tests.test_execution import MIN, Ticking, venue_of
from tests.test_trade_live import BTC, btc_order
from tests.trading import setup, sized, table
from tests.venues import T0

ACCOUNT = "paper:paper"  # the configured account (mode paper, paper.account: paper)

emu, journal = test_trade_live.emu, test_trade_live.journal  # the same fixtures
SRC = Path(__file__).resolve().parents[1] / "src"
SETTINGS = ("/fapi/v1/marginType", "/fapi/v1/leverage")
LOOKUPS = ("/fapi/v1/order", "/fapi/v1/algoOrder")


class _FirstWait(Exception):
    """The executor's first wait: its entry is on the wire."""


async def _stop(seconds: float) -> None:
    raise _FirstWait


def _run(emu: BinanceEmulator, orders, run_setup: TradeSetup, *, stop_at_wait: bool = False):
    async def go():
        venue = adapter(emu)
        if stop_at_wait:
            venue.wait = _stop  # the maker-first executor would wait on the standing clock
        try:
            return await trade_orders(venue, orders, setup=run_setup, dry_run=False)
        except _FirstWait:
            return None
        finally:
            await venue.close()

    return asyncio.run(go())


def _hits_of(emu: BinanceEmulator, paths: tuple[str, ...], *, method: str, since: int = 0):
    return [h for h in emu.hits[since:] if h.path in paths and h.method == method]


def _flat(emu: BinanceEmulator, n: int) -> None:
    async def go(venue):
        for p in await venue.fetch_positions([BTC]):
            await venue.create_order(symbol=BTC, type="market", side="sell",
                                     amount=p.contracts, reduce_only=True,
                                     client_order_id=f"cb-flat{n:019d}")  # fmt: skip
        for o in await venue.fetch_open_orders(BTC):
            await venue.cancel_order(o.client_order_id, symbol=BTC)

    async def run_it():
        venue = adapter(emu)
        try:
            await go(venue)
        finally:
            await venue.close()

    asyncio.run(run_it())


def test_a_setup_sets_a_symbols_margin_mode_and_leverage_once(emu, journal):
    kept = setup(journal, venue="binanceusdm")
    (first,) = _run(emu, [btc_order(emu, 1)], kept)[0]
    assert first.status == "placed"
    assert len(_hits_of(emu, SETTINGS, method="POST")) == 2
    _flat(emu, 1)
    before = len(emu.hits)
    (again,) = _run(emu, [btc_order(emu, 2)], kept)[0]
    assert again.status == "placed"
    assert _hits_of(emu, SETTINGS, method="POST", since=before) == []  # known: not sent
    _flat(emu, 2)
    before = len(emu.hits)
    (fresh,) = _run(emu, [btc_order(emu, 3)], setup(journal, venue="binanceusdm"))[0]
    assert fresh.status == "placed"  # a new setup (a new run of the command) sets them again
    assert len(_hits_of(emu, SETTINGS, method="POST", since=before)) == 2
    journaled = table(journal, "SELECT action, outcome FROM order_requests WHERE action "
                               "LIKE 'set_%' ORDER BY id")  # fmt: skip
    assert journaled == [("set_margin_mode", "ok"), ("set_leverage", "ok")] * 2


def test_a_maker_entry_leaves_without_a_look_up_with_its_row_and_sized_order_stored(emu, journal):
    execution = load_settings(env={}).execution
    order = btc_order(emu, 7)
    before = len(emu.hits)
    assert _run(emu, [order], setup(journal, venue="binanceusdm", execution=execution),
                stop_at_wait=True) is None  # fmt: skip
    hits = emu.hits[before:]
    place = next(i for i, h in enumerate(hits)
                 if h.method == "POST" and h.path == "/fapi/v1/order")  # fmt: skip
    asked = [h.path for h in hits[:place] if h.method == "GET" and h.path in LOOKUPS
             and h.params.get("origClientOrderId", h.params.get("clientAlgoId"))
             == order.client_order_id]  # fmt: skip
    assert asked == []  # an id the journal never saw was never sent: nothing to ask
    rows = table(journal, "SELECT o.status, o.created_at = s.ts FROM orders o JOIN "
                          "sized_orders s USING (venue, client_order_id)")  # fmt: skip
    assert rows == [("open", True)]  # the sized order kept with the entry's row


def _sending(rows: TradeJournal, order, **extra) -> OrderRequest:
    """The entry of ``order`` intended and taken in (its ``sending`` row); its request."""
    req = plan(order, _market(order), split=None).entry.request
    rows.intend(Intent.of(req, venue=rows.venue, parent_id=order.client_order_id, leg="entry",
                          strategy="manual", ts=1, **extra))  # fmt: skip
    rows.take_in()
    return req


def test_a_held_journal_reads_inside_the_process_and_keeps_other_processes_out(journal):
    rows, order = TradeJournal(journal, "binanceusdm"), btc_order_like()
    with rows.held():
        _sending(rows, order, sized=order.to_record())
        assert list(rows.orders_of(order.client_order_id)) == [order.client_order_id]
        assert (
            breaker_journal.load_state(journal, account=ACCOUNT) is None
        )  # a read-only reader, in-process
        assert rows.sized_order(order.client_order_id)["client_order_id"] == order.client_order_id
        outside = _read_from_another_process(journal)
        assert "busy" in outside  # DuckDB: no other process opens a file one holds
    assert _read_from_another_process(journal) == "sending"  # committed, readable after


def test_a_held_journal_is_let_go_while_the_batch_waits(journal):
    rows, order = TradeJournal(journal, "binanceusdm"), btc_order_like()
    with rows.held():
        req = _sending(rows, order)
        with rows.let_go():
            assert _read_from_another_process(journal) == "sending"  # a reader gets in
        assert "busy" in _read_from_another_process(journal)  # held again after the wait
        rows.answered(req, parent_id=order.client_order_id, leg="entry", ts=2,
                      order=_open_order(order))  # fmt: skip
        assert rows.orders_of(order.client_order_id)[order.client_order_id].status == "open"
    assert _read_from_another_process(journal) == "open"


def test_a_replayed_wait_keeps_the_journal_and_a_real_one_lets_it_go(journal, tmp_path):
    """Letting go and reopening cost 20-60 ms a wait: paid only where the wait lasts (a paper
    broker on real time), never on a replayed clock, which moves at once."""
    replay = venue_of(tmp_path / "lake", [(100.0, 100.1, 99.9, 100.0)] * 3)
    paper = PaperBroker(replay, journal_dir=tmp_path / "paper", setup=replay.setup,
                        clock=Ticking(T0 + MIN, step_ms=0))  # fmt: skip
    rows = TradeJournal(journal, "sim")
    seen: dict[str, str] = {}

    async def wait_on(venue, name: str) -> None:
        desk = TradeDesk(venue, setup=setup(journal), dispatch=None, journal=rows)
        venue.wait = lambda s: _probe(seen, name, journal)  # what another process meets
        await desk._wait(1.0)

    with rows.held():
        _sending(rows, btc_order_like())
        asyncio.run(wait_on(replay, "replay"))
        asyncio.run(wait_on(paper, "paper on real time"))
    assert "busy" in seen["replay"] and seen["paper on real time"] == "sending", seen


async def _probe(seen: dict[str, str], name: str, journal: Path) -> None:
    seen[name] = _read_from_another_process(journal)


def test_a_reader_inside_a_hold_never_creates_what_it_reads(tmp_path: Path):
    with catalog.held(tmp_path), catalog.reader(tmp_path) as con:
        assert con is not None  # the held file exists: the reader reads it
    assert breaker_journal.load_state(tmp_path, account=ACCOUNT) is None


def test_known_settings_are_skipped_and_a_refusal_forgets_them():
    known = VenueSettings()
    assert known.needed(BTC, margin_mode="isolated", leverage=5) == [
        (MARGIN_MODE, "isolated"), (LEVERAGE, 5)]  # fmt: skip
    known.set(BTC, MARGIN_MODE, "isolated")
    known.set(BTC, LEVERAGE, 5)
    assert known.needed(BTC, margin_mode="isolated", leverage=5.0) == []
    assert known.needed(BTC, margin_mode="isolated", leverage=6) == [(LEVERAGE, 6)]
    assert known.needed(BTC, margin_mode="cross", leverage=5) == [(MARGIN_MODE, "cross")]
    assert known.needed("ETH/USDT:USDT", margin_mode="isolated", leverage=5) != []
    known.forget(BTC)
    assert len(known.needed(BTC, margin_mode="isolated", leverage=5)) == 2


def btc_order_like() -> TradeOrder:
    return TradeOrder.from_record(sized(entry=50_000.0, symbol=BTC, qty=0.02, stop_pct=1.0,
                                        exchange="binanceusdm"))  # fmt: skip


def _open_order(order: TradeOrder) -> Order:
    return Order(id="1", client_order_id=order.client_order_id, timestamp=2, updated=2,
                 symbol=BTC, type="market", side="buy", amount=order.qty, price=None,
                 trigger_price=None, reduce_only=False, post_only=False, status="open",
                 filled=0.0, average=None, fee=0.0, liquidity="taker")  # fmt: skip


def _market(order: TradeOrder) -> Market:
    return Market(symbol=BTC, id="BTCUSDT", base="BTC", quote="USDT", settle="USDT",
                  type="swap", linear=True, active=True, contract_size=1.0, tick_size=0.1,
                  step_size=0.001, min_qty=0.001, min_notional=5.0, max_leverage=125.0,
                  maker=0.0002, taker=0.0005)  # fmt: skip


def _read_from_another_process(root: Path) -> str:
    probe = (
        "import sys\n"
        "from cryptobot.data import catalog\n"
        "from cryptobot.core.errors import CryptobotError\n"
        "try:\n"
        f"    with catalog.connect({str(root)!r}, read_only=True, wait_s=0.2) as con:\n"
        "        print(con.execute('SELECT status FROM orders').fetchone()[0])\n"
        "except CryptobotError as exc:\n"
        "    print(exc)\n"
    )
    env = os.environ | {"PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout.strip()


def test_the_same_sized_order_twice_in_one_batch_goes_out_once(emu, journal):
    order = btc_order(emu, 9)
    outcomes, _ = _run(emu, [order, order], setup(journal, venue="binanceusdm"))
    assert [o.status for o in outcomes] == ["placed", "already_placed"]
    assert emu.engine.book.placements[order.client_order_id] == 1
    sent = table(journal, "SELECT client_order_id FROM order_requests WHERE action = "
                          "'create' AND outcome = 'sent'")  # fmt: skip
    assert sent.count((order.client_order_id,)) == 1
