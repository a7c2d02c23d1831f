"""``cryptobot trade``: sized orders onto a venue with their protection, idempotent, gated.

For each sized order, in input order:

1. **Sendable?** A record ``size`` refused is skipped (its reason said); an order sized for
   another exchange, on a symbol the venue does not list, without a stop (nothing could
   protect it) or below one step of the venue's market is refused.
2. **Sent before?** Its client id (the sized order's, ``risk.orders.leg_order_id`` for its
   legs: the ids the backtest records) is looked for in the venue's open orders and the
   journal (its rows and the intents not taken in yet, ``journal.intents``). An order the
   venue holds is never sent again: the run only checks its protection (below) and says so.
   A ``sending`` row (a run killed between the request and its answer) is looked up by client
   id, tolerating a few "not found" answers (a venue may list a new order late); younger than
   ``in_flight_ms`` and still not found, its status is unknown and nothing is sent for it
   this run. An id the journal has never seen was never sent (every request's intent is on
   disk before it leaves): the venue is not asked about it.
3. **Gates** with the venue's account: balance (equity, free margin), open positions, open
   orders and the ids the journal and the venue hold, last prices, the journaled circuit
   breaker and the lake's return correlations feed ``risk.gates``, the chain ``size`` runs.
   Orders of one run are gated as if the earlier ones were placed. A refusal is journaled with
   its reason and the verdicts.
4. **Entry**: margin mode and leverage set, then the entry through the maker-first executor
   (``engine.execution``) by the strategy's ``execution:`` rules, or a single market order
   (``execution`` None: ``trade --taker``). The executor's orders are journaled as the entry's
   legs (``entry``, ``e2``..), its report (``execution/1``) with the order when it ends; a run
   killed mid-execution is gone on with by the next, adopting the orders by their ids. An
   ambiguous failure is resolved by client id, never by sending it again.
5. **Protection at once**: a reduce-only stop-market sized to what has filled (an entry that
   has not filled yet, as on the simulated venues that fill at the next bar: all of it, resting
   with it and reducing only what fills), then the take-profit ladder as reduce-only orders
   (``engine.bracket``). Under the executor the stop follows its fills, grown after each look
   at the venue that saw a fill, partial ones included (``_Guard``). A fill that grows later
   gets a bigger stop (a new ``-sl2``.. order, the old one canceled after), in this run or the
   next. A stop the venue will not take (after ``stop_attempts`` tries of a request it
   certainly did not process) means the position is closed by a reduce-only market order (the
   entry canceled first if it still works) and a ``CRITICAL`` event journaled; a target that
   fails is a ``WARNING``, the stop protects.

A tripped circuit breaker fails the entry's gate: it blocks every opening order; the reduce-only
stop, targets and closes still go (they only ever reduce). Closes (``close_positions``) cancel
the symbol's orders after the reduce-only market close is accepted, never before (a refused
close leaves the stop in place). One run at a time per venue and data dir (a lock file,
released by the kernel even on ``kill -9``).

**What stands between a sized order and its entry on the wire** (issue 13: the decision
latency, ``bench/bench_trade_latency.py``). Read once per batch (``Batch``: a run of ``trade``,
a cycle of a loop), never per order: the markets, the account for the gates (balance,
positions, open orders, last prices, the breaker) and the venue's open orders, which are an
order's own book unless the journal or that read knows some of its orders (then its symbol's
are read again). Per order: its journal rows (one read of the held journal), the gates,
margin mode and leverage only when they differ from what this setup set (``VenueSettings``),
and the executor's clock and book (two requests at once); then the entry's intent made
durable (one fsync'd line, ``journal.intents``) before the request leaves. No look-up of a
new entry's id (the journal has never seen it: never sent), and the executor is told so.
Everything else (the intent's row with the answer, the stop, the ladder, fills) comes after.
"""

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from cryptobot.core.account import Order, OrderRequest, Position
from cryptobot.core.errors import CryptobotError, DataError
from cryptobot.core.execution import ExecutionReport, ExecutionRequest
from cryptobot.core.market import Market
from cryptobot.core.settings import ExecutionRules, ExecutionSettings, RiskSettings
from cryptobot.core.venues import file_token
from cryptobot.data import locks
from cryptobot.engine.bracket import ENTRY, Bracket, Leg, next_version, plan
from cryptobot.engine.dispatch import Dispatch, DryRunDispatch, VenueDispatch
from cryptobot.engine.execution import execute, found_orders
from cryptobot.engine.execution_venue import DeskVenue, entry_of
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.engine.venue_settings import VenueSettings
from cryptobot.exchange import add_steps
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.errors import (
    OrderNotFound,
    OrderNotPlaced,
    OrderStatusUnknown,
)
from cryptobot.fills.brackets import bracket_for, for_market
from cryptobot.fills.liquidation import venue_of
from cryptobot.journal.intents import IntentNotDurable
from cryptobot.journal.trading import OrderRow, TradeJournal
from cryptobot.risk import gates
from cryptobot.risk.context import account_state
from cryptobot.risk.sizing import floor_to_step

Sleep = Callable[[float], Awaitable[None]]
#: a live request older than this cannot land any more: Binance refuses a request older than
#: its ``recvWindow`` (10 s in ccxt), so a journaled ``sending`` row older than it that the
#: venue does not list was certainly not placed
LIVE_IN_FLIGHT_MS = 10_000
#: outcomes that leave an order not (fully) done: the command says so and exits 1
FAILED = ("refused", "rejected", "not_placed", "unknown", "closed_no_stop", "unprotected")


@dataclass(frozen=True, kw_only=True)
class TradeSetup:
    """What stays the same for a run: the configured risk (strategy profiles inside), the
    journal (``root``: the data dir; ``venue``: which account its rows are), the client id
    prefix of a manual close, the ladder split replacing the records' own (``split``), how
    entries are worked (``execution``: the executor's rules per strategy; None: one market
    order, ``--taker``) and how patient to be with a venue."""

    risk: RiskSettings
    root: Path
    venue: str
    prefix: str
    split: tuple[float, ...] | None = None
    execution: ExecutionSettings | None = None
    in_flight_ms: int = 0
    lookups: int = 3  # "not found" answers tolerated before an order counts as absent
    pause_s: float = 0.2  # between two look-ups
    stop_attempts: int = 3  # tries of a stop the venue certainly did not process
    max_wait_s: float = 5.0  # the longest Retry-After waited for before a stop counts as failed

    def in_flight(self, *, sent_at: int, now: int) -> bool:
        """Whether a request sent at ``sent_at`` and not found may still land at ``now``
        (``in_flight_ms``: a live venue's patience). A time after ``now`` counts as now: an
        intent is stamped on the venue's clock plus the time since it was read, and a replayed
        clock starts each process at the same instant."""
        return max(0, now - sent_at) < self.in_flight_ms

    sleep: Sleep = asyncio.sleep
    settings: VenueSettings = field(default_factory=VenueSettings)
    monotonic: Callable[[], float] | None = None  # the caller's steady clock (None: none)


@dataclass
class Batch:
    """What a batch of orders reads once (per run of ``trade``, per cycle of a loop) instead
    of per order: the venue's markets, the gates' account (kept current as the batch's
    entries go out: ``gates.AccountState.with_order``), the venue's open orders and the
    journal's rows of the batch's sized orders (read again for a sized order the batch has
    gone through already: the same order twice in the input)."""

    markets: Mapping[str, Market]
    account: gates.AccountState
    working: list[Order]
    rows: dict[str, dict[str, OrderRow]]  # the journal's orders of each sized order, by id
    placed: set[str] = field(default_factory=set)  # sized orders this batch has gone through


@dataclass
class LegResult:
    """One order of a bracket and what this run did with it."""

    leg: str
    client_order_id: str
    type: str
    side: str
    amount: float
    price: float | None
    trigger_price: float | None
    action: str  # placed | kept | done | canceled | failed | unknown
    status: str | None = None  # the venue's, when known
    filled: float | None = None
    note: str = ""

    @classmethod
    def of(cls, leg: Leg, action: str, order: Order | None = None, note: str = "") -> "LegResult":
        req = leg.request
        return cls(
            leg=leg.name, client_order_id=leg.client_order_id, type=req.type, side=req.side,
            amount=order.amount if order else req.amount, price=req.price,
            trigger_price=req.trigger_price, action=action,
            status=order.status if order else None, filled=order.filled if order else None,
            note=note,
        )  # fmt: skip


@dataclass
class Outcome:
    """What became of one sized order (or one symbol's close)."""

    client_order_id: str
    symbol: str
    side: str
    status: str  # placed | already_placed | skipped | closed | one of FAILED
    reason: str = ""
    legs: list[LegResult] = field(default_factory=list)
    execution: dict[str, Any] | None = None  # the executor's report (execution/1)

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def end(self, status: str, reason: str) -> "Outcome":
        self.status, self.reason = status, reason
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id, "symbol": self.symbol, "side": self.side,
            "status": self.status, "reason": self.reason,
            "legs": [vars(leg) for leg in self.legs], "execution": self.execution,
        }  # fmt: skip


_REUSED = (
    "client_order_id {cid} was sent before for another order ({sent}; this record: "
    "{mine}): nothing sent (the start-up reconcile keeps the protection of what was sent); "
    "give a new order its own id"
)


def _kept_order(record: dict[str, Any] | None) -> TradeOrder | None:
    """The sized order kept with an entry, None when none is kept or it no longer reads."""
    try:
        return None if record is None else TradeOrder.from_record(record)
    except DataError:
        return None


def _alike(a: object, b: object) -> bool:
    """Equal, prices to float noise (a record written to CSV or Parquet and read back)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(_alike, a, b))
    return a == b


class _State(Enum):
    NEW = "not sent"
    VENUE = "the venue holds it"
    DONE = "the venue no longer lists it"
    UNKNOWN = "status unknown"


@dataclass
class _Book:
    """One sized order's orders as known: the journal's rows, the venue's open orders of its
    symbol and every client id either holds (kept current as this run sends)."""

    rows: dict[str, OrderRow]
    open: dict[str, Order]
    ids: set[str]

    def saw(self, order: Order) -> None:
        self.ids.add(order.client_order_id)
        if order.status == "open":
            self.open[order.client_order_id] = order
        else:
            self.open.pop(order.client_order_id, None)


async def trade_orders(
    venue: TradingExchange, orders: Sequence[TradeOrder], *, setup: TradeSetup, dry_run: bool
) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Place ``orders`` (module docstring); the outcomes and, for a dry run, the requests that
    would have been sent."""
    from cryptobot.engine.reconcile import reconcile_desk  # it builds on this module

    async with open_desk(venue, setup=setup, dry_run=dry_run) as desk:
        await reconcile_desk(desk)  # start-up: the journal in line with the venue first
        outcomes = await desk.trade(orders)
    return outcomes, desk.requests


async def close_positions(
    venue: TradingExchange, symbols: Sequence[str] | None, *, setup: TradeSetup, dry_run: bool
) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Close the positions of ``symbols`` (None: every symbol with a position or an open
    order) by reduce-only market orders, then cancel those symbols' orders."""
    async with open_desk(venue, setup=setup, dry_run=dry_run) as desk:
        outcomes = await desk.close(symbols)
    return outcomes, desk.requests


@asynccontextmanager
async def open_desk(
    venue: TradingExchange, *, setup: TradeSetup, dry_run: bool
) -> AsyncIterator["TradeDesk"]:
    """The run's desk: on the venue under its run lock, the journal held open for the run
    (one batch: each row a transaction on the open database; other processes wait for it, or
    for the executor's next wait, when it is let go), the intents a killed run left taken in
    first (``TradeJournal.take_in``: a run refuses to start when it cannot write them), or a
    dry run (it sends and stores nothing, so it takes no lock and holds nothing either)."""
    journal = TradeJournal(setup.root, setup.venue)
    if dry_run:
        dry = DryRunDispatch(now=await venue.now())
        yield TradeDesk(venue, setup=setup, dispatch=dry, journal=journal)
        return
    with locks.exclusive(setup.root / f"trade-{file_token(setup.venue)}.lock"), journal.held():
        journal.take_in()  # a killed run's intents: looked up as its ``sending`` rows
        dispatch = VenueDispatch(venue, journal, setup.monotonic)
        yield TradeDesk(venue, setup=setup, dispatch=dispatch, journal=journal)
        journal.take_in()  # this run's are in the journal: the file emptied


class TradeDesk:
    """The decisions of one run (module docstring); every change goes through ``dispatch``."""

    def __init__(self, venue: TradingExchange, *, setup: TradeSetup, dispatch: Dispatch,
                 journal: TradeJournal) -> None:  # fmt: skip
        self.venue, self.setup, self.send, self.journal = venue, setup, dispatch, journal

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.send.requests if isinstance(self.send, DryRunDispatch) else []

    # ---- a run ---------------------------------------------------------------------------
    async def trade(self, orders: Sequence[TradeOrder]) -> list[Outcome]:
        batch = await self.batch(orders)
        outcomes = [await self.place(order, batch) for order in orders]
        await self._record({o.symbol for o in orders if o.symbol in batch.markets})
        return outcomes

    async def batch(self, orders: Sequence[TradeOrder]) -> Batch:
        """What a batch reads once, before its first order (``Batch``)."""
        markets = await self.venue.load_markets()
        account, working = await self._account(orders)
        rows = self.journal.orders_of_each(o.client_order_id for o in orders)
        return Batch(markets=markets, account=account, working=working, rows=rows)

    async def place(self, order: TradeOrder, batch: Batch) -> Outcome:
        """One sized order of ``batch`` (module docstring); the batch's account then holds it
        if its entry went out (or may have)."""
        try:
            outcome, proposal = await self._one(order, batch)
        finally:
            batch.placed.add(order.client_order_id)
        if proposal is not None:
            batch.account = batch.account.with_order(proposal)
        return outcome

    async def _one(
        self, order: TradeOrder, batch: Batch
    ) -> tuple[Outcome, gates.OrderProposal | None]:
        out = Outcome(order.client_order_id, order.symbol, order.side, "placed")
        bracket = await self._bracket(order, batch.markets, out)
        if bracket is None:
            return out, None
        book = await self._book(bracket, batch)
        state, entry = await self._state(bracket, bracket.entry, book, fetch=True)
        if state is _State.UNKNOWN:
            why = "a request for it may still be in flight; re-run trade once it has settled"
            return out.end("unknown", f"the entry's status is unknown ({why})"), None
        if state is not _State.NEW:
            if (other := self._reused(order, entry)) is not None:
                await self.send.event(level="WARNING", kind="client_id_reused",
                                      symbol=order.symbol, client_order_id=order.client_order_id,
                                      message=f"{order.symbol}: {other}")  # fmt: skip
                return out.end("refused", other), None
            await self._sent_before(bracket, state, entry, book, out, account=batch.account)
            return out, None
        proposal, verdicts = self._gate(bracket, batch.account)
        verdict = {v.gate: str(v) for v in verdicts}
        refusal = gates.first_rejection(verdicts)
        if refusal is not None:
            await self.send.refused(bracket.entry, strategy=order.strategy, reason=refusal,
                                    gates=verdict)  # fmt: skip
            return out.end("refused", refusal), None
        rules = self._rules(order)
        if rules is None:
            entry = await self._open(bracket, verdict, book, out)
            if entry is not None:
                await self._protect(bracket, entry, book, out)
        elif await self._settings(bracket, verdict, out):
            row = book.rows.get(bracket.entry.client_order_id)
            none = row is None or row.sent  # never sent, or ``_state`` found it absent
            entry = await self._execute(bracket, rules, book, out, gates=verdict,
                                        found=[] if none else None)  # fmt: skip
        else:
            entry = None
        sent = entry is not None or out.status == "unknown"  # an unknown entry may exist
        return out, proposal if sent else None

    def _reused(self, order: TradeOrder, entry: Order | None) -> str | None:
        """Why ``order`` is not the order sent before under its client id, if it is not: a
        record that reuses the id for another trade (side, symbol, levels) would be reported,
        and its protection checked, as if the venue held it. The sized order kept with the
        entry says what was sent; without it, the venue's entry (its side and symbol). Its
        size may differ (the same signal sized again): the first one stands."""
        first = _kept_order(self.journal.sized_order(order.client_order_id))
        if first is not None:
            names = ("exchange", "symbol", "side", "entry", "stop", "targets")
            differ = [n for n in names if not _alike(getattr(first, n), getattr(order, n))]
            sent = ", ".join(f"{n} {getattr(first, n)}" for n in differ)
            mine = ", ".join(f"{n} {getattr(order, n)}" for n in differ)
        else:  # no kept order (an older journal): the venue's entry says its side and symbol
            side = "buy" if order.buy else "sell"
            differ = entry is not None and (entry.symbol, entry.side) != (order.symbol, side)
            sent = "" if entry is None else f"{entry.side} {entry.symbol}"
            mine = f"{side} {order.symbol}"
        return _REUSED.format(cid=order.client_order_id, sent=sent, mine=mine) if differ else None

    async def _bracket(
        self, order: TradeOrder, markets: Mapping[str, Market], out: Outcome
    ) -> Bracket | None:
        """The order's bracket on this venue, or None (``out`` says why; a refusal is
        journaled, a record ``size`` refused is only skipped)."""
        why = _unsendable(order, markets, self.venue.id)
        if why is None:
            try:
                return plan(order, markets[order.symbol], split=self.setup.split)
            except DataError as exc:
                why = str(exc)
        if order.status == "refused":
            out.end("skipped", why)
            return None
        await self.send.refused(_intended(order), strategy=order.strategy, reason=why,
                                gates={})  # fmt: skip
        out.end("refused", why)
        return None

    async def _sent_before(
        self,
        bracket: Bracket,
        state: _State,
        entry: Order | None,
        book: _Book,
        out: Outcome,
        *,
        account: gates.AccountState,
    ) -> None:
        """An entry sent before is never sent again: said (and journaled), and the position
        it opened gets its protection checked (a run killed after the entry, a grown fill).
        An execution it left unfinished goes on only while the breaker allows entries: its
        next orders (``-e2``..) open as much as a new entry does."""
        order = bracket.order
        rules = self._rules(order)
        out.end("already_placed", f"sent before ({state.value}): nothing sent again")
        if rules is None or entry is None:  # else the executor lists the entry's orders
            out.legs.append(LegResult.of(bracket.entry, "kept" if entry else "done", entry))
        await self.send.event(level="INFO", kind="already_placed", symbol=order.symbol,
                              client_order_id=order.client_order_id,
                              message=f"{order.symbol}: {out.reason}")  # fmt: skip
        if rules is not None and entry is not None:
            verdicts = self._gate(bracket, account)[1]
            breaker = next(v for v in verdicts if v.gate == "circuit_breaker")
            halt = None if breaker.passed else f"circuit_breaker: {breaker.reason}"
            await self._execute(bracket, rules, book, out, gates=None, halt=halt)
        elif entry is not None:
            await self._protect(bracket, entry, book, out)

    async def _account(
        self, orders: Sequence[TradeOrder]
    ) -> tuple[gates.AccountState, list[Order]]:
        """The gates' account, from the venue: what is held and working, at its prices; and
        the venue's open orders."""
        now = await self.venue.now()
        self.send.at(now)
        balance = await self.venue.fetch_balance()
        positions = await self.venue.fetch_positions()
        working = await self.venue.fetch_open_orders()
        tickers = await self.venue.fetch_tickers()
        base, _ = account_state(
            root=self.setup.root,
            account=self.setup.venue,
            exchange=orders[0].exchange if orders else self.venue.id,
            symbols=sorted({o.symbol for o in orders}),
            equity=balance.total,
            risk=self.setup.risk,
            now=now,
        )
        held = tuple(gates.OpenPosition(p.symbol, p.side, p.notional, p.initial_margin)
                     for p in positions)  # fmt: skip
        ids = {o.client_order_id for o in working} | self.journal.sent_ids()
        prices = {s: t.last for s, t in tickers.items() if t.last}
        account = replace(base, positions=held, order_ids=frozenset(ids),
                          free_margin=balance.free, last_prices=prices)  # fmt: skip
        return account, working

    def _gate(
        self, bracket: Bracket, account: gates.AccountState
    ) -> tuple[gates.OrderProposal, list[gates.Verdict]]:
        """The entry through the gate chain, at the amount the venue will be asked for."""
        order, market = bracket.order, bracket.market
        risk = self.setup.risk.for_order(strategy=order.strategy, asset=market.base)
        amount = bracket.entry.request.amount
        notional = amount * market.contract_size * order.entry
        tiers = for_market(market, venue_of(order.exchange), risk.max_leverage)
        share = amount / order.qty  # the venue's step may round below the sized quantity
        # never less than the price risk of what is sent: a record's risk_usd is its word
        at_stop = amount * market.contract_size * abs(order.entry - (order.stop or order.entry))
        stated = 0.0 if order.risk_usd is None else order.risk_usd * share
        proposal = gates.OrderProposal(
            symbol=order.symbol, side=order.side, entry=order.entry, notional=notional,
            leverage=order.leverage, risk_usd=max(stated, at_stop),
            client_order_id=order.client_order_id,
            max_leverage=bracket_for(tiers, notional).max_leverage, size_mult=order.size_mult,
        )  # fmt: skip
        return proposal, gates.check(proposal, account, risk)

    def _rules(self, order: TradeOrder) -> ExecutionRules | None:
        """The executor's rules for ``order``'s strategy; None: one market order (--taker)."""
        execution = self.setup.execution
        return None if execution is None else execution.for_strategy(order.strategy)

    async def _open(
        self, bracket: Bracket, verdict: dict[str, str], book: _Book, out: Outcome
    ) -> Order | None:
        """Margin mode, leverage, then the entry at market; None when it was not placed
        (``out`` says why)."""
        if not await self._settings(bracket, verdict, out):
            return None
        order = bracket.order
        sized = self._sized(order)
        self.send.expect(bracket.entry, parent_id=order.client_order_id,
                         strategy=order.strategy, gates=verdict, sized=sized)  # fmt: skip
        try:
            self.send.at(await self.venue.now())  # its row on the clock it leaves at
        except BaseException:
            await self.send.unsent(bracket.entry)  # announced, never sent: not_placed
            raise
        try:
            entry = await self.send.create(bracket.entry, parent_id=order.client_order_id,
                                           strategy=order.strategy, gates=verdict,
                                           sized=sized)  # fmt: skip
        except IntentNotDurable:
            raise  # nothing sent, and nothing more will be: the run stops here
        except OrderStatusUnknown as exc:
            return await self._unknown_entry(bracket, book, out, str(exc))
        except OrderNotPlaced as exc:
            out.end("not_placed", f"the venue did not place the entry: {exc}")
            return None
        except CryptobotError as exc:
            out.end("rejected", f"the venue refused the entry: {exc}")
            return None
        book.saw(entry)
        out.legs.append(LegResult.of(bracket.entry, "placed", entry))
        return entry

    def _sized(self, order: TradeOrder) -> dict[str, Any]:
        """The sized order kept with its entry's ``sending`` row (a reconcile rebuilds the
        position's stop from it)."""
        return order.to_record() | {"tp_split": self.setup.split}

    async def _settings(self, bracket: Bracket, verdict: dict[str, str], out: Outcome) -> bool:
        """Margin mode and leverage before the entry, each only when it differs from what a
        run of this setup set last (``VenueSettings``); False when the venue refused them (the
        entry journaled as refused, ``out`` says why)."""
        order, known = bracket.order, self.setup.settings
        try:
            for action, value in known.needed(order.symbol, margin_mode=order.margin_mode,
                                              leverage=order.leverage):  # fmt: skip
                await self.send.setting(action=action, symbol=order.symbol, value=value)
                if not self.send.dry:
                    known.set(order.symbol, action, value)
        except CryptobotError as exc:
            known.forget(order.symbol)  # refused: the venue's state is not known now
            reason = f"the venue refused the margin mode or leverage: {exc}"
            await self.send.refused(bracket.entry, strategy=order.strategy, reason=reason,
                                    gates=verdict)  # fmt: skip
            out.end("rejected", reason)
            return False
        return True

    async def _execute(
        self,
        bracket: Bracket,
        rules: ExecutionRules,
        book: _Book,
        out: Outcome,
        *,
        gates: dict[str, str] | None,
        found: list[Order] | None = None,
        halt: str | None = None,
    ) -> Order | None:
        """The entry through the maker-first executor, its stop and ladder following the fills
        (``_Guard``); ``gates`` None: an entry sent before, gone on with (its orders adopted by
        their ids, none sent again) unless its execution ended (journaled), then only looked
        at; ``halt``: why it may not go on (a tripped breaker): the executor cancels its
        working order and ends it (journaled: later runs only look); ``found``: its orders at
        the venue, as just looked up (``execute``'s). A dry run ends at the executor's first
        wait: its first requests. The entry's orders as one (``entry_of``); None when none
        was placed."""
        order = bracket.order
        venue = DeskVenue(self.venue, self.send, bracket, gates=gates,
                          sized=None if gates is None else self._sized(order))  # fmt: skip
        guard = _Guard(self, bracket, book, out)
        request = ExecutionRequest(
            symbol=order.symbol, side=bracket.entry.request.side,
            qty=bracket.entry.request.amount, client_order_id=order.client_order_id,
            expected_price=order.entry,
        )  # fmt: skip
        at, report = len(out.legs), None
        if gates is not None:  # a new entry: its intent on disk while the executor reads
            self.send.expect(bracket.entry, parent_id=order.client_order_id,
                             strategy=order.strategy, gates=gates, sized=venue.sized)  # fmt: skip
        try:
            if gates is None and self.journal.execution_of(order.client_order_id) is not None:
                for found in await found_orders(venue, request=request):
                    venue.orders[found.client_order_id] = found
            else:
                sleep = _dry_run_ends if self.send.dry else self._wait
                report = await execute(venue, request=request, rules=rules, sleep=sleep,
                                       watch=guard.cover, found=found, halt=halt)  # fmt: skip
        except _NoStop as exc:
            _legs(bracket, venue, out, at)
            await self._unprotected(bracket, venue.working(), book, out, str(exc))
            return None
        except _DryRunEnds:
            pass
        except IntentNotDurable:
            raise  # nothing sent, and nothing more will be: the run stops here
        except CryptobotError as exc:
            out.end("unknown", f"the execution stopped ({exc}); re-run trade to go on with it")
        await self.send.unsent(bracket.entry)  # announced, and the executor sent nothing
        if gates is None and venue.placed:  # "nothing sent again" is the entry's own order
            out.reason = (
                f"{out.reason}; its unfinished execution went on ({len(venue.placed)} sent)"
            )
        _legs(bracket, venue, out, at)
        for child in venue.orders.values():
            book.saw(child)
        if report is not None:
            await self._executed(report, out)
        if not venue.orders:
            if out.status == "unknown":  # an order whose outcome is unknown may have filled
                await self._cover_held(bracket, guard, book, out)
            return None
        entry = entry_of(list(venue.orders.values()), step=bracket.market.step_size)
        await guard.settle(entry)
        return entry

    async def _wait(self, seconds: float) -> None:
        """The executor's wait on the venue, the journal let go meanwhile (a maker order may
        rest for a minute: ``journal`` and ``report`` must not wait for it); a replayed wait,
        over at once, keeps it (letting go and reopening cost 20-60 ms a wait)."""
        with self.journal.let_go() if self.venue.waits_in_real_time() else nullcontext():
            await self.venue.wait(seconds)

    async def _cover_held(self, bracket: Bracket, guard: "_Guard", book: _Book,
                          out: Outcome) -> None:  # fmt: skip
        """What the venue holds of the order's side gets its stop all the same (the gates let
        no other position of the symbol through); no stop: it is closed."""
        held = floor_to_step(await self._held(bracket.order), bracket.market.step_size)
        if held <= 0:
            return
        try:
            await guard.cover(held)
        except _NoStop as exc:
            await self._unprotected(bracket, None, book, out, str(exc))

    async def _executed(self, report: ExecutionReport, out: Outcome) -> None:
        """The report journaled with the order and in the outcome; an execution that stopped
        short says why (nothing filled: ``rejected``; its outcome unknown: ``unknown``)."""
        out.execution = report.to_record()
        await self.send.executed(out.execution)
        if report.status == "unfilled":
            out.end("rejected", f"the entry filled nothing: {report.reason}")
        elif report.status == "unknown":
            out.end("unknown", f"{report.reason}; re-run trade to resolve")
        elif report.reason:
            out.reason = (out.reason + "; " if out.reason else "") + report.reason

    async def _unknown_entry(
        self, bracket: Bracket, book: _Book, out: Outcome, error: str
    ) -> Order | None:
        """An entry whose request failed ambiguously: looked up by its client id (never sent
        again); not found, a position it may have opened is protected all the same (the gates
        let no other position of this symbol through)."""
        found = await self._find(bracket.entry)
        if found is not None:
            await self._seen(bracket, found, bracket.entry)
            book.saw(found)
            out.legs.append(LegResult.of(bracket.entry, "placed", found))
            return found
        out.end("unknown", f"the entry's status is unknown ({error}); re-run trade to resolve")
        out.legs.append(LegResult.of(bracket.entry, "unknown"))
        held = await self._held(bracket.order)
        if held > 0:
            stopped, reason = await self._ensure_stop(bracket, held, book, out)
            if not stopped:
                await self._unprotected(bracket, None, book, out, reason)
        return None

    # ---- protection ----------------------------------------------------------------------
    async def _protect(self, bracket: Bracket, entry: Order, book: _Book, out: Outcome) -> None:
        """The stop for what ``entry`` has filled, then the ladder; a fill that grew while
        they were placed gets its bigger stop now. Nothing to protect (the entry is done
        without a fill, or its position is closed): the order's own stops and targets still
        working are canceled, so they cannot reduce a later position of the symbol."""
        guard = _Guard(self, bracket, book, out)
        if not await guard.settle(entry) or entry.status != "open" or self.send.dry:
            return
        fresh = await self._find(bracket.entry, tries=1)
        if fresh is None or fresh.filled <= entry.filled:
            return  # the next run grows the stop
        await self._seen(bracket, fresh, bracket.entry)
        await guard.settle(fresh)

    async def _cancel_legs(self, bracket: Bracket, book: _Book, out: Outcome) -> None:
        """This order's stops and targets still working, canceled (best effort: they only
        ever reduce)."""
        parent = bracket.order.client_order_id
        for cid, working in list(book.open.items()):
            if cid == parent:
                continue
            leg = _leg_of(bracket, working)
            try:
                done = await self.send.cancel(working, parent_id=parent, leg=leg.name)
            except CryptobotError:
                continue
            book.saw(done)
            out.legs.append(LegResult.of(leg, "canceled", done, note="nothing left to protect"))

    async def _ensure_stop(
        self, bracket: Bracket, want: float, book: _Book, out: Outcome
    ) -> tuple[bool, str]:
        """An open stop of this order covering ``want`` (kept, or a new one placed and the
        smaller ones canceled after it); False and why when the venue would not take it."""
        stops = [book.open[c] for c in bracket.stop_ids(book.ids) if c in book.open]
        cover = [s for s in stops if s.amount >= want * (1 - 1e-9)]
        if cover:
            out.legs.extend(self._kept(bracket, s) for s in cover)
            return True, ""
        placed, reason = await self._place_stop(bracket, want, book)
        if placed is None:
            return False, reason
        out.legs.append(LegResult.of(_leg_of(bracket, placed), "placed", placed))
        for old in stops:
            try:
                done = await self.send.cancel(old, parent_id=bracket.order.client_order_id,
                                              leg=_leg_of(bracket, old).name)  # fmt: skip
            except CryptobotError:
                continue  # done already (filled or canceled with the position), or the
                # venue would not say: the new stop covers more, the old one only reduces
            book.saw(done)
            out.legs.append(LegResult.of(_leg_of(bracket, done), "canceled", done,
                                         note="replaced by a stop for the grown fill"))  # fmt: skip
        return True, ""

    async def _place_stop(
        self, bracket: Bracket, want: float, book: _Book
    ) -> tuple[Order | None, str]:
        """A new stop version for ``want``; retried (same id) only while the venue certainly
        processed nothing (``OrderNotPlaced``), waiting its Retry-After up to ``max_wait_s``."""
        order = bracket.order
        leg = bracket.stop(amount=want, version=next_version(bracket, "sl", book.ids))
        book.ids.add(leg.client_order_id)
        reason = ""
        for attempt in range(1, self.setup.stop_attempts + 1):
            try:
                placed = await self.send.create(leg, parent_id=order.client_order_id,
                                                strategy=order.strategy)  # fmt: skip
            except OrderNotPlaced as exc:
                reason, wait = str(exc), exc.retry_after or 0.0
                if attempt == self.setup.stop_attempts or wait > self.setup.max_wait_s:
                    break
                await self.setup.sleep(wait)
                continue
            except OrderStatusUnknown as exc:
                placed = await self._find(leg)
                if placed is None:  # it may exist; the close that follows makes that harmless
                    return None, str(exc)
                await self._seen(bracket, placed, leg)
            except CryptobotError as exc:
                return None, str(exc)
            book.saw(placed)
            return placed, ""
        return None, reason

    async def _targets(self, bracket: Bracket, book: _Book, out: Outcome) -> None:
        """The ladder's rungs not sent yet; a rung the venue refuses is a warning (the stop
        protects the position), never a reason to close it."""
        order = bracket.order
        for leg in bracket.targets:
            state, found = await self._state(bracket, leg, book, fetch=False)
            if state is not _State.NEW:
                action = {_State.VENUE: "kept", _State.DONE: "done"}.get(state, "unknown")
                out.legs.append(LegResult.of(leg, action, found))
                continue
            try:
                placed = await self.send.create(leg, parent_id=order.client_order_id,
                                                strategy=order.strategy)  # fmt: skip
            except CryptobotError as exc:
                out.legs.append(LegResult.of(leg, "failed", note=str(exc)))
                await self.send.event(
                    level="WARNING", kind="target_not_placed", symbol=order.symbol,
                    client_order_id=leg.client_order_id,
                    message=f"{order.symbol}: take-profit {leg.name} not placed ({exc}); the "
                    "stop protects the position",
                )  # fmt: skip
                continue
            book.saw(placed)
            out.legs.append(LegResult.of(leg, "placed", placed))

    async def _unprotected(
        self, bracket: Bracket, entry: Order | None, book: _Book, out: Outcome, reason: str
    ) -> None:
        """No stop could be placed: the entry canceled if it still works, what is held closed
        by a reduce-only market order, the targets canceled, and a CRITICAL event."""
        order = bracket.order
        cid = order.client_order_id
        if entry is not None and entry.status == "open":
            with suppress(CryptobotError):  # filled meanwhile: the close below takes it
                book.saw(await self.send.cancel(entry, parent_id=cid, leg=ENTRY))
        held = await self._held(order)
        failure = None
        if held > 0:
            leg = bracket.close(amount=floor_to_step(held, bracket.market.step_size),
                                version=next_version(bracket, "close", book.ids))  # fmt: skip
            try:
                closed = await self.send.create(leg, parent_id=cid, strategy=order.strategy)
                book.saw(closed)
                out.legs.append(LegResult.of(leg, "placed", closed))
            except CryptobotError as exc:
                failure = str(exc)
        for target in bracket.targets:
            working = book.open.get(target.client_order_id)
            if working is not None:
                with suppress(CryptobotError):  # reduce-only: harmless once the position is gone
                    book.saw(await self.send.cancel(working, parent_id=cid, leg=target.name))
        what = (f"the position ({held:g}) was closed by a reduce-only market order" if held > 0
                else "nothing had filled; the entry was canceled")  # fmt: skip
        if failure is not None:
            what = f"the close failed too ({failure}): the position ({held:g}) is UNPROTECTED"
        message = f"{order.symbol}: the stop could not be placed ({reason}); {what}"
        out.end("unprotected" if failure else "closed_no_stop", message)
        await self.send.event(level="CRITICAL", kind="no_stop", message=message,
                              symbol=order.symbol, client_order_id=cid,
                              data={"stop_error": reason, "held": held,
                                    "close_error": failure})  # fmt: skip

    # ---- what is known of an order -------------------------------------------------------
    async def _book(self, bracket: Bracket, batch: Batch) -> _Book:
        """The order's journal rows and its orders the venue works: from the batch's read of
        the open orders when neither the journal nor that read knows any of them (a new
        order: nothing of it can have appeared since), else read again now (they may have
        changed since)."""
        parent_id = bracket.order.client_order_id
        if parent_id in batch.rows and parent_id not in batch.placed:
            rows = batch.rows[parent_id]
        else:  # not read with the batch, or maybe written since by the batch itself
            rows = self.journal.orders_of(parent_id)
        ours = {bracket.entry.client_order_id, *(t.client_order_id for t in bracket.targets)}
        ours |= set(rows)
        parent = bracket.order.client_order_id + "-"

        def mine(orders: Iterable[Order]) -> dict[str, Order]:
            cids = {o.client_order_id: o for o in orders}
            return {c: o for c, o in cids.items() if c in ours or c.startswith(parent)}

        working = mine(batch.working)
        if rows or working:
            self.send.at(await self.venue.now())
            working = mine(await self.venue.fetch_open_orders(bracket.order.symbol))
        for cid, order in working.items():  # the journal catches up (a run killed before
            row = rows.get(cid)  # the answer was stored, or another journal's order)
            if row is None or row.status != order.status:
                await self._seen(bracket, order, _leg_of(bracket, order))
        return _Book(rows=rows, open=working, ids=set(rows) | set(working))

    async def _state(
        self, bracket: Bracket, leg: Leg, book: _Book, *, fetch: bool
    ) -> tuple[_State, Order | None]:
        """Whether ``leg`` was sent and where it stands. An id with neither a journal row nor
        an intent was never sent (no request leaves before its intent is on disk): nothing
        to ask the venue. One that was sent and got no answer is looked up; ``fetch``: an
        answered one the venue no longer lists as open too (the entry: for its fills)."""
        cid = leg.client_order_id
        if cid in book.open:
            return _State.VENUE, book.open[cid]
        row = book.rows.get(cid)
        if row is None or not row.sent:
            return _State.NEW, None  # never sent; refused, rejected or certainly not placed
        answered = row.status in ("open", "closed", "canceled")
        if answered and not fetch:
            return _State.DONE, None
        try:
            found = await self._lookup(leg, tries=self.setup.lookups)
        except CryptobotError:
            return _State.UNKNOWN, None
        if found is not None:
            await self._seen(bracket, found, leg)
            book.saw(found)
            return _State.VENUE, found
        if answered:
            return _State.DONE, None
        if self.setup.in_flight(sent_at=row.updated_at, now=await self.venue.now()):
            return _State.UNKNOWN, None
        await self.send.absent(leg, reason=f"the venue has no such order after "
                               f"{self.setup.lookups} look-ups: it was not placed")  # fmt: skip
        return _State.NEW, None

    async def _lookup(self, leg: Leg, *, tries: int) -> Order | None:
        """The order of ``leg`` at the venue, asking up to ``tries`` times while it answers
        "not found" (a venue may list a new order late); None if it never does."""
        for attempt in range(1, tries + 1):
            try:
                return await self.venue.fetch_order(leg.client_order_id,
                                                    symbol=leg.request.symbol)  # fmt: skip
            except OrderNotFound:
                if attempt < tries:
                    await self.setup.sleep(self.setup.pause_s)
        return None

    async def _find(self, leg: Leg, *, tries: int | None = None) -> Order | None:
        """``_lookup`` where a failed look-up only means "not known now"."""
        try:
            return await self._lookup(leg, tries=tries or self.setup.lookups)
        except CryptobotError:
            return None

    async def _held(self, order: TradeOrder) -> float:
        """Contracts the venue holds on the order's side of its symbol."""
        positions = await self.venue.fetch_positions([order.symbol])
        return sum(p.contracts for p in positions
                   if p.symbol == order.symbol and p.side == order.side)  # fmt: skip

    def _kept(self, bracket: Bracket, order: Order) -> LegResult:
        return LegResult.of(_leg_of(bracket, order), "kept", order)

    async def _seen(self, bracket: Bracket, order: Order, leg: Leg) -> None:
        """An order of ``bracket`` found at the venue: the journal takes its state."""
        await self.send.seen(order, parent_id=bracket.order.client_order_id, leg=leg.name,
                             strategy=bracket.order.strategy)  # fmt: skip

    # ---- closes --------------------------------------------------------------------------
    async def close(self, symbols: Sequence[str] | None) -> list[Outcome]:
        markets = await self.venue.load_markets()
        positions = await self.venue.fetch_positions()
        working = await self.venue.fetch_open_orders()
        if symbols is None:
            symbols = sorted({p.symbol for p in positions} | {o.symbol for o in working})
        account, _ = await self._account([])
        outcomes = []
        for symbol in symbols:
            held = [p for p in positions if p.symbol == symbol]
            orders = [o for o in working if o.symbol == symbol]
            outcomes.append(await self._close_one(symbol, markets, held, orders, account))
        await self._record(set(symbols) & set(markets))
        return outcomes

    async def _close_one(
        self,
        symbol: str,
        markets: Mapping[str, Market],
        held: list[Position],
        orders: list[Order],
        account: gates.AccountState,
    ) -> Outcome:
        out = Outcome("", symbol, held[0].side if held else "", "closed")
        self.send.at(await self.venue.now())
        if symbol not in markets:
            return out.end("refused", f"the venue lists no market {symbol}")
        closes: set[str] = set()  # the closes working on the venue: kept, never canceled
        step = markets[symbol].step_size
        for position in held:
            first = close_leg(position, prefix=self.setup.prefix, venue=self.setup.venue)
            working = [o for o in orders if _closes(first, o.client_order_id)]
            closes |= {o.client_order_id for o in working}
            covered = sum(o.amount - (o.filled or 0.0) for o in working)
            rest = add_steps(position.contracts, -covered, step=step)
            if working and rest <= 0:
                out.client_order_id = working[-1].client_order_id
                out.end("already_placed", "a close of this position is working on the venue")
                continue
            # none working for all of it (gone while the position stands: canceled, partly
            # filled; or the position grew): the next version closes the rest (reduce-only)
            version = 1
            while close_leg(position, prefix=self.setup.prefix, venue=self.setup.venue,
                            version=version).client_order_id in account.order_ids:  # fmt: skip
                version += 1
            leg = close_leg(position, prefix=self.setup.prefix, venue=self.setup.venue,
                            version=version, amount=rest)  # fmt: skip
            out.client_order_id = leg.client_order_id
            verdicts = gates.check(_close_proposal(position, leg), account, self.setup.risk)
            refusal = gates.first_rejection(verdicts)
            if refusal is not None:
                return out.end("refused", refusal)
            try:
                closed = await self.send.create(leg, parent_id=leg.client_order_id,
                                                strategy="manual")  # fmt: skip
            except CryptobotError as exc:
                why = f"the close was not placed ({exc}); its orders are left in place"
                return out.end("rejected", why)
            out.legs.append(LegResult.of(leg, "placed", closed))
        for order in (o for o in orders if o.client_order_id not in closes):
            action, status, note = "canceled", None, ""
            try:
                status = (await self.send.cancel(order, parent_id=None, leg=None)).status
            except OrderNotFound:
                action = "done"  # filled or canceled meanwhile (OrderNotOpen included)
            except CryptobotError as exc:
                action, note = "failed", str(exc)
                out.end("rejected", f"an order of {symbol} could not be canceled: {exc}")
            out.legs.append(LegResult(
                leg="cancel", client_order_id=order.client_order_id, type=order.type,
                side=order.side, amount=order.amount, price=order.price,
                trigger_price=order.trigger_price, action=action, status=status, note=note,
            ))  # fmt: skip
        if not held and not orders:
            out.reason = "nothing to close: no position and no open order"
        return out

    async def _record(self, symbols: Iterable[str]) -> None:
        """The fills of the journal's orders on these symbols, their funding, the positions
        and the account's balance now."""
        fills, payments = [], []
        for symbol in sorted(symbols):
            fills += await self.venue.fetch_my_trades(symbol)
            payments += await self.venue.fetch_funding_payments(symbol)
        await self.send.record(fills=fills, positions=await self.venue.fetch_positions(),
                               payments=payments,
                               balance=await self.venue.fetch_balance())  # fmt: skip


class _NoStop(Exception):
    """The venue would not take a stop for what has filled (``_Guard.cover``); no
    ``CryptobotError``, so no handler of the executor's can take it for a venue's refusal."""


class _DryRunEnds(Exception):
    """A dry run's executor reached its first wait: its first requests are written down."""


async def _dry_run_ends(seconds: float) -> None:
    raise _DryRunEnds


@dataclass
class _Guard:
    """One entry's protection as its fills arrive: the stop grown to what has filled (a new
    version, the smaller ones canceled after it), the ladder once the first stop stands."""

    desk: TradeDesk
    bracket: Bracket
    book: _Book
    out: Outcome
    covered: float = 0.0
    laddered: bool = False

    async def cover(self, filled: float) -> None:
        """A stop for ``filled`` (the executor's ``watch``); ``_NoStop`` when the venue will
        not take one."""
        want = floor_to_step(filled, self.bracket.market.step_size)
        if want <= self.covered:
            return
        stopped, reason = await self.desk._ensure_stop(self.bracket, want, self.book, self.out)
        if not stopped:
            raise _NoStop(reason)
        self.covered = want
        if not self.laddered:
            self.laddered = True
            await self.desk._targets(self.bracket, self.book, self.out)

    async def settle(self, entry: Order) -> bool:
        """The protection ``entry`` needs now (``_cover``). Nothing to protect (the entry is
        done without a fill, or its position is closed): the order's stops and targets still
        working are canceled, so they cannot reduce a later position of the symbol. False
        when nothing is protected: nothing to, or no stop (the position closed)."""
        desk, bracket, out = self.desk, self.bracket, self.out
        want = _cover(entry, await desk._held(bracket.order), bracket.market.step_size)
        if want <= 0:
            why = "the entry filled nothing" if entry.filled <= 0 else "the position is closed"
            out.reason = (out.reason + "; " if out.reason else "") + f"nothing to protect: {why}"
            await desk._cancel_legs(bracket, self.book, out)
            return False
        try:
            await self.cover(want)
        except _NoStop as exc:
            await desk._unprotected(bracket, entry, self.book, out, str(exc))
            return False
        return True


def _legs(bracket: Bracket, venue: DeskVenue, out: Outcome, at: int) -> None:
    """The executor's orders into ``out`` at ``at`` (before the stop and ladder that followed
    them): placed by this run, or kept (adopted from an earlier one)."""
    legs = [LegResult.of(_leg_of(bracket, o), "placed" if cid in venue.placed else "kept", o)
            for cid, o in venue.orders.items()]  # fmt: skip
    out.legs[at:at] = legs


def close_leg(
    position: Position, *, prefix: str, venue: str, version: int = 1, amount: float | None = None
) -> Leg:
    """The reduce-only market order closing ``position`` (``amount``: this much of it, the rest
    a working close does not cover): its client id is derived from the venue, the symbol, the
    side and the time the venue gives the position (the time it opened on a simulated venue),
    so a close sent again for the same position is the same order; ``version`` 2, 3..: a close
    sent again after the one before it was gone or fell short (``-2``..)."""
    key = f"{venue}|{position.symbol}|{position.side}|{position.timestamp}"
    cid = f"{prefix}-x-{hashlib.sha1(key.encode()).hexdigest()[:20]}"
    cid = cid if version == 1 else f"{cid}-{version}"
    req = OrderRequest(
        symbol=position.symbol, type="market", side="sell" if position.side == "long" else "buy",
        amount=position.contracts if amount is None else amount, reduce_only=True,
        client_order_id=cid,
    )  # fmt: skip
    return Leg("close", req)


def _closes(first: Leg, client_order_id: str | None) -> bool:
    """Whether ``client_order_id`` is a version of the close ``first`` (its first version)."""
    cid = first.client_order_id
    return client_order_id == cid or (client_order_id or "").startswith(f"{cid}-")


def _close_proposal(position: Position, leg: Leg) -> gates.OrderProposal:
    return gates.OrderProposal(
        symbol=position.symbol, side=position.side, entry=position.mark_price,
        notional=position.notional, leverage=position.leverage, risk_usd=None,
        client_order_id=leg.client_order_id, max_leverage=max(position.leverage, 1.0),
        reduce_only=True,
    )  # fmt: skip


def _unsendable(order: TradeOrder, markets: Mapping[str, Market], venue_id: str) -> str | None:
    """Why ``order`` cannot go to this venue at all, if it cannot."""
    if order.status == "refused":
        return f"refused by size: {order.reason}"
    if order.exchange != venue_id:
        return f"sized for {order.exchange}'s markets; this venue trades {venue_id}'s"
    if order.symbol not in markets:
        return f"the venue lists no market {order.symbol}"
    if order.stop is None:
        return "it has no stop: trade sends only orders it can protect (size it with --stop)"
    return None


def _intended(order: TradeOrder) -> Leg:
    """The entry an order refused before any planning would have sent (for the journal)."""
    req = OrderRequest(symbol=order.symbol, type="market", side="buy" if order.buy else "sell",
                       amount=order.qty, client_order_id=order.client_order_id)  # fmt: skip
    return Leg(ENTRY, req)


def _cover(entry: Order, held: float, step: float | None) -> float:
    """What the stop must cover: what the entry filled that the position still holds; for an
    entry that has filled nothing yet and still works, all of it (the stop rests with it and
    reduces only what fills)."""
    if entry.filled > 0:
        return floor_to_step(min(entry.filled, held), step)
    return entry.amount if entry.status == "open" else 0.0


def _leg_of(bracket: Bracket, order: Order) -> Leg:
    """An order of the bracket as a leg (its name from its client id: ``sl2``, ``tp1``..)."""
    name = bracket.leg_name(order.client_order_id)
    req = OrderRequest(symbol=order.symbol, type=order.type, side=order.side,
                       amount=order.amount, price=order.price,
                       trigger_price=order.trigger_price, reduce_only=order.reduce_only,
                       client_order_id=order.client_order_id)  # fmt: skip
    return Leg(name, req)


__all__ = [
    "FAILED",
    "LIVE_IN_FLIGHT_MS",
    "Batch",
    "LegResult",
    "Outcome",
    "TradeDesk",
    "TradeSetup",
    "close_leg",
    "close_positions",
    "open_desk",
    "trade_orders",
]
