"""Many symbols on one equity, in time order, through the risk engine (plan 5's portfolio).

Every signal, across all symbols, is taken in the order of its bar (then symbol). For each:
the equity marked at that close, the positions open at the next open and the circuit breaker's
state make an account; the signal becomes an intent and goes through
``risk.orders.size_orders`` - ladder, breaker size multiple, sizing, the gate chain - exactly
as ``size`` and ``trade`` do. A refused signal is counted with its reason. An accepted one is
filled at the next open (plus slippage, inside the bar) and lived by ``kernel.run_trade`` with
the sized quantity and liquidation price, one step per bar.

The intent's entry is the next bar's open: the market order is sized when it is sent, at the
price it is sent at, and the symbol's slippage counts in the risk budget (``SizingSetup
.slippage_bps``). Sized from the signal close instead, a gap from the close to the open and the
slippage made a stop-out lose more than the target (mean 1.05x, up to 2x). A stop given as a
distance (an ATR multiple) is placed from the entry fill, as the fixed-units path and the
reference strategy place it. Each trade keeps the $ risk it was sized for
(``PortfolioRun.risk_usd``, the target), so its realised R is its net over that budget.

Open positions are stepped in time with the driver: at each bar whose close matters (a
signal, an hourly equity check) every open position has lived up to that close, and one that
decided to close at the next open (an opposite signal, a strategy exit, the time stop) has
done it, so the account seen by the sizing and the breaker is the one at that moment. A new
position lives its entry bar at once (one stopped out there never counts as open).

The circuit breaker is fed the marked equity at every signal and at least once an hour of bar
time. When it trips with an exit action (daily: close directional positions; weekly/monthly:
flatten), every open position is closed at the next open: a forced close, the position step's
own input, as a window's end is. A weekly halt and a monthly stop need a manual reset live;
the backtest plays that reset at the start of the next ISO week / month.
"""

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import SymbolBars
from cryptobot.backtest.engine import Costs, Signals, candles_of
from cryptobot.core.market import Market
from cryptobot.core.order import Intent
from cryptobot.core.settings import RiskSettings
from cryptobot.core.setup import setup_id
from cryptobot.fills.brackets import Bracket
from cryptobot.fills.costs import C_SLIPPAGE
from cryptobot.fills.model import beyond
from cryptobot.manage.policy import Policy
from cryptobot.manage.step import S_PENDING, SCALE_IN, PositionState
from cryptobot.risk import breakers, cooldown, gates
from cryptobot.risk.orders import SizingSetup, size_orders

HOUR_MS = 3_600_000
EXIT_ACTIONS = {
    breakers.Action.flatten_all,
    breakers.Action.exit_all,
    breakers.Action.close_directional,
    breakers.Action.reduce_positions,
}


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
    # driver with a venue: ``engine.stepwise``); None: named from the kinds (the fast path)
    fill_order_ids: list[str | None] | None = None
    refused: Counter = field(default_factory=Counter)
    breaker_trips: list[tuple[int, str]] = field(default_factory=list)
    notes: tuple[str, ...] = ()  # what a driver found about the run (``engine.stepwise``)


def run_portfolio(
    bars: Sequence[SymbolBars],
    signals: Sequence[Signals],
    setup: PortfolioSetup,
    start: int = 0,
    end: int | None = None,
) -> PortfolioRun:
    """``bars`` share one time grid (``align``); ``signals`` are per symbol on that grid."""
    return _Driver(bars, signals, setup, start, len(bars[0]) if end is None else end).run()


class _Driver:
    def __init__(self, bars, signals, setup: PortfolioSetup, start: int, end: int) -> None:
        self.bars, self.signals, self.s = list(bars), list(signals), setup
        self.start, self.end = start, end
        self.stamps = bars[0].timestamps
        self.bar_ms = int(np.min(np.diff(self.stamps))) if len(self.stamps) > 1 else HOUR_MS
        n_sig = sum(int(np.count_nonzero(sg.side[start:end])) for sg in signals)
        self.trades = np.zeros((max(1, n_sig), len(kernel.TRADE_COLUMNS)))
        self.symbol_of = np.zeros(max(1, n_sig), dtype=np.int64)
        self.risk_usd = np.zeros(max(1, n_sig))
        self.cids: list[str] = []
        self.fills = np.zeros((max(1, n_sig) * setup.policy.max_fills, len(kernel.FILL_COLUMNS)))
        self.pnl = np.zeros((len(bars), len(self.stamps)))
        self.k = self.nf = 0
        self.marked_to, self.marked = start - 1, setup.initial_equity
        self.allowed = np.full(len(bars), start, dtype=np.int64)
        self.open: list[_Open] = []
        self.breaker = breakers.BreakerState()
        self.out = PortfolioRun(self.bars, self.trades, self.symbol_of, self.fills, self.pnl)
        p = setup.policy
        self.rules = p.rules()
        self.signals = [sg.checked(p) for sg in self.signals]
        self.candles = [candles_of(b) for b in self.bars]
        self.inputs = [sg.inputs() for sg in self.signals]
        self.books = [kernel.Books(self.pnl[i], self.trades, self.fills) for i in range(len(bars))]
        self.acts = kernel.new_actions(self.rules)
        self.costs = [setup.symbol_costs.get(b.symbol, setup.costs).array() for b in self.bars]
        self.sizing = [replace(setup.sizing, slippage_bps=float(c[C_SLIPPAGE])) for c in self.costs]

    def run(self) -> PortfolioRun:
        for t in self._moments():
            self._live_to(t)
            due = [i for i, sg in enumerate(self.signals) if sg.side[t] and t >= self.allowed[i]]
            if self.s.use_breakers:
                self._feed_breaker(t)
            for i in due:
                self._consider(t, i)
        for o in list(self.open):
            self._advance(o, len(self.stamps) - 1)
            self._finish(o)
        self.out.trades, self.out.trade_symbol = self.trades[: self.k], self.symbol_of[: self.k]
        self.out.risk_usd = self.risk_usd[: self.k]
        self.out.client_order_ids = self.cids
        fills = self.fills[: self.nf]  # booked as the positions lived: put each trade's together
        self.out.fills = fills[np.argsort(fills[:, kernel.F_TRADE], kind="stable")]
        return self.out

    def _live_to(self, t: int) -> None:
        """Every open position lived through bar t's close, and through bar t+1's open when it
        decided to close there."""
        for o in list(self.open):
            self._advance(o, t)
            if o.exit_bar < 0 and o.closes_next_open:
                self._advance(o, t + 1)
            if o.exit_bar >= 0:
                self._finish(o)

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
        """Its row written, out of the open positions, its symbol free from the signal after."""
        kernel.write_row(self.trades[o.row], o.pos.vec, o.entry, self.bars[o.symbol].bars,
                         o.exit_bar, o.funding)  # fmt: skip
        self.open.remove(o)
        trade = self.trades[o.row]
        allowed = kernel.next_signal_bar(trade) if trade[kernel.T_OPEN] == 0 else self.end
        self.allowed[o.symbol] = cooldown.allowed_after(
            allowed, trade[kernel.T_NET], int(trade[kernel.T_EXIT_BAR]), self.s.cooldown_bars
        )

    def _moments(self) -> np.ndarray:
        """Bars whose close matters: a signal, or (with breakers) an hourly equity check."""
        span = np.arange(self.start, self.end - 1)
        moments = span[np.any([sg.side[self.start : self.end - 1] != 0 for sg in self.signals], 0)]
        if self.s.use_breakers:
            closes = self.stamps[span] + self.bar_ms
            hourly = span[closes % max(HOUR_MS, self.bar_ms) == 0]
            moments = np.union1d(moments, hourly)
        return moments

    def equity_at(self, t: int) -> float:
        """Equity marked at bar t's close (trades only ever write from their entry bar on)."""
        if t > self.marked_to:
            self.marked += float(self.pnl[:, self.marked_to + 1 : t + 1].sum())
            self.marked_to = t
        return self.marked

    def _feed_breaker(self, t: int) -> None:
        now = int(self.stamps[t] + self.bar_ms)
        self.breaker = manual_reset(self.breaker, now, self.s.risk)
        state, actions = breakers.step(
            self.breaker, breakers.Equity(now, self.equity_at(t)), self.s.risk
        )
        if breakers.SEVERITY[state.mode] > breakers.SEVERITY[self.breaker.mode]:
            self.out.breaker_trips.append((now, state.reason))  # a trip, not its release
        self.breaker = state
        if EXIT_ACTIONS & set(actions):
            self._close_all_at(t + 1)

    def _consider(self, t: int, i: int) -> None:
        sb, sg, s = self.bars[i], self.signals[i], self.s
        side = int(sg.side[t])
        sent_at = float(sb.bars[t + 1, kernel.OPEN])  # the market order goes at the next open
        intent = signal_intent(s=s, symbol=sb.symbol, timeframe=sb.timeframe, sg=sg, t=t,
                               ts=int(self.stamps[t]), sent_at=sent_at)  # fmt: skip
        if intent is None:
            self.out.refused[NO_STOP] += 1  # e.g. ATR still warming up
            return
        account = gates.AccountState(
            equity=self.equity_at(t), positions=self._positions(), breaker=self.breaker
        )
        order = size_orders([intent], s.markets, s.brackets_of, account, self.sizing[i])[0]
        if order.status != "sized":
            self.out.refused[reason_key(order.reason)] += 1
            return
        f = order.figures
        market = s.markets[sb.symbol]
        qty = float(f["qty"]) * market.contract_size
        step = (market.step_size or 0.0) * market.contract_size
        i0 = t + 1
        price = kernel.entry_fill(sb.bars, i0, side, qty, self.costs[i])
        stop = stop_of(sg, t, price, side)  # a distance: from the fill, as run_signals
        if beyond(side, price, stop):
            self.out.refused["entry gapped through its stop"] += 1
            return
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
        self.allowed[i] = self.end  # while the position is open
        pos = kernel.new_state(self.rules)
        self.nf = kernel.open_trade(self.rules, self.costs[i], entry, pos, self.books[i], self.k,
                                    self.nf)  # fmt: skip
        o = _Open(self.k, i, entry, pos, self.end)
        self.open.append(o)
        self.k += 1
        self._advance(o, i0)  # its entry bar: a stop-out there is never an open position
        if o.exit_bar >= 0:
            self._finish(o)

    def _positions(self) -> tuple[gates.OpenPosition, ...]:
        """The positions open at the next open (``_live_to`` has lived them up to it)."""
        out = []
        for o in self.open:
            notional = o.entry.qty * o.entry.price
            side = "long" if o.entry.side > 0 else "short"
            out.append(gates.OpenPosition(self.bars[o.symbol].symbol, side, notional,
                                          notional / o.entry.leverage))  # fmt: skip
        return tuple(out)

    def _close_all_at(self, at: int) -> None:
        """Every position open at bar ``at``'s open closed there (a forced close)."""
        if at >= self.end:
            return
        for o in list(self.open):
            o.end_bar = at
            self._advance(o, at)
            self._finish(o)


NO_STOP = "no stop to size the risk from"


def signal_intent(*, s: "PortfolioSetup", symbol: str, timeframe: str, sg: Signals, t: int,
                  ts: int, sent_at: float) -> Intent | None:  # fmt: skip
    """The order intent of the signal at bar ``t`` sent at ``sent_at`` (its stop placed by
    :func:`stop_of`), or None when it has no stop to size the risk from and the sizing needs
    one. The fast path and the stepwise composer both turn signals into intents here. Its
    signal id is the id of the setup behind the signal (``core.setup.setup_id``), so the
    client order id sized from it is the one ``scan | size`` gives that setup live."""
    side = int(sg.side[t])
    stop = stop_of(sg, t, sent_at, side)
    method = s.risk.for_order(strategy=s.strategy).sizing.method
    if math.isnan(stop) and method != "margin_pct":
        return None
    name = "long" if side > 0 else "short"
    anchor = int(sg.anchor[t]) if sg.anchor is not None and sg.anchor[t] >= 0 else ts
    signal_id = setup_id(exchange=s.exchange, symbol=symbol, strategy=s.strategy,
                         timeframe=timeframe, side=name, status="triggered",
                         anchor_ts=anchor)  # fmt: skip
    return Intent(
        exchange=s.exchange, symbol=symbol, side=name, entry=sent_at,
        stop=None if math.isnan(stop) else stop, strategy=s.strategy, timeframe=timeframe,
        ts=ts, signal_id=signal_id,
    )  # fmt: skip


def stop_of(sg: Signals, t: int, entry: float, side: int) -> float:
    """The stop of the signal at bar ``t`` for an entry at ``entry`` (``kernel.initial_stop``:
    its price, else its distance from the entry, else NaN)."""
    return float(kernel.initial_stop(side, entry, sg.stop_price[t], sg.stop_distance[t]))


def reason_key(reason: str) -> str:
    """Refusal reasons without their figures, so they count together."""
    return reason.split(":")[0].strip()


def manual_reset(state: breakers.BreakerState, now: int, risk: RiskSettings):
    """The trader's reset of a weekly halt (next ISO week) or monthly stop (next month)."""
    if state.mode not in (breakers.Mode.halted, breakers.Mode.stopped) or state.since is None:
        return state
    then, moment = (datetime.fromtimestamp(x / 1000, UTC) for x in (state.since, now))
    if state.mode is breakers.Mode.halted:
        moved = then.isocalendar()[:2] != moment.isocalendar()[:2]
    else:
        moved = (then.year, then.month) != (moment.year, moment.month)
    if not moved:
        return state
    if state.mode is breakers.Mode.stopped:
        state = _as_reconfigured(state)
    return breakers.step(state, breakers.Reset(now), risk)[0]


def _as_reconfigured(state: breakers.BreakerState) -> breakers.BreakerState:
    """A monthly stop as if the trader had changed the risk configuration since it tripped.

    ``breakers.Reset`` deliberately leaves a monthly stop alone (live, only a configuration
    change releases it: ``_release`` compares the stop's ``config_key``), so feeding it a Reset
    kept the backtest stopped for the rest of the run. Clearing the key lets the breaker's own
    release rule run at the next event, which restarts the month from the last equity; the day
    and week restart there too, as after a weekly reset, so the loss that stopped the month does
    not trip the weekly limit again on the first bar of the new month."""
    fresh = state.last_equity
    return replace(state, config_key=None, day_start=fresh, week_start=fresh)
