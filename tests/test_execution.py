"""The maker-first executor on the simulated venues, with scripted 1m price paths: a fill as a
maker at the best bid, a reprice in place, a market that runs away (the rest at market after
the give-up), cancel-and-new on a venue without amend, child orders split by the book's size
(never below the market's minimum, never leaving dust), a fill racing the cancel, a crash and
the re-run that finds what was placed, hostile requests, and hypothesis over random paths:
never more filled than asked, never an id placed twice, every report strict JSON."""

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.errors import UnknownSymbolError
from cryptobot.core.execution import ExecutionReport, ExecutionRequest
from cryptobot.core.market import BestBidAsk
from cryptobot.core.settings import ExecutionRules
from cryptobot.engine.execution import execute
from cryptobot.engine.execution_plan import child_qty, entry_order_id, maker_price
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import Bar, SimSetup
from cryptobot.fills.costs import Costs
from cryptobot.risk.orders import leg_of_order
from tests.venues import SYMBOL, T0, lake_of, market

MIN = 60_000
F = (100.0, 100.0, 100.0, 100.0)
TOUCH = (100.0, 100.2, 99.8, 100.0)  # reaches the 99.9 bid


def minutely(rows: list[tuple[float, ...]], volume: float = 1000.0) -> pd.DataFrame:
    o, h, lo, c = zip(*rows, strict=True)
    return pd.DataFrame(
        {"timestamp": T0 + MIN * np.arange(len(rows)), "open": o, "high": h, "low": lo,
         "close": c, "volume": volume}
    )  # fmt: skip


class Counted(ReplayExchange):
    """The replay exchange, counting the create requests each client id was sent in and the
    ones it accepted."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: Counter[str] = Counter()
        self.placed: Counter[str] = Counter()

    async def create_order(self, **kwargs):
        self.sent[kwargs["client_order_id"]] += 1
        order = await super().create_order(**kwargs)
        self.placed[order.client_order_id] += 1
        return order


def venue_of(root: Path, rows, *, volume: float = 1000.0, **setup) -> Counted:
    markets = [market(SYMBOL, **setup.pop("market", {}))]
    lake = lake_of(root, minutely(rows, volume), markets=markets, timeframe="1m")
    setup = {"costs": Costs(), "spread_ticks": 1} | setup
    return Counted(lake, "sim", ReplayClock(T0 + MIN), setup=SimSetup(**setup))


def rules(**overrides) -> ExecutionRules:
    base = dict(maker_first=True, reprice_every_s=60, reprice_ticks=1, give_up_after_s=120,
                max_book_impact_pct=50)  # fmt: skip
    return ExecutionRules(**(base | overrides))


def request(qty: float = 1.0, side: str = "buy", **kw) -> ExecutionRequest:
    fields = dict(symbol=SYMBOL, side=side, qty=qty, client_order_id="cb-abc",
                  expected_price=100.0) | kw  # fmt: skip
    return ExecutionRequest(**fields)


def execute_on(venue, req: ExecutionRequest, how: ExecutionRules, **kw) -> ExecutionReport:
    """The executor with the replay clock as its sleep; the report must be strict JSON."""

    async def sleep(seconds: float) -> None:
        venue.clock.advance(round(seconds * 1000))

    report = asyncio.run(execute(venue, request=req, rules=how, sleep=sleep, **kw))
    json.dumps(report.to_record(), allow_nan=False)
    return report


def ids(report: ExecutionReport) -> list[tuple[str, str, str, float | None, float]]:
    return [(o.client_order_id, o.type, o.status, o.price, o.filled) for o in report.orders]


# ---- the decisions --------------------------------------------------------------------------
def test_entry_ids_are_the_sized_orders_then_numbered_legs_within_36_characters():
    base = "cb-" + "a" * 24
    assert [entry_order_id(base, n) for n in (1, 2, 10)] == [base, f"{base}-e2", f"{base}-e10"]
    assert {leg_of_order(entry_order_id(base, n)) for n in (1, 2, 10)} == {base}
    assert leg_of_order(f"{base}-sl2") == f"{base}-sl"
    long = "x" * 33
    assert entry_order_id(long, 9) == f"{long}-e9" and entry_order_id(long, 10) is None


@pytest.mark.parametrize(
    ("side", "bid", "ask", "previous", "expected"),
    [("buy", 99.9, 100.1, None, 99.9), ("buy", 99.9, 100.1, 99.9, 100.0),
     ("buy", 99.9, 100.1, 100.0, 100.0), ("buy", 101.0, 101.2, 99.9, 101.0),
     ("buy", 99.0, 99.5, 99.9, 99.4), ("sell", 99.9, 100.1, None, 100.1),
     ("sell", 99.9, 100.1, 100.1, 100.0), ("sell", 98.0, 98.2, 100.1, 98.2)],
)  # fmt: skip
def test_a_maker_price_joins_the_best_steps_toward_the_market_and_never_takes(
    side, bid, ask, previous, expected
):
    quote = BestBidAsk(SYMBOL, bid, ask, 1.0, 1.0, 0)
    got = maker_price(side=side, quote=quote, tick=0.1, previous=previous, ticks=1)
    assert got == expected


@pytest.mark.parametrize(
    ("bid", "ask", "usable"),
    [(99.9, 100.1, True), (100.0, 100.0, False), (100.2, 100.1, False), (None, 100.1, False),
     (math.nan, 100.1, False), (99.9, math.inf, False), (0.0, 0.1, False), (-1.0, 1.0, False)],
)  # fmt: skip
def test_only_a_two_sided_uncrossed_finite_book_is_a_quote(bid, ask, usable):
    quote = BestBidAsk(SYMBOL, bid, ask, math.nan, -3.0, 0)
    assert quote.usable is usable
    assert quote.size_against("buy") is None and quote.size_against("sell") is None


def test_a_child_is_capped_by_the_book_but_never_below_the_minimum_nor_leaving_dust():
    spec = market(min_notional=30.0)  # 30 USDT at 99.9: at least 0.301
    sizes, left = [], 1.0
    while (qty := child_qty(remaining=left, market=spec, price=99.9, shown=0.5,
                            max_impact_pct=50)) is not None:  # fmt: skip
        sizes.append(qty)
        left = round(left - qty, 9)
    assert sizes == [0.301, 0.301, 0.398] and left == 0
    assert child_qty(remaining=0.2, market=spec, price=99.9, shown=None, max_impact_pct=50) is None
    assert child_qty(remaining=2.0, market=market(), price=100, shown=None, max_impact_pct=1) == 2


# ---- scripted paths on the replay exchange ------------------------------------------------
def test_it_fills_as_a_maker_at_the_best_bid(tmp_path):
    """Close 100: the bid is 99.9 (one tick); bar 1 touches it: filled there as a maker, 10 bps
    (one tick) better than expected, the maker fee, one order under the sized order's id."""
    venue = venue_of(tmp_path, [F, TOUCH, F])
    report = execute_on(venue, request(), rules())
    record = report.to_record()
    assert ids(report) == [("cb-abc", "limit", "closed", 99.9, 1.0)]
    assert (record["status"], record["filled"], record["average_price"]) == ("filled", 1.0, 99.9)
    assert (record["slippage_bps"], record["slippage_ticks"]) == (-10.0, -1.0)
    assert (record["maker_share"], record["reprices"]) == (1.0, 0)
    assert record["fees"] == pytest.approx(99.9 * 0.0002)
    assert record["started"] == "2025-01-01T00:01:00Z" and record["mode"] == "maker_first"


def test_a_resting_order_is_repriced_one_tick_toward_the_market_in_place(tmp_path):
    """Bar 1 does not reach 99.9: after 60 s the order moves to 100.0 (the ask less a tick),
    the same order; bar 2 reaches it."""
    venue = venue_of(tmp_path, [F, F, (100.0, 100.1, 99.95, 100.0), F])
    report = execute_on(venue, request(), rules())
    assert ids(report) == [("cb-abc", "limit", "closed", 100.0, 1.0)]
    assert (report.reprices, report.to_record()["slippage_bps"]) == (1, 0.0)


def test_a_market_that_runs_away_is_followed_then_the_rest_goes_at_market(tmp_path):
    """The price climbs: the bid follows to 100.9 (the new best bid), nothing fills, at 120 s
    the order is canceled and a market order under the next id fills at bar 3's open 102.2:
    all taker, 220 bps (22 ticks) worse than expected."""
    rows = [F, (100.5, 101, 100.5, 101), (101, 102, 101, 102), (102.2, 103, 102.2, 103), F]
    report = execute_on(venue_of(tmp_path, rows), request(), rules())
    assert ids(report) == [("cb-abc", "limit", "canceled", 100.9, 0.0),
                           ("cb-abc-e2", "market", "closed", None, 1.0)]  # fmt: skip
    record = report.to_record()
    assert (record["taker_qty"], record["maker_share"], record["reprices"]) == (1.0, 0.0, 1)
    assert (record["slippage_bps"], record["slippage_ticks"]) == (220.0, 22.0)


@pytest.mark.parametrize("how", ["taker", "maker_first off"])
def test_taker_sends_one_market_order_under_the_sized_orders_id(tmp_path, how):
    venue = venue_of(tmp_path, [F, TOUCH, F])
    if how == "taker":
        report = execute_on(venue, request(), rules(), taker=True)
    else:
        report = execute_on(venue, request(), rules(maker_first=False))
    assert ids(report) == [("cb-abc", "market", "closed", None, 1.0)]
    assert report.mode == "taker" and report.to_record()["taker_qty"] == 1.0


def test_a_venue_without_amend_cancels_and_places_the_next_id(tmp_path):
    venue = venue_of(tmp_path, [F, F, (100.0, 100.1, 99.95, 100.0), F])
    venue.amends_in_place = False
    report = execute_on(venue, request(), rules())
    assert ids(report) == [("cb-abc", "limit", "canceled", 99.9, 0.0),
                           ("cb-abc-e2", "limit", "closed", 100.0, 1.0)]  # fmt: skip
    assert report.reprices == 1 and venue.placed == Counter({"cb-abc": 1, "cb-abc-e2": 1})


def test_an_order_bigger_than_the_book_is_split_into_children(tmp_path):
    """Each bar's volume is 10: the book shows 0.5 (5 %) a side, half of it is 0.25 per child.
    One child at a time, each filled as a maker before the next goes."""
    venue = venue_of(tmp_path, [F] + [TOUCH] * 5, volume=10.0)
    report = execute_on(venue, request(), rules(give_up_after_s=600))
    assert [(o.client_order_id, o.amount, o.status) for o in report.orders] == [
        ("cb-abc", 0.25, "closed"), ("cb-abc-e2", 0.25, "closed"),
        ("cb-abc-e3", 0.25, "closed"), ("cb-abc-e4", 0.25, "closed")]  # fmt: skip
    assert report.to_record()["maker_share"] == 1.0


def test_partial_maker_fills_then_the_rest_at_market_in_children(tmp_path):
    """The first child (0.25) fills, then the price runs: at the give-up the resting child is
    canceled and 0.75 goes at market, split by the book too (three market orders)."""
    rows = [F, TOUCH] + [(101.0 + i, 101.5 + i, 101.0 + i, 101.5 + i) for i in range(8)]
    venue = venue_of(tmp_path, rows, volume=10.0)
    report = execute_on(venue, request(), rules(give_up_after_s=120))
    kinds = [(o.type, o.status, o.filled) for o in report.orders]
    assert kinds[:2] == [("limit", "closed", 0.25), ("limit", "canceled", 0.0)]
    assert kinds[2:] == [("market", "closed", 0.25)] * 3
    record = report.to_record()
    assert (record["maker_qty"], record["taker_qty"], record["maker_share"]) == (0.25, 0.75, 0.25)
    assert record["filled"] == 1.0 and record["status"] == "filled"


def test_a_remainder_below_the_minimum_is_not_sent_and_said(tmp_path):
    """0.0405 is 0.040 on the step; 0.04 x 100 is below the 5 USDT minimum notional."""
    venue = venue_of(tmp_path, [F, TOUCH])
    report = execute_on(venue, request(qty=0.0405), rules())
    record = report.to_record()
    assert (record["status"], record["qty"], record["unsent"], record["orders"]) == (
        "unfilled", 0.04, 0.04, [])  # fmt: skip
    assert "below the market's minimum" in record["reason"] and sum(venue.sent.values()) == 0


def test_a_fill_that_races_the_cancel_is_counted_and_nothing_more_is_sent(tmp_path):
    """The paper broker on a clock that moves 10 s with every call (time passes while the
    executor works): the bar closes between the look at the order and its cancel for a
    reprice, so the order fills inside the cancel. Its fill is counted, nothing else is sent."""
    rows = [F] + [TOUCH] * 10
    lake = lake_of(tmp_path / "lake", minutely(rows), timeframe="1m")
    setup = SimSetup(costs=Costs(), timeframe="1m", spread_ticks=1)
    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + 20 * MIN), setup=setup)
    clock = Ticking(T0 + MIN + 10_000, step_ms=10_000)  # the bar closes inside the cancel
    paper = PaperBroker(prices, journal_dir=tmp_path / "j", setup=setup, clock=clock)
    paper.amends_in_place = False

    async def sleep(seconds: float) -> None:
        clock.ms += round(seconds * 1000)

    report = asyncio.run(execute(paper, request=request(), rules=rules(reprice_every_s=30,
                                 give_up_after_s=600), sleep=sleep))  # fmt: skip
    assert ids(report) == [("cb-abc", "limit", "closed", 99.9, 1.0)]
    assert any("before the cancel reached it" in n for n in report.notes)
    fills = asyncio.run(paper.fetch_my_trades(SYMBOL))
    assert [(f.client_order_id, f.amount) for f in fills] == [("cb-abc", 1.0)]


class Ticking:
    """A clock whose time moves by ``step_ms`` each time it is read."""

    def __init__(self, ms: int, *, step_ms: int) -> None:
        self.ms, self.step = ms, step_ms

    async def now(self) -> int:
        self.ms += self.step
        return self.ms


class Crash(Exception):
    pass


def test_a_re_run_after_a_crash_finds_what_was_placed_and_places_it_never_again(tmp_path):
    """The run dies in its second wait (the first child filled, the second resting at 99.9).
    The re-run asks for the entry's ids, counts the filled child, adopts the resting one (moved
    a tick up when bar 2 misses it, filled in bar 3) and finishes; a third run only reports.
    Each id was sent once."""
    venue = venue_of(tmp_path, [F, TOUCH, F, TOUCH, TOUCH], volume=10.0)
    waits = 0

    async def dying(seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 2:
            raise Crash
        venue.clock.advance(round(seconds * 1000))

    req = request(qty=0.5)
    with pytest.raises(Crash):
        asyncio.run(execute(venue, request=req, rules=rules(give_up_after_s=600), sleep=dying))
    assert venue.placed == Counter({"cb-abc": 1, "cb-abc-e2": 1})
    report = execute_on(venue, req, rules(give_up_after_s=600))
    assert ids(report) == [("cb-abc", "limit", "closed", 99.9, 0.25),
                           ("cb-abc-e2", "limit", "closed", 100.0, 0.25)]  # fmt: skip
    assert "found 2 order(s)" in report.notes[0] and report.status == "filled"
    again = execute_on(venue, req, rules(give_up_after_s=600))
    assert ids(again) == ids(report) and again.status == "filled"
    assert max(venue.sent.values()) == 1


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [(dict(give_up_after_s=0), {}, [("cb-abc", "market", "closed", None, 1.0)]),
     ({}, dict(taker=True), [("cb-abc", "limit", "canceled", 99.9, 0.0),
                             ("cb-abc-e2", "market", "closed", None, 1.0)])],
)  # fmt: skip
def test_a_re_run_takes_up_the_phase_the_crash_left(tmp_path, first, then, expected):
    """A crash while a market order is filling: the re-run (maker-first) waits for it and
    places no maker order. A crash while a maker order rests, re-run with ``taker``: it is
    canceled and the rest goes at market under the next id."""
    venue = venue_of(tmp_path, [F, F, F, F])

    async def crash(seconds: float) -> None:
        raise Crash

    with pytest.raises(Crash):
        asyncio.run(execute(venue, request=request(), rules=rules(**first), sleep=crash))
    report = execute_on(venue, request(), rules(**first), **then)
    assert ids(report) == expected and max(venue.sent.values()) == 1


ROOT = Path(__file__).resolve().parents[1]
ENV = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


@pytest.mark.slow
def test_kill_9_at_random_moments_then_a_re_run_finishes_with_nothing_twice(tmp_path):
    """A real process works 3.0 onto a paper account (children of 0.5 at most) and is killed
    (SIGKILL) at a random moment, four times over; the fifth run finishes. The journal then
    holds the entry's ids in sequence, none missing and none twice, all done, and fills of
    exactly 3.0: nothing lost, nothing doubled by the re-runs."""
    rng = np.random.default_rng(5)
    closes = np.round(100 + np.cumsum(rng.integers(-2, 3, 400)) * 0.1, 1)
    rows = [(c, round(c + 0.2, 1), round(c - 0.2, 1), c) for c in closes]
    lake = lake_of(tmp_path / "lake", minutely(rows, volume=20.0), timeframe="1m")
    clock = tmp_path / "clock"
    clock.write_text(str(T0 + MIN))
    command = [sys.executable, str(ROOT / "tests" / "execution_worker.py"), str(lake.root),
               str(tmp_path / "j"), str(clock), "3.0"]  # fmt: skip
    for delay in rng.uniform(3.0, 9.0, 4):  # start-up takes 2-3 s, the whole run about 10
        proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(float(delay))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[-1])
    assert (record["status"], record["filled"]) == ("filled", 3.0)
    with duckdb.connect(str(tmp_path / "j" / "cryptobot.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT client_order_id, status, filled FROM paper_orders").fetchall()
        fills = con.execute("SELECT sum(amount) FROM paper_fills").fetchone()[0]
    assert sorted(cid for cid, _, _ in stored) == sorted(
        entry_order_id("cb-kill", n) for n in range(1, len(stored) + 1))  # fmt: skip
    assert {status for _, status, _ in stored} <= {"closed", "canceled"}
    assert fills == pytest.approx(3.0) and len(stored) >= 6
    assert [o["client_order_id"] for o in record["orders"]] == [
        entry_order_id("cb-kill", n) for n in range(1, len(stored) + 1)]  # fmt: skip


# ---- hostile input --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "words"),
    [(dict(qty=math.nan), "qty must be a finite"), (dict(qty=-1.0), "positive"),
     (dict(expected_price=math.inf), "expected_price"), (dict(side="long"), "buy or sell"),
     (dict(client_order_id=""), "1-36"), (dict(client_order_id="x" * 37), "1-36"),
     (dict(qty="1"), "must be a number")],
)  # fmt: skip
def test_a_bad_request_is_refused_before_anything_is_sent(fields, words):
    with pytest.raises(ValueError, match=words):
        request(**fields)


def test_an_unknown_symbol_raises_and_sends_nothing(tmp_path):
    venue = venue_of(tmp_path, [F, TOUCH])
    with pytest.raises(UnknownSymbolError):
        execute_on(venue, request(symbol="NOPE/USDT:USDT"), rules())
    assert not venue.sent


def test_no_usable_book_goes_at_market_and_no_price_at_all_stops_with_the_reason(tmp_path):
    """A feed whose newest bar is bad still quotes from the bar before; a feed of bad bars only
    has no book: the executor says so and goes at market, which the venue refuses for want of
    a price: unfilled, the venue's reason, nothing placed."""
    lake = lake_of(tmp_path / "lake", minutely([F, F]), timeframe="1m")
    setup = SimSetup(costs=Costs(), timeframe="1m", spread_ticks=1)
    bad = Bar(T0, math.nan, 1.0, 1.0, math.nan, 1.0)

    async def feed(symbol: str, since: int, until: int) -> list[Bar]:
        return [bad] if since <= T0 and until >= T0 + MIN else []

    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + 2 * MIN), setup=setup)
    paper = PaperBroker(prices, journal_dir=tmp_path / "j", setup=setup, feed=feed,
                        clock=Ticking(T0 + MIN, step_ms=0))  # fmt: skip

    async def sleep(seconds: float) -> None:
        return None

    report = asyncio.run(execute(paper, request=request(), rules=rules(), sleep=sleep))
    record = report.to_record()
    assert record["status"] == "unfilled" and "no price" in record["reason"]
    assert any("no usable quote" in n for n in record["notes"]) and record["orders"] == []


# ---- invariants over random paths -----------------------------------------------------------
PATHS = st.lists(st.integers(-3, 3), min_size=3, max_size=14)  # close-to-close moves, in ticks


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    moves=PATHS,
    qty=st.integers(1, 900),  # in steps of 0.001
    side=st.sampled_from(["buy", "sell"]),
    every=st.sampled_from([20, 60, 90]),
    give_up=st.sampled_from([0, 60, 180, 400]),
    impact=st.sampled_from([10.0, 50.0, 400.0]),
    amends=st.booleans(),
    taker=st.booleans(),
    crash_at=st.integers(0, 6),
)
def test_never_more_than_asked_never_an_id_placed_twice(
    tmp_path_factory, moves, qty, side, every, give_up, impact, amends, taker, crash_at
):
    """Random 1m paths (each bar wicks a tick either way), sizes, sides and rules, with a crash
    at a random wait and a re-run: what the venue filled for the entry's ids never exceeds
    the request, equals what the report says, no id was accepted twice (and one is sent again
    only after the venue refused it), and every report is strict JSON."""
    closes = 100.0 + 0.1 * np.cumsum([0, *moves, 0, 0, 0])
    rows = [(c, round(c + 0.1, 1), round(c - 0.1, 1), c) for c in np.round(closes, 1)]
    venue = venue_of(tmp_path_factory.mktemp("x"), rows, volume=20.0)
    venue.amends_in_place = amends
    how = rules(reprice_every_s=every, give_up_after_s=give_up, max_book_impact_pct=impact)
    req = request(qty=qty / 1000, side=side)
    waits = 0

    async def dying(seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == crash_at:
            raise Crash
        venue.clock.advance(round(seconds * 1000))

    try:
        first = asyncio.run(execute(venue, request=req, rules=how, sleep=dying, taker=taker))
        json.dumps(first.to_record(), allow_nan=False)
    except Crash:
        pass
    report = execute_on(venue, req, how, taker=taker)
    filled = sum(f.amount for f in asyncio.run(venue.fetch_my_trades(SYMBOL)))
    assert filled <= req.qty + 1e-9
    assert report.filled == pytest.approx(filled, abs=1e-9)
    assert max(venue.placed.values(), default=0) <= 1
    wanted = [entry_order_id("cb-abc", n) for n in range(1, len(report.orders) + 1)]
    assert [o.client_order_id for o in report.orders] == wanted


def test_the_shipped_settings_are_what_the_executor_reads():
    execution = load_settings(env={}).execution
    assert execution.for_strategy("breakout").give_up_after_s == 15
    assert execution.for_strategy("momentum") == ExecutionRules(
        maker_first=True, reprice_every_s=5, reprice_ticks=1, give_up_after_s=60,
        max_book_impact_pct=50)  # fmt: skip
