"""``trade``'s desk on the simulated venues (the replay exchange and the paper broker on a lake
of hourly bars in a tmp dir): the bracket on the venue and in the journal, idempotency across
runs and restarts, protection grown and repaired, the CRITICAL close when no stop can be placed,
and the circuit breaker blocking every opening order."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.engine.reconcile import reconcile
from cryptobot.engine.trade import close_positions, trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.replay import ReplayClock
from cryptobot.journal import breakers as breaker_journal
from cryptobot.risk.breakers import BreakerState, Mode, limits_key
from tests.trading import (
    last_close,
    paper_venue,
    replay_venue,
    run,
    setup,
    sized,
    table,
    walk_lake,
)
from tests.venues import HOUR, SYMBOL, T0, hourly, lake_of

NOW = T0 + 48 * HOUR
Y = "Y/USDT:USDT"
CID2 = "cb-000000000000000000000002"


@pytest.fixture
def lake(tmp_path: Path):
    return walk_lake(tmp_path / "lake", symbols=(SYMBOL, Y))


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def order_at(lake, now: int = NOW, **kw) -> TradeOrder:
    entry = last_close(lake, now, kw.get("symbol", SYMBOL))
    return TradeOrder.from_record(sized(entry=entry, **kw))


def test_the_bracket_goes_to_the_venue_with_its_ids_and_the_journal_matches(lake, journal):
    venue = replay_venue(lake, NOW)
    order = order_at(lake)
    outcomes, requests = run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    (out,) = outcomes
    assert out.status == "placed" and requests == []
    cid = order.client_order_id
    assert [(leg.leg, leg.action) for leg in out.legs] == [
        ("entry", "placed"), ("sl", "placed"), ("tp1", "placed"), ("tp2", "placed"),
        ("tp3", "placed")]  # fmt: skip
    working = {o.client_order_id: o for o in run(venue.fetch_open_orders())}
    assert set(working) == {cid, f"{cid}-sl", f"{cid}-tp1", f"{cid}-tp2", f"{cid}-tp3"}
    entry, stop = working[cid], working[f"{cid}-sl"]
    assert (entry.type, entry.side, entry.amount) == ("market", "buy", 2.0)
    assert (stop.type, stop.side, stop.amount) == ("stop_market", "sell", 2.0)
    assert stop.reduce_only and not entry.reduce_only
    assert stop.trigger_price == pytest.approx(order.stop)
    for n, price in enumerate(order.targets, start=1):
        tp = working[f"{cid}-tp{n}"]
        assert (tp.type, tp.side, tp.amount, tp.reduce_only) == ("take_profit", "sell", 0.5, True)
        assert tp.price == pytest.approx(price)
    rows = table(journal, "SELECT client_order_id, leg, status, amount, venue FROM orders "
                          "ORDER BY created_at, client_order_id")  # fmt: skip
    assert {r[0]: (r[1], r[2], r[3]) for r in rows} == {
        o.client_order_id: (leg, "open", o.amount)
        for leg, o in zip(["entry", "sl", "tp1", "tp2", "tp3"],
                          [working[cid], stop, *(working[f"{cid}-tp{n}"] for n in (1, 2, 3))],
                          strict=True)
    }  # fmt: skip
    assert {r[4] for r in rows} == {"replay:sim"}
    actions = table(journal, "SELECT action, outcome FROM order_requests ORDER BY id")
    assert actions == [("set_margin_mode", "ok"), ("set_leverage", "ok"),
                       *[("create", "sent"), ("create", "open")] * 5]  # fmt: skip


def test_running_twice_places_nothing_the_second_time_and_says_so(lake, journal):
    venue = replay_venue(lake, NOW)
    orders = [order_at(lake), order_at(lake, symbol=Y, cid=CID2)]
    first, _ = run(trade_orders(venue, orders, setup=setup(journal), dry_run=False))
    assert [o.status for o in first] == ["placed", "placed"]
    placed = table(journal, "SELECT count(*) FROM order_requests WHERE outcome = 'sent'")
    again, _ = run(trade_orders(venue, orders, setup=setup(journal), dry_run=False))
    assert [o.status for o in again] == ["already_placed", "already_placed"]
    assert all("nothing sent again" in o.reason for o in again)
    assert {leg.action for o in again for leg in o.legs} == {"kept"}
    assert table(journal, "SELECT count(*) FROM order_requests WHERE outcome = 'sent'") == placed
    skipped = table(journal, "SELECT level, client_order_id FROM events ORDER BY id")
    assert skipped == [("INFO", o.client_order_id) for o in orders]
    assert len(run(venue.fetch_open_orders())) == 10


@pytest.mark.slow
def test_paper_survives_a_restart_fills_the_entry_and_keeps_its_stop(lake, journal):
    clock = ReplayClock(NOW)
    order = order_at(lake)
    paper = setup(journal, venue="paper:paper")
    first, _ = run(trade_orders(paper_venue(lake, journal, clock), [order], setup=paper,
                                dry_run=False))  # fmt: skip
    assert first[0].status == "placed"
    clock.move_to(NOW + 2 * HOUR)  # the entry fills at the next bar's open
    broker = paper_venue(lake, journal, clock)  # a new process: the account from the journal
    (position,) = run(broker.fetch_positions())
    assert position.contracts == 2.0 and position.side == "long"
    again, _ = run(trade_orders(broker, [order], setup=paper, dry_run=False))
    assert again[0].status == "already_placed"
    assert [(leg.leg, leg.action, leg.status) for leg in again[0].legs] == [
        ("entry", "kept", "closed"), ("sl", "kept", "open"), ("tp1", "kept", "open"),
        ("tp2", "kept", "open"), ("tp3", "kept", "open")]  # fmt: skip
    stops = [o for o in run(broker.fetch_open_orders()) if o.type == "stop_market"]
    assert [(s.client_order_id, s.amount) for s in stops] == [(f"{order.client_order_id}-sl", 2.0)]
    fills = table(journal, "SELECT client_order_id, leg, amount FROM fills")
    assert fills == [(order.client_order_id, "entry", 2.0)]
    snapshot = table(journal, "SELECT symbol, side, contracts FROM positions ORDER BY ts DESC")
    assert snapshot[0] == (SYMBOL, "long", 2.0)


def test_a_missing_stop_is_placed_again_and_one_the_venue_refuses_closes_the_position(
    tmp_path, journal
):
    """Flat at 100, then a slide to 96 through the stop at 98 while the stop is missing (a
    trader canceled it by hand): the next run cannot place a stop above the price, so it
    closes the position with a reduce-only market order and journals a CRITICAL event."""
    rows = [(100.0, 100.3, 99.7, 100.0)] * 30 + [
        (100.0, 100.2, 99.0, 99.2),
        (99.2, 99.3, 97.5, 97.8),
    ]
    rows += [(97.8, 98.0, 96.0, 96.5)] * 10
    lake = lake_of(tmp_path / "lake", hourly(rows))
    venue = replay_venue(lake, T0 + 20 * HOUR)
    order = TradeOrder.from_record(sized(entry=100.0, stop_pct=2.0))
    cid = order.client_order_id
    run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    venue.clock.move_to(T0 + 22 * HOUR)
    run(venue.cancel_order(f"{cid}-sl"))  # by hand
    again, _ = run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    assert again[0].status == "already_placed"  # its start-up reconcile placed the stop
    assert (f"{cid}-sl2", "kept") in [(leg.client_order_id, leg.action) for leg in again[0].legs]
    run(venue.cancel_order(f"{cid}-sl2"))  # by hand again, then the slide
    venue.clock.move_to(T0 + 34 * HOUR)
    (gone, out), _ = run(reconcile(venue, setup=setup(journal), dry_run=False))
    assert (gone.kind, gone.client_order_id) == ("order_gone", f"{cid}-sl2")
    assert run(reconcile(venue, setup=setup(journal), dry_run=False)) == ([], [])  # its close
    # works (the replay exchange fills it at the next open): no second close is sent
    assert out.kind == "no_stop" and out.failed and "would trigger at once" in out.message
    assert "closed by a reduce-only market order" in out.message
    assert "close placed" in out.action
    close = table(journal, f"SELECT type, amount FROM orders WHERE client_order_id = '{cid}-close'")
    assert close == [("market", 2.0)]
    venue.clock.move_to(T0 + 36 * HOUR)
    assert run(venue.fetch_positions()) == []  # the close filled at the next open
    assert run(venue.fetch_open_orders()) == []  # the targets went with the position
    (event,) = table(journal, "SELECT level, kind, symbol, client_order_id, message FROM events "
                              "WHERE level = 'CRITICAL' AND data LIKE '%stop_error%'")  # fmt: skip
    assert event[:4] == ("CRITICAL", "no_stop", SYMBOL, cid) and "would trigger" in event[4]


def test_an_entry_whose_stop_is_refused_before_it_fills_is_canceled(lake, journal):
    """On a venue that fills the entry at the next bar, a stop it refuses means the entry is
    canceled before it can fill: nothing is ever held unprotected."""
    venue = replay_venue(lake, NOW)
    last = last_close(lake, NOW)  # the price fell under the stop after the order was sized
    order = TradeOrder.from_record(sized(entry=round(last * 1.008, 1), stop_pct=0.4))
    assert order.stop > last
    outcomes, _ = run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    assert outcomes[0].status == "closed_no_stop" and "entry was canceled" in outcomes[0].reason
    venue.clock.move_to(NOW + 3 * HOUR)
    assert run(venue.fetch_positions()) == [] and run(venue.fetch_open_orders()) == []


def test_a_dry_run_sends_nothing_stores_nothing_and_shows_what_a_run_sends(lake, journal):
    venue = replay_venue(lake, NOW)
    orders = [order_at(lake), order_at(lake, symbol=Y, cid=CID2, side="short")]
    outcomes, requests = run(trade_orders(venue, orders, setup=setup(journal), dry_run=True))
    assert [o.status for o in outcomes] == ["placed", "placed"]
    assert run(venue.fetch_open_orders()) == [] and not (journal / "cryptobot.duckdb").exists()
    run(trade_orders(venue, orders, setup=setup(journal), dry_run=False))
    sent = table(journal, "SELECT action, client_order_id, symbol, request FROM order_requests "
                          "WHERE outcome IN ('sent', 'ok') ORDER BY id")  # fmt: skip
    import json

    shown = []
    for r in requests:
        if r["request"] == "create_order":
            detail = {k: r[k] for k in ("type", "side", "amount", "price", "trigger_price",
                                        "reduce_only", "post_only")}  # fmt: skip
            shown.append(("create", r["client_order_id"], r["symbol"], detail))
        else:
            shown.append((r["request"], None, r["symbol"], {"value": r["value"]}))
    assert shown == [(a, c, s, json.loads(d)) for a, c, s, d in sent]


def test_a_closed_position_gets_no_protection_again(lake, journal):
    venue = replay_venue(lake, NOW)
    order = order_at(lake)
    run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    venue.clock.move_to(NOW + 2 * HOUR)
    closed, _ = run(close_positions(venue, [SYMBOL], setup=setup(journal), dry_run=False))
    assert closed[0].status == "closed"
    assert closed[0].legs[0].action == "placed"
    assert all(leg.action == "canceled" for leg in closed[0].legs[1:])
    venue.clock.move_to(NOW + 4 * HOUR)
    assert run(venue.fetch_positions()) == [] and run(venue.fetch_open_orders()) == []
    again, _ = run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    assert again[0].status == "already_placed" and "the position is closed" in again[0].reason
    assert run(venue.fetch_open_orders()) == []


# ---- the circuit breaker ----------------------------------------------------------------------
TRIPPED = st.sampled_from([Mode.reducing, Mode.blocked, Mode.halted, Mode.stopped])
ORDER = st.tuples(
    st.sampled_from([SYMBOL, Y]),
    st.sampled_from(["long", "short"]),
    st.integers(1, 40),  # tenths of a unit
    st.floats(0.5, 5.0),  # the stop's distance, % of the entry
)
ORDERS = st.lists(ORDER, min_size=1, max_size=4)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@pytest.mark.slow
@given(mode=TRIPPED, specs=ORDERS)
def test_no_opening_order_passes_a_tripped_breaker(lake, tmp_path_factory, mode, specs):
    root = tmp_path_factory.mktemp("journal")
    risk = load_settings(env={}).risk
    state = BreakerState(mode=mode, tripped_by="weekly", reason="tripped for the test",
                         since=T0, until=NOW + 48 * HOUR,
                         config_key=limits_key(risk.breakers))  # fmt: skip
    trip(root, state, ts=T0)
    venue = replay_venue(lake, NOW)
    orders = [
        order_at(lake, symbol=symbol, side=side, qty=steps / 10, stop_pct=stop,
                 cid=f"cb-{n:024d}")
        for n, (symbol, side, steps, stop) in enumerate(specs)
    ]  # fmt: skip
    outcomes, _ = run(trade_orders(venue, orders, setup=setup(root), dry_run=False))
    assert all(o.status == "refused" and o.reason.startswith("circuit_breaker") for o in outcomes)
    assert run(venue.fetch_open_orders()) == []
    sent = table(root, "SELECT count(*) FROM order_requests")
    assert sent == [(0,)]
    reasons = table(root, "SELECT status, reason FROM orders")
    assert len(reasons) == len({o.client_order_id for o in orders})
    assert all(s == "refused" and r.startswith("circuit_breaker") for s, r in reasons)


def trip(root: Path, state: BreakerState, *, ts: int) -> None:
    """The journaled breaker, tripped as ``state`` says."""
    change = breaker_journal.Update(before=BreakerState().to_record(), after=state.to_record(),
                                    ts=ts, event="test", actions=[])  # fmt: skip
    breaker_journal.save_state(root, change, account=setup(root).venue)


def test_a_tripped_breaker_still_lets_a_close_through(lake, journal):
    venue = replay_venue(lake, NOW)
    run(trade_orders(venue, [order_at(lake)], setup=setup(journal), dry_run=False))
    venue.clock.move_to(NOW + 2 * HOUR)
    halted = BreakerState(mode=Mode.halted, tripped_by="weekly", reason="weekly loss", since=NOW)
    trip(journal, halted, ts=NOW)
    (out,), _ = run(close_positions(venue, None, setup=setup(journal), dry_run=False))
    assert out.status == "closed" and out.legs[0].type == "market"
    venue.clock.move_to(NOW + 4 * HOUR)
    assert run(venue.fetch_positions()) == []


def test_orders_no_venue_could_take_are_refused_and_journaled(lake, journal):
    venue = replay_venue(lake, NOW)
    base = sized(entry=last_close(lake, NOW))
    records = {
        "cb-000000000000000000000010": base | {"stop": None},
        "cb-000000000000000000000011": base | {"exchange": "binanceusdm"},
        "cb-000000000000000000000012": base | {"symbol": "Z/USDT:USDT"},
        "cb-000000000000000000000013": base | {"qty": 0.0004, "target_qty": [0.0, 0.0, 0.0]},
    }
    orders = [TradeOrder.from_record(r | {"client_order_id": c}) for c, r in records.items()]
    outcomes, _ = run(trade_orders(venue, orders, setup=setup(journal), dry_run=False))
    assert [o.status for o in outcomes] == ["refused"] * 4
    assert [o.reason[:30] for o in outcomes] == [
        "it has no stop: trade sends on", "sized for binanceusdm's market",
        "the venue lists no market Z/US", "qty 0.0004 is below one step ("]  # fmt: skip
    rows = dict(table(journal, "SELECT client_order_id, status FROM orders"))
    assert rows == dict.fromkeys(records, "refused")
    assert run(venue.fetch_open_orders()) == []


@pytest.mark.parametrize("paper", [False, True], ids=["replay", "paper"])
def test_a_second_close_keeps_the_working_close_and_a_lost_one_is_sent_again(lake, journal, paper):
    """A market close rests until the next bar on a simulated venue. A second ``--close``
    used to cancel that close (and the stop reconcile put back), leaving the position open
    and unprotected for good (a hostile pass's find)."""
    clock = ReplayClock(NOW)
    venue = paper_venue(lake, journal, clock) if paper else replay_venue(lake, NOW)
    clock = clock if paper else venue.clock
    desk = setup(journal, venue="paper:paper") if paper else setup(journal)
    run(trade_orders(venue, [order_at(lake)], setup=desk, dry_run=False))
    clock.move_to(NOW + 2 * HOUR)
    (first,), _ = run(close_positions(venue, None, setup=desk, dry_run=False))
    assert first.status == "closed"
    (again,), _ = run(close_positions(venue, None, setup=desk, dry_run=False))
    assert again.status == "already_placed" and "working" in again.reason
    assert again.client_order_id == first.client_order_id and again.legs == []
    working = [o.client_order_id for o in run(venue.fetch_open_orders())]
    assert working == [first.client_order_id]  # the close, still working
    run(venue.cancel_order(first.client_order_id))  # gone (by hand) while the position stands
    (third,), _ = run(close_positions(venue, None, setup=desk, dry_run=False))
    assert third.status == "closed" and third.client_order_id == f"{first.client_order_id}-2"
    assert third.legs[0].amount == 2.0
    # that one canceled too and a close of half the position put in its place by hand: the
    # next --close sends the rest as the next version (a working close that falls short)
    run(venue.cancel_order(third.client_order_id))
    by_hand = f"{first.client_order_id}-3"
    run(venue.create_order(symbol=SYMBOL, type="market", side="sell", amount=1.0,
                           reduce_only=True, client_order_id=by_hand))  # fmt: skip
    (fourth,), _ = run(close_positions(venue, None, setup=desk, dry_run=False))
    assert fourth.status == "closed" and fourth.client_order_id == f"{first.client_order_id}-4"
    assert fourth.legs[0].amount == 1.0
    clock.move_to(NOW + 4 * HOUR)
    assert run(venue.fetch_positions()) == []


def test_a_client_id_reused_for_another_trade_is_refused_not_reported_as_held(lake, journal):
    """The same id with the other side, or other levels: refused with what was sent, nothing
    sent or checked (its protection would follow the new record's stop and targets). The same
    order sized again (another quantity) is the one sent: already placed, as before."""
    venue = replay_venue(lake, NOW)
    order = order_at(lake)
    run(trade_orders(venue, [order], setup=setup(journal), dry_run=False))
    sent = {o.client_order_id for o in run(venue.fetch_open_orders())}
    flipped = TradeOrder.from_record(
        order.to_record() | {"side": "short", "stop": order.entry * 1.02,
                             "targets": [order.entry * (1 - k / 100) for k in (1, 2, 3)]}
    )  # fmt: skip
    (out,), _ = run(trade_orders(venue, [flipped], setup=setup(journal), dry_run=False))
    assert out.status == "refused" and out.legs == []
    assert "was sent before for another order (side long" in out.reason
    assert {o.client_order_id for o in run(venue.fetch_open_orders())} == sent
    events = table(journal, "SELECT level, kind FROM events WHERE kind = 'client_id_reused'")
    assert events == [("WARNING", "client_id_reused")]
    half = {"qty": order.qty / 2, "target_qty": [q / 2 for q in order.target_qty or ()] or None}
    resized = TradeOrder.from_record(order.to_record() | half)
    (again,), _ = run(trade_orders(venue, [resized], setup=setup(journal), dry_run=False))
    assert again.status == "already_placed"
