"""The venue desk: the composer (``engine.composer``) stepped bar by bar against a trading
venue, ``backtest --stepwise``.

The composer decides, in the one order both desks follow (its docstring): which signals may
open, the breaker fed and a trip's close-all, the sizing through the gates, the cooldown. This
desk answers its calls with a ``TradingExchange``: the caller's ``pace`` brings the venue to
each close, the desk reads the time from the venue (``now()``) and the price an order is sent
at from the venue's ticker, and never reads a bar past the close. At each close, per symbol:

1. the venue has matched the bar: the desk reads its fills back (``fetch_my_trades``);
2. an entry sent at the previous close has filled: a ``manage.Position`` opens at the venue's
   fill price and fee, and its take-profit ladder goes to the venue as reduce-only orders;
3. the open position lives the bar through ``Position.step_bar`` - the compiled step the
   backtest kernel runs, so breakeven, the ATR trail, the time stop, strategy exits and the
   ladder exist once. What it decides becomes orders: a moved stop replaces the venue's
   reduce-only stop-market, a decision to close at the next open is a reduce-only market order;
   A scale-in decided at a close (plan 3's per-leg rule) goes the same way: what the position
   will do at the next open (``Position.preview_open``: the compiled rule on a copy) is sent
   as a market add and a reduce-only market cut, the position's stop is re-sent for what the
   venue will hold after them, and each leg with its own stop (at its entry) gets a
   reduce-only stop of that leg's quantity: a one-way venue holds one net position per
   symbol, so the kernel's legs are stops of part of it;
4. the composer feeds the breaker the venue's equity; a trip with an exit action closes the
   position at the next open (a reduce-only market order);
5. the strategy's signal of the bar (the runner's arrays: one code path per strategy), sized
   by the composer, is sent as a market order with its stop as a reduce-only stop-market.

Every order goes with the client order id the live path gives that sized order and leg
(``risk.orders.leg_order_id``: the entry's, ``-sl``, ``-tp1``.., ``-add1``/``-out1``..,
``-close``), so the venue's orders and fills carry them. A venue refuses an id it has seen, so a
stop moved or resized, or a second close, takes the leg's next number (``-sl2``..): each fill's
leg (``risk.orders.leg_of_order``) is the one the fast path names, but a late exit's (below): a
close at market, where the fast path names the stop or target it filled in the entry bar.

Why the position, not the venue, holds the rules: the venue only knows orders, so breakeven,
the trail, the time stop and the strategy's exits would need a second copy of their rules to
be turned into orders in advance. The position runs the one compiled step and emits the order
changes; the venue fills them by ``fills/`` (the same functions the kernel calls), and its
fills, fees, funding and equity are what this run reports. The position's own idea of its
fills is compared with the venue's each bar: a quantity the venue still holds that the position
has closed (see below) is sent as a reduce-only market order and counted in ``notes``.

Where a stepwise caller cannot equal the fast path (pinned by tests/test_engine_stepwise.py):

- **the entry bar**: the kernel knows the entry fill when it lives the entry bar, so its
  take-profits (R multiples of the fill) and a stop given as a distance from the fill (ema_cross
  ``stop_atr``) are live in that bar. Stepwise, the fill is known only once that bar has
  closed: a stop given as a price goes with the entry (live in the entry bar, as the kernel),
  targets and distance stops go after it. An exit the position books in its entry bar is
  therefore filled by the venue at the next open (a *late exit*, counted in ``notes``).
- **the price at send**: the fast path sizes a market order at the next bar's open (the price
  it is sent at); this desk asks the venue (its ticker's last price): a replay venue's after
  a close is that open, live it is the last trade.
- **cooldown after a loss**: a trade closing at the next open ends after the close at which the
  next signal is sized; this desk reports the loss of the trade marked at that close
  (the fast path its exit fill's).
- **ticks**: none. Stops and targets sit on the market's price tick (the venue refuses
  others) by one rule, ``manage.ticks``, which the kernel's position follows too.
- **funding where none is stored**: the venue charges none; the fast path charges
  ``backtest.funding_fallback_rate`` (with a warning).
- **an entry that fills beyond its stop**: the fast path never enters it; the venue has filled
  it, so the composer closes it at the next open (counted in ``notes``).

- **a leg's stop behind a tighter position stop**: in a bar reaching both, the kernel fills
  the legs' own stops first, then the rest at the position's stop, even where the trail or
  breakeven has moved the position's stop past a leg's entry; a venue meets the tighter stop
  first and it closes the whole position there (tests/test_engine_stepwise_scale_in.py).

- **an entry sent at the same close as another symbol's**: the gates see it at the price it
  was sent at (its fill is still to come); the fast path sees its fill.
- **an entry sent while the symbol's position still closes at that open** (a reversal, a late
  exit): a venue keeps the leverage of an open position, so the new one takes it (counted in
  ``notes`` where it differs from the sized leverage; the fast path books the sized one).

Several symbols share the account, in the composer's order: at each close every symbol's bar
is lived first, then the breaker is fed the account's equity, then the signals are sized
symbol after symbol, each seeing the positions open at the next open and the entries sent
before it. Each symbol's PnL is read back from the venue's records, not shared out: its fills
(realised PnL, fees), its funding payments (``fetch_funding_payments``: the venue books
funding on the account, one payment per symbol and funding time) and its open position.
"""

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
from dataclasses import dataclass, field

import numpy as np

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import SymbolBars
from cryptobot.backtest.engine import Signals
from cryptobot.backtest.portfolio import PortfolioRun, PortfolioSetup, composer_of, costs_of
from cryptobot.core.account import Fill
from cryptobot.core.order import SizedOrder
from cryptobot.data.lake import Lake
from cryptobot.engine.composer import NO_PRICE, answer_async
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.errors import TradingError
from cryptobot.exchange.market_rules import snap
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.liquidation import venue_of
from cryptobot.fills.model import ENTRY, FORCED, KIND_NAMES, LIQUIDATION, STOP, TARGET, beyond
from cryptobot.manage.position import Action, Bar, BarInputs, Position
from cryptobot.manage.ticks import on_tick
from cryptobot.risk import stops
from cryptobot.risk.orders import RESENT_LEGS, leg_order_id

#: a fill's kind when the position booked no exit like it (the venue's order type says)
_KIND_OF_ORDER = {"market": FORCED, "stop_market": STOP, "take_profit": TARGET,
                  "liquidation": LIQUIDATION}  # fmt: skip
_KIND_CODES = {name: code for code, name in KIND_NAMES.items()}
LATE_EXIT = "late exit: a level the position reached in its entry bar, filled at the next open"


@dataclass
class _OrderIds:
    """The client order ids of one sized order's legs, the live path's
    (``risk.orders.leg_order_id``): the entry's own, then ``-sl`` for its stop, ``-tp1``.. for
    the ladder's rungs, ``-add1``/``-out1``.. for each scale-in's add and cut, ``-close`` for a
    close at market; the stop or a close sent again (a stop moved or resized) takes the leg's
    next number (``-sl2``..), as a venue refuses an id it has seen."""

    cid: str  # the sized order's (``SizedOrder.client_order_id``): the entry's id
    sent: Counter = field(default_factory=Counter)  # orders sent per leg

    def take(self, leg: str) -> str:
        """The id of the leg's next order: ``sl`` and ``close`` numbered from the second on,
        ``add`` and ``out`` their next rung (``add1``, ``add2``..)."""
        self.sent[leg] += 1
        if leg in RESENT_LEGS:
            return leg_order_id(self.cid, leg, sent=self.sent[leg])
        return leg_order_id(self.cid, f"{leg}{self.sent[leg]}")

    def target(self, rung: int) -> str:
        """The id of the ladder's ``rung`` (1: the first), placed once."""
        return leg_order_id(self.cid, f"tp{rung}")


@dataclass
class _Sent:
    """An entry sent at a close, waiting for its fill at the next open."""

    bar: int  # the bar it fills in
    side: int
    notional: float  # at the price it was sent at
    stop: float  # the signal's stop price; NaN: a distance from the fill
    distance: float
    liq_ratio: float
    leverage: float
    step: float
    risk_usd: float
    orders: list[str]  # client order ids: the entry, then its stop if placed with it
    ids: _OrderIds  # its legs' ids, taken over by its trade


@dataclass
class _Trade:
    """The position the composer manages and the venue orders that are its."""

    row: int
    entry: kernel.Entry
    pos: Position
    funding_from: float  # the account's funding when it opened
    end_bar: int  # closed (forced) at this bar's open
    ids: _OrderIds
    orders: set[str] = field(default_factory=set)
    stop_id: str | None = None
    stop_at: float = math.nan
    stop_qty: float = 0.0  # contracts the stop covers
    leg_stops: dict[int, tuple[str, float, float]] = field(default_factory=dict)  # leg: id, at, qty
    closing: bool = False  # a reduce-only market order closes it at the next open
    # ... for a stop the close has passed: the kernel's position holds on to the next open and
    # fills its stop there as a gap, so the gates still see it and its symbol takes no signal
    # until then; the close it was sent at and the trade marked there (its release, _release)
    gap: tuple[int, float] | None = None
    # what the venue booked for it: realised PnL, fees, exits' value and quantity, the quantity
    # held and its average entry (base units; adds move it, as a one-way position's)
    held: float = 0.0
    average: float = math.nan
    realised: float = 0.0
    fees: float = 0.0
    exit_value: float = 0.0
    exit_qty: float = 0.0
    last: list[Action] = field(default_factory=list)  # the position's actions in its last bar
    late: dict[str, int] = field(default_factory=dict)  # late exits' order ids -> fill kind


def drive(bars: Sequence[SymbolBars], signals: Sequence[Signals], setup: PortfolioSetup,
          start: int, end: int, *, lake: Lake) -> PortfolioRun:  # fmt: skip
    """``backtest.runner.run``'s driver for ``--stepwise``: the composer over a replay exchange
    of ``lake`` whose clock starts at the window's first bar (``bars`` share one time grid:
    ``backtest.portfolio.align``)."""
    clock = ReplayClock(int(bars[0].timestamps[start]))
    cap = setup.risk.for_order(strategy=setup.strategy).max_leverage  # its risk profile's
    sim = SimSetup(costs=setup.costs, initial_balance=setup.initial_equity,
                   timeframe=bars[0].timeframe, venue=venue_of(setup.exchange),
                   max_leverage=cap)  # fmt: skip
    venue = ReplayExchange(lake, setup.exchange, clock, setup=sim)
    steps = run_stepwise(venue=venue, pace=replayed(clock), bars=bars, signals=signals,
                         setup=setup, start=start, end=end)  # fmt: skip
    return asyncio.run(steps)


Cycle = Callable[[], AbstractAsyncContextManager[object]]
#: brings the venue's clock to a moment (ms) before the desk reads it: a replay clock moves
#: there at once; a live venue's pace waits until then. The desk reads the time only from the
#: venue (``now()``).
Pace = Callable[[int], Awaitable[None]]


def replayed(clock: ReplayClock) -> Pace:
    """The pace of a replayed venue: its clock moved to each moment at once."""

    async def pace(moment: int) -> None:
        clock.move_to(moment)

    return pace


async def run_stepwise(*, venue: TradingExchange, pace: Pace, bars: Sequence[SymbolBars],
                       signals: Sequence[Signals], setup: PortfolioSetup, start: int, end: int,
                       cycle: Cycle = nullcontext) -> PortfolioRun:  # fmt: skip
    """Step the bars ``start:end`` of every symbol of ``bars`` on ``venue`` (``pace`` brings
    it to each close) and return the trades, fills and equity in the fast path's layout.
    ``cycle``: the context each close's venue calls run in (the paper broker's ``batch``: one
    journal session per close instead of one per call)."""
    desk = _Desk(venue=venue, pace=pace, bars=bars, signals=signals, setup=setup,
                 start=start, end=end, cycle=cycle)  # fmt: skip
    return await desk.run()


class _Desk:
    """The venue desk: it answers the composer's calls (``engine.composer``) with a venue,
    bar by bar; what the symbols share (the venue, the one equity, the run's books) is here,
    each symbol's position and orders are its lane's."""

    def __init__(self, *, venue: TradingExchange, pace: Pace, bars: Sequence[SymbolBars],
                 signals: Sequence[Signals], setup: PortfolioSetup, start: int, end: int,
                 cycle: Cycle) -> None:  # fmt: skip
        self.venue, self.pace, self.s, self.bars = venue, pace, setup, list(bars)
        self.cycle = cycle
        self.start, self.end = start, end
        self.stamps = bars[0].timestamps
        sgs = [sg.checked(setup.policy) for sg in signals]
        n_sig = max(1, sum(int(np.count_nonzero(sg.side[start:end])) for sg in sgs))
        self.trades = np.zeros((n_sig, len(kernel.TRADE_COLUMNS)))
        self.trade_symbol = np.zeros(n_sig, np.int64)
        self.fills = np.zeros((n_sig * (setup.policy.max_fills + 2), len(kernel.FILL_COLUMNS)))
        self.risk_usd = np.zeros(n_sig)
        self.cids: list[str] = []  # each trade's entry client order id, by row
        self.fill_ids: list[str | None] = []  # each fill row's order id, as the venue has it
        self.pnl = np.zeros((len(bars), len(self.stamps)))
        self.k = self.nf = 0
        self.notes: Counter = Counter()
        self.equity = setup.initial_equity
        self.composer = composer_of(setup, self.bars, sgs, start=start, end=end)
        self.bar_ms = self.composer.bar_ms
        self.lanes = [_Lane(desk=self, i=i, sb=sb, sg=sg)
                      for i, (sb, sg) in enumerate(zip(bars, sgs, strict=True))]  # fmt: skip

    async def run(self) -> PortfolioRun:
        last = min(self.end, len(self.stamps) - 1)  # bar ``end``: a forced close's open
        for t in range(self.start, last + 1):
            if t == self.end and all(lane.trade is None for lane in self.lanes):
                break
            await self.pace(int(self.stamps[t]) + self.bar_ms)
            async with self.cycle():
                await answer_async(self.composer.close(t), self)
        for lane in self.lanes:
            if lane.trade is not None:  # still open after the last bar: marked, no exit fill
                lane._write(lane.trade, -1, lane.funding)
        order = np.argsort(self.fills[: self.nf, kernel.F_TRADE], kind="stable")
        run = PortfolioRun(self.bars, self.trades[: self.k], self.trade_symbol[: self.k],
                           self.fills[: self.nf][order], self.pnl)  # fmt: skip
        run.risk_usd = self.risk_usd[: self.k]
        run.client_order_ids = self.cids
        run.fill_order_ids = [self.fill_ids[j] for j in order]
        run.refused = self.composer.refused
        run.breaker_trips = self.composer.trips
        run.notes = tuple(f"--stepwise: {k} x{v}" for k, v in self.notes.items())
        return run

    # ---- the composer's calls ---------------------------------------------------------------
    async def live_to(self, t: int) -> None:
        """Bar t has closed: the venue's fills and funding payments of its open read back and
        handed to each symbol's lane, the equity marked (each symbol's share from its own
        fills, funding and open position, the account's as the venue states it)."""
        ts = int(self.stamps[t])
        fills = [f for f in await self.venue.fetch_my_trades(since=ts) if f.timestamp == ts]
        paid = [p for p in await self.venue.fetch_funding_payments(since=ts) if p.timestamp == ts]
        for lane in self.lanes:
            await lane._bar(t, [f for f in fills if f.symbol == lane.symbol],
                            sum(p.amount for p in paid if p.symbol == lane.symbol))  # fmt: skip
        balance = await self.venue.fetch_balance()
        held = {p.symbol: p.unrealized_pnl for p in await self.venue.fetch_positions()}
        for lane in self.lanes:
            value = lane.booked + held.get(lane.symbol, 0.0)
            self.pnl[lane.i, t], lane.value = value - lane.value, value
        self.equity = balance.total

    async def account_at(self, t: int) -> tuple[int, float]:
        """The venue's time and its account's equity at this close."""
        return await self.venue.now(), self.equity

    async def close_all_at(self, at: int) -> None:
        for lane in self.lanes:
            await lane._close(at)

    async def price_at_send(self, i: int, t: int) -> float:
        return await self.lanes[i]._price_at_send()

    async def send(self, i: int, t: int, order: SizedOrder, sent_at: float) -> str | None:
        return await self.lanes[i]._send(t, order, sent_at)


class _Lane:
    """One symbol of the venue desk: its signals, its position and its orders on the venue."""

    def __init__(self, *, desk: _Desk, i: int, sb: SymbolBars, sg: Signals) -> None:
        setup = desk.s
        self.desk, self.i = desk, i
        self.venue, self.sb, self.sg, self.s = desk.venue, sb, sg, setup
        self.start, self.end = desk.start, desk.end
        self.symbol = sb.symbol
        self.market = setup.markets[sb.symbol]
        self.costs = costs_of(setup, sb.symbol)
        self.stamps = sb.timestamps
        self.trades, self.fills, self.risk_usd = desk.trades, desk.fills, desk.risk_usd
        self.composer, self.notes = desk.composer, desk.notes
        self.trade: _Trade | None = None
        self.sent: _Sent | None = None
        self.leaving: _Trade | None = None  # closed by its position, the venue's exit to come
        self.funding = 0.0  # the venue's funding payments of this symbol so far
        self.booked = 0.0  # its realised PnL, fees and funding so far
        self.value = 0.0  # that and its open position's unrealised PnL at the last close

    @property
    def k(self) -> int:
        return self.desk.k

    @k.setter
    def k(self, value: int) -> None:
        self.desk.k = value

    @property
    def nf(self) -> int:
        return self.desk.nf

    @nf.setter
    def nf(self, value: int) -> None:
        self.desk.nf = value

    # ---- the bar -------------------------------------------------------------------------
    async def _bar(self, t: int, fills: list[Fill], paid: float) -> None:
        """Bar t has closed with these ``fills`` of the symbol and ``paid`` funding: the
        positions stepped."""
        self.funding += paid
        self.booked += paid + sum(f.realized_pnl - f.fee for f in fills)
        funding = self.funding
        if self.leaving is not None:  # its late exit filled at this open
            tr, self.leaving = self.leaving, None
            self._book(tr, t, [f for f in fills if f.client_order_id in tr.orders], tr.last)
            self._write(tr, t, funding)
        sent = self.sent if self.sent is not None and self.sent.bar == t else None
        if self.trade is not None:  # first the position this open may close (a reversal)
            entry = [f.amount for f in fills if sent and f.client_order_id == sent.orders[0]]
            same_side = sent is not None and sent.side == self.trade.entry.side
            await self._step(t, fills, funding, arriving=sum(entry) if same_side else 0.0)
        if sent is not None:
            await self._opened(t, fills, funding)

    async def _opened(self, t: int, fills: list[Fill], funding: float) -> None:
        sent, self.sent = self.sent, None
        mine = [f for f in fills if f.client_order_id == sent.orders[0]]
        if not mine:
            self.composer.refused["the venue did not fill the entry"] += 1
            self.composer.released(self.i, signal_bar=t, net=0.0, exit_bar=t)
            return
        fill = mine[0]
        qty = fill.amount * self.market.contract_size
        stop = float(stops.initial_stop(sent.side, fill.price, sent.stop, sent.distance))
        if beyond(sent.side, fill.price, stop):  # the fast path never enters such a trade
            self.notes["entry filled beyond its stop (closed at the next open)"] += 1
            await self._market_close(fill.amount, sent.side, ids=sent.ids)
            self.composer.released(self.i, signal_bar=t, net=0.0, exit_bar=t + 1)
            return
        entry = kernel.entry_of(bar=t, side=sent.side, qty=qty, price=fill.price, stop=stop,
                                liq_ratio=sent.liq_ratio, leverage=sent.leverage,
                                step=sent.step, tick=self._tick)  # fmt: skip
        liq = fill.price * sent.liq_ratio
        pos = Position.open(policy=self.s.policy, costs=self.costs, side=sent.side, qty=qty,
                            price=fill.price, ts=int(self.stamps[t]), stop=stop,
                            liquidation=liq if math.isfinite(liq) else None,
                            leverage=sent.leverage, step=sent.step, tick=self._tick,
                            entry_fee=fill.fee)  # fmt: skip
        self.composer.entered(
            self.i, side=sent.side, notional=entry.qty * entry.price, leverage=entry.leverage
        )  # the fill, no longer the price sent at
        self.risk_usd[self.k] = sent.risk_usd
        self.desk.trade_symbol[self.k] = self.i
        self.desk.cids.append(sent.orders[0])
        self.trade = _Trade(self.k, entry, pos, funding, self.end, sent.ids, set(sent.orders))
        if len(sent.orders) > 1:
            self.trade.stop_id, self.trade.stop_at = sent.orders[1], pos.stop
        self.k += 1
        self._book(self.trade, t, [fill], [], entry=True)
        await self._step(t, [f for f in fills if f is not fill], funding)

    async def _step(self, t: int, fills: list[Fill], funding: float, *,
                    arriving: float = 0.0) -> None:  # fmt: skip
        """The position lives bar t; what it decided goes to the venue as orders. ``arriving``:
        contracts a new entry of the same side added at this open (not this position's)."""
        tr = self.trade
        fresh = tr.pos.bars == 0
        bar = Bar(int(self.stamps[t]), *map(float, self.sb.bars[t, : kernel.ATR + 1]))
        inputs = BarInputs(int(self.sg.side[t]), tuple(int(e) for e in self.sg.exits[t]),
                           bool(self.sg.weak[t]))  # fmt: skip
        actions = tr.pos.step_bar(bar, inputs, forced=t >= tr.end_bar)
        mine = [f for f in fills if f.client_order_id in tr.orders
                or f.order_type == "liquidation"]  # fmt: skip
        self._book(tr, t, mine, actions)
        tr.last = actions
        held = await self._held(tr.entry.side) - arriving
        size = self.market.contract_size
        if held * size > tr.pos.qty * (1 + 1e-9):  # the position exited what the venue holds
            self.notes[LATE_EXIT] += 1
            cid = await self._market_close(snap(held - tr.pos.qty / size, self.market.step_size),
                                           tr.entry.side, ids=tr.ids)  # fmt: skip
            exits = [_KIND_CODES.get(a.reason, FORCED) for a in actions if a.is_fill]
            if cid is not None and exits:
                tr.late[cid] = exits[0]
        if not tr.pos.is_open:
            await self._cancel_resting(tr)
            self._write(tr, t, funding)
            row = self.trades[tr.row]
            if not tr.closing:  # inside the bar: the fast path's rule, from its exit fill
                self.composer.released(self.i, signal_bar=int(kernel.next_signal_bar(row)),
                                       net=float(row[kernel.T_NET]),
                                       exit_bar=int(row[kernel.T_EXIT_BAR]))  # fmt: skip
            elif tr.gap is not None:  # held until its stop filled at this open
                sent, marked = tr.gap
                self.composer.released(self.i, signal_bar=sent, net=marked, exit_bar=sent + 1)
            self.trade = None
            if held > 0:
                self.leaving = tr
            return
        if fresh:
            await self._place_targets(tr)
        closing = tr.closing
        await self._sync_stop(tr, t, funding, fresh=fresh, held=held)
        pending = tr.pos.pending
        if tr.closing:
            if not closing and _exits(pending):  # the exit decided now sent the close
                self._release(t, funding)
            return
        if pending == "scale_in":
            await self._scale_in(tr, t, held)
        else:
            await self._sync_leg_stops(tr, self._leg_stops_of(tr.pos))
        if _exits(pending):
            tr.closing = True
            await self._market_close(held, tr.entry.side, ids=tr.ids)
            self._release(t, funding)

    def _release(self, t: int, funding: float) -> None:
        """The position closes at the next open by a market order sent at bar t's close: the
        gates no longer see it and its symbol may take this close's signal (a reversal), or
        one after the cooldown when it lost. The loss is judged from the trade marked at that
        close (``_marked``), the fill that ends it being still to come."""
        self.composer.released(self.i, signal_bar=t, net=self._marked(t, funding), exit_bar=t + 1)

    def _marked(self, t: int, funding: float) -> float:
        """The open trade's value (PnL, fees, funding) marked at bar t's close."""
        tr = self.trade
        price = float(self.sb.bars[t, kernel.CLOSE])
        return (tr.pos.realised - tr.pos.fees + funding - tr.funding_from
                + tr.entry.side * (price - tr.pos.average_entry) * tr.pos.qty)  # fmt: skip

    def _write(self, tr: _Trade, exit_bar: int, funding: float) -> None:
        """The trade's row (-1: still open), as the kernel writes it from the position's
        state, with the money the venue booked."""
        row = self.trades[tr.row]
        kernel.write_row(row, tr.pos.state.vec, tr.entry, self.sb.bars, exit_bar,
                         funding - tr.funding_from)  # fmt: skip
        self._venue_money(row, tr, exit_bar)

    def _venue_money(self, row: np.ndarray, tr: _Trade, exit_bar: int) -> None:
        """The row's money as the venue booked it (the position's own figures are the rest:
        stop, R, reason, excursions): its exit price, gross, fees, net and R."""
        last = len(self.stamps) - 1 if exit_bar < 0 else exit_bar
        close = float(self.sb.bars[last, kernel.CLOSE])
        gross = tr.realised + tr.entry.side * (close - tr.average) * tr.held
        if tr.exit_qty > 0 and exit_bar >= 0:
            row[kernel.T_EXIT_PX] = tr.exit_value / tr.exit_qty
        row[kernel.T_GROSS], row[kernel.T_FEES] = gross, tr.fees
        row[kernel.T_NET] = gross - tr.fees + row[kernel.T_FUNDING]
        risk = row[kernel.T_RISK]
        row[kernel.T_R] = row[kernel.T_NET] / (risk * tr.entry.qty) if risk > 0 else math.nan

    def _book(self, tr: _Trade, t: int, fills: list[Fill], actions: list[Action], *,
              entry: bool = False) -> None:  # fmt: skip
        """The venue's fills of bar t as the kernel's fill rows; an exit takes the kind the
        position gave its own exit at the nearest price (a stop moved to breakeven or
        trailing, a signal, a time stop), else its order's type."""
        booked = [a for a in actions if a.is_fill]
        size = self.market.contract_size
        for f in fills:
            kind = ENTRY if entry else tr.late.get(f.client_order_id)
            if kind is None:
                same = [a for a in booked if a.side == f.side]
                near = min(same, key=lambda a: abs(a.price - f.price), default=None)
                kind = _KIND_CODES.get(near.reason) if near is not None else None
                kind = kind or _KIND_OF_ORDER.get(f.order_type, FORCED)
            sign = 1 if f.side == "buy" else -1
            qty = f.amount * size
            self.fills[self.nf] = (tr.row, t, kind, sign, qty, f.price, f.fee)
            self.nf += 1
            self.desk.fill_ids.append(None if f.order_type == "liquidation" else f.client_order_id)
            tr.realised += f.realized_pnl
            tr.fees += f.fee
            if sign == tr.entry.side:  # the entry or a scale-in's add
                tr.average = f.price if entry else (
                    (tr.average * tr.held + f.price * qty) / (tr.held + qty))  # fmt: skip
                tr.held += qty
            else:
                tr.held = max(tr.held - qty, 0.0)
                tr.exit_value += qty * f.price
                tr.exit_qty += qty

    # ---- orders --------------------------------------------------------------------------
    async def _send(self, t: int, order: SizedOrder, sent_at: float) -> str | None:
        """The composer's sized order for the signal of bar t sent as a market order (with its
        stop when the signal gave a price); the venue's refusal, if it refuses."""
        sb, sg = self.sb, self.sg
        side = int(sg.side[t])
        f = order.figures
        contracts, leverage = float(f["qty"]), float(f["leverage"])
        try:
            # a venue keeps the leverage while a position is open (one closing at this
            # open too: a reversal, a late exit's leaving one): counted where it differs
            holding = self.trade or self.leaving
            if holding is None:
                await self.venue.set_leverage(sb.symbol, leverage)
            elif holding.entry.leverage != leverage:
                self.notes["entry at the leverage of the position it reverses"] += 1
            placed = await self.venue.create_order(
                symbol=sb.symbol, type="market", side="buy" if side > 0 else "sell",
                amount=contracts, client_order_id=order.client_order_id,
            )  # fmt: skip
        except TradingError as exc:
            return f"venue: {_venue_reason(exc)}"
        orders, ids = [placed.client_order_id], _OrderIds(placed.client_order_id)
        price_stop = float(sg.stop_price[t])
        if not math.isnan(price_stop):  # known before the fill: live in the entry bar
            stop_id = await self._place_stop(side, contracts, price_stop, order_id=ids.take("sl"))
            if stop_id is not None:
                orders.append(stop_id)
        liq = f.get("liquidation_price")
        target = f["risk_target_usd"]
        notional = contracts * self.market.contract_size * sent_at  # its fill is still to come
        self.sent = _Sent(
            bar=t + 1, side=side, notional=notional,
            stop=price_stop, distance=float(sg.stop_distance[t]),
            liq_ratio=liq / sent_at if liq else math.nan, leverage=leverage,
            step=(self.market.step_size or 0.0) * self.market.contract_size,
            risk_usd=math.nan if target is None else float(target), orders=orders, ids=ids,
        )  # fmt: skip
        self.composer.entered(self.i, side=side, notional=notional, leverage=leverage)
        return None

    @property
    def _tick(self) -> float:
        """The market's price tick as ``manage.ticks`` reads it (0: none)."""
        return self.market.tick_size or 0.0

    async def _price_at_send(self) -> float:
        """The price a market order sent now meets, as the venue quotes it: its ticker's last
        price (a replay venue's after a close is the next bar's open, which the fast path sizes
        at too; live, the last trade). NaN: the venue quotes none."""
        ticker = (await self.venue.fetch_tickers()).get(self.symbol)
        last = None if ticker is None else ticker.last
        return math.nan if last is None else float(last)

    async def _place_stop(self, side: int, contracts: float, stop: float, *,
                          order_id: str) -> str | None:  # fmt: skip
        try:
            order = await self.venue.create_order(
                symbol=self.symbol, type="stop_market", side="sell" if side > 0 else "buy",
                amount=contracts, trigger_price=on_tick(side, stop, self._tick, True),
                reduce_only=True, client_order_id=order_id,
            )  # fmt: skip
        except TradingError as exc:
            self.notes[f"stop not placed: {_venue_reason(exc)}"] += 1
            return None
        if self.trade is not None:
            self.trade.orders.add(order.client_order_id)
        return order.client_order_id

    async def _place_targets(self, tr: _Trade) -> None:
        size = self.market.contract_size
        for rung, (price, qty) in enumerate(tr.pos.targets, 1):
            if qty <= 0.0 or not math.isfinite(price):
                continue
            try:
                order = await self.venue.create_order(
                    symbol=self.symbol, type="take_profit",
                    side="sell" if tr.entry.side > 0 else "buy",
                    amount=snap(qty / size, self.market.step_size),
                    price=on_tick(tr.entry.side, price, self._tick, False), reduce_only=True,
                    client_order_id=tr.ids.target(rung),
                )  # fmt: skip
            except TradingError as exc:
                self.notes[f"target not placed: {_venue_reason(exc)}"] += 1
                continue
            tr.orders.add(order.client_order_id)

    async def _sync_stop(self, tr: _Trade, t: int, funding: float, *, fresh: bool,
                         held: float) -> None:  # fmt: skip
        """The venue's stop where the position's stop is (breakeven, the trail), for all the
        venue holds (``held`` contracts: a scale-in's add grows it); a stop sent with the entry
        may have been canceled with the position it reversed. A stop the close has passed
        already (breakeven moved above a close that fell back) is a market order: the kernel
        fills that stop at the next open too, as a gap."""
        stop = tr.pos.stop
        if (
            tr.stop_id is not None
            and fresh
            and (await self.venue.fetch_order(tr.stop_id)).status != "open"
        ):
            tr.stop_id = None
        if tr.stop_id is not None and stop == tr.stop_at and held <= tr.stop_qty:
            return
        if tr.stop_id is not None:
            with suppress(TradingError):  # done already: filled, or canceled with the position
                await self.venue.cancel_order(tr.stop_id)
        tr.stop_id, tr.stop_at = None, stop
        if beyond(tr.entry.side, float(self.sb.bars[t, kernel.CLOSE]), stop):
            # the stop leg's, held as a gap; unless an exit decided at this close books it at
            # that open: then the symbol is released at this close, as for any such exit
            exiting = _exits(tr.pos.pending)
            tr.closing, tr.gap = True, None if exiting else (t, self._marked(t, funding))
            leg = "close" if exiting else "sl"
            await self._market_close(held, tr.entry.side, ids=tr.ids, leg=leg)
        elif math.isfinite(stop):
            await self._resize_stop(tr, held)

    async def _resize_stop(self, tr: _Trade, contracts: float) -> None:
        """The position's stop (at ``tr.stop_at``) re-sent for ``contracts``."""
        if tr.stop_id is not None:
            with suppress(TradingError):
                await self.venue.cancel_order(tr.stop_id)
        tr.stop_id = await self._place_stop(tr.entry.side, contracts, tr.stop_at,
                                            order_id=tr.ids.take("sl"))  # fmt: skip
        tr.stop_qty = contracts if tr.stop_id is not None else 0.0

    # ---- scale-ins -------------------------------------------------------------------------
    async def _scale_in(self, tr: _Trade, t: int, held: float) -> None:
        """The scale-in decided at bar t's close, sent for the next open: what the position
        will do there (``Position.preview_open``: the compiled rule on a copy, at the price a
        market order meets) as a market add and a reduce-only market cut; the position's stop
        re-sent for what the venue will hold after them and the triggering leg's own stop
        placed now, so both are live in that bar as the kernel's are."""
        side = tr.entry.side
        size, step = self.market.contract_size, self.market.step_size
        legs = self._leg_stops_of(tr.pos)
        leg = len(tr.pos.legs) - 1  # the newest leg: the one whose ROE triggered
        after = held
        price = await self._price_at_send()
        if not math.isfinite(price):
            self.notes[f"scale-in not sent: {NO_PRICE}"] += 1
            return
        for action in tr.pos.preview_open(price):
            contracts = snap(action.qty / size, step)
            if action.kind == "add":
                added = await self._send_market(contracts, side=side, ids=tr.ids, leg="add")
                after += contracts if added else 0.0
            elif action.kind == "scale_out":
                sent = await self._send_market(contracts, side=-side, ids=tr.ids, leg="out",
                                               reduce_only=True)  # fmt: skip
                after -= contracts if sent else 0.0
            elif action.kind == "move_leg_stop":
                legs[leg] = (action.price, contracts)
        if math.isfinite(tr.stop_at) and after > tr.stop_qty:
            await self._resize_stop(tr, after)
        await self._sync_leg_stops(tr, legs)

    def _leg_stops_of(self, pos: Position) -> dict[int, tuple[float, float]]:
        """Each leg's own stop (leg: level, contracts) as the position holds them."""
        size, step = self.market.contract_size, self.market.step_size
        return {j: (stop, snap(qty / size, step)) for j, (_, qty, stop) in enumerate(pos.legs)
                if math.isfinite(stop) and qty > 0.0}  # fmt: skip

    async def _sync_leg_stops(self, tr: _Trade, wanted: dict[int, tuple[float, float]]) -> None:
        """One reduce-only stop per leg with its own stop, for that leg's quantity: a one-way
        venue nets the legs into one position, so a leg's stop is a stop of part of it (the
        kernel closes that leg's quantity there); a changed leg is canceled and re-sent."""
        for leg, (cid, at, qty) in list(tr.leg_stops.items()):
            if wanted.get(leg) != (at, qty):
                with suppress(TradingError):  # done already: filled, or canceled with the position
                    await self.venue.cancel_order(cid)
                del tr.leg_stops[leg]
        for leg, (at, qty) in wanted.items():
            if leg not in tr.leg_stops and qty > 0.0:
                cid = await self._place_stop(tr.entry.side, qty, at, order_id=tr.ids.take("sl"))
                if cid is not None:
                    tr.leg_stops[leg] = (cid, at, qty)

    async def _cancel_resting(self, tr: _Trade) -> None:
        """The closed trade's stop and targets still resting on the venue canceled (a venue
        cancels reduce-only orders with the position they reduce, but one placed for this
        trade after that, or while flat, would meet the next position)."""
        for order in await self.venue.fetch_open_orders(self.symbol):
            if order.client_order_id in tr.orders and order.type != "market":
                with suppress(TradingError):
                    await self.venue.cancel_order(order.client_order_id)

    async def _market_close(self, contracts: float, side: int, *, ids: _OrderIds,
                            leg: str = "close") -> str | None:  # fmt: skip
        """A reduce-only market order closing ``contracts`` of a ``side`` trade's (filled at
        the next open) as its ``leg`` (``sl``: a stop the close has passed); its id."""
        return await self._send_market(contracts, side=-side, ids=ids, leg=leg, reduce_only=True)

    async def _send_market(self, contracts: float, *, side: int, ids: _OrderIds, leg: str,
                           reduce_only: bool = False) -> str | None:  # fmt: skip
        """A market order of the trade's to ``side`` (+1 buy, -1 sell) as its ``leg``, filled
        at the next open; its id (None: nothing to send, or the venue refused it - counted in
        notes)."""
        if contracts <= 0.0:
            return None
        try:
            order = await self.venue.create_order(
                symbol=self.symbol, type="market", side="buy" if side > 0 else "sell",
                amount=contracts, reduce_only=reduce_only, client_order_id=ids.take(leg),
            )  # fmt: skip
        except TradingError as exc:
            what = "close" if reduce_only else "add"
            self.notes[f"{what} not sent: {_venue_reason(exc)}"] += 1
            return None
        if self.trade is not None:
            self.trade.orders.add(order.client_order_id)
        return order.client_order_id

    async def _close(self, at: int) -> None:
        """The open position closed at bar ``at``'s open (a window's end, a breaker)."""
        tr = self.trade
        if tr is None or at >= len(self.stamps):
            return
        tr.end_bar = min(tr.end_bar, at)
        if not tr.closing:
            tr.closing = True
            await self._market_close(await self._held(tr.entry.side), tr.entry.side, ids=tr.ids)
            self._release(at - 1, self.funding)

    async def _held(self, side: int) -> float:
        """Contracts the venue holds on ``side`` (+1 long, -1 short)."""
        name = "long" if side > 0 else "short"
        positions = await self.venue.fetch_positions([self.symbol])
        return sum(p.contracts for p in positions if p.side == name)


__all__ = ["LATE_EXIT", "drive", "run_stepwise"]


def _exits(pending: str | None) -> bool:
    """Whether the position's pending decision closes it at the next open (a scale-in does
    not)."""
    return pending is not None and pending != "scale_in"


def _venue_reason(exc: Exception) -> str:
    """A venue's refusal without the symbol it names first (they count together)."""
    return str(exc).split(": ", 1)[-1]
