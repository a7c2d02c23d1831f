"""The fast path's desk: many symbols on one equity, in time order, through the composer.

The decisions are the composer's (``engine.composer``): at each close that matters (a signal,
an hourly equity check) which signals may open, the breaker fed and a trip's close-all at the
next open, the sizing through ``risk.orders.size_orders`` (ladder, breaker size multiple, the
gate chain) exactly as ``size`` and ``trade`` do, the refusals counted, the cooldown after a
loss. This desk answers its calls with the compiled kernel: an accepted signal is filled at the
next open (plus slippage, inside the bar) and lived by ``kernel.advance`` with the sized
quantity and liquidation price, one step per bar; the kernel knows a position's exits ahead,
so the desk stops only at the composer's moments.

The intent's entry is the next bar's open: the market order is sized when it is sent, at the
price it is sent at, and the symbol's slippage counts in the risk budget (``SizingSetup
.slippage_bps``). Sized from the signal close instead, a gap from the close to the open and the
slippage made a stop-out lose more than the target (mean 1.05x, up to 2x). A stop given as a
distance (an ATR multiple) is placed from the entry fill (``risk.stops``), as the fixed-units
path and the reference strategy place it. Each trade keeps the $ risk it was sized for
(``PortfolioRun.risk_usd``, the target), so its realised R is its net over that budget.

Open positions are stepped in time with the composer: at each close that matters every open
position has lived up to that close, and one that decided to close at the next open (an
opposite signal, a strategy exit, the time stop) has done it, so the account seen by the sizing
and the breaker is the one at that moment. A new position lives its entry bar at once (one
stopped out there never counts as open). A breaker's close-all is a forced close, the position
step's own input, as a window's end is.
"""

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import SymbolBars
from cryptobot.backtest.engine import Costs, Signals, candles_of
from cryptobot.core.market import Market
from cryptobot.core.order import SizedOrder
from cryptobot.core.settings import RiskSettings
from cryptobot.engine.composer import Composer, Lane, Rules, answer
from cryptobot.fills.brackets import Bracket
from cryptobot.fills.model import beyond
from cryptobot.manage.policy import Policy
from cryptobot.manage.step import S_PENDING, SCALE_IN, PositionState
from cryptobot.risk import stops
from cryptobot.risk.orders import SizingSetup


@dataclass(frozen=True)
class PortfolioSetup:
    exchange: str
    strategy: str
    risk: RiskSettings
    sizing: SizingSetup
    markets: Mapping[str, Market]
    brackets_of: Callable[[Market], list[Bracket]]
    policy: Policy
    costs: Costs
    initial_equity: float
    use_breakers: bool = True
    cooldown_bars: int = 0
    symbol_costs: Mapping[str, Costs] = field(default_factory=dict)  # a market's own fees


@dataclass
class _Open:
    """An accepted trade whose position is still open: where it has lived to, and its books."""

    row: int
    symbol: int
    entry: kernel.Entry
    pos: PositionState
    end_bar: int
    funding: float = 0.0  # booked so far
    marked: float = 0.0  # its value at the last close it lived
    exit_bar: int = -1

    @property
    def lived(self) -> int:
        """The last bar the position has lived."""
        return self.entry.bar + self.bars - 1

    @property
    def bars(self) -> int:
        return int(self.pos.vec[kernel.S_BARS])

    @property
    def closes_next_open(self) -> bool:
        """Whether its last close decided to close it at the next open."""
        pending = int(self.pos.vec[S_PENDING])
        return pending != 0 and pending != SCALE_IN


@dataclass
class PortfolioRun:
    bars: list[SymbolBars]
    trades: np.ndarray  # kernel rows
    trade_symbol: np.ndarray  # symbol index of each row
    fills: np.ndarray
    pnl: np.ndarray  # (symbols, bars)
    risk_usd: np.ndarray = field(default_factory=lambda: np.zeros(0))  # $ risk target per row
    # per row, the entry's client order id: the one ``size`` gives the same signal live
    client_order_ids: list[str] = field(default_factory=list)
    # per fill row, the client order id of the order it filled as the venue recorded it (a
    # driver with a venue: ``backtest.stepwise``); None: named from the kinds (the fast path)
    fill_order_ids: list[str | None] | None = None
    refused: Counter = field(default_factory=Counter)
    breaker_trips: list[tuple[int, str]] = field(default_factory=list)
    notes: tuple[str, ...] = ()  # what a driver found about the run (``backtest.stepwise``)


def run_portfolio(
    bars: Sequence[SymbolBars],
    signals: Sequence[Signals],
    setup: PortfolioSetup,
    start: int = 0,
    end: int | None = None,
) -> PortfolioRun:
    """``bars`` share one time grid (``align``); ``signals`` are per symbol on that grid."""
    return _Desk(bars, signals, setup, start, len(bars[0]) if end is None else end).run()


def composer_of(setup: PortfolioSetup, bars: Sequence[SymbolBars], signals: Sequence[Signals],
                *, start: int, end: int) -> Composer:  # fmt: skip
    """The run's composer (``engine.composer``): one lane per symbol, each sized with its own
    market's slippage in the risk budget. Both desks (this one and ``backtest.stepwise``'s) are
    driven by it."""
    rules = Rules(exchange=setup.exchange, strategy=setup.strategy, risk=setup.risk,
                  markets=setup.markets, brackets_of=setup.brackets_of,
                  use_breakers=setup.use_breakers, cooldown_bars=setup.cooldown_bars)  # fmt: skip
    lanes = [Lane(sb.symbol, sb.timeframe, sg) for sb, sg in zip(bars, signals, strict=True)]
    sizing = [replace(setup.sizing, slippage_bps=float(costs_of(setup, sb.symbol).slippage_bps))
              for sb in bars]  # fmt: skip
    return Composer(rules=rules, lanes=lanes, sizing=sizing, stamps=bars[0].timestamps,
                    start=start, end=end)  # fmt: skip


def costs_of(setup: PortfolioSetup, symbol: str) -> Costs:
    """A symbol's costs: its market's own fees, else the run's."""
    return setup.symbol_costs.get(symbol, setup.costs)


class _Desk:
    """The fast path's desk: it answers the composer's calls (``engine.composer``) by living
    each trade in the compiled kernel, which knows a position's exits ahead; it stops only at
    the closes that matter (``Composer.moments``)."""

    def __init__(self, bars, signals, setup: PortfolioSetup, start: int, end: int) -> None:
        self.bars, self.s = list(bars), setup
        self.start, self.end = start, end
        self.stamps = bars[0].timestamps
        p = setup.policy
        self.rules = p.rules()
        self.signals = [sg.checked(p) for sg in signals]
        n_sig = sum(int(np.count_nonzero(sg.side[start:end])) for sg in self.signals)
        self.trades = np.zeros((max(1, n_sig), len(kernel.TRADE_COLUMNS)))
        self.symbol_of = np.zeros(max(1, n_sig), dtype=np.int64)
        self.risk_usd = np.zeros(max(1, n_sig))
        self.cids: list[str] = []
        self.fills = np.zeros((max(1, n_sig) * p.max_fills, len(kernel.FILL_COLUMNS)))
        self.pnl = np.zeros((len(bars), len(self.stamps)))
        self.k = self.nf = 0
        self.marked_to, self.marked = start - 1, setup.initial_equity
        self.open: list[_Open] = []
        self.out = PortfolioRun(self.bars, self.trades, self.symbol_of, self.fills, self.pnl)
        self.candles = [candles_of(b) for b in self.bars]
        self.inputs = [sg.inputs() for sg in self.signals]
        self.books = [kernel.Books(self.pnl[i], self.trades, self.fills) for i in range(len(bars))]
        self.acts = kernel.new_actions(self.rules)
        self.costs = [costs_of(setup, b.symbol).array() for b in self.bars]
        self.composer = composer_of(setup, self.bars, self.signals, start=start, end=end)
        self.bar_ms = self.composer.bar_ms

    def run(self) -> PortfolioRun:
        for t in self.composer.moments():
            answer(self.composer.close(int(t)), self)
        for o in list(self.open):
            self._advance(o, len(self.stamps) - 1)
            self._finish(o)
        self.out.trades, self.out.trade_symbol = self.trades[: self.k], self.symbol_of[: self.k]
        self.out.risk_usd = self.risk_usd[: self.k]
        self.out.client_order_ids = self.cids
        fills = self.fills[: self.nf]  # booked as the positions lived: put each trade's together
        self.out.fills = fills[np.argsort(fills[:, kernel.F_TRADE], kind="stable")]
        self.out.refused = self.composer.refused
        self.out.breaker_trips = self.composer.trips
        return self.out

    # ---- the composer's calls ---------------------------------------------------------------
    def live_to(self, t: int) -> None:
        """Every open position lived through bar t's close, and through bar t+1's open when it
        decided to close there."""
        for o in list(self.open):
            self._advance(o, t)
            if o.exit_bar < 0 and o.closes_next_open:
                self._advance(o, t + 1)
            if o.exit_bar >= 0:
                self._finish(o)

    def account_at(self, t: int) -> tuple[int, float]:
        """Bar t's close and the equity marked there."""
        return int(self.stamps[t] + self.bar_ms), self.equity_at(t)

    def close_all_at(self, at: int) -> None:
        """Every position open at bar ``at``'s open closed there (a forced close: a breaker's
        trip, the window's end); after the last bar, none (they stay open, marked)."""
        if at >= len(self.stamps):
            return
        for o in list(self.open):
            o.end_bar = at
            self._advance(o, at)
            self._finish(o)

    def price_at_send(self, i: int, t: int) -> float:
        """A market order sent at bar t's close goes at the next open."""
        return float(self.bars[i].bars[t + 1, kernel.OPEN])

    def send(self, i: int, t: int, order: SizedOrder, sent_at: float) -> str | None:
        """The sized order filled at the next open (plus slippage, inside the bar) and its
        entry bar lived at once (a stop-out there is never an open position); the refusal
        when its fill is beyond its own stop."""
        sb, sg = self.bars[i], self.signals[i]
        side = int(sg.side[t])
        f = order.figures
        market = self.s.markets[sb.symbol]
        qty = float(f["qty"]) * market.contract_size
        step = (market.step_size or 0.0) * market.contract_size
        i0 = t + 1
        price = kernel.entry_fill(sb.bars, i0, side, qty, self.costs[i])
        stop = float(stops.initial_stop(side, price, sg.stop_price[t], sg.stop_distance[t]))
        if beyond(side, price, stop):
            return "entry gapped through its stop"
        liq = f.get("liquidation_price")
        liq_ratio = liq / sent_at if liq else math.nan
        entry = kernel.entry_of(
            bar=i0, side=side, qty=qty, price=price, stop=stop, liq_ratio=liq_ratio,
            leverage=float(f["leverage"]), step=step, tick=market.tick_size or 0.0,
        )  # fmt: skip
        target = f["risk_target_usd"]  # None when margin_pct sizes the trade
        self.risk_usd[self.k] = math.nan if target is None else float(target)
        self.cids.append(order.client_order_id)
        self.symbol_of[self.k] = i
        self.composer.entered(i, side=side, notional=entry.qty * entry.price,
                              leverage=entry.leverage)  # fmt: skip
        pos = kernel.new_state(self.rules)
        self.nf = kernel.open_trade(self.rules, self.costs[i], entry, pos, self.books[i], self.k,
                                    self.nf)  # fmt: skip
        # the window's end (the composer's close-all at bar ``end``) is given to the kernel
        # ahead, so it lives that forced close in the same call as the bars before it
        o = _Open(self.k, i, entry, pos, self.end)
        self.open.append(o)
        self.k += 1
        self._advance(o, i0)
        if o.exit_bar >= 0:
            self._finish(o)
        return None

    # ---- the trades ------------------------------------------------------------------------
    def _advance(self, o: _Open, upto: int) -> None:
        if o.exit_bar >= 0 or o.lived >= upto:
            return
        self.nf, o.funding, o.marked, o.exit_bar = kernel.advance_trade(
            candles=self.candles[o.symbol], inputs=self.inputs[o.symbol], rules=self.rules,
            costs=self.costs[o.symbol], entry=o.entry, end_bar=o.end_bar, pos=o.pos,
            acts=self.acts, books=self.books[o.symbol], row=o.row, fills_at=self.nf, upto=upto,
            funding=o.funding, marked=o.marked,
        )  # fmt: skip

    def _finish(self, o: _Open) -> None:
        """Its row written, out of the open positions, its symbol free from the signal after
        (the composer's cooldown)."""
        kernel.write_row(self.trades[o.row], o.pos.vec, o.entry, self.bars[o.symbol].bars,
                         o.exit_bar, o.funding)  # fmt: skip
        self.open.remove(o)
        trade = self.trades[o.row]
        after = kernel.next_signal_bar(trade) if trade[kernel.T_OPEN] == 0 else self.end
        self.composer.released(o.symbol, signal_bar=int(after), net=float(trade[kernel.T_NET]),
                               exit_bar=int(trade[kernel.T_EXIT_BAR]))  # fmt: skip

    def equity_at(self, t: int) -> float:
        """Equity marked at bar t's close (trades only ever write from their entry bar on)."""
        if t > self.marked_to:
            self.marked += float(self.pnl[:, self.marked_to + 1 : t + 1].sum())
            self.marked_to = t
        return self.marked
