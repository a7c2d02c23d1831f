"""``trade --reconcile`` with the REAL ccxt client against the Binance USDⓈ-M emulator: the
venue is the truth. A position closed by hand (its orphans canceled, no stop re-placed), a stop
canceled by hand (placed again from the kept sized order), a position nobody journaled (adopted,
said once), fills while nothing ran, a request whose answer was lost, and the tripped breaker's
actions (daily, weekly, monthly). Every case: a second reconcile reports nothing new and sends
nothing."""

import asyncio
import json
import math
from pathlib import Path

import pytest

from cryptobot.core.config import load_settings
from cryptobot.engine.bracket import plan
from cryptobot.engine.dispatch import DryRunDispatch
from cryptobot.engine.reconcile import reconcile, reconcile_desk
from cryptobot.engine.trade import TradeDesk
from cryptobot.journal.intents import Intent
from cryptobot.journal.trading import TradeJournal
from cryptobot.risk.breakers import Equity
from cryptobot.risk.context import apply_event
from tests import test_trade_live
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import KEY, SECRET, adapter, posted
from tests.test_trade_live import BTC, BTCID, ETH, ETHID, _markets, btc_order, trade
from tests.trading import setup, table

emu, journal = test_trade_live.emu, test_trade_live.journal  # the same fixtures


def reconciled(emu: BinanceEmulator, journal: Path, *, dry_run: bool = False, **kw):
    """One ``trade --reconcile`` through a fresh adapter (a new process)."""

    async def go():
        venue = adapter(emu)
        try:
            found, _ = await reconcile(venue, setup=setup(journal, venue="binanceusdm", **kw),
                                       dry_run=dry_run)  # fmt: skip
            return found
        finally:
            await venue.close()

    return asyncio.run(go())


def by_hand(emu: BinanceEmulator, symbol: str, side: str, qty: float, *, reduce_only: bool):
    """A trader's market order on the venue's own screen: no journal knows it."""
    emu.engine.place(symbol=symbol, side=side, kind="MARKET", qty=qty, price=0.0, tif="GTC",
                     reduce_only=reduce_only, client_id=None)  # fmt: skip


def kinds(found) -> list[tuple[str, str | None]]:
    return [(d.kind, d.client_order_id) for d in found]


def test_a_position_closed_by_hand_gets_its_orphans_canceled_and_no_stop(emu, journal):
    order = btc_order(emu)
    cid = order.client_order_id
    assert trade(emu, journal, [order])[0].status == "placed"
    by_hand(emu, BTCID, "SELL", 0.02, reduce_only=True)
    assert len(emu.engine.book.open_conditionals(BTCID)) == 4  # Binance leaves them working
    before = len(posted(emu))
    found = reconciled(emu, journal)
    assert kinds(found) == [("manual_close", cid)]
    (closed,) = found
    assert closed.action == "canceled sl, tp1, tp2, tp3" and not closed.failed
    assert "closed by hand" in closed.message and "no protection re-placed" in closed.message
    assert emu.engine.book.open_conditionals(BTCID) == []
    assert len(posted(emu)) == before  # cancels only: no stop, no close, nothing placed
    assert emu.engine.book.placements[f"{cid}-sl2"] == 0
    rows = dict(table(journal, "SELECT leg, status FROM orders"))
    assert rows == {"entry": "closed", "sl": "canceled", "tp1": "canceled", "tp2": "canceled",
                    "tp3": "canceled"}  # fmt: skip
    (event,) = table(journal, "SELECT level, kind, client_order_id FROM events "
                              "WHERE kind = 'manual_close'")  # fmt: skip
    assert event == ("WARNING", "manual_close", cid)
    hits = len(emu.hits)
    assert reconciled(emu, journal) == []  # idempotent: nothing new, nothing sent
    assert all(h.method == "GET" for h in emu.hits[hits:])


def test_a_position_without_its_stop_gets_it_back_from_the_kept_sized_order(emu, journal):
    order = btc_order(emu)
    cid = order.client_order_id
    trade(emu, journal, [order])
    emu.engine.cancel_conditional(client_id=f"{cid}-sl")  # by hand, on the venue's screen
    found = reconciled(emu, journal)
    assert kinds(found) == [("order_gone", f"{cid}-sl"), ("no_stop", cid)]
    assert found[1].action == "sl2 placed" and not found[1].failed
    (stop,) = [c for c in emu.engine.book.open_conditionals(BTCID) if c.client_id.endswith("sl2")]
    assert stop.trigger == pytest.approx(order.stop) and stop.qty == pytest.approx(0.02)
    assert stop.reduce_only and stop.side == "SELL"
    assert reconciled(emu, journal) == []
    assert all(n == 1 for n in emu.engine.book.placements.values())


def test_an_unknown_position_is_adopted_once_and_given_no_invented_stop(emu, journal):
    by_hand(emu, ETHID, "BUY", 0.5, reduce_only=False)
    (found,) = reconciled(emu, journal)
    assert (found.kind, found.symbol, found.action) == ("unknown_position", ETH,
                                                        "adopted as manual")  # fmt: skip
    assert "no stop on the venue" in found.message and "left to manage" in found.message
    assert posted(emu) == []
    assert reconciled(emu, journal) == []  # said once
    by_hand(emu, ETHID, "BUY", 0.5, reduce_only=False)  # it grew: a new difference
    (grown,) = reconciled(emu, journal)
    assert grown.kind == "unknown_position" and "of 1 @" in grown.message
    (snapshot,) = table(journal, "SELECT symbol, contracts FROM positions ORDER BY ts DESC "
                                 "LIMIT 1")  # fmt: skip
    assert snapshot == (ETH, 1.0)


def test_fills_while_offline_are_recorded_and_the_orders_journaled(emu, journal):
    order = btc_order(emu)
    cid = order.client_order_id
    trade(emu, journal, [order])
    emu.engine.tick(BTCID, order.targets[0] + 1)  # the first target fills, nobody watching
    found = reconciled(emu, journal)
    assert kinds(found) == [("order_gone", f"{cid}-tp1"), ("offline_fill", f"{cid}-tp1")]
    assert "closed at the venue, 0.005 of 0.005 filled" in found[0].message
    fills = table(journal, "SELECT client_order_id, leg, amount FROM fills ORDER BY ts")
    assert fills == [(cid, "entry", 0.02), (f"{cid}-tp1", "tp1", 0.005)]
    status = dict(table(journal, "SELECT leg, status FROM orders"))
    assert status["tp1"] == "closed" and status["sl"] == "open"
    assert reconciled(emu, journal) == []


def test_a_request_whose_answer_was_lost_is_found_and_never_sent_again(emu, journal):
    order = btc_order(emu)
    bracket = plan(order, _markets(emu)[BTC], split=None)
    req = bracket.entry.request
    kept = TradeJournal(journal, "binanceusdm")  # as trade keeps them before the entry leaves
    kept.intend(Intent.of(req, venue="binanceusdm", parent_id=order.client_order_id,
                          leg="entry", strategy="manual", ts=emu.now_ms,
                          sized=order.to_record() | {"tp_split": None}))  # fmt: skip
    emu.engine.place(symbol=BTCID, side="BUY", kind="MARKET", qty=req.amount, price=0.0,
                     tif="GTC", reduce_only=False, client_id=req.client_order_id)  # fmt: skip
    found = reconciled(emu, journal)
    # found, and as no stop was ever sent for it the position is the order's: protected now
    assert kinds(found) == [("order_found", order.client_order_id),
                            ("no_stop", order.client_order_id)]  # fmt: skip
    assert found[1].action == "sl placed, tp1 placed, tp2 placed, tp3 placed"
    assert emu.engine.book.placements[order.client_order_id] == 1
    assert reconciled(emu, journal) == []


def test_an_entry_journaled_not_placed_that_the_venue_holds_is_found_and_protected(emu, journal):
    """The adapter gave up on a request that landed later (its look-ups all came too soon):
    the journal says ``not_placed``, the venue holds the position. Not a manual position: the
    entry is found by its client id and the position gets its sized order's stop."""
    order = btc_order(emu)
    req = plan(order, _markets(emu)[BTC], split=None).entry.request
    kept = TradeJournal(journal, "binanceusdm")
    intent = Intent.of(req, venue="binanceusdm", parent_id=order.client_order_id, leg="entry",
                       strategy="manual", ts=emu.now_ms,
                       sized=order.to_record() | {"tp_split": None})  # fmt: skip
    kept.failed(req, parent_id=order.client_order_id, leg="entry", ts=emu.now_ms,
                status="not_placed", message="no such order after 3 look-ups",
                intent=intent)  # fmt: skip
    emu.engine.place(symbol=BTCID, side="BUY", kind="MARKET", qty=req.amount, price=0.0,
                     tif="GTC", reduce_only=False, client_id=req.client_order_id)  # fmt: skip
    found = reconciled(emu, journal)
    assert kinds(found) == [("order_found", order.client_order_id),
                            ("no_stop", order.client_order_id)]  # fmt: skip
    assert found[1].action.startswith("sl placed")
    status = dict(table(journal, "SELECT leg, status FROM orders"))
    assert status["entry"] == "closed" and status["sl"] == "open"
    assert reconciled(emu, journal) == []


def test_a_dry_run_lists_the_cancels_and_changes_nothing(emu, journal):
    order = btc_order(emu)
    trade(emu, journal, [order])
    by_hand(emu, BTCID, "SELL", 0.02, reduce_only=True)
    before = table(journal, "SELECT count(*) FROM events")

    async def go():
        venue = adapter(emu)
        try:
            dry = DryRunDispatch(now=await venue.now())
            journal_of = TradeJournal(journal, "binanceusdm")
            desk = TradeDesk(venue, setup=setup(journal, venue="binanceusdm"), dispatch=dry,
                             journal=journal_of)  # fmt: skip
            found = await reconcile_desk(desk)
            return found, dry.requests
        finally:
            await venue.close()

    found, requests = asyncio.run(go())
    assert kinds(found) == [("manual_close", order.client_order_id)]
    assert [r["request"] for r in requests] == ["cancel_order"] * 4
    assert len(emu.engine.book.open_conditionals(BTCID)) == 4
    assert table(journal, "SELECT count(*) FROM events") == before


# ---- the breaker's actions ---------------------------------------------------------------------
def trip(journal: Path, emu: BinanceEmulator, loss_pct: float) -> None:
    """Equity readings a minute apart losing ``loss_pct``: the journaled breaker trips."""
    risk = load_settings(env={}).risk
    for ts, equity in (
        (emu.now_ms - 60_000, 10_000.0),
        (emu.now_ms, 10_000 * (1 - loss_pct / 100)),
    ):
        apply_event(journal, Equity(ts, equity), risk, "test", account="binanceusdm")


def resting_bid(emu: BinanceEmulator, symbol: str, cid: str) -> None:
    price = emu.engine.book.prices[symbol]
    emu.engine.place(symbol=symbol, side="BUY", kind="LIMIT", qty=0.1,
                     price=math.floor(price * 0.8), tif="GTC", reduce_only=False,
                     client_id=cid)  # fmt: skip


def test_a_daily_trip_cancels_opening_orders_and_closes_positions_once(emu, journal):
    order = btc_order(emu)
    trade(emu, journal, [order])
    resting_bid(emu, ETHID, "eth-bid")
    trip(journal, emu, 3.5)
    (done,) = reconciled(emu, journal)
    assert done.kind == "breaker" and done.action == "cancel_orders, close_directional"
    assert (
        "canceled ETH/USDT:USDT eth-bid" in done.message and "BTC/USDT:USDT closed" in done.message
    )
    assert emu.account.position(BTCID).qty == 0
    assert emu.engine.book.open_orders() == [] and emu.engine.book.open_conditionals() == []
    assert reconciled(emu, journal) == []  # once per trip
    by_hand(emu, ETHID, "BUY", 0.5, reduce_only=False)  # the trader's own, during the block
    assert kinds(reconciled(emu, journal)) == [("unknown_position", None)]
    assert emu.account.position(ETHID).qty == pytest.approx(0.5)  # left alone
    again = btc_order(emu, 2)
    (refused,) = trade(emu, journal, [again])
    assert refused.status == "refused" and refused.reason.startswith("circuit_breaker")


def test_a_venue_clock_behind_the_breakers_day_still_carries_out_the_trip(emu, journal):
    """The breaker's last reading dated a day after the venue's clock (``risk equity`` on a
    machine clock past midnight, the venue's just before): the reconcile's own reading is
    refused (time only moves forward), which used to end the whole cycle with exit 1 and
    leave the trip's actions undone (a hostile pass's find). Now a WARNING says so and the
    cycle carries them out."""
    order = btc_order(emu)
    trade(emu, journal, [order])
    risk = load_settings(env={}).risk
    tomorrow = emu.now_ms + 86_400_000
    for ts, equity in ((tomorrow, 10_000.0), (tomorrow + 60_000, 9_600.0)):
        apply_event(journal, Equity(ts, equity), risk, "test", account="binanceusdm")
    (done,) = reconciled(emu, journal)
    assert done.kind == "breaker" and "BTC/USDT:USDT closed" in done.message
    assert emu.account.position(BTCID).qty == 0
    refused = table(journal, "SELECT level, message FROM events WHERE kind = 'equity_refused'")
    assert len(refused) == 1 and refused[0][0] == "WARNING" and "last reading" in refused[0][1]


def test_a_weekly_trip_flattens_everything_reduce_only_orders_included(emu, journal):
    trade(emu, journal, [btc_order(emu)])
    emu.engine.place_conditional(symbol=ETHID, side="SELL", kind="STOP_MARKET", qty=0.1,
                                 trigger=1.0, working_type="CONTRACT_PRICE", reduce_only=True,
                                 close_position=False, client_id="eth-stop")  # fmt: skip
    trip(journal, emu, 8.0)
    (done,) = reconciled(emu, journal)
    assert done.action == "cancel_orders, flatten_all" and not done.failed
    assert "canceled ETH/USDT:USDT eth-stop" in done.message
    assert emu.account.position(BTCID).qty == 0 and emu.engine.book.open_conditionals() == []
    assert reconciled(emu, journal) == []


def test_a_monthly_stop_flattens_then_refuses_all_but_reduce_only(emu, journal, tmp_path):
    trade(emu, journal, [btc_order(emu)])
    trip(journal, emu, 13.0)
    (done,) = reconciled(emu, journal)
    assert done.action == "cancel_orders, flatten_all"
    assert emu.account.position(BTCID).qty == 0
    (refused,) = trade(emu, journal, [btc_order(emu, 3)])
    assert refused.status == "refused" and "stopped" in refused.reason
    by_hand(emu, ETHID, "BUY", 0.5, reduce_only=False)
    env = emulator_env(emu, journal) | {"CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET,
                                        "CRYPTOBOT__MODE": "live"}  # fmt: skip
    closed = Cli(env)("trade", "--close", ETH, "--live", "-f", "json")  # reduce-only still goes
    assert json.loads(closed.stdout)[0]["status"] == "closed"
    assert emu.account.position(ETHID).qty == 0


# ---- the command -------------------------------------------------------------------------------
def test_the_command_reports_strict_json_and_exits_0_when_reconciled(emu, journal):
    order = btc_order(emu)
    trade(emu, journal, [order])
    by_hand(emu, BTCID, "SELL", 0.02, reduce_only=True)
    env = emulator_env(emu, journal) | {"CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET,
                                        "CRYPTOBOT__MODE": "live"}  # fmt: skip
    cli = Cli(env)
    dry = cli("trade", "--reconcile", "--live", "--dry-run", "-f", "jsonl")
    assert [json.loads(r)["request"] for r in dry.stdout.splitlines()] == ["cancel_order"] * 4
    done = cli("trade", "--reconcile", "--live", "-f", "json")
    (row,) = json.loads(done.stdout, parse_constant=_no_constant)
    assert row["kind"] == "manual_close" and row["failed"] is False
    again = cli("trade", "--reconcile", "--live", "-f", "jsonl")
    assert again.stdout == ""
    table_out = cli("trade", "--reconcile", "--live", "-f", "table")
    assert "reconciled" in table_out.stdout
    for bad in (["--reconcile", "--status"], ["--reconcile", "--close-all"],
                ["orders.jsonl", "--reconcile"]):  # fmt: skip
        wrong = cli("trade", *bad, "--live", ok=False)
        assert wrong.exit_code == 2 and "--reconcile" in wrong.stderr
    everything = dry.stdout + done.stdout + done.stderr
    assert KEY not in everything and SECRET not in everything


def _no_constant(name: str) -> float:
    raise AssertionError(f"not strict JSON: {name}")
