"""The replay exchange trades: orders rest until the clock passes the next stored bar and fill
by ``fills/``'s rules. Hand-made bars whose fills are worked out in each docstring; a market
entry + stop + take-profits on real ETH candles booked exactly as the backtest kernel books
the same trade; and every refusal of the interface, with nothing changed by a refused call."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.core.errors import UnknownSymbolError
from cryptobot.exchange.errors import (
    BelowMinimum,
    ClockWentBack,
    DuplicateClientOrderId,
    InsufficientMargin,
    InvalidOrder,
    LeverageRefused,
    OrderNotFound,
    OrderNotOpen,
    PostOnlyWouldTake,
    ReduceOnlyWouldIncrease,
    StepViolation,
    TickViolation,
)
from cryptobot.fills.costs import Costs
from tests.venues import HOUR, SYMBOL, T0, hourly, lake_of, market, replay, run

FLAT = [(100.0, 100.0, 100.0, 100.0)]


def test_a_market_order_rests_until_the_next_bar_has_closed_and_fills_at_its_open(tmp_path):
    """Placed at 01:00 (bar 0 closed at 100): bar 1 opens at 100.5. The order is open while bar
    1 is forming and fills at 100.5 once it has closed, paying the market's taker fee 0.05 %.
    Placed half-way through bar 2, an order waits for bar 3's open (103), not bar 2's (102)."""
    rows = [
        (100, 101, 99, 100),
        (100.5, 102, 100, 101),
        (102, 103, 101, 102.5),
        (103, 104, 102, 103),
    ]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR)
    order = run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0,
                                   client_order_id="a"))  # fmt: skip
    assert order.status == "open" and run(venue.fetch_order("a")).status == "open"
    venue.clock.advance(HOUR)
    done = run(venue.fetch_order("a"))
    assert (done.status, done.filled, done.average) == ("closed", 1.0, 100.5)
    assert done.fee == pytest.approx(100.5 * 0.0005)
    venue.clock.advance(HOUR // 2)
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0,
                           client_order_id="b"))  # fmt: skip
    venue.clock.advance(HOUR // 2)
    assert run(venue.fetch_order("b")).status == "open"  # bar 2 began before the order
    venue.clock.advance(HOUR)
    assert run(venue.fetch_order("b")).average == 103.0
    position = run(venue.fetch_positions())[0]
    assert (position.side, position.contracts, position.entry_price) == ("long", 2.0, 101.75)
    assert position.mark_price == 103.0


def test_slippage_moves_a_market_fill_against_the_order_but_never_out_of_the_bar(tmp_path):
    """10 bps on a buy at bar 1's open 100 is 100.1 (inside its range up to 101); a sell at bar
    2's open 100 is 99.9 (inside, its low is 99.5); bar 3 opens at its low 98, so a sell there
    fills at 98, not 97.9: the bar never traded below 98."""
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100), (100, 100, 99.5, 99.8), (98, 99, 98, 98.5)]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR, costs=Costs(slippage_bps=10))
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=2.0))
    venue.clock.advance(HOUR)
    assert run(venue.fetch_positions())[0].entry_price == pytest.approx(100.1)
    run(venue.create_order(symbol=SYMBOL, type="market", side="sell", amount=1.0))
    venue.clock.advance(HOUR)
    run(venue.create_order(symbol=SYMBOL, type="market", side="sell", amount=1.0))
    venue.clock.advance(HOUR)
    prices = [f.price for f in run(venue.fetch_my_trades())]
    assert prices == pytest.approx([100.1, 99.9, 98.0])


def test_a_bracket_sent_with_its_entry_takes_profit_then_stops_out_the_rest(tmp_path):
    """Entry at bar 1's open 100 (1.0), stop 98, targets 102 (0.25) and 104 (0.25), all placed
    while flat. Bar 2 reaches 102.5: the first target fills at 102 (maker 0.02 %); bar 3 falls to
    97: the stop sells the 0.75 left at 98 (taker); the second target is canceled with the
    position. Money: +0.5 + (-1.5) realised, fees 100 x 0.0005 + 25.5 x 0.0002 + 73.5 x 0.0005."""
    rows = [FLAT[0], (100, 101, 99.5, 100.5), (100.5, 102.5, 100, 101), (101, 101, 97, 97.5)]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR, leverage=5)
    for request in (
        dict(type="market", side="buy", amount=1.0, client_order_id="entry"),
        dict(type="stop_market", side="sell", amount=1.0, trigger_price=98.0, reduce_only=True,
             client_order_id="stop"),
        dict(type="take_profit", side="sell", amount=0.25, price=102.0, reduce_only=True,
             client_order_id="tp1"),
        dict(type="take_profit", side="sell", amount=0.25, price=104.0, reduce_only=True,
             client_order_id="tp2"),
    ):  # fmt: skip
        run(venue.create_order(symbol=SYMBOL, **request))
    assert [o.client_order_id for o in run(venue.fetch_open_orders())] == [
        "entry", "stop", "tp1", "tp2"
    ]  # fmt: skip
    venue.clock.advance(3 * HOUR)
    fills = run(venue.fetch_my_trades())
    assert [(f.client_order_id, f.amount, f.price, f.taker_or_maker) for f in fills] == [
        ("entry", 1.0, 100.0, "taker"), ("tp1", 0.25, 102.0, "maker"), ("stop", 0.75, 98.0, "taker")
    ]  # fmt: skip
    assert run(venue.fetch_open_orders()) == [] and run(venue.fetch_positions()) == []
    tp2 = run(venue.fetch_order("tp2"))
    assert (tp2.status, tp2.reason) == ("canceled", "position closed")
    balance = run(venue.fetch_balance())
    assert balance.realized_pnl == pytest.approx(0.5 - 1.5)
    assert balance.fees == pytest.approx(100 * 0.0005 + 25.5 * 0.0002 + 73.5 * 0.0005)
    assert balance.total == pytest.approx(1000 + 0.5 - 1.5 - balance.fees)


@pytest.mark.parametrize(("through", "fills"), [(False, True), (True, False)])
def test_a_resting_limit_fills_on_touch_or_only_through_its_price(tmp_path, through, fills):
    """A buy limit at 99 rests under bar 1 (low exactly 99): it fills at 99 on touch (the
    default), not with ``backtest.limit_fill: through``; the maker fee, as a resting order."""
    rows = [FLAT[0], (100, 100.5, 99, 100)]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR, costs=Costs(limit_through=through))
    run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=99.0,
                           post_only=True, client_order_id="bid"))  # fmt: skip
    venue.clock.advance(HOUR)
    order = run(venue.fetch_order("bid"))
    assert (order.status == "closed") is fills
    if fills:
        assert (order.average, order.fee) == (99.0, pytest.approx(99 * 0.0002))


def test_a_limit_marketable_when_placed_takes_at_the_next_open_and_pays_the_taker_fee(tmp_path):
    """Last close 100: a buy limit at 101 would trade at once. It fills at bar 1's open 100.5
    (at or better than its price) as a taker; the same order post-only is refused."""
    rows = [FLAT[0], (100.5, 101, 100, 100.8)]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR)
    with pytest.raises(PostOnlyWouldTake, match="would take at once"):
        run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=101.0,
                               post_only=True))  # fmt: skip
    run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=101.0,
                           client_order_id="take"))  # fmt: skip
    venue.clock.advance(HOUR)
    fill = run(venue.fetch_my_trades())[0]
    assert (fill.price, fill.taker_or_maker, fill.fee_rate) == (100.5, "taker", 0.0005)


def test_a_reduce_only_order_larger_than_the_position_closes_it_and_never_flips(tmp_path):
    """Long 1.0; a reduce-only market sell of 3.0 sells 1.0 and leaves the account flat (a plain
    sell of 3.0 would have opened a 2.0 short). The order is done, filled 1.0, and says so."""
    venue = replay(lake_of(tmp_path, hourly(FLAT * 4)), T0 + HOUR)
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0))
    venue.clock.advance(HOUR)
    run(venue.create_order(symbol=SYMBOL, type="market", side="sell", amount=3.0,
                           reduce_only=True, client_order_id="cut"))  # fmt: skip
    venue.clock.advance(HOUR)
    cut = run(venue.fetch_order("cut"))
    assert (cut.status, cut.filled, cut.reason) == (
        "closed", 1.0, "reduce-only: filled up to the position"
    )  # fmt: skip
    assert run(venue.fetch_positions()) == []
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0))
    venue.clock.advance(HOUR)
    with pytest.raises(ReduceOnlyWouldIncrease, match="would add to the long position"):
        run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0,
                               reduce_only=True))  # fmt: skip


def test_a_reduce_only_order_with_nothing_to_reduce_is_canceled_when_it_would_fill(tmp_path):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    run(venue.create_order(symbol=SYMBOL, type="market", side="sell", amount=1.0,
                           reduce_only=True, client_order_id="nothing"))  # fmt: skip
    venue.clock.advance(HOUR)
    order = run(venue.fetch_order("nothing"))
    assert (order.status, order.filled, order.reason) == (
        "canceled", 0.0, "reduce-only: no position"
    )  # fmt: skip
    assert run(venue.fetch_my_trades()) == []


def test_an_isolated_position_is_liquidated_at_the_risk_engines_price(tmp_path):
    """50x long 1.0 at 100 with 2 of margin; the market's bracket (0.5 / 50 = 1 % maintenance)
    puts Binance's liquidation at (2 - 100) / (0.01 - 1) = 98.99. Bar 2 falls to 90: the venue
    closes at 98.99, charging the 1.25 % liquidation fee there, not a fill at 90."""
    rows = [FLAT[0], (100, 100.5, 99.5, 100), (99.5, 99.6, 90, 91)]
    venue = replay(lake_of(tmp_path, hourly(rows)), T0 + HOUR,
                   costs=Costs(liquidation_fee=0.0125))  # fmt: skip
    run(venue.set_leverage(SYMBOL, 50))
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0))
    venue.clock.advance(HOUR)
    liquidation = run(venue.fetch_positions())[0].liquidation_price
    assert liquidation == pytest.approx(98 / 0.99)
    venue.clock.advance(HOUR)
    last = run(venue.fetch_my_trades())[-1]
    assert (last.order_type, last.price) == ("liquidation", pytest.approx(liquidation))
    assert last.fee == pytest.approx(liquidation * 0.0125)
    assert run(venue.fetch_positions()) == []
    assert run(venue.fetch_order(last.client_order_id)).reason == "liquidation"


def test_a_position_held_over_a_funding_time_pays_notional_times_rate(tmp_path):
    """Long 2.0 from 01:00 on flat bars at 100; funding at 08:00 of +0.01 %: paid 2 x 100 x
    0.0001 = 0.02 at the open of the 08:00 bar. 00:00 (before the entry) is not charged."""
    funding = pd.DataFrame({"timestamp": [T0, T0 + 8 * HOUR], "funding_rate": [0.05, 0.0001]})
    venue = replay(lake_of(tmp_path, hourly(FLAT * 12), funding=funding), T0 + HOUR)
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=2.0))
    venue.clock.advance(7 * HOUR)
    assert run(venue.fetch_balance()).funding == 0.0  # the 08:00 bar has not closed yet
    venue.clock.advance(HOUR)
    assert run(venue.fetch_balance()).funding == pytest.approx(-0.02)


# ---- the same trade as the backtest kernel --------------------------------------------------
def test_a_replayed_bracket_on_real_candles_books_what_the_backtest_kernel_books(tmp_path):
    """Real ETH/USDT:USDT 1h bars and funding (2024): at each candidate bar a 2 ETH long is
    entered at market (1x: no liquidation in play, as the kernel is given none) with a stop 1.5
    ATR below the entry fill and take-profits of 25 % at 1R and 2R, the whole bracket placed
    with the entry. The backtest kernel (``run_trade``) lives the trade on
    the same bars; the replay exchange is sent the same orders and its clock moved bar by bar.
    Fills (time, side, amount, price, fee), funding and the net must be the kernel's: the seed of
    the issue's parity test. The first trades that take a profit and then stop out, with
    funding paid on the way, are compared; slippage grows with the order's share of volume."""
    from cryptobot.backtest import kernel
    from cryptobot.backtest.bars import symbol_bars
    from cryptobot.data.importer import read_candle_file
    from cryptobot.fills.model import lot
    from cryptobot.manage.policy import Policy
    from tests.conftest import BINANCE, SHARED

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles for the parity test)")
    candles = read_candle_file(path)
    candles = candles[candles.timestamp >= 1_704_067_200_000].reset_index(drop=True)[:2000]
    funding = pd.read_parquet(SHARED / "funding" / "binance" / "ETH_USDT_USDT.parquet")
    eth = market("ETH/USDT:USDT", tick_size=None, min_notional=None, maker=0.0001, taker=0.0004)
    lake = lake_of(tmp_path / "lake", candles, markets=[eth], funding=funding,
                   symbol="ETH/USDT:USDT")  # fmt: skip
    costs = Costs(taker=0.0005, maker=0.0002, slippage_bps=2, slippage_bps_per_pct_volume=0.5)
    sb = symbol_bars("ETH/USDT:USDT", "1h", lake.read_candles("sim", "ETH/USDT:USDT", "1h"),
                     funding=lake.read_funding("sim", "ETH/USDT:USDT"))  # fmt: skip
    compared = 0
    for i0 in range(30, len(sb) - 200, 7):
        ours = _kernel_trade(kernel, sb, i0, costs.for_market(eth), Policy.none(), lot)
        if ours is None:
            continue
        fills, row, orders = ours
        venue = replay(lake, int(sb.timestamps[i0]), costs=costs, initial_balance=100_000.0)
        for request in orders:
            run(venue.create_order(symbol="ETH/USDT:USDT", **request))
        for _ in range(int(row[kernel.T_EXIT_BAR]) - i0 + 1):
            venue.clock.advance(HOUR)
        booked = run(venue.fetch_my_trades())
        assert [(f.timestamp, f.side, f.amount, f.price, f.fee) for f in booked] == [
            (int(sb.timestamps[int(f[kernel.F_BAR])]), "buy" if f[kernel.F_SIDE] > 0 else "sell",
             pytest.approx(f[kernel.F_QTY], abs=1e-12), f[kernel.F_PRICE], f[kernel.F_FEE])
            for f in fills
        ]  # fmt: skip
        balance = run(venue.fetch_balance())
        assert balance.funding == pytest.approx(row[kernel.T_FUNDING], rel=1e-12)
        assert balance.funding != 0.0
        assert balance.total - balance.deposited == pytest.approx(row[kernel.T_NET], rel=1e-9)
        assert run(venue.fetch_positions()) == [] and run(venue.fetch_open_orders()) == []
        compared += 1
        if compared == 3:
            break
    assert compared == 3


def _kernel_trade(kernel, sb, i0, costs, policy, lot):
    """The kernel's trade at ``i0`` (fills, trade row, the orders that make it), when it takes
    a profit, stops out after, and pays funding; else None."""
    from dataclasses import replace

    from cryptobot.backtest.engine import Signals, candles_of

    side, qty, step = 1, 2.0, 0.001
    arr = costs.array()
    entry = kernel.entry_fill(sb.bars, i0, side, qty, arr)
    stop = entry - 1.5 * float(sb.bars[i0 - 1, kernel.ATR])
    tp_r, tp_frac = np.array([1.0, 2.0]), np.array([0.25, 0.25])
    trades = np.zeros((1, len(kernel.TRADE_COLUMNS)))
    fills = np.zeros((policy.max_fills + 2, len(kernel.FILL_COLUMNS)))
    inputs = Signals.of(np.zeros(len(sb), np.int8)).inputs()
    n = kernel.live_trade(
        candles=candles_of(sb), inputs=inputs, rules=replace(policy, tp_r=tp_r,
        tp_frac=tp_frac).rules(), costs=arr, entry=kernel.entry_of(bar=i0, side=side, qty=qty,
        price=entry, stop=stop, step=step), end_bar=len(sb),
        books=kernel.Books(np.zeros(len(sb)), trades, fills), row=0, fills_at=0,
    )  # fmt: skip
    row, fills = trades[0], fills[:n]
    kinds = list(fills[:, kernel.F_KIND].astype(int))
    from cryptobot.fills.model import STOP, TARGET

    if row[kernel.T_OPEN] or TARGET not in kinds or kinds[-1] != STOP or not row[kernel.T_FUNDING]:
        return None
    risk = entry - stop
    orders = [
        dict(type="market", side="buy", amount=qty, client_order_id="entry"),
        dict(type="stop_market", side="sell", amount=qty, trigger_price=stop, reduce_only=True),
    ] + [
        dict(type="take_profit", side="sell", amount=lot(f * qty, step),
             price=entry + side * r * risk, reduce_only=True)
        for r, f in zip(tp_r, tp_frac, strict=True)
    ]  # fmt: skip
    return fills, row, orders


# ---- refusals ------------------------------------------------------------------------------
BAD_ORDERS = [
    (dict(amount=float("nan")), InvalidOrder, "amount must be a finite number"),
    (dict(amount=float("inf")), InvalidOrder, "amount must be a finite number"),
    (dict(amount=-1.0), InvalidOrder, "amount must be positive"),
    (dict(amount=0.0), InvalidOrder, "amount must be positive"),
    (dict(amount=True), InvalidOrder, "amount must be a number"),
    (dict(amount=0.0015), StepViolation, "not a whole number of steps of 0.001"),
    (dict(amount=0.001), BelowMinimum, "notional 0.10"),
    (dict(type="limit", price=float("nan")), InvalidOrder, "price must be a finite number"),
    (dict(type="limit", price=99.05), TickViolation, "not on the price tick 0.1"),
    (dict(type="limit"), InvalidOrder, "a limit order needs a price"),
    (dict(price=99.0), InvalidOrder, "a market order takes no price"),
    (dict(type="stop_market", side="sell", trigger_price=98.0), InvalidOrder, "reduce-only"),
    (dict(type="stop_market", side="sell", trigger_price=101.0, reduce_only=True), InvalidOrder,
     "would trigger at once"),
    (dict(type="stop_market", side="sell", trigger_price=float("inf"), reduce_only=True),
     InvalidOrder, "trigger_price must be a finite number"),
    (dict(type="market", post_only=True), InvalidOrder, "only a limit order can be post-only"),
    (dict(type="stop"), InvalidOrder, "unknown order type 'stop'"),
    (dict(side="long"), InvalidOrder, "unknown order side 'long'"),
    (dict(client_order_id="has space"), InvalidOrder, "client_order_id"),
    (dict(client_order_id="x" * 37), InvalidOrder, "client_order_id"),
    (dict(amount=100.0), InsufficientMargin, "needs 10,005.00 USDT"),
    (dict(symbol="DOGE/USDT:USDT"), UnknownSymbolError, "DOGE/USDT:USDT"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "error", "message"), BAD_ORDERS)
def test_a_bad_order_is_refused_with_its_reason_and_changes_nothing(
    tmp_path, change, error, message
):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=90.0,
                           client_order_id="resting"))  # fmt: skip
    before = (run(venue.fetch_balance()), run(venue.fetch_open_orders()), venue._state.ledger)
    request = dict(symbol=SYMBOL, type="market", side="buy", amount=1.0) | change
    with pytest.raises(error, match=message):
        run(venue.create_order(**request))
    after = (run(venue.fetch_balance()), run(venue.fetch_open_orders()), venue._state.ledger)
    assert after == before


def test_an_id_the_venue_knows_is_refused_open_or_done_so_a_retry_never_trades_twice(tmp_path):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 4)), T0 + HOUR)
    order = dict(symbol=SYMBOL, type="market", side="buy", amount=1.0, client_order_id="sig-1")
    run(venue.create_order(**order))
    with pytest.raises(DuplicateClientOrderId, match="sig-1 exists already"):
        run(venue.create_order(**order))
    venue.clock.advance(HOUR)
    assert run(venue.fetch_order("sig-1")).status == "closed"
    with pytest.raises(DuplicateClientOrderId):
        run(venue.create_order(**order))
    assert run(venue.fetch_positions())[0].contracts == 1.0


def test_cancel_once_then_twice_then_an_order_that_never_was(tmp_path):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    run(venue.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=90.0,
                           client_order_id="bid"))  # fmt: skip
    canceled = run(venue.cancel_order("bid"))
    assert (canceled.status, canceled.reason) == ("canceled", "canceled")
    with pytest.raises(OrderNotOpen, match="not open"):
        run(venue.cancel_order("bid"))
    with pytest.raises(OrderNotFound, match="no order ghost"):
        run(venue.cancel_order("ghost"))
    with pytest.raises(OrderNotFound):
        run(venue.fetch_order("ghost"))
    venue.clock.advance(HOUR)  # a canceled order never fills
    assert run(venue.fetch_my_trades()) == [] and run(venue.fetch_open_orders()) == []


def test_the_clock_never_goes_back(tmp_path):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + 2 * HOUR)
    with pytest.raises(ClockWentBack):
        venue.clock.advance(-1)
    with pytest.raises(ClockWentBack):
        venue.clock.move_to(T0)
    run(venue.fetch_balance())
    venue.clock.now_ms = T0 + HOUR  # set behind the clock's back: the account refuses it
    with pytest.raises(ClockWentBack, match="before 2025-01-01T02:00:00Z"):
        run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0))
    venue.clock.now_ms = T0 + 2 * HOUR
    assert run(venue.fetch_open_orders()) == []


@pytest.mark.parametrize(
    ("leverage", "message"),
    [(float("nan"), "finite"), (0.5, "at least 1"), (51, "above the 50x cap"), (True, "number")],
)
def test_leverage_must_be_a_finite_number_within_the_markets_cap(tmp_path, leverage, message):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    with pytest.raises(LeverageRefused, match=message):
        run(venue.set_leverage(SYMBOL, leverage))


def test_leverage_and_margin_mode_stay_while_a_position_or_order_is_open(tmp_path):
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    run(venue.set_leverage(SYMBOL, 10))
    run(venue.set_margin_mode(SYMBOL, "cross"))
    with pytest.raises(LeverageRefused, match="unknown margin mode"):
        run(venue.set_margin_mode(SYMBOL, "portfolio"))
    run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0))
    with pytest.raises(LeverageRefused, match="close its position and cancel its orders"):
        run(venue.set_leverage(SYMBOL, 20))
    venue.clock.advance(HOUR)
    position = run(venue.fetch_positions())[0]
    assert (position.leverage, position.margin_mode, position.initial_margin) == (10, "cross", 10)
    with pytest.raises(LeverageRefused):
        run(venue.set_margin_mode(SYMBOL, "isolated"))


def test_serving_candles_does_not_load_the_matching_engine(tmp_path: Path):
    """``scan --offline`` reads the replay exchange: numba and the journal stay unloaded until
    an order is placed (they cost a good part of a second)."""
    lake_of(tmp_path, hourly(FLAT * 3))
    code = (
        "import asyncio, sys\n"
        "from cryptobot.data.lake import Lake\n"
        "from cryptobot.exchange.replay import ReplayExchange\n"
        "from cryptobot.exchange.simulated import SimSetup\n"
        "from cryptobot.fills.costs import Costs\n"
        f"ex = ReplayExchange(Lake({str(tmp_path)!r}), 'sim', setup=SimSetup(costs=Costs()))\n"
        "asyncio.run(ex.fetch_ohlcv('X/USDT:USDT', '1h', 0, 10))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'duckdb')))\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_the_client_order_id_sizing_derives_is_one_every_venue_accepts(tmp_path):
    """``size`` names each order deterministically (``core.order``); the venue takes that name
    as it is, and refuses a second order under it."""
    from cryptobot.core.order import Intent

    intent = Intent(exchange="sim", symbol=SYMBOL, side="long", entry=100.0, stop=98.0,
                    signal_id="momentum|X/USDT:USDT|1735689600000|1")  # fmt: skip
    cid = intent.client_order_id("cb")
    venue = replay(lake_of(tmp_path, hourly(FLAT * 3)), T0 + HOUR)
    order = dict(symbol=SYMBOL, type="market", side="buy", amount=1.0, client_order_id=cid)
    assert run(venue.create_order(**order)).client_order_id == cid
    with pytest.raises(DuplicateClientOrderId):
        run(venue.create_order(**order))
