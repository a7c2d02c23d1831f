"""What a hostile tester did to the simulated venues, as regressions: a bad bar from the price
feed (or the lake), free trading by default, an amount that is not a number, and position sizes
that drift off the step grid after many fills."""

import logging
import math
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptobot.core.account import OrderRequest
from cryptobot.core.config import load_settings
from cryptobot.exchange.errors import InvalidOrder
from cryptobot.exchange.factory import open_venue, sim_setup, stored_exchange
from cryptobot.exchange.market_rules import add_steps
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.sim import SimAccount
from cryptobot.exchange.simulated import Bar, SimSetup
from cryptobot.fills.costs import Costs
from tests.venues import HOUR, SYMBOL, T0, hourly, lake_of, market, replay, run

FLAT = [(100.0, 101.0, 99.0, 100.0)]
COSTS = Costs(taker=0.0005, maker=0.0002, slippage_bps=2)
SETUP = SimSetup(costs=COSTS, timeframe="1h", leverage=10, initial_balance=100_000.0)
LOGGER = "cryptobot.exchange.simulated"
BAD_BARS = [
    dict(open=math.nan),
    dict(close=math.inf),
    dict(low=0.0),
    dict(high=98.0),  # below the low
    dict(open=105.0),  # above the high
    dict(volume=math.nan),
    dict(volume=-1.0),
    dict(funding_rate=math.nan),
]


def bar(time: int, **bad: float) -> Bar:
    fields = dict(open=100.0, high=101.0, low=99.0, close=100.0, volume=10.0) | bad
    return Bar(time, **fields)


def feed_with_a_bad_bar(bad_at: int, **bad: float):
    """Hourly bars from T0 on, rising 1 an hour, with one bad bar opening at ``bad_at``."""

    async def feed(symbol: str, since: int, until: int) -> list[Bar]:
        first = -(-since // HOUR) * HOUR
        out = []
        for t in range(first, until - HOUR + 1, HOUR):
            p = 100.0 + (t - T0) / HOUR
            good = Bar(t, p, p + 1.5, p - 0.5, p + 1.0, 10.0)
            out.append(bar(t, **bad) if t == bad_at else good)
        return out

    return feed


def replay_config(data_dir: Path):
    """The shipped config, replaying the test lake's "sim" market from T0 + 1h."""
    replay = {"source_exchange": "sim", "start": "2025-01-01T01:00:00Z"}
    return load_settings(
        overrides={"exchange": "replay", "data_dir": str(data_dir), "replay": replay}, env={}
    )


class Clock:
    def __init__(self, t: int) -> None:
        self.t = t

    async def now(self) -> int:
        return self.t


@pytest.mark.parametrize(
    "bad", BAD_BARS, ids=[next(iter(b)) + str(i) for i, b in enumerate(BAD_BARS)]
)
def test_a_bad_bar_is_stepped_over_never_applied_and_reported_once(bad, tmp_path, caplog):
    """The tester's `paper_hostile.py nanbar`: one bad bar locked the account for good (every
    read, order and close raised). Now the bad bar is skipped: the order placed before it fills
    at the next good bar's open, reads and a close work, the warning comes once."""
    lake = lake_of(tmp_path / "lake", hourly(FLAT * 3))
    clock = Clock(T0 + HOUR)
    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + HOUR), setup=SETUP)
    bad_at = T0 + 2 * HOUR
    broker = PaperBroker(prices, journal_dir=tmp_path / "j", setup=SETUP, clock=clock,
                         feed=feed_with_a_bad_bar(bad_at, **bad))  # fmt: skip
    clock.t = bad_at  # placed when the bad bar opens: it would fill on it
    run(broker.create_order(symbol=SYMBOL, type="market", side="buy", amount=0.5,
                            client_order_id="in"))  # fmt: skip
    clock.t = bad_at + 3 * HOUR
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        positions = run(broker.fetch_positions())
        balance = run(broker.fetch_balance())
        run(broker.fetch_open_orders())
    skipped = [r.getMessage() for r in caplog.records if "skipped the bar" in r.getMessage()]
    assert len(skipped) == 1 and "2025-01-01T02:00:00Z" in skipped[0]
    (fill,) = run(broker.fetch_my_trades(SYMBOL))
    assert fill.timestamp == bad_at + HOUR  # the next good bar
    assert fill.price == pytest.approx(103.0 * (1 + 2e-4))  # its open, slipped 2 bps
    assert positions[0].contracts == 0.5
    assert all(math.isfinite(v) for v in (balance.total, balance.wallet, balance.free))
    run(broker.create_order(symbol=SYMBOL, type="market", side="sell", amount=0.5,
                            reduce_only=True, client_order_id="out"))  # fmt: skip
    clock.t += HOUR
    assert run(broker.fetch_positions()) == []
    assert run(broker.fetch_order("out")).status == "closed"


def test_a_bad_bar_in_the_lake_is_stepped_over_by_the_replay_exchange(tmp_path, caplog):
    """The lake refuses NaN on write; a file damaged behind its back still must not lock the
    replay exchange's account."""
    lake = lake_of(
        tmp_path, hourly([(100.0 + i, 101.5 + i, 99.5 + i, 101.0 + i) for i in range(6)])
    )
    (path,) = (tmp_path / "candles").rglob("*.parquet")
    table = pq.read_table(path)
    opens = table.column("open").to_pylist()
    opens[2] = math.nan
    pq.write_table(table.set_column(1, "open", pa.array(opens, pa.float64())), path)
    venue = replay(lake, T0 + 2 * HOUR, costs=Costs())
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0,
                           client_order_id="in"))  # fmt: skip
    venue.clock.advance(3 * HOUR)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        (position,) = run(venue.fetch_positions())
        run(venue.fetch_balance())
    assert sum("skipped the bar" in r.getMessage() for r in caplog.records) == 1
    (fill,) = run(venue.fetch_my_trades(SYMBOL))
    assert fill.timestamp == T0 + 3 * HOUR and fill.price == 103.0
    assert position.contracts == 1.0 and math.isfinite(position.unrealized_pnl)


def test_a_bad_last_bar_is_no_price_the_one_before_is(tmp_path):
    """A new order is checked against the newest good close, not the bad bar's NaN."""
    lake = lake_of(tmp_path / "lake", hourly(FLAT * 3))
    clock = Clock(T0 + 3 * HOUR)
    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + HOUR), setup=SETUP)
    broker = PaperBroker(prices, journal_dir=tmp_path / "j", setup=SETUP, clock=clock,
                         feed=feed_with_a_bad_bar(T0 + 2 * HOUR, close=math.nan))  # fmt: skip
    order = run(broker.create_order(symbol=SYMBOL, type="limit", side="buy", amount=0.5,
                                    price=100.0, client_order_id="l1"))  # fmt: skip
    assert order.status == "open" and order.liquidity == "maker"  # below 102, the good close


def test_costs_are_required_and_the_factory_passes_the_configs(tmp_path: Path):
    """No silent free trading: a setup without costs, or a replay exchange without a setup, is
    a TypeError at construction; the factory's venues charge the config's backtest costs."""
    with pytest.raises(TypeError, match="costs"):
        SimSetup()  # type: ignore[call-arg]
    lake = lake_of(tmp_path, hourly(FLAT * 3))
    with pytest.raises(TypeError, match="setup"):
        ReplayExchange(lake, "sim")  # type: ignore[call-arg]
    config = replay_config(tmp_path)
    wanted = Costs.from_settings(config)
    assert wanted.taker > 0 and wanted.slippage_bps > 0  # the shipped config is not free
    assert sim_setup(config).costs == wanted
    assert stored_exchange(config, lake).setup.costs == wanted


def test_a_replay_venue_from_the_factory_charges_fees_and_slippage(tmp_path: Path):
    """The tester's 300 market fills paid fee 0 at the exact open; through the factory they pay
    the market's taker fee and the config's slippage."""
    lake_of(tmp_path, hourly([(100.0, 101.0, 99.0, 100.5)] * 4), markets=[market(taker=None)])
    config = replay_config(tmp_path)
    venue = open_venue(config)
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0))
    venue.clock.advance(HOUR)
    (fill,) = run(venue.fetch_my_trades(SYMBOL))
    costs = Costs.from_settings(config)
    assert fill.fee_rate == costs.taker > 0
    assert fill.fee == pytest.approx(fill.price * costs.taker)
    assert fill.price == pytest.approx(100.0 * (1 + costs.slippage_bps * 1e-4)) != 100.0


@pytest.mark.parametrize(
    "field, value",
    [("amount", "0.01"), ("amount", True), ("amount", None), ("amount", b"1"),
     ("price", "100"), ("price", False), ("reduce_only", "no"), ("post_only", 1)],
)  # fmt: skip
def test_an_order_field_of_the_wrong_type_is_one_invalid_order(tmp_path, field, value):
    """`create_order(amount='0.01')` raised a bare TypeError deep in the margin check."""
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    args = dict(symbol=SYMBOL, type="limit", side="buy", amount=0.01, price=99.0)
    with pytest.raises(InvalidOrder) as refused:
        run(venue.create_order(**(args | {field: value})))
    assert "\n" not in str(refused.value) and field in str(refused.value)
    assert run(venue.fetch_open_orders()) == []


def test_a_decimal_amount_is_a_number(tmp_path):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    order = run(venue.create_order(symbol=SYMBOL, type="market", side="buy",
                                   amount=Decimal("0.1")))  # fmt: skip
    assert order.amount == 0.1 and type(order.amount) is float


def test_23_fills_of_a_step_make_a_whole_step_position(tmp_path):
    """The tester's paper position of 23 x 0.001 showed 0.023000000000000013."""
    for step in (0.001, None):
        root = tmp_path / str(step)
        lake = lake_of(
            root,
            hourly(FLAT * 30),
            markets=[market(step_size=step, min_qty=None, min_notional=None)],
        )
        venue = replay(lake, T0 + HOUR, initial_balance=100_000.0)
        for _ in range(23):
            run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=0.001))
            venue.clock.advance(HOUR)
        (position,) = run(venue.fetch_positions())
        assert position.contracts == 0.023, step


STEPS = st.sampled_from([0.001, 0.01, 0.1, 1.0, 0.0001, None])
FILLS = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 5000)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step=STEPS, fills=FILLS)
def test_any_whole_step_fills_make_a_position_equal_to_their_decimal_sum(step, fills):
    """Buys and sells of whole steps (flips included), each filled at a bar: the position is
    exactly (==) the decimal net sum, and the orders' filled amounts exactly their amounts."""
    unit = Decimal(repr(step if step else 0.001))
    markets = {SYMBOL: market(step_size=step, min_qty=None, min_notional=None)}
    setup = SimSetup(costs=Costs(), leverage=1, initial_balance=1e12)
    state = setup.new_state()
    net = Decimal(0)
    for i, (side, units) in enumerate(fills):
        account = SimAccount(state, markets=markets, setup=setup)
        amount = float(units * unit)
        now = T0 + i * HOUR
        account.see(now)
        account.place(OrderRequest(symbol=SYMBOL, type="market", side=side, amount=amount),
                      client_order_id=f"c{i}", now=now, last_price=100.0)  # fmt: skip
        account.match(SYMBOL, bar(now))
        assert [o.filled == o.amount for o in account.changed.values()] == [True]
        net += units * unit if side == "buy" else -units * unit
        book = state.books[SYMBOL]
        assert book.side * Decimal(repr(book.contracts)) == net
        assert book.contracts == abs(float(net))


@given(held=st.integers(0, 10**6), change=st.integers(-(10**6), 10**6), step=STEPS)
def test_add_steps_is_the_exact_decimal_sum(held, change, step):
    unit = Decimal(repr(step if step else 0.001))
    got = add_steps(float(held * unit), float(change * unit), step=step)
    assert got == float((held + change) * unit)
