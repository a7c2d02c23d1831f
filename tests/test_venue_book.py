"""The simulated venues' book and amend: the best bid and ask are the matching model's own
(a spread of ``spread_ticks`` ticks either side of the last close, sizes a share of its bar's
volume), a post-only order is refused exactly where the quote says it would take, and a resting
limit moves in place, matched from the amend on. The replay exchange and the paper broker
(its account in the journal) behave alike."""

import math

import pytest

from cryptobot.core.errors import UnknownSymbolError
from cryptobot.exchange.errors import (
    InsufficientMargin,
    InvalidOrder,
    OrderNotFound,
    OrderNotOpen,
    PostOnlyWouldTake,
    TickViolation,
    TradingError,
)
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import Bar, SimSetup, spread_quote
from cryptobot.fills.costs import Costs
from tests.venues import HOUR, SYMBOL, T0, hourly, lake_of, replay, run

FLAT = (100.0, 100.0, 100.0, 100.0)


def test_the_quote_is_the_spread_around_the_last_valid_close_with_a_share_of_its_volume(
    tmp_path,
):
    """Bars close at 100 then 100.03 (off the 0.1 tick): one tick either side, rounded outwards,
    is 99.9 / 100.2; each side shows 5 % of the bar's 1,000 volume; the time is the bar's close.
    No spread: the close on both sides, which is no usable quote; no bar closed yet: no quote."""
    rows = [FLAT, (100.0, 100.1, 99.9, 100.03)]
    lake = lake_of(tmp_path, hourly(rows))
    venue = replay(lake, T0 + 2 * HOUR, spread_ticks=1)
    quote = run(venue.fetch_best_bid_ask(SYMBOL))
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (99.9, 100.2, 50.0, 50.0)
    assert quote.timestamp == T0 + 2 * HOUR and quote.usable
    flat = run(replay(lake, T0 + HOUR).fetch_best_bid_ask(SYMBOL))
    assert (flat.bid, flat.ask, flat.usable) == (100.0, 100.0, False)
    with pytest.raises(UnknownSymbolError):
        run(venue.fetch_best_bid_ask("NOPE/USDT:USDT"))
    before = replay(lake, T0 + HOUR // 2, spread_ticks=1)
    empty = run(before.fetch_best_bid_ask(SYMBOL))
    assert (empty.bid, empty.usable, empty.timestamp) == (None, False, T0 + HOUR // 2)


def test_a_bad_bar_from_the_feed_is_no_quote(tmp_path):
    """The paper broker's feed hands a NaN newest bar: the bar before quotes (as the matching
    steps over a bad bar); a feed of bad bars only gives no quote, and no order is checked
    against it."""
    lake = lake_of(tmp_path / "lake", hourly([FLAT, FLAT]))
    clock = ReplayClock(T0 + 2 * HOUR)
    setup = SimSetup(costs=Costs(), timeframe="1h", spread_ticks=1)
    bars = [Bar(T0, 100.0, 100.0, 100.0, 100.0, 10.0),
            Bar(T0 + HOUR, math.nan, 101.0, 99.0, math.nan, 10.0)]  # fmt: skip

    async def feed(symbol: str, since: int, until: int) -> list[Bar]:
        return [b for b in bars if since <= b.time and b.time + HOUR <= until]

    prices = ReplayExchange(lake, "sim", clock, setup=setup)
    paper = PaperBroker(prices, journal_dir=tmp_path / "j", setup=setup, feed=feed)
    quote = run(paper.fetch_best_bid_ask(SYMBOL))
    assert (quote.bid, quote.ask, quote.bid_size, quote.timestamp) == (99.9, 100.1, 0.5, T0 + HOUR)
    bars[0] = Bar(T0, 100.0, 100.0, 100.0, 100.0, math.inf)
    assert run(paper.fetch_best_bid_ask(SYMBOL)).usable is False
    with pytest.raises(TradingError, match="no price"):
        run(paper.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=99.0,
                               post_only=True))  # fmt: skip


@pytest.mark.parametrize(
    ("last", "tick", "ticks", "expected"),
    [(100.0, 0.1, 1, (99.9, 100.1)), (100.0, 0.1, 3, (99.7, 100.3)),
     (0.30000000000000004, 0.1, 1, (0.2, 0.4)), (100.05, 0.1, 1, (99.9, 100.2)),
     (100.0, None, 2, (100.0, 100.0)), (100.0, 0.1, 0, (100.0, 100.0))],
)  # fmt: skip
def test_spread_quote_rounds_outwards_onto_the_tick(last, tick, ticks, expected):
    assert spread_quote(last, tick, ticks) == expected


def test_post_only_is_refused_exactly_where_the_quote_says_it_would_take(tmp_path):
    """Close 100, bid 99.9, ask 100.1: a post-only buy rests at 99.9 and at 100.0 (inside the
    spread) and is refused at the ask; a post-only sell rests at 100.1 and 100.0 and is refused
    at the bid. A plain buy limit at 100.0 rests as a maker (without a spread it would take)."""
    rows = [FLAT, (100.0, 100.5, 99.0, 100.0)]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR, spread_ticks=1)
    for cid, side, price in (("b1", "buy", 99.9), ("b2", "buy", 100.0), ("s1", "sell", 100.1),
                             ("s2", "sell", 100.0)):  # fmt: skip
        order = run(venue.create_order(symbol=SYMBOL, type="limit", side=side, amount=1.0,
                                       price=price, post_only=True,
                                       client_order_id=cid))  # fmt: skip
        assert order.status == "open" and order.liquidity == "maker"
    for side, price in (("buy", 100.1), ("sell", 99.9)):
        with pytest.raises(PostOnlyWouldTake, match="would take at once"):
            run(venue.create_order(symbol=SYMBOL, type="limit", side=side, amount=1.0,
                                   price=price, post_only=True))  # fmt: skip
    plain = run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0,
                                   price=100.0, client_order_id="plain"))  # fmt: skip
    assert plain.liquidity == "maker"
    unspread = replay(lake_of(tmp_path / "b", hourly(rows)), T0 + HOUR)
    took = run(unspread.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0,
                                     price=100.0))  # fmt: skip
    assert took.liquidity == "taker"


def test_an_amended_order_keeps_its_id_and_fills_and_is_matched_from_the_amend_on(tmp_path):
    """A post-only bid at 99 rests through bar 1 (low 99.5). Half-way through bar 2 it moves to
    99.5: bar 2 (opened before the amend, low 99.4) cannot fill it; bar 3 (low 99.5) fills it
    at 99.5, the maker fee, under the same client id."""
    rows = [FLAT, (100.0, 100.2, 99.5, 100.0), (100.0, 100.2, 99.4, 100.0),
            (100.0, 100.2, 99.5, 100.0)]  # fmt: skip
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR, spread_ticks=1)
    run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=2.0, price=99.0,
                           post_only=True, client_order_id="bid"))  # fmt: skip
    venue.clock.advance(HOUR + HOUR // 2)
    moved = run(venue.amend_order("bid", price=99.5))
    assert (moved.client_order_id, moved.price, moved.amount, moved.status) == (
        "bid", 99.5, 2.0, "open")  # fmt: skip
    assert moved.timestamp == venue.clock.now_ms and moved.post_only
    venue.clock.advance(HOUR // 2)
    assert run(venue.fetch_order("bid")).status == "open"  # bar 2 began before the amend
    venue.clock.advance(HOUR)
    done = run(venue.fetch_order("bid"))
    assert (done.status, done.filled, done.average) == ("closed", 2.0, 99.5)
    (fill,) = run(venue.fetch_my_trades())
    assert (fill.client_order_id, fill.taker_or_maker) == ("bid", "maker")
    with pytest.raises(OrderNotOpen):
        run(venue.amend_order("bid", price=99.6))
    with pytest.raises(OrderNotFound):
        run(venue.amend_order("never", price=99.6))


def test_a_refused_amend_changes_nothing(tmp_path):
    """Post-only at the ask, off the tick, NaN, negative, text, a stop's price, more margin
    than is free (3.01 at 99 fits a 300 balance, at 99.9 it does not): each refused with its
    reason, the orders where they were."""
    venue = replay(lake_of(tmp_path, hourly([FLAT, FLAT])), T0 + HOUR, spread_ticks=1,
                   initial_balance=300.0)  # fmt: skip
    run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=3.01, price=99.0,
                           post_only=True, client_order_id="bid"))  # fmt: skip
    run(venue.create_order(symbol=SYMBOL, type="stop_market", side="sell", amount=1.0,
                           trigger_price=90.0, reduce_only=True, client_order_id="sl"))  # fmt: skip
    refusals = [
        (100.1, PostOnlyWouldTake, "stays at 99"),
        (99.55, TickViolation, "tick"),
        (math.nan, InvalidOrder, "finite"),
        (-1.0, InvalidOrder, "positive"),
        ("99.5", InvalidOrder, "number"),
        (99.9, InsufficientMargin, "margin"),
    ]
    for price, error, words in refusals:
        with pytest.raises(error, match=words):
            run(venue.amend_order("bid", price=price))
    with pytest.raises(InvalidOrder, match="only a limit"):
        run(venue.amend_order("sl", price=91.0))
    assert run(venue.amend_order("bid", price=99.2)).price == 99.2  # within the margin
    left = [(o.client_order_id, o.price, o.trigger_price) for o in run(venue.fetch_open_orders())]
    assert left == [("bid", 99.2, None), ("sl", None, 90.0)]


def test_the_paper_broker_amends_and_quotes_as_the_replay_exchange_and_keeps_it(tmp_path):
    """The same amend on the paper broker (account in the journal) and on the replay exchange:
    the same quote (two ticks either side, 10 % of the volume), the same order after; a new
    broker on the journal still has the amend and fills it as the replay exchange does."""
    rows = [FLAT, (100.0, 100.2, 99.5, 100.0), (100.0, 100.2, 99.4, 100.0)]
    lake = lake_of(tmp_path / "lake", hourly(rows))
    clock = ReplayClock(T0 + HOUR)
    setup = SimSetup(costs=Costs(), timeframe="1h", spread_ticks=2, top_of_book_pct=10)
    prices = ReplayExchange(lake, "sim", clock, setup=setup)
    paper = PaperBroker(prices, journal_dir=tmp_path / "j", setup=setup)
    sim = ReplayExchange(lake, "sim", clock, setup=setup)
    for venue in (paper, sim):
        assert run(venue.fetch_best_bid_ask(SYMBOL)) == run(sim.fetch_best_bid_ask(SYMBOL))
        run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=99.0,
                               post_only=True, client_order_id="bid"))  # fmt: skip
    quote = run(paper.fetch_best_bid_ask(SYMBOL))
    assert (quote.bid, quote.ask, quote.bid_size) == (99.8, 100.2, 100.0)
    clock.advance(HOUR // 2)
    assert run(paper.amend_order("bid", price=99.5)) == run(sim.amend_order("bid", price=99.5))
    clock.advance(HOUR // 2)  # bar 1 (low 99.5) opened before the amend: no fill
    again = PaperBroker(prices, journal_dir=tmp_path / "j", setup=setup)
    assert run(again.fetch_order("bid")) == run(sim.fetch_order("bid"))
    assert (run(again.fetch_order("bid")).status, run(again.fetch_order("bid")).price) == (
        "open", 99.5)  # fmt: skip
    clock.advance(HOUR)  # bar 2 (low 99.4) fills it at its amended price
    assert run(again.fetch_order("bid")) == run(sim.fetch_order("bid"))
    assert run(again.fetch_order("bid")).average == 99.5
