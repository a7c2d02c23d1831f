"""The maker-first executor (quant plan §8): one entry onto a venue, as a maker where it can.

``await execute(venue, request=..., rules=settings.execution.for_strategy(s), sleep=...)`` is
the whole surface; ``trade`` calls it for an entry (``trade --taker`` skips it) and the daemon
will. It reads the time only from ``venue.now()`` and waits only through ``sleep`` (the
caller's: ``venue.wait``, which sleeps live and moves a replayed clock), so a replayed clock
drives it as it drives the venue. ``watch`` (``trade``'s protection) is awaited with what has
filled each time that grew, after the look at the venue that saw it: a stop can follow the
fills one look behind, never more.

**Maker-first** (``rules.maker_first``, not ``taker``):

1. a post-only limit at the best bid (a buy) or ask (a sell), for at most
   ``max_book_impact_pct`` % of the size shown where it would take (``execution_plan``);
2. every ``reprice_every_s`` it looks again: filled, the next child goes out; canceled by the
   venue, a new one; still resting, it moves ``reprice_ticks`` ticks toward the market (or to
   the best price if the market moved away), amended in place where the venue
   ``amends_in_place``, else canceled and placed anew under its next client id;
3. refused as it would take (Binance's -5022; Bitget cancels it on arrival), it waits one
   interval and quotes afresh;
4. after ``give_up_after_s`` (counted from the first order) the resting order is canceled and
   the rest goes **at market**, in children of the same size rule, each waited for.

**Taker** (``taker``, or ``maker_first: false``): step 4 at once. No usable quote (an empty,
crossed or locked book) or no price tick: at market too, said in the report's notes.

**Never twice, never more.** One order works at a time; the next is sent only once the one
before is done (filled, canceled: a fill that raced the cancel is in its final ``filled``), so
what is filled is the sum of the orders' own fills and can never exceed the request. Every
order's client id is ``execution_plan.entry_order_id`` of the sized order's id; a run that
starts by finding some of them at the venue (a crash, a re-run) counts what they filled, adopts
the one still open and goes on from there instead of placing anything again. An order whose
outcome cannot be learnt (``OrderStatusUnknown``) stops the run (``unknown``: reconcile first).
A venue that keeps failing raises (``ExchangeFailure``): a re-run resumes.

**Quantities** are on the market's step (the request rounded down); a remainder below the
market's minimum quantity or notional is not sent and is reported as ``unsent``.
"""

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptobot.core.account import Fill, Order, OrderSide, OrderType
from cryptobot.core.errors import ExchangeFailure, UnknownSymbolError
from cryptobot.core.execution import ExecutionReport, ExecutionRequest, ExecutionStatus
from cryptobot.core.market import BestBidAsk, Market
from cryptobot.core.numbers import short
from cryptobot.core.settings import ExecutionRules
from cryptobot.engine.execution_plan import child_qty, entry_order_id, maker_price
from cryptobot.exchange.errors import (
    DuplicateClientOrderId,
    OrderNotFound,
    OrderNotPlaced,
    OrderStatusUnknown,
    PostOnlyWouldTake,
    TradingError,
)
from cryptobot.exchange.market_rules import add_steps
from cryptobot.risk.sizing import floor_to_step

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
Watch = Callable[[float], Awaitable[None]]
MARKET_WAIT_POLLS = 60  # a market order is looked at this many intervals before "pending"
NOT_PLACED_TRIES = 5  # requests the venue turned away unprocessed, in a row, before stopping


class ExecutionVenue(Protocol):
    """What the executor asks of a venue: ``TradingExchange``'s reads of an order, the book
    and the fills, and its order requests (``trade`` hands it one that journals them)."""

    id: str
    amends_in_place: bool

    async def load_markets(self, reload: bool = False) -> dict[str, Market]: ...

    async def now(self) -> int: ...

    async def fetch_order(self, client_order_id: str, *, symbol: str | None = None) -> Order: ...

    async def fetch_best_bid_ask(self, symbol: str) -> BestBidAsk: ...

    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[Fill]: ...

    async def create_order(
        self, *, symbol: str, type: OrderType, side: OrderSide, amount: float,
        price: float | None = None, trigger_price: float | None = None,
        reduce_only: bool = False, post_only: bool = False, client_order_id: str | None = None,
    ) -> Order: ...  # fmt: skip

    async def cancel_order(self, client_order_id: str, *, symbol: str | None = None) -> Order: ...

    async def amend_order(
        self, client_order_id: str, *, price: float, symbol: str | None = None
    ) -> Order: ...


async def execute(
    venue: ExecutionVenue,
    *,
    request: ExecutionRequest,
    rules: ExecutionRules,
    sleep: Sleep,
    taker: bool = False,
    watch: Watch | None = None,
    found: Sequence[Order] | None = None,
    halt: str | None = None,
) -> ExecutionReport:
    """Work ``request`` onto ``venue`` by ``rules`` (the module's docstring) and report it;
    ``taker``: at market at once; ``watch``: awaited with the filled quantity as it grows (an
    exception it raises ends the run there, raised to the caller); ``found``: the entry's
    orders at the venue as the caller has just looked them up (``found_orders``' answer:
    ``trade`` looked its entry's id up before its gates), so they are not asked for twice
    before the first order leaves; None: the executor asks. ``halt``: why no order may go
    out (a tripped breaker): the run adopts what it finds, cancels the one working and ends
    there, its report saying why (a later run then only looks at it)."""
    market = (await venue.load_markets()).get(request.symbol)
    if market is None:
        raise UnknownSymbolError(f"{venue.id} lists no market {request.symbol}")
    run = _Run(venue=venue, request=request, rules=rules, sleep=sleep, market=market,
               qty=floor_to_step(request.qty, market.step_size), watch=watch)  # fmt: skip
    if found is None:
        found = await found_orders(venue, request=request)
    mode: Literal["maker_first", "taker"] = "maker_first"
    if taker or not rules.maker_first:
        mode = "taker"
    await run.resume(found)
    try:
        if halt is not None:
            await run.halt(halt)
        if mode == "maker_first":
            await run.maker()
        await run.at_market()
    except _Stop:
        pass
    except OrderStatusUnknown as exc:
        run.end("unknown", str(exc))
    await run.looked()
    return await run.report(mode)


async def found_orders(venue: ExecutionVenue, *, request: ExecutionRequest) -> list[Order]:
    """The entry's orders the venue holds, asked for by their ids in turn until one is unknown
    (the executor sends the next only once the one before is done): what a re-run adopts."""
    found: list[Order] = []
    n = 1
    while (cid := entry_order_id(request.client_order_id, n)) is not None:
        try:
            found.append(await venue.fetch_order(cid, symbol=request.symbol))
        except OrderNotFound:
            break
        n += 1
    return found


class _Stop(Exception):
    """The run ends here; ``_Run.status`` and ``reason`` say why."""


@dataclass
class _Run:
    venue: ExecutionVenue
    request: ExecutionRequest
    rules: ExecutionRules
    sleep: Sleep
    market: Market
    qty: float
    watch: Watch | None
    orders: dict[str, Order] = field(default_factory=dict)  # by client id, in sending order
    sent: int = 0  # orders numbered so far
    started: int = 0
    reprices: int = 0
    requotes: int = 0
    status: ExecutionStatus | None = None
    reason: str | None = None
    unsent: float = 0.0
    notes: list[str] = field(default_factory=list)
    told: float = 0.0  # the filled quantity ``watch`` was last told
    quote: BestBidAsk | None = None  # the book read with the clock as the run started

    # ---- state -----------------------------------------------------------------------------
    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Literal["buy", "sell"]:
        return self.request.side

    def filled(self) -> float:
        filled = 0.0
        for order in self.orders.values():
            filled = add_steps(filled, order.filled, step=self.market.step_size)
        return filled

    def remaining(self) -> float:
        return add_steps(self.qty, -self.filled(), step=self.market.step_size)

    async def looked(self) -> None:
        """After a look at the venue: ``watch`` told what has filled, if that grew."""
        filled = self.filled()
        if self.watch is not None and filled > self.told:
            self.told = filled
            await self.watch(filled)

    def working(self) -> Order | None:
        last = next(reversed(self.orders.values()), None)
        return last if last is not None and last.status == "open" else None

    def keep(self, order: Order) -> Order:
        self.orders[order.client_order_id] = order
        return order

    def end(self, status: ExecutionStatus, reason: str) -> None:
        self.status, self.reason = status, reason
        log.warning("%s %s: %s", self.request.client_order_id, self.symbol, reason)

    def stop(self, status: ExecutionStatus, reason: str) -> _Stop:
        self.end(status, reason)
        return _Stop(reason)

    def note(self, text: str) -> None:
        self.notes.append(text)
        log.info("%s %s: %s", self.request.client_order_id, self.symbol, text)

    # ---- a re-run finds what was sent -------------------------------------------------------
    async def resume(self, found: Sequence[Order]) -> None:
        """The entry's orders the venue holds (``found_orders``): each counts (a re-run never
        sends an order again), the last one open is worked on."""
        for order in found:
            self.keep(order)
        self.sent = len(self.orders)
        if self.orders:
            self.note(f"found {self.sent} order(s) of this entry at the venue; going on")
            self.started = min(o.timestamp for o in self.orders.values())
        else:  # the clock and the book asked at once: one round trip less to the first order
            self.started, self.quote = await asyncio.gather(
                self.venue.now(), self.venue.fetch_best_bid_ask(self.symbol)
            )

    async def book(self) -> BestBidAsk:
        """The best bid and ask: the one read as the run started, once, then asked anew."""
        quote, self.quote = self.quote, None
        return quote or await self.venue.fetch_best_bid_ask(self.symbol)

    async def _find(self, cid: str) -> Order | None:
        try:
            return await self.venue.fetch_order(cid, symbol=self.symbol)
        except OrderNotFound:
            return None

    async def halt(self, why: str) -> None:
        """No order may go out: the working one canceled (its fill counted), the run ended."""
        order = self.working()
        if order is not None:
            await self._cancel(order)
        raise self.stop("partial" if self.filled() > 0 else "unfilled", f"not gone on with: {why}")

    # ---- maker-first ------------------------------------------------------------------------
    async def maker(self) -> None:
        tick = self.market.tick_size
        if not tick:
            self.note("the market states no price tick: at market")
            return
        deadline = self.started + round(self.rules.give_up_after_s * 1000)
        first = True  # the clock was read as the run started: no second request for it
        while self.remaining() > 0:
            await self.looked()
            order = self.working()
            if order is not None and order.type == "market":
                return  # a re-run found the market phase under way: it waits for it
            if order is None:
                now = self.started if first else await self.venue.now()
                first = False
                if now >= deadline:
                    return
                quote = await self._quote()
                if quote is None:
                    return
                price = maker_price(side=self.side, quote=quote, tick=tick, previous=None,
                                    ticks=self.rules.reprice_ticks)  # fmt: skip
                if await self._post(quote, price) is None:
                    await self.sleep(self.rules.reprice_every_s)  # refused: quote again later
                continue
            await self.sleep(self.rules.reprice_every_s)
            order = self.keep(await self.venue.fetch_order(order.client_order_id,
                                                           symbol=self.symbol))  # fmt: skip
            if order.status != "open":
                continue
            if await self.venue.now() >= deadline:
                await self._cancel(order)
                return
            await self._reprice(order, tick)

    async def _quote(self) -> BestBidAsk | None:
        quote = await self.book()
        if quote.usable:
            return quote
        self.note(f"no usable quote (bid {quote.bid}, ask {quote.ask}): at market")
        return None

    async def _post(self, quote: BestBidAsk, price: float) -> Order | None:
        """A post-only child at ``price``; None when the venue would not let it rest."""
        shown = quote.size_against(self.side)
        qty = self._child(price, shown)
        try:
            return await self._send("limit", qty, price)
        except PostOnlyWouldTake:
            self.requotes += 1
            self.note(f"post-only {self.side} at {short(price)} would take: quoting again")
            return None

    async def _reprice(self, order: Order, tick: float) -> None:
        quote = await self.venue.fetch_best_bid_ask(self.symbol)
        if not quote.usable:
            return  # keep resting; the next look may have a book again
        price = maker_price(side=self.side, quote=quote, tick=tick, previous=order.price,
                            ticks=self.rules.reprice_ticks)  # fmt: skip
        if order.price is not None and math.isclose(
            price, order.price, rel_tol=0, abs_tol=tick / 2
        ):
            return
        cid = order.client_order_id
        if not self.venue.amends_in_place:
            done = await self._cancel(order)
            if done.status == "closed" or self.remaining() <= 0:
                return
            self.reprices += 1
            await self._post(quote, price)
            return
        try:
            self.keep(await self.venue.amend_order(cid, price=price, symbol=self.symbol))
            self.reprices += 1
        except PostOnlyWouldTake:
            self.requotes += 1
            self.keep(await self.venue.fetch_order(cid, symbol=self.symbol))
        except OrderNotFound:  # filled or canceled meanwhile (OrderNotOpen is one)
            self.keep(await self.venue.fetch_order(cid, symbol=self.symbol))
        except OrderStatusUnknown:
            raise
        except TradingError as exc:  # refused or not processed: it rests where it was
            self.note(f"could not move {cid} to {short(price)} ({exc}); it rests where it was")

    async def _cancel(self, order: Order) -> Order:
        """Cancel ``order``; its final state (a fill that raced the cancel included)."""
        cid = order.client_order_id
        try:
            return self.keep(await self.venue.cancel_order(cid, symbol=self.symbol))
        except OrderNotFound:  # done meanwhile (OrderNotOpen is one): its final fills
            done = self.keep(await self.venue.fetch_order(cid, symbol=self.symbol))
            self.note(f"{cid} was {done.status} before the cancel reached it; its fill "
                      f"({short(done.filled)}) counted")  # fmt: skip
            return done

    # ---- at market --------------------------------------------------------------------------
    async def at_market(self) -> None:
        while self.remaining() > 0:
            await self.looked()
            order = self.working()
            if order is not None and order.type != "market":
                await self._cancel(order)  # a resting maker order (found by a re-run)
                continue
            if order is None:
                quote = await self.book()
                price = (quote.ask if self.side == "buy" else quote.bid) if quote.usable else None
                shown = quote.size_against(self.side) if quote.usable else None
                qty = self._child(price or self.request.expected_price, shown)
                order = await self._send("market", qty, None)
                if order is None:
                    continue
            await self._wait(order)

    async def _wait(self, order: Order) -> None:
        for _ in range(MARKET_WAIT_POLLS):
            await self.looked()
            if order.status != "open":
                return
            await self.sleep(self.rules.reprice_every_s)
            order = self.keep(await self.venue.fetch_order(order.client_order_id,
                                                           symbol=self.symbol))  # fmt: skip
        if order.status == "open":
            raise self.stop("pending", f"market order {order.client_order_id} is still open "
                            f"after {MARKET_WAIT_POLLS} looks")  # fmt: skip

    # ---- sending ----------------------------------------------------------------------------
    def _child(self, price: float, shown: float | None) -> float:
        remaining = self.remaining()
        qty = child_qty(remaining=remaining, market=self.market, price=price, shown=shown,
                        max_impact_pct=self.rules.max_book_impact_pct)  # fmt: skip
        if qty is None:
            self.unsent = remaining
            raise self.stop("partial" if remaining < self.qty else "unfilled",
                            f"{short(remaining)} left is below the market's minimum at "
                            f"{short(price)}: not sent")  # fmt: skip
        return qty

    async def _send(self, kind: OrderType, qty: float, price: float | None) -> Order | None:
        """Place the next order (its id the next of the entry's); None when the venue turned it
        away unprocessed (sent again, same id, by the caller's next turn). A refusal ends the
        run; a post-only order that would take raises ``PostOnlyWouldTake``."""
        n = self.sent + 1
        cid = entry_order_id(self.request.client_order_id, n)
        if cid is None:
            raise self.stop("partial", "no client id left for another order of this entry")
        for _ in range(NOT_PLACED_TRIES):
            try:
                order = await self.venue.create_order(
                    symbol=self.symbol, type=kind, side=self.side, amount=qty, price=price,
                    post_only=kind == "limit", client_order_id=cid,
                )  # fmt: skip
            except OrderNotPlaced as exc:
                self.note(f"{cid} not placed ({exc}); sending it again")
                await self.sleep(exc.retry_after or self.rules.reprice_every_s)
                continue
            except DuplicateClientOrderId:  # sent before and listed late: adopt it
                order = await self.venue.fetch_order(cid, symbol=self.symbol)
            except PostOnlyWouldTake:  # refused (never placed) or canceled on arrival (it exists)
                if (found := await self._find(cid)) is not None:
                    self.sent = n
                    self.keep(found)
                raise
            except OrderStatusUnknown:
                self.sent = n  # it may exist: never reuse the id
                raise
            except TradingError as exc:
                raise self.stop("partial" if self.orders else "unfilled",
                                f"the venue refused {cid}: {exc}") from None  # fmt: skip
            self.sent = n
            log.info("%s: %s %s %s at %s", cid, kind, self.side, short(qty), short(price))
            return self.keep(order)
        raise self.stop("partial" if self.orders else "unfilled",
                        f"{cid} was turned away {NOT_PLACED_TRIES} times unprocessed")  # fmt: skip

    # ---- the report -------------------------------------------------------------------------
    async def report(self, mode: Literal["maker_first", "taker"]) -> ExecutionReport:
        fills = []
        if self.orders:
            ours = set(self.orders)
            try:
                mine = await self.venue.fetch_my_trades(self.symbol, since=self.started)
            except (ExchangeFailure, TradingError) as exc:  # the orders still say what filled
                self.note(f"the venue's fills could not be read ({exc}): fees from the orders")
                mine = []
            fills = [f for f in mine if f.client_order_id in ours]
        remaining = self.remaining()
        status = self.status or ("filled" if remaining <= 0 else "partial")
        return ExecutionReport(
            request=self.request, mode=mode, qty=self.qty, status=status, reason=self.reason,
            orders=tuple(self.orders.values()), fills=tuple(fills),
            tick=self.market.tick_size, fee_currency=self.market.settle,
            reprices=self.reprices, requotes=self.requotes, started=self.started,
            finished=await self.venue.now(), unsent=self.unsent, notes=tuple(self.notes),
        )  # fmt: skip


__all__ = ["ExecutionVenue", "Sleep", "Watch", "execute", "found_orders"]
