"""Invariants of a simulated account under any sequence of orders, cancels and leverage changes
(refused ones included) over random bars, with funding and liquidations in play:

- the books balance: wallet + unrealised = deposited + realised - fees + funding, and the
  balance's total is that sum;
- a reduce-only order never increases nor flips a position;
- every fill and every position is a whole number of the market's steps;
- the position the fills add up to is the position the venue reports.
"""

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptobot.exchange.errors import TradingError
from cryptobot.fills.costs import Costs
from tests.venues import HOUR, SYMBOL, T0, lake_of, market, replay, run

STEP = 0.001

bars_st = st.lists(
    st.tuples(st.floats(-0.04, 0.04), st.floats(0, 0.03), st.floats(0, 0.03)),
    min_size=12,
    max_size=40,
)
action_st = st.tuples(
    st.sampled_from(["market", "limit", "stop_market", "take_profit", "cancel", "leverage"]),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 4000),  # steps of 0.001
    st.floats(-0.06, 0.06),  # price offset from the last close
    st.booleans(),  # reduce-only
    st.integers(1, 50),  # leverage
)
steps_st = st.lists(st.lists(action_st, max_size=3), min_size=4, max_size=30)


def random_walk(moves: list[tuple[float, float, float]]) -> pd.DataFrame:
    rows, close = [], 100.0
    for change, up, down in moves:
        open_ = round(close * (1 + change / 4), 1)
        close = round(max(1.0, close * (1 + change)), 1)
        high = round(max(open_, close) * (1 + up), 1)
        low = round(max(0.1, min(open_, close) * (1 - down)), 1)
        rows.append((open_, high, low, close))
    o, h, lo, c = zip(*rows, strict=True)
    n = len(rows)
    return pd.DataFrame(
        {"timestamp": T0 + HOUR * np.arange(n), "open": o, "high": h, "low": lo, "close": c,
         "volume": 500.0}
    )  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=bars_st, steps=steps_st, rates=st.lists(st.floats(-0.003, 0.003), max_size=5))
def test_a_simulated_account_keeps_its_books_under_any_orders(moves, steps, rates):
    candles = random_walk(moves)
    funding = pd.DataFrame(
        {"timestamp": T0 + 8 * HOUR * np.arange(len(rates)), "funding_rate": rates}
    )
    root = Path(tempfile.mkdtemp())
    lake = lake_of(root, candles, markets=[market(min_notional=1.0)], funding=funding)
    costs = Costs(taker=0.0005, maker=0.0002, slippage_bps=5, liquidation_fee=0.0125)
    venue = replay(lake, T0 + HOUR, costs=costs, initial_balance=2_000.0)
    placed: list[str] = []
    for step in steps[: len(candles) - 2]:
        for action in step:
            _act(venue, action, placed)
        venue.clock.advance(HOUR)
        _check(venue)


def _act(venue, action, placed: list[str]) -> None:
    kind, side, steps, offset, reduce_only, leverage = action
    last = float(venue._state.books[SYMBOL].last_close) if SYMBOL in venue._state.books else 100.0
    if not math.isfinite(last):
        last = 100.0
    price = max(0.1, round(last * (1 + offset), 1))
    request = dict(symbol=SYMBOL, type=kind, side=side, amount=round(steps * STEP, 3),
                   reduce_only=reduce_only)  # fmt: skip
    if kind in ("limit", "take_profit"):
        request["price"] = price
    if kind == "stop_market":
        request["trigger_price"] = price
    try:
        if kind == "cancel":
            if placed:
                run(venue.cancel_order(placed[steps % len(placed)]))
        elif kind == "leverage":
            run(venue.set_leverage(SYMBOL, leverage))
        else:
            placed.append(run(venue.create_order(**request)).client_order_id)
    except TradingError:
        pass  # refused: the invariants must hold all the same


def _check(venue) -> None:
    balance = run(venue.fetch_balance())
    flows = balance.deposited + balance.realized_pnl - balance.fees + balance.funding
    assert math.isclose(balance.wallet, flows, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(balance.total, flows + balance.unrealized_pnl, rel_tol=1e-9, abs_tol=1e-6)
    net = 0.0
    for fill in run(venue.fetch_my_trades()):
        assert _whole(fill.amount)
        signed = fill.amount if fill.side == "buy" else -fill.amount
        order = run(venue.fetch_order(fill.client_order_id))
        if order.reduce_only:
            assert net * signed < 0, "a reduce-only fill with nothing to reduce, or adding"
            assert abs(signed) <= abs(net) + 1e-12, "a reduce-only fill flipped the position"
        net = round(net + signed, 9)
    positions = run(venue.fetch_positions())
    held = sum(p.contracts if p.side == "long" else -p.contracts for p in positions)
    assert all(_whole(p.contracts) and p.contracts > 0 for p in positions)
    assert math.isclose(held, net, abs_tol=1e-9)


def _whole(amount: float) -> bool:
    units = amount / STEP
    return abs(units - round(units)) < 1e-9 and repr(amount) == repr(round(amount, 3))
