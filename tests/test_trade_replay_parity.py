"""Issue 13 (e): ema_cross through ``trade`` on the replay exchange gives the backtest's trades.

Real ETH/USDT:USDT 1h candles (400 bars from 2024-03-11T20:00Z, ../shared/data) in a lake in
tmp, a real DuckDB journal in tmp. The fast path (``runner.run``) trades ema_cross with a 1 ATR
stop and $3 at risk; then, for each signal it took, at that bar's close the signal is sized as
``size`` sizes it (the composer's intent at the price a market order sent then meets: the
venue's ticker, the next open; ``risk.orders.size_orders`` with the strategy's management
ladder as the order's targets: a ``sized_order/2``) and handed to ``trade_orders`` (``trade
--taker``: a market entry, its reduce-only stop and take-profit ladder resting with it) on a
replay exchange whose clock stands at that close; the clock then moves bar by bar and the venue
fills the entry at the next open (the backtest's fill model), the stop and the targets. The
round trips derived from the journal's fills (``journal.roundtrips.derive``) and their fills
leg by leg must be the fast path's trades and fills: entry time and price, quantity, each
exit's time, price, quantity, fee and client order id, the fees and the net to the cent.

What ``trade`` cannot follow is chosen away, and why:

- **breakeven, the ATR trail, the time stop** move or close a position after it is opened:
  ``manage``'s job live, not ``trade``'s. They are off (``breakeven_after_r: 0``,
  ``trail_rest: false``, ``time_stop_minutes: 0``): a fixed stop and a ladder that takes it
  all (50 % at 1R, 50 % at 1.5R), so no remainder rides for a trail.
- **reversals**: ema_cross's signals are its exits (``exits_on_signal``): an opposite cross
  closes the position at the next open and opens the other way at that same open. ``trade``
  cannot: while the old position is held (its close fills only at that open) its gates refuse
  the new entry (``one_position_per_symbol``), and a one-way venue refuses the new entry's
  reduce-only stop, which ``trade`` sends with the entry (``ReduceOnlyWouldIncrease``). A
  reversal is the daemon's (composer's) job. The window is one in which no trade ends on a
  signal (asserted), with a tighter stop (1 ATR) and the shorter ladder making the trades end
  before the next cross.
- **slippage**: ema_cross's stop is a distance from the entry *fill* in the kernel; ``trade``
  sends the stop with the entry, at that distance from the price it was sized at. The two are
  one price only when the market order fills at the price it was sized at: no slippage
  (``backtest.slippage_bps: 0``).
- **funding**: none is stored, and the fast path is told to make none up
  (``backtest.funding_fallback_rate: 0``).
"""

import asyncio
from dataclasses import replace

import duckdb
import numpy as np
import pytest

from cryptobot.backtest import runner
from cryptobot.backtest.portfolio import composer_of, run_portfolio
from cryptobot.engine.composer import signal_intent
from cryptobot.engine.reconcile import reconcile
from cryptobot.engine.trade import TradeSetup, trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.liquidation import venue_of
from cryptobot.journal.roundtrips import derive
from cryptobot.risk import gates
from cryptobot.risk.orders import size_orders
from tests.venues import market

SYMBOL = "ETH/USDT:USDT"
HOUR = 3_600_000
START = 1_704_067_200_000 + 1700 * HOUR  # 2024-03-11T20:00Z
BARS = 400  # 16 days of hours: 12 trades, a third of them taking profits, none reversing
LADDER = [{"r": 1.0, "pct": 50}, {"r": 1.5, "pct": 50}]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from cryptobot.data.importer import read_candle_file
    from cryptobot.data.lake import Lake
    from tests.conftest import BINANCE

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles for the parity test)")
    candles = read_candle_file(path)
    candles = candles[candles.timestamp >= START].reset_index(drop=True)[:BARS]
    lake = Lake(tmp_path_factory.mktemp("parity") / "lake")
    lake.write_candles("sim", SYMBOL, "1h", candles)
    lake.write_markets("sim", [market(SYMBOL, tick_size=0.01, min_notional=None)])
    return lake


def _settings(settings):
    """Fixed stop + the default ladder; no funding made up (the module docstring)."""
    manage = settings.manage.overriding(breakeven_after_r=0.0, trail_rest=False,
                                        time_stop_minutes=0, take_profit_ladder=LADDER)  # fmt: skip
    backtest = settings.backtest.model_copy(update={"funding_fallback_rate": 0.0,
                                                    "slippage_bps": 0.0})  # fmt: skip
    return settings.model_copy(update={"manage": manage, "backtest": backtest})


def _fast_path(lake, settings):
    """The fast path's result, and what it ran with (its setup, bars and signals): the sizing
    of ``trade``'s orders is the composer's, the same objects."""
    seen = {}

    def capture(bars, signals, setup, start, end):
        seen.update(bars=bars, signals=signals, setup=setup, start=start, end=end)
        return run_portfolio(bars, signals, setup, start, end)

    req = runner.Request(symbols=[SYMBOL], exchange="sim", timeframe="1h", strategy="ema_cross",
                         risk_usd=3.0, params={"stop_atr": 1.0})  # fmt: skip
    data = runner.load(lake, req, settings)
    return runner.run(req, data, settings, drive=capture), seen


class _Trader:
    """``trade`` on a replay exchange of the lake, driven close by close."""

    def __init__(self, lake, seen, settings, root):
        setup = seen["setup"]
        self.seen, self.bars = seen, seen["bars"][0]
        self.stamps = self.bars.timestamps
        composer = composer_of(setup, seen["bars"], seen["signals"], start=seen["start"],
                               end=seen["end"])  # fmt: skip
        self.rules, self.lane = composer.rules, composer.lanes[0]
        # ``size``'s sizing: the strategy's ladder as the order's targets (sized_order/2)
        self.sizing = replace(composer.sizing[0], manage=settings.manage)
        cap = setup.risk.for_order(strategy=setup.strategy).max_leverage
        sim = SimSetup(costs=setup.costs, initial_balance=setup.initial_equity, timeframe="1h",
                       venue=venue_of(setup.exchange), max_leverage=cap)  # fmt: skip
        self.clock = ReplayClock(int(self.stamps[0]))
        self.venue = ReplayExchange(lake, "sim", self.clock, setup=sim)

        async def no_wait(seconds: float) -> None:
            return None

        self.desk = TradeSetup(risk=setup.risk, root=root, venue="replay:sim", prefix="cb",
                               sleep=no_wait)  # fmt: skip

    def at_close(self, t: int) -> None:
        """The clock at bar t's close (the venue has matched every bar up to it)."""
        self.clock.move_to(int(self.stamps[t]) + HOUR)

    async def held(self) -> float:
        return sum(p.contracts for p in await self.venue.fetch_positions([SYMBOL]))

    async def enter(self, t: int) -> dict:
        """The signal of bar t sized as ``size`` sizes it and sent by ``trade --taker``."""
        last = (await self.venue.fetch_tickers())[SYMBOL].last
        intent = signal_intent(rules=self.rules, lane=self.lane, t=t, ts=int(self.stamps[t]),
                               sent_at=last)  # fmt: skip
        assert intent is not None
        balance = await self.venue.fetch_balance()
        account = gates.AccountState(equity=balance.total)
        (order,) = size_orders([intent], self.rules.markets, self.rules.brackets_of, account,
                               self.sizing)  # fmt: skip
        assert order.status == "sized", order.reason
        record = order.to_json()
        (outcome,), _ = await trade_orders(self.venue, [TradeOrder.from_record(record)],
                                           setup=self.desk, dry_run=False)  # fmt: skip
        assert outcome.status == "placed", outcome.reason
        return record

    async def settle(self) -> None:
        """A reconcile: the fills since the last run journaled."""
        await reconcile(self.venue, setup=self.desk, dry_run=False)


async def _trade_them(trader: _Trader, fast) -> None:
    """Every trade the fast path took, through ``trade``: its signal sized and sent at the
    close before its entry; then the clock past the last exit and a reconcile (its fills
    journaled)."""
    stamps = trader.stamps
    for _, trade in fast.trades.iterrows():
        t = int(np.searchsorted(stamps, int(trade.entry_time))) - 1  # the signal's bar
        trader.at_close(t)
        assert await trader.held() == 0.0  # the fast path's previous trade is done here too
        await trader.enter(t)
    trader.at_close(len(stamps) - 1)
    await trader.settle()


def _journal(root):
    with duckdb.connect(str(root / "cryptobot.duckdb"), read_only=True) as con:

        def rows(sql):
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        fills = rows("SELECT * FROM fills ORDER BY ts, id")
        orders = {(o["venue"], o["client_order_id"]): o for o in rows("SELECT * FROM orders")}
    return fills, orders


def test_ema_cross_through_trade_on_the_replay_exchange_gives_the_backtests_trades(
    lake, settings, tmp_path
):
    settings = _settings(settings)
    fast, seen = _fast_path(lake, settings)
    trades = fast.trades
    assert len(trades) >= 5
    assert {"target", "stop"} <= set(fast.fills.kind)
    assert "signal" not in set(fast.fills.kind)  # no reversal in the window (docstring)
    trader = _Trader(lake, seen, settings, tmp_path)
    asyncio.run(_trade_them(trader, fast))
    fills, orders = _journal(tmp_path)
    trips = [t for t in derive(fills, orders=orders) if t["closed_at"] is not None]
    closed = trades[trades.reason != "open"]
    assert len(trips) == len(closed) >= 10
    for trip, (k, trade) in zip(trips, closed.iterrows(), strict=True):
        assert (trip["side"], trip["opened_at"]) == (trade.side, int(trade.entry_time))
        assert trip["qty"] == pytest.approx(trade.qty, rel=1e-12)
        assert trip["entry_price"] == pytest.approx(trade.entry_price, rel=1e-12)
        assert trip["exit_price"] == pytest.approx(trade.exit_price, rel=1e-12)
        assert trip["fee"] == pytest.approx(trade.fees, abs=0.005), k
        assert trip["pnl"] == pytest.approx(trade.net, abs=0.005), k
        theirs = fast.fills[fast.fills.trade == k]
        ours = [f for f in fills if f["client_order_id"].startswith(trip["client_order_id"])]
        assert [f["client_order_id"] for f in ours] == list(theirs.client_order_id), k
        assert [int(f["ts"]) for f in ours] == list(theirs.time.astype(int)), k
        assert [f["price"] for f in ours] == pytest.approx(list(theirs.price), rel=1e-12)
        assert [f["amount"] for f in ours] == pytest.approx(list(theirs.qty), rel=1e-12)
        assert [f["fee"] for f in ours] == pytest.approx(list(theirs.fee), abs=1e-9)
        assert [_kind(leg) for leg in trip["exit_legs"]] == list(theirs.kind[1:]), k
    kinds = [tuple(fast.fills.kind[fast.fills.trade == k]) for k in closed.index]
    assert ("entry", "target", "stop") in kinds and ("entry", "target", "target") in kinds
    (still,) = [t for t in derive(fills, orders=orders) if t["closed_at"] is None]
    (open_,) = trades[trades.reason == "open"].itertuples()  # the window ends with it open
    assert (still["opened_at"], still["qty"]) == (int(open_.entry_time), open_.qty)
    assert still["entry_price"] == pytest.approx(open_.entry_price, rel=1e-12)


def _kind(leg: str) -> str:
    """A journal exit leg as the fast path names its fill (``tp2``: a target)."""
    return "target" if leg.startswith("tp") else leg
