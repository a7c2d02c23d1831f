"""The write-ahead intents of ``trade`` (``journal.intents``), as a hostile world treats them: a
last line cut short by ``kill -9``, a file from another account or an earlier run, a data dir
where no intent can be written, and a real process killed between the fsync and the request.
The rule under test: no request leaves before its intent is on disk, an intent on disk is
never sent blindly again, and an id the journal never saw is never asked about at the venue."""

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from cryptobot.core.config import load_settings
from cryptobot.core.errors import CryptobotError
from cryptobot.engine.bracket import plan
from cryptobot.engine.dispatch import VenueDispatch
from cryptobot.engine.trade import LIVE_IN_FLIGHT_MS
from cryptobot.journal.intents import Intent, IntentLog, IntentNotDurable
from cryptobot.journal.trading import TradeJournal
from tests import test_trade_live
from tests.emulator import BinanceEmulator, Faults
from tests.test_ccxt_trading import adapter, last, posted
from tests.test_trade_kill import env_for
from tests.test_trade_live import BTC, _markets, btc_order, trade
from tests.trading import sized, table

emu, journal = test_trade_live.emu, test_trade_live.journal  # the same fixtures
VENUE = "binanceusdm"
LOOKUPS = ("/fapi/v1/order", "/fapi/v1/algoOrder")
WORKER = Path(__file__).resolve().parent / "intent_kill_worker.py"
CID = "cb-intent00000000000000001"


def _intent(emu: BinanceEmulator, order, *, venue: str = VENUE) -> Intent:
    """The entry's intent as a run writes it just before the entry leaves."""
    req = plan(order, _markets(emu)[BTC], split=None).entry.request
    return Intent.of(req, venue=venue, parent_id=order.client_order_id, leg="entry",
                     strategy=order.strategy, ts=emu.now_ms,
                     sized=order.to_record() | {"tp_split": None})  # fmt: skip


def _asked_for(emu: BinanceEmulator, cid: str) -> int:
    """Look-ups of ``cid`` the venue answered."""
    keys = ("origClientOrderId", "clientAlgoId")
    return sum(1 for h in emu.hits if h.method == "GET" and h.path in LOOKUPS
               and cid in (h.params.get(k) for k in keys))  # fmt: skip


def _entries(emu: BinanceEmulator, cid: str) -> int:
    return sum(1 for h in posted(emu) if h.params.get("newClientOrderId") == cid)


def test_a_torn_last_intent_is_ignored_with_a_warning_and_the_whole_one_is_looked_up(
    emu, journal, caplog
):
    killed, torn = btc_order(emu, 1), btc_order(emu, 2)
    log = IntentLog(journal, VENUE)
    log.append(_intent(emu, killed))  # fsync'd: its request may have left
    with log.path.open("ab") as f:  # cut short by kill -9 mid-write: never fsync'd, never sent
        f.write(_intent(emu, torn).line()[:57])
    with caplog.at_level(logging.WARNING, logger="cryptobot.journal.intents"):
        (out,) = trade(emu, journal, [killed])
    assert out.status == "placed", out.reason
    assert any("cut short" in r.getMessage() for r in caplog.records)
    assert _asked_for(emu, killed.client_order_id) >= 1  # sent maybe: looked up first
    assert emu.engine.book.placements[killed.client_order_id] == 1
    assert _asked_for(emu, torn.client_order_id) == 0 and _entries(emu, torn.client_order_id) == 0
    assert TradeJournal(journal, VENUE).orders_of(torn.client_order_id) == {}  # never sent
    assert log.path.read_bytes() == b""  # every intent in the journal: the file emptied


def test_an_intents_file_from_elsewhere_is_never_taken_for_this_accounts(emu, journal, caplog):
    """A file copied from another account's data dir, and an intent of this account whose
    answer is journaled already (a run killed after the answer, before the file was emptied):
    neither becomes a ``sending`` row, and the answered one keeps its answer."""
    done, foreign = btc_order(emu, 3), btc_order(emu, 4)
    (out,) = trade(emu, journal, [done])
    assert out.status == "placed"
    log = IntentLog(journal, VENUE)
    log.append(_intent(emu, done))
    log.append(_intent(emu, foreign, venue="bitget"))
    hand_edited = (
        _intent(emu, btc_order(emu, 9)).line().replace(b'"amount": 0.02', b'"amount": "lots"')
    )
    assert hand_edited != _intent(emu, btc_order(emu, 9)).line()
    log.path.write_bytes(log.path.read_bytes() + b'{"schema": "intent/1", "price": NaN}\n'
                         + hand_edited)  # fmt: skip
    kept = TradeJournal(journal, VENUE)
    with caplog.at_level(logging.WARNING, logger="cryptobot.journal.intents"):
        assert kept.orders_of(foreign.client_order_id) == {}  # a reader does not see it
        with kept.held():
            kept.take_in()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "an intent of bitget, not binanceusdm" in said and "not an intent" in said
    assert "bad amount" in said
    rows = table(journal, "SELECT client_order_id, status FROM orders WHERE leg = 'entry'")
    assert rows == [(done.client_order_id, "closed")]  # filled at market: not 'sending' again
    (again,) = trade(emu, journal, [done])
    assert again.status == "already_placed"
    assert emu.engine.book.placements[done.client_order_id] == 1


def test_an_intent_not_taken_in_is_seen_by_every_reader_of_what_was_sent(emu, journal):
    """Before any run folds it (a dry run, a reconcile's read): a ``sending`` row."""
    order = btc_order(emu, 5)
    IntentLog(journal, VENUE).append(_intent(emu, order))
    rows = TradeJournal(journal, VENUE)
    (row,) = rows.orders_of(order.client_order_id).values()
    assert (row.client_order_id, row.status, row.updated_at) == (
        order.client_order_id, "sending", emu.now_ms)  # fmt: skip
    assert [r.client_order_id for r in rows.reconcile_rows(()).working] == [order.client_order_id]
    (young,) = trade(emu, journal, [order], in_flight_ms=LIVE_IN_FLIGHT_MS)
    assert young.status == "unknown" and _entries(emu, order.client_order_id) == 0


def test_an_entry_announced_but_never_sent_is_journaled_not_placed_and_not_looked_up(emu, journal):
    """The maker-first entry's intent goes to disk while the executor reads the book; the
    book cannot be read, so nothing is sent: the row says so, and the next run sends the
    entry without asking the venue about it first."""
    order = btc_order(emu, 8)
    execution = load_settings(env={}).execution
    emu.faults = Faults(rate=1.0, kinds=("500",), paths=("/fapi/v1/depth",))
    (out,) = trade(emu, journal, [order], execution=execution)
    assert out.status == "unknown" and _entries(emu, order.client_order_id) == 0
    rows = table(journal, "SELECT status, reason FROM orders WHERE client_order_id = "
                          f"'{order.client_order_id}'")  # fmt: skip
    assert rows == [("not_placed", "announced, never sent (the executor placed no order)")]
    assert IntentLog(journal, VENUE).read() == []
    emu.faults = Faults()
    asked = _asked_for(emu, order.client_order_id)
    (again,) = trade(emu, journal, [order])  # at market this time
    assert again.status == "placed", again.reason
    assert _asked_for(emu, order.client_order_id) == asked  # certainly never sent: not asked
    assert emu.engine.book.placements[order.client_order_id] == 1


def test_an_entry_announced_then_the_clock_lost_is_not_placed_and_sent_later_unasked(emu, journal):
    """The entry's intent goes to disk, then the venue's clock cannot be read: the run stops
    having sent nothing, and says so in the journal (``not_placed``), so the next run sends
    the entry without looking it up first (it looked 6 times when the intent stayed)."""
    order = btc_order(emu, 11)

    def clock_lost_after_the_settings(method: str, path: str) -> None:
        if path == "/fapi/v1/leverage":
            emu.faults = Faults(rate=1.0, kinds=("500",), paths=("/fapi/v1/time",))

    emu.after = clock_lost_after_the_settings
    with pytest.raises(CryptobotError, match="fetch time failed"):
        trade(emu, journal, [order])
    assert table(journal, "SELECT leg, status FROM orders") == [("entry", "not_placed")]
    emu.after, emu.faults = None, Faults()
    asked = _asked_for(emu, order.client_order_id)
    (again,) = trade(emu, journal, [order])
    assert again.status == "placed" and _asked_for(emu, order.client_order_id) == asked
    assert emu.engine.book.placements[order.client_order_id] == 1


def test_a_data_dir_where_no_intent_can_be_written_trades_nothing(emu, journal):
    (journal / "journal").write_text("a file where the intents' folder would be\n")
    with pytest.raises(IntentNotDurable, match="cannot write the order intents file"):
        trade(emu, journal, [btc_order(emu, 6)])
    assert posted(emu) == []
    assert not (journal / "cryptobot.duckdb").exists() or table(
        journal, "SELECT count(*) FROM orders") == [(0,)]  # fmt: skip


@pytest.mark.slow  # a real process
def test_the_command_refuses_to_trade_in_one_line_when_intents_cannot_be_written(emu, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "journal").mkdir(parents=True)
    (data_dir / "journal" / "intents-binanceusdm.jsonl").mkdir()  # not a file: not writable
    source = tmp_path / "orders.jsonl"
    source.write_text(_record_line(emu))
    proc = subprocess.run(
        [sys.executable, "-m", "cryptobot", "trade", str(source), "-f", "jsonl", "--taker",
         "--live"],
        env=env_for(emu, data_dir, "live"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the order intents file" in lines[0], lines
    assert "Traceback" not in proc.stderr and posted(emu) == []


def test_an_intent_that_cannot_be_written_mid_run_stops_its_request(emu, journal):
    """The disk gives out after the run started: the order is not sent, nothing journaled."""
    order = btc_order(emu, 7)
    kept = TradeJournal(journal, VENUE)
    leg = plan(order, _markets(emu)[BTC], split=None).entry

    async def go():
        venue = adapter(emu)
        try:
            with kept.held():
                kept.take_in()
                kept.intents.path.unlink()
                kept.intents.path.mkdir()  # where the next line would go: no longer a file
                dispatch = VenueDispatch(venue, kept)
                dispatch.at(emu.now_ms)
                await dispatch.create(leg, parent_id=order.client_order_id, strategy="manual")
        finally:
            await venue.close()

    with pytest.raises(IntentNotDurable):
        asyncio.run(go())
    assert posted(emu) == []
    assert table(journal, "SELECT count(*) FROM orders") == [(0,)]


@pytest.mark.slow  # three real processes
@pytest.mark.timeout(400)
def test_kill_9_between_the_intents_fsync_and_the_request_never_sends_it_blindly(emu, tmp_path):
    """A real ``cryptobot trade --live`` process killed right after its entry's intent is on
    disk: nothing reached the venue. The next run takes the intent in as a ``sending`` row and
    looks it up; while the request could still land (the venue's recvWindow) it sends
    nothing, after that it sends the entry, once."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    source = tmp_path / "orders.jsonl"
    source.write_text(_record_line(emu))
    env = env_for(emu, data_dir, "live")
    args = ["trade", str(source), "-f", "jsonl", "--taker", "--live"]
    killed = subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert _entries(emu, CID) == 0
    (intent,) = IntentLog(data_dir, VENUE).read()
    assert (intent.client_order_id, intent.leg) == (CID, "entry")
    # on the venue's clock (which stands still here) as last read plus the time since: never
    # older than the reading, so it cannot look out of flight before it is
    assert emu.now_ms <= intent.ts < emu.now_ms + 60_000
    code, (young,) = _cryptobot(args, env)
    assert (code, young["status"]) == (1, "unknown"), young
    assert _entries(emu, CID) == 0 and _asked_for(emu, CID) >= 1
    emu.now_ms += LIVE_IN_FLIGHT_MS + 1_000  # it cannot land any more
    code, (settled,) = _cryptobot(args, env)
    assert (code, settled["status"]) == (0, "placed"), settled
    assert emu.engine.book.placements[CID] == 1
    assert IntentLog(data_dir, VENUE).read() == []


def _cryptobot(args: list[str], env: dict[str, str]) -> tuple[int, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "cryptobot", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def _record_line(emu: BinanceEmulator) -> str:
    """One sized order (``size``'s record) for the command, its client id ``CID``."""
    record = sized(entry=last(emu), symbol=BTC, qty=0.02, stop_pct=1.0, cid=CID,
                   exchange=VENUE, target_qty=[0.005, 0.005, 0.005])  # fmt: skip
    return json.dumps(record) + "\n"


@pytest.mark.parametrize("earlier", ["refused", "not_placed"])
def test_an_id_sent_again_after_its_refusal_and_killed_is_looked_up_not_forgotten(
    emu, journal, earlier
):
    """The id's earlier life (the breaker refused the entry; or it was certainly never placed)
    left a row; a later run sends it again and is killed after the request left: its intent is
    newer than that row, so it stands for an order that may exist. The next run looks it up,
    finds it and protects the position (the row had hidden it, and the position was left
    without a stop: a review's find)."""
    order = btc_order(emu, 43)
    cid = order.client_order_id
    req = plan(order, _markets(emu)[BTC], split=None).entry.request
    rows = TradeJournal(journal, VENUE)
    rows.refused(req, parent_id=cid, strategy=order.strategy, ts=emu.now_ms - 60_000,
                 reason="circuit_breaker: blocked")  # fmt: skip
    if earlier == "not_placed":
        rows.settled(cid, status="not_placed", reason="never placed", ts=emu.now_ms - 30_000)
    IntentLog(journal, VENUE).append(_intent(emu, order))  # the second life's intent

    async def send() -> None:  # its request reached the venue; the answer never came back
        ex = adapter(emu)
        try:
            await ex.create_order(symbol=req.symbol, type=req.type, side=req.side,
                                  amount=req.amount, price=req.price,
                                  client_order_id=req.client_order_id)  # fmt: skip
        finally:
            await ex.close()

    asyncio.run(send())
    (row,) = rows.orders_of(cid).values()
    assert row.status == "sending"  # every reader sees the order that may exist
    (out,) = trade(emu, journal, [order])
    assert _asked_for(emu, cid) >= 1 and _entries(emu, cid) == 1  # looked up, never re-sent
    assert out.status in ("placed", "already_placed"), out.reason
    stops = [c for c in emu.engine.book.open_conditionals() if c.client_id.endswith("-sl")]
    assert len(stops) == 1  # the position has its stop


def test_an_intent_stamped_ahead_of_a_replayed_clock_is_not_in_flight_forever():
    """A replayed clock starts every process at the same instant; the intent of a killed run
    is stamped a little after it: the next run must not wait for it forever."""
    from tests.trading import setup

    paper, live = setup(Path(".")), setup(Path("."), in_flight_ms=LIVE_IN_FLIGHT_MS)
    assert not paper.in_flight(sent_at=1_000_061, now=1_000_000)
    assert live.in_flight(sent_at=1_000_061, now=1_000_000)  # a live venue: still patient
    assert not live.in_flight(sent_at=1_000_000 - LIVE_IN_FLIGHT_MS, now=1_000_000)


def test_two_accounts_whose_names_differ_in_a_dash_keep_their_intents_apart(emu, journal):
    """``paper:a_b`` and ``paper:a-b`` (both valid paper accounts) once shared one file and one
    lock: one account's run took in and emptied the other's intents (a review's find)."""
    mine, other = TradeJournal(journal, "paper:a_b"), TradeJournal(journal, "paper:a-b")
    assert mine.intents.path != other.intents.path
    intent = _intent(emu, btc_order(emu, 9), venue="paper:a-b")
    other.intents.append(intent)
    assert mine.take_in() == 0  # not its file: nothing read, nothing emptied
    assert [i.client_order_id for i in other.intents.read()] == [intent.client_order_id]


def test_journal_orders_shows_an_order_a_killed_run_may_have_sent_before_any_run_folds_it(
    emu, journal
):
    """A run killed after an intent's fsync: until the next ``trade`` takes it in, ``journal
    orders`` (and export, report) showed nothing of an order that may be live on the venue."""
    from cryptobot.journal.query import Filters, select

    assert select(journal, "orders", Filters()).absent  # nothing at all yet
    order = btc_order(emu, 11)
    IntentLog(journal, VENUE).append(_intent(emu, order))
    IntentLog(journal, "paper:a-b").append(_intent(emu, btc_order(emu, 12), venue="paper:a-b"))
    shown = select(journal, "orders", Filters(venue=VENUE)).records
    assert [(r["client_order_id"], r["status"], r["venue"]) for r in shown] == [
        (order.client_order_id, "sending", VENUE)]  # fmt: skip
    assert shown[0]["amount"] == order.qty and shown[0]["created_at"] == emu.now_ms
    assert len(select(journal, "orders", Filters()).records) == 2  # both accounts'
    trade(emu, journal, [order])  # the next run takes it in, looks it up, places it once
    rows = select(journal, "orders", Filters(venue=VENUE)).records
    entry = [r for r in rows if r["client_order_id"] == order.client_order_id]
    assert len(entry) == 1 and entry[0]["status"] in ("open", "closed")
