"""The composer: what happens at each close, in which order, decided once for every desk.

At the close of bar ``t`` (``Composer.close``):

0. at the window's last close (bar ``end``-1) only two steps are left: the positions lived,
   then every one closed at the next open (``close_all_at``), as a window's end;
1. the desk lives every open position through that close (and through the next open for one
   that decided to close there), and tells the composer what opened and what ended
   (``entered``/``released``);
2. the signals of the bar that may open: a symbol not held and past its cooldown;
3. the desk states the account (``account_at``: the time and the equity marked at that close);
   at a close that matters (a signal of any symbol, or the hour: ``moments``) the breaker is
   fed that equity; a weekly halt or a monthly stop is released first by the
   trader's reset (the next ISO week / month, ``manual_reset``); a trip with an exit action
   closes every position at the next open (the desk's ``close_all_at``);
4. each signal that may open, symbol after symbol: its intent at the price a market order sent
   now meets (``price_at_send``: the desk's), sized through ``risk.orders.size_orders`` with
   the gate chain, the breaker and the positions held (those entered before it at this close
   included), then sent (``send``). A refusal is counted with its reason.

A position that ends frees its symbol from the first signal bar after it, later after a loss
(``risk.cooldown``: the one rule).

Why a generator of desk calls: the two desks answer the same questions in different ways. The
fast path's desk (``backtest.portfolio``) lives trades in compiled code and answers at once;
the venue desk (``backtest.stepwise``) asks a ``TradingExchange`` and must await every answer.
The composer yields each call (``(name, *args)``) and receives its answer, so the one sequence
runs under both (``answer`` and ``answer_async``); neither desk writes any of it again.

The calls a desk answers (at once, or as coroutines): ``live_to(t)``; ``account_at(t)`` -> (now
in ms, equity); ``close_all_at(bar)`` (after the last bar: nothing); ``price_at_send(lane, t)``
-> price (NaN: none quoted); ``send(lane, t, sized_order, price)`` -> None, or the reason it
was not placed. The composer holds no bar, no venue and no clock of its own: the desk says when
(``now``) and at what equity the breaker is fed, and at what price an order is sent."""

import math
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from cryptobot.core.market import Market
from cryptobot.core.order import Intent, SizedOrder
from cryptobot.core.settings import RiskSettings
from cryptobot.core.setup import setup_id
from cryptobot.core.timeframes import off_grid
from cryptobot.fills.brackets import Bracket
from cryptobot.risk import breakers, cooldown, gates, stops
from cryptobot.risk.orders import SizingSetup, size_orders

HOUR_MS = 3_600_000
EXIT_ACTIONS = {
    breakers.Action.flatten_all,
    breakers.Action.exit_all,
    breakers.Action.close_directional,
    breakers.Action.reduce_positions,
}
NO_STOP = "no stop to size the risk from"
NO_PRICE = "the venue quotes no price to size at"

#: a desk call: its method's name, then its arguments
Call = tuple[Any, ...]
Steps = Generator[Call, Any, None]


class SignalArrays(Protocol):
    """Per bar of one symbol, what its strategy said at the close (``backtest.engine.Signals``):
    the side (+1/-1/0), the stop as a price or a distance from the fill (NaN: none), and the
    anchor time of the setup behind it (-1 or None: the signal's own bar)."""

    side: np.ndarray
    stop_price: np.ndarray
    stop_distance: np.ndarray
    anchor: np.ndarray | None


@dataclass(frozen=True)
class Lane:
    """One symbol the composer trades: its symbol, timeframe and signals."""

    symbol: str
    timeframe: str
    signals: SignalArrays


@dataclass(frozen=True)
class Rules:
    """What the composer decides with: the run's strategy and venue, the risk settings and
    markets the sizing and gates read, whether breakers run, the cooldown in bars."""

    exchange: str
    strategy: str
    risk: RiskSettings
    markets: Mapping[str, Market]
    brackets_of: Callable[[Market], list[Bracket]]
    use_breakers: bool = True
    cooldown_bars: int = 0


class Composer:
    """The decisions of a run over ``lanes`` on one time grid (``stamps``, bars ``start`` to
    ``end``): the breaker and its trips, the positions the gates see, which symbol may open
    when, and the refusals. ``sizing``: per lane (its slippage counts in the risk budget)."""

    def __init__(self, *, rules: Rules, lanes: Sequence[Lane], sizing: Sequence[SizingSetup],
                 stamps: np.ndarray, start: int, end: int) -> None:  # fmt: skip
        self.rules, self.lanes, self.sizing = rules, list(lanes), list(sizing)
        self.stamps, self.start, self.end = stamps, start, end
        self.bar_ms = int(np.min(np.diff(stamps))) if len(stamps) > 1 else HOUR_MS
        self.breaker = breakers.BreakerState()
        self.trips: list[tuple[int, str]] = []
        self.refused: Counter = Counter()
        self.allowed = np.full(len(self.lanes), start, dtype=np.int64)
        self.held: dict[int, gates.OpenPosition] = {}
        self.moment = self._moments()

    # ---- the sequence ----------------------------------------------------------------------
    def moments(self) -> np.ndarray:
        """The bars whose close matters (a signal, with breakers the hour, and the window's
        last close), in order: the only closes a desk that lives positions in advance needs to
        stop at."""
        return np.flatnonzero(self.moment)

    def close(self, t: int) -> Steps:
        """The steps of bar t's close, as desk calls (the module's docstring says each)."""
        yield ("live_to", t)
        if t >= self.end - 1:  # the window's last close: its positions close at the next open
            if t == self.end - 1:
                yield ("close_all_at", self.end)
            return
        due = [i for i, lane in enumerate(self.lanes)
               if lane.signals.side[t] and t >= self.allowed[i]]  # fmt: skip
        feeds = self.rules.use_breakers and self.moment[t]
        if not (due or feeds):
            return
        now, equity = yield ("account_at", t)
        if feeds and self.feed(now=now, equity=equity):
            yield ("close_all_at", t + 1)
        for i in due:
            price = yield ("price_at_send", i, t)
            order = self._sized(i, t, price, equity=equity)
            if order is not None:
                refusal = yield ("send", i, t, order, price)
                if refusal is not None:
                    self.refused[refusal] += 1

    def feed(self, *, now: int, equity: float) -> bool:
        """The breaker fed ``equity`` at ``now`` (after the trader's reset, ``manual_reset``);
        True when it trips with an exit action: every position closes at the next open."""
        self.breaker = manual_reset(self.breaker, now, self.rules.risk)
        state, actions = breakers.step(self.breaker, breakers.Equity(now, equity), self.rules.risk)
        if breakers.SEVERITY[state.mode] > breakers.SEVERITY[self.breaker.mode]:
            self.trips.append((now, state.reason))  # a trip, not its release
        self.breaker = state
        return bool(EXIT_ACTIONS & set(actions))

    # ---- what the desks report -------------------------------------------------------------
    def entered(self, i: int, *, side: int, notional: float, leverage: float) -> None:
        """Lane ``i`` holds a position (or an entry sent, at the price it was sent at): the
        gates see it, and its symbol takes no signal while it is held."""
        self.held[i] = gates.OpenPosition.opening(
            symbol=self.lanes[i].symbol, side="long" if side > 0 else "short", notional=notional,
            leverage=leverage,
        )  # fmt: skip
        self.allowed[i] = self.end

    def released(self, i: int, *, signal_bar: int, net: float, exit_bar: int) -> None:
        """Lane ``i``'s position ended (or closes at the next open): no longer seen by the
        gates; its symbol may take a signal from ``signal_bar`` on, or after the cooldown
        when it lost (``net`` < 0, its exit in ``exit_bar``)."""
        self.held.pop(i, None)
        self.allowed[i] = cooldown.allowed_after(
            signal_bar, net, exit_bar, self.rules.cooldown_bars
        )

    def positions(self) -> tuple[gates.OpenPosition, ...]:
        """The positions the gates see: those held at the next open, in the order entered."""
        return tuple(self.held.values())

    # ---- sizing ----------------------------------------------------------------------------
    def _sized(self, i: int, t: int, sent_at: float, *, equity: float) -> SizedOrder | None:
        """The signal of lane ``i`` at bar ``t`` sized at ``sent_at`` on an account of
        ``equity``; None: refused (counted)."""
        if not math.isfinite(sent_at):
            self.refused[NO_PRICE] += 1
            return None
        lane = self.lanes[i]
        intent = signal_intent(rules=self.rules, lane=lane, t=t, ts=int(self.stamps[t]),
                               sent_at=sent_at)  # fmt: skip
        if intent is None:
            self.refused[NO_STOP] += 1  # e.g. ATR still warming up
            return None
        account = gates.AccountState(
            equity=equity, positions=self.positions(), breaker=self.breaker
        )
        order = size_orders([intent], self.rules.markets, self.rules.brackets_of, account,
                            self.sizing[i])[0]  # fmt: skip
        if order.status != "sized":
            self.refused[reason_key(order.reason)] += 1
            return None
        return order

    def _moments(self) -> np.ndarray:
        """``moments`` as a mask over the bars: among the closes of ``start``..``end``-2 those
        with a signal or (breakers) on the hour, and the window's last close (``end``-1: its
        positions close at the next open; a signal there has no next open to enter at)."""
        mask = np.zeros(len(self.stamps), dtype=bool)
        span = np.arange(self.start, max(self.start, self.end - 1))
        for lane in self.lanes:
            mask[span] |= lane.signals.side[span] != 0
        if self.rules.use_breakers:
            closes = self.stamps[span] + self.bar_ms
            mask[span[~off_grid(closes, max(HOUR_MS, self.bar_ms))]] = True
        if self.start <= self.end - 1:
            mask[self.end - 1] = True
        return mask


def answer(steps: Steps, desk: object) -> None:
    """Run the composer's ``steps`` against a desk whose methods answer at once."""
    reply = None
    while True:
        try:
            name, *args = steps.send(reply)
        except StopIteration:
            return
        reply = getattr(desk, name)(*args)


async def answer_async(steps: Steps, desk: object) -> None:
    """Run the composer's ``steps`` against a desk whose methods are awaited (a venue's)."""
    reply = None
    while True:
        try:
            name, *args = steps.send(reply)
        except StopIteration:
            return
        reply = await getattr(desk, name)(*args)


def signal_intent(*, rules: Rules, lane: Lane, t: int, ts: int, sent_at: float) -> Intent | None:
    """The order intent of ``lane``'s signal at bar ``t`` sent at ``sent_at`` (its stop by
    ``risk.stops.initial_stop``), or None when it has no stop to size the risk from and the
    sizing needs one. Its signal id is the id of the setup behind the signal
    (``core.setup.setup_id``), so the client order id sized from it is the one ``scan | size``
    gives that setup live."""
    sg = lane.signals
    side = int(sg.side[t])
    stop = float(stops.initial_stop(side, sent_at, sg.stop_price[t], sg.stop_distance[t]))
    method = rules.risk.for_order(strategy=rules.strategy).sizing.method
    if math.isnan(stop) and method != "margin_pct":
        return None
    name = "long" if side > 0 else "short"
    anchor = int(sg.anchor[t]) if sg.anchor is not None and sg.anchor[t] >= 0 else ts
    signal_id = setup_id(exchange=rules.exchange, symbol=lane.symbol, strategy=rules.strategy,
                         timeframe=lane.timeframe, side=name, status="triggered",
                         anchor_ts=anchor)  # fmt: skip
    return Intent(
        exchange=rules.exchange, symbol=lane.symbol, side=name, entry=sent_at,
        stop=None if math.isnan(stop) else stop, strategy=rules.strategy,
        timeframe=lane.timeframe, ts=ts, signal_id=signal_id,
    )  # fmt: skip


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
