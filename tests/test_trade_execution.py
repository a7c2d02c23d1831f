"""``trade`` entering through the maker-first executor on the replay exchange (scripted 1m
price paths, the venue's clock driven by the executor's waits: no sleeping): the stop follows
the fills child by child, never a filled quantity without a stop one look later; the report is
in the outcome and the journal; a re-run adopts the orders and sends none again; ``--taker``
is one market order as before; a dry run shows the executor's first requests."""

import json
from pathlib import Path

import pytest

from cryptobot.core.config import load_settings
from cryptobot.core.settings import ExecutionSettings
from cryptobot.engine.trade import trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.errors import OrderStatusUnknown
from tests.test_execution import TOUCH, F, venue_of
from tests.trading import run, setup, sized, table
from tests.venues import SYMBOL

CID = "cb-000000000000000000000001"
RUNS_AWAY = [(101.0 + i, 101.5 + i, 101.0 + i, 101.5 + i) for i in range(8)]


def execution(**overrides) -> ExecutionSettings:
    base = load_settings(env={}).execution
    return base.model_copy(update={"reprice_every_s": 60, "give_up_after_s": 600} | overrides)


def order(qty: float = 1.0, **kw) -> TradeOrder:
    return TradeOrder.from_record(sized(entry=100.0, qty=qty, cid=CID, exchange="sim",
                                        target_qty=[0.25] * 3, **kw))  # fmt: skip


class Watched:
    """Around the venue's ``wait``: at each (the executor's waits come right after a look),
    the position it holds must be covered by open stops."""

    def __init__(self, venue) -> None:
        self.venue, self.looks = venue, []
        venue.wait = self.wait

    async def wait(self, seconds: float) -> None:
        held = sum(p.contracts for p in await self.venue.fetch_positions())
        stops = sum(o.amount for o in await self.venue.fetch_open_orders(SYMBOL)
                    if o.type == "stop_market")  # fmt: skip
        self.looks.append((held, stops))
        self.venue.clock.advance(round(seconds * 1000))


def desk(root: Path, **kw):
    return setup(root, execution=kw.pop("execution", execution()), **kw)


def test_the_stop_follows_the_executors_fills_child_by_child(tmp_path):
    """A book of 0.5 a side: children of 0.25, each filled as a maker in turn. After each fill
    the stop grows (-sl 0.25, -sl2 0.5, ..), the smaller one canceled; the ladder goes once
    the first stop stands. At every wait the position is covered."""
    venue = venue_of(tmp_path, [F] + [TOUCH] * 5, volume=10.0)
    watched = Watched(venue)
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(tmp_path / "data"),
                                 dry_run=False))  # fmt: skip
    assert out.status == "placed", out.reason
    assert [(leg.leg, leg.action) for leg in out.legs] == [
        ("entry", "placed"), ("e2", "placed"), ("e3", "placed"), ("e4", "placed"),
        ("sl", "placed"), ("tp1", "placed"), ("tp2", "placed"), ("tp3", "placed"),
        ("sl2", "placed"), ("sl", "canceled"), ("sl3", "placed"), ("sl2", "canceled"),
        ("sl4", "placed"), ("sl3", "canceled")]  # fmt: skip
    assert all(held <= stops + 1e-12 for held, stops in watched.looks)
    assert max(held for held, _ in watched.looks) > 0  # the waits saw fills to cover
    working = {o.client_order_id: o for o in run(venue.fetch_open_orders(SYMBOL))}
    assert working[f"{CID}-sl4"].amount == 1.0 and f"{CID}-sl" not in working
    record = out.to_json()["execution"]
    assert (record["schema"], record["mode"], record["status"]) == (
        "execution/1", "maker_first", "filled")  # fmt: skip
    assert (record["filled"], record["maker_share"], record["slippage_ticks"]) == (1.0, 1.0, -1.0)
    json.dumps(out.to_json(), allow_nan=False)
    assert max(venue.sent.values()) == 1


def test_the_report_is_journaled_with_the_order_and_its_orders_as_legs(tmp_path):
    root = tmp_path / "data"
    venue = venue_of(tmp_path, [F] + [TOUCH] * 5, volume=10.0)
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    ((cid, status, report),) = table(root, "SELECT client_order_id, status, report "
                                           "FROM executions")  # fmt: skip
    assert (cid, status) == (CID, "filled") and json.loads(report) == out.execution
    legs = table(root, "SELECT leg, type, status, filled FROM orders WHERE leg IN "
                       "('entry', 'e2', 'e3', 'e4') ORDER BY created_at, leg")  # fmt: skip
    assert legs == [(leg, "limit", "closed", 0.25) for leg in ("entry", "e2", "e3", "e4")]
    gates = table(root, "SELECT leg, gates IS NOT NULL FROM orders WHERE leg LIKE 'e%'")
    assert sorted(gates) == [("e2", False), ("e3", False), ("e4", False), ("entry", True)]
    # the sized entry kept with the first child, so the round trip has its slippage (it had
    # none on the maker-first path: a hostile pass's find)
    expected = table(root, "SELECT leg, expected_price FROM orders WHERE leg LIKE 'e%'")
    assert sorted(expected) == [("e2", None), ("e3", None), ("e4", None), ("entry", 100.0)]
    from cryptobot.journal import roundtrips
    from cryptobot.journal.query import Filters

    (trip,) = roundtrips.trades(root, Filters()).records
    assert trip["expected_price"] == 100.0 and trip["slippage_bps"] is not None


def test_a_market_that_runs_away_ends_at_market_with_the_stop_on_all_of_it(tmp_path):
    """The first child fills (0.25, stop 0.25), the price runs: at the give-up the rest goes at
    market in children; the stop ends covering the whole 1.0; the report says 25 % maker.
    (The run reaches the first two rungs, 102 and 104: they take 0.5 off.)"""
    venue = venue_of(tmp_path, [F, TOUCH, *RUNS_AWAY], volume=10.0)
    watched = Watched(venue)
    rules = execution(give_up_after_s=120)
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(tmp_path / "d", execution=rules),
                                 dry_run=False))  # fmt: skip
    assert out.status == "placed" and out.execution["maker_share"] == 0.25
    assert all(held <= stops + 1e-12 for held, stops in watched.looks)
    (stop,) = [o for o in run(venue.fetch_open_orders(SYMBOL)) if o.type == "stop_market"]
    assert stop.amount == 1.0
    (position,) = run(venue.fetch_positions())  # 1.0 less the rungs the run reached
    assert position.contracts == 0.5 and out.execution["filled"] == 1.0


def test_a_re_run_adopts_the_orders_and_sends_nothing_again(tmp_path):
    root = tmp_path / "data"
    venue = venue_of(tmp_path, [F] + [TOUCH] * 5, volume=10.0)
    run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    sent = sum(venue.sent.values())
    (again,), _ = run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    assert again.status == "already_placed" and sum(venue.sent.values()) == sent
    assert [(leg.leg, leg.action) for leg in again.legs][:4] == [
        ("entry", "kept"), ("e2", "kept"), ("e3", "kept"), ("e4", "kept")]  # fmt: skip
    assert ("sl4", "kept") in [(leg.leg, leg.action) for leg in again.legs]


def died_at_third_wait(tmp_path: Path, root: Path):
    """A venue on which a first run died at its third wait (two children placed, one filled,
    the stop on it), its ``wait`` back to the venue's own for the next run."""
    venue = venue_of(tmp_path, [F] + [TOUCH] * 5, volume=10.0)
    waits = 0

    async def dies(seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 3:
            raise KeyboardInterrupt  # as abrupt as it gets inside one process
        venue.clock.advance(round(seconds * 1000))

    venue.wait = dies
    with pytest.raises(KeyboardInterrupt):
        run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    del venue.wait
    return venue


def test_a_run_that_died_mid_execution_is_gone_on_with_by_the_next(tmp_path):
    """The first run dies at its third wait (two children placed, one filled, the stop on it);
    the re-run adopts both by their ids, finishes the entry and grows the stop: every id was
    sent once and the report covers all four children."""
    root = tmp_path / "data"
    venue = died_at_third_wait(tmp_path, root)
    assert table(root, "SELECT count(*) FROM executions") == [(0,)]
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    assert out.status == "already_placed" and out.execution["status"] == "filled"
    assert [o["client_order_id"] for o in out.execution["orders"]] == [
        CID, f"{CID}-e2", f"{CID}-e3", f"{CID}-e4"]  # fmt: skip
    assert max(venue.sent.values()) == 1 and venue.sent[CID] == 1
    (stop,) = [o for o in run(venue.fetch_open_orders(SYMBOL)) if o.type == "stop_market"]
    assert stop.amount == 1.0


def test_a_tripped_breaker_stops_a_died_execution_from_going_on(tmp_path):
    """As above, but the breaker trips between the runs: the re-run adopts the children,
    cancels the one working, sends no further child (they open as much as a new entry) and
    keeps the stop on what filled (a hostile pass's find: -e2 and -e3 were sent, blocked)."""
    from cryptobot.journal import breakers as journal
    from cryptobot.risk.breakers import BreakerState, Mode

    root = tmp_path / "data"
    venue = died_at_third_wait(tmp_path, root)
    before = dict(venue.sent)
    now = run(venue.now())
    blocked = BreakerState(mode=Mode.blocked, tripped_by="daily", reason="daily loss 3.1%",
                           since=now, until=now + 24 * 3_600_000)  # fmt: skip
    change = journal.Update(BreakerState().to_record(), blocked.to_record(), now, "test", [])
    journal.save_state(root, change, account=desk(root).venue)
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    assert out.status == "already_placed" and "not gone on with: circuit_breaker" in out.reason
    assert out.execution["status"] == "partial"  # journaled: a later run only looks
    entries = [cid for cid in venue.sent if cid == CID or cid.startswith(f"{CID}-e")]
    assert entries == [cid for cid in before if cid == CID or cid.startswith(f"{CID}-e")]
    working = run(venue.fetch_open_orders(SYMBOL))
    assert not [o for o in working if o.type == "limit" and not o.reduce_only]
    held = sum(p.contracts for p in run(venue.fetch_positions()))
    stops = sum(o.amount for o in working if o.type == "stop_market")
    assert held > 0 and stops >= held
    # the breaker released, the same record again: the ended execution is not taken up (at
    # market, past its give-up time, for an old signal: a review's find)
    reset = journal.Update(blocked.to_record(), BreakerState().to_record(), now, "reset", [])
    journal.save_state(root, reset, account=desk(root).venue)
    sent = dict(venue.sent)
    (later,), _ = run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    assert later.status == "already_placed" and venue.sent == sent


def test_taker_is_one_market_entry_as_before(tmp_path):
    venue = venue_of(tmp_path, [F, TOUCH, F])
    (out,), _ = run(trade_orders(venue, [order()], setup=setup(tmp_path / "d"), dry_run=False))
    assert [(leg.leg, leg.type, leg.action) for leg in out.legs][:2] == [
        ("entry", "market", "placed"), ("sl", "stop_market", "placed")]  # fmt: skip
    assert out.execution is None


def test_a_dry_run_shows_the_executors_first_requests_and_sends_nothing(tmp_path):
    venue = venue_of(tmp_path, [F, TOUCH], volume=10.0)
    root = tmp_path / "data"
    root.mkdir()
    _, requests = run(trade_orders(venue, [order()], setup=desk(root), dry_run=True))
    assert [(r["request"], r.get("leg")) for r in requests] == [
        ("set_margin_mode", None), ("set_leverage", None), ("create_order", "entry"),
        ("create_order", "sl"), ("create_order", "tp1"), ("create_order", "tp2"),
        ("create_order", "tp3")]  # fmt: skip
    first = requests[2]
    assert (first["type"], first["post_only"], first["price"], first["amount"]) == (
        "limit", True, 99.9, 0.25)  # fmt: skip
    assert requests[3]["amount"] == 0.25  # the stop for what that child may fill
    assert not venue.sent and not (root / "cryptobot.duckdb").exists()
    assert run(venue.now()) == venue.clock.now_ms  # the dry run moved no clock either


def test_the_stop_the_venue_refuses_mid_execution_closes_what_filled(tmp_path):
    """The first child fills; the venue refuses every stop: the working child is canceled,
    the 0.25 held is closed at market and a CRITICAL event is journaled; nothing more is
    bought."""
    root = tmp_path / "data"
    venue = venue_of(tmp_path, [F] + [TOUCH] * 5, volume=10.0)
    create = venue.create_order

    async def no_stops(**kw):
        if kw["type"] == "stop_market":
            from cryptobot.exchange.errors import InvalidOrder

            raise InvalidOrder("stops are off today")
        return await create(**kw)

    venue.create_order = no_stops
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(root), dry_run=False))
    assert out.status == "closed_no_stop" and "stops are off today" in out.reason
    assert not [o for o in run(venue.fetch_open_orders(SYMBOL)) if not o.reduce_only]
    (close,) = [leg for leg in out.legs if leg.leg == "close"]
    assert (close.type, close.amount, close.action) == ("market", 0.25, "placed")
    venue.clock.advance(2 * 60_000)  # the close fills at the next bar's open
    assert run(venue.fetch_positions()) == []
    assert table(root, "SELECT level, kind FROM events WHERE level = 'CRITICAL'") == [
        ("CRITICAL", "no_stop")]  # fmt: skip
    assert venue.sent[f"{CID}-e3"] == 0  # nothing bought after the stop failed


def test_an_entry_whose_outcome_is_unknown_still_gets_a_stop_for_what_is_held(tmp_path):
    """The first order's answer is lost and it cannot be looked up (the executor stops:
    ``unknown``), yet it filled: the position it opened gets its stop all the same."""
    venue = venue_of(tmp_path, [F, TOUCH, F])
    create = venue.create_order

    async def lost(**kw):
        assert not kw["client_order_id"].startswith(f"{CID}-e")  # no second entry order
        placed = await create(**kw)
        if kw["client_order_id"] == CID:
            venue.clock.advance(2 * 60_000)  # it fills at the next bar; the answer is lost
            raise OrderStatusUnknown("the answer was lost: reconcile")
        return placed

    venue.create_order = lost
    rules = execution(maker_first=False)  # the first order is at market
    (out,), _ = run(trade_orders(venue, [order()], setup=desk(tmp_path / "d", execution=rules),
                                 dry_run=False))  # fmt: skip
    assert out.status == "unknown" and out.execution["status"] == "unknown"
    (stop,) = [o for o in run(venue.fetch_open_orders(SYMBOL)) if o.type == "stop_market"]
    assert stop.amount == 1.0 and stop.client_order_id == f"{CID}-sl"
