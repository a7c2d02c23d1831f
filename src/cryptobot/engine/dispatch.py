"""Where ``trade``'s requests go: to the venue with the journal around each one, or into a
list (``--dry-run``). The desk (``engine.trade``) makes the same decisions either way, so the
dry run shows the exact requests a real run would send, in order.

On the venue, every create's intent is made durable **before** it leaves (an fsync'd line,
``journal.intents``: a DuckDB transaction there cost more than the rest of the way out) and
the journal takes it in with the answer (its ``sending`` row and the answer, one transaction,
after the request): a process killed in between leaves an intent the next run takes in as a
``sending`` row and looks up by client id instead of sending it again. A venue that already
holds the id (``DuplicateClientOrderId``: a retry of an order that went through) answers with
that order, looked up, never a second one.

The entry's intent need not wait for the executor's first reads: the desk announces the entry
(``expect``) before its clock and book are asked, and the intent's fsync runs in a thread
meanwhile (the device flush, ~2 ms here, no longer adds to the round trip); the create awaits
it before its request leaves, so the rule holds. That intent is the entry as planned (the
sized quantity, its price still unknown) on the venue's clock as last read plus the time
elapsed since (``monotonic``), never a reading minutes old; the row taken in with the
answer is the request as sent. An announced entry never sent is journaled ``not_placed``
(``unsent``): no later run looks it up.
"""

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cryptobot.core.account import Balance, Fill, FundingPayment, Order, Position
from cryptobot.core.errors import CryptobotError
from cryptobot.engine.bracket import Leg
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.errors import (
    DuplicateClientOrderId,
    OrderNotPlaced,
    OrderStatusUnknown,
)
from cryptobot.journal.intents import Intent, IntentNotDurable
from cryptobot.journal.trading import TradeJournal


class Dispatch(Protocol):
    """What the desk asks of a venue that changes it (reads go to the venue directly)."""

    dry: bool

    def at(self, ts: int) -> None:
        """The venue's clock for what follows (the desk reads it once per order: a request
        per clock reading would double the requests a live run makes)."""

    async def create(
        self, leg: Leg, *, parent_id: str, strategy: str, gates: dict[str, str] | None = None,
        sized: dict[str, Any] | None = None,
    ) -> Order:  # fmt: skip
        """Place ``leg``; ``gates``: an entry's verdicts, ``sized``: the sized order behind it
        (kept with it: a reconcile rebuilds the position's stop from it)."""

    def expect(self, leg: Leg, *, parent_id: str, strategy: str, gates: dict[str, str] | None,
               sized: dict[str, Any] | None) -> None:  # fmt: skip
        """``leg`` is about to be created (the entry, once the executor has read the venue):
        its intent made durable meanwhile."""

    async def unsent(self, leg: Leg) -> None:
        """An ``expect``ed leg that was not created after all."""

    async def cancel(self, order: Order, *, parent_id: str | None, leg: str | None) -> Order: ...

    async def amend(self, order: Order, *, price: float, parent_id: str, leg: str) -> Order:
        """Move a resting order to ``price`` in place (the maker-first executor's reprice)."""

    async def executed(self, report: dict[str, Any]) -> None:
        """The executor's report of an entry (``execution/1``), as its execution ended."""

    async def setting(self, *, action: str, symbol: str, value: Any) -> None: ...

    async def event(self, *, level: str, kind: str, message: str, symbol: str | None,
                    client_order_id: str | None, data: dict[str, Any] | None = None,
                    ) -> None: ...  # fmt: skip

    async def refused(self, leg: Leg, *, strategy: str, reason: str,
                      gates: dict[str, str]) -> None: ...  # fmt: skip

    async def seen(self, order: Order, *, parent_id: str, leg: str, strategy: str) -> None: ...

    async def absent(self, leg: Leg, *, reason: str) -> None: ...

    async def gone(self, client_order_id: str, *, reason: str) -> None:
        """A journaled open order the venue no longer knows at all (a venue forgets old
        canceled orders): journaled as ``canceled`` with ``reason``."""

    async def record(self, *, fills: list[Fill], positions: list[Position],
                     payments: list[FundingPayment] | None = None,
                     balance: Balance | None = None) -> None: ...  # fmt: skip


@dataclass
class VenueDispatch:
    """Requests sent to ``venue``, each journaled with its answer on the venue's clock."""

    venue: TradingExchange
    journal: TradeJournal
    monotonic: Callable[[], float] | None = None  # the caller's steady clock, seconds
    dry: bool = False
    ts: int = 0  # the venue's clock as the desk last read it
    read_at: float | None = None  # ``monotonic`` then
    early: dict[str, tuple[Intent, "asyncio.Future[None]"]] = field(default_factory=dict)

    def at(self, ts: int) -> None:
        self.ts = ts
        if self.monotonic is not None:
            self.read_at = self.monotonic()

    def expect(self, leg: Leg, *, parent_id: str, strategy: str, gates: dict[str, str] | None,
               sized: dict[str, Any] | None) -> None:  # fmt: skip
        """The intent written and fsync'd in a thread while the caller reads the venue (the
        module's docstring); without a steady clock, the venue's time since its last reading
        is unknown (and with no reading yet, the time itself): the create writes the intent."""
        if self.monotonic is None or self.read_at is None:
            return
        elapsed = math.ceil((self.monotonic() - self.read_at) * 1000)
        intent = Intent.of(leg.request, venue=self.journal.venue, parent_id=parent_id,
                           leg=leg.name, strategy=strategy, ts=self.ts + elapsed, gates=gates,
                           expected_price=leg.expected_price, sized=sized)  # fmt: skip
        durable = asyncio.ensure_future(asyncio.to_thread(self.journal.intend, intent))
        self.early[leg.client_order_id] = (intent, durable)

    async def unsent(self, leg: Leg) -> None:
        held = self.early.pop(leg.client_order_id, None)
        if held is None:
            return
        intent, durable = held
        try:
            await durable
        except IntentNotDurable:
            return  # nothing on disk: nothing to settle
        self.journal.withdrawn(intent, reason="announced, never sent (the executor placed "
                               "no order)")  # fmt: skip

    async def create(
        self, leg: Leg, *, parent_id: str, strategy: str, gates: dict[str, str] | None = None,
        sized: dict[str, Any] | None = None,
    ) -> Order:  # fmt: skip
        req, name = leg.request, leg.name
        early = self.early.pop(req.client_order_id or "", None)
        # the answer's row is stamped no earlier than the intent on file (an early one is
        # stamped later than the venue's last reading), or a reader would take that intent for
        # a later send of the order (a rejected entry shown as ``sending``)
        ts = self.ts if early is None else max(self.ts, early[0].ts)
        intent = Intent.of(req, venue=self.journal.venue, parent_id=parent_id, leg=name,
                           strategy=strategy, ts=ts, gates=gates,
                           expected_price=leg.expected_price, sized=sized)  # fmt: skip
        if early is not None:
            await early[1]  # IntentNotDurable: nothing leaves
        else:
            self.journal.intend(intent)  # IntentNotDurable: nothing leaves
        try:
            order = await self.venue.create_order(
                symbol=req.symbol, type=req.type, side=req.side, amount=req.amount,
                price=req.price, trigger_price=req.trigger_price, reduce_only=req.reduce_only,
                post_only=req.post_only, client_order_id=req.client_order_id,
            )  # fmt: skip
        except DuplicateClientOrderId:
            order = await self.venue.fetch_order(leg.client_order_id, symbol=req.symbol)
        except (OrderNotPlaced, OrderStatusUnknown, CryptobotError) as exc:
            status = {OrderNotPlaced: "not_placed", OrderStatusUnknown: "unknown"}
            self.journal.failed(req, parent_id=parent_id, leg=name, ts=ts,
                                status=status.get(type(exc), "rejected"),
                                message=str(exc), intent=intent)  # fmt: skip
            raise
        self.journal.answered(req, parent_id=parent_id, leg=name, ts=ts,
                              order=order, intent=intent)  # fmt: skip
        return order

    async def cancel(self, order: Order, *, parent_id: str | None, leg: str | None) -> Order:
        ts = self.ts
        detail = {"client_order_id": order.client_order_id}
        try:
            done = await self.venue.cancel_order(order.client_order_id, symbol=order.symbol)
        except CryptobotError as exc:
            self.journal.request(action="cancel", ts=ts, symbol=order.symbol, detail=detail,
                                 outcome="failed", message=str(exc),
                                 client_order_id=order.client_order_id, parent_id=parent_id,
                                 leg=leg)  # fmt: skip
            raise
        self.journal.request(action="cancel", ts=ts, symbol=order.symbol, detail=detail,
                             outcome=done.status, client_order_id=order.client_order_id,
                             parent_id=parent_id, leg=leg)  # fmt: skip
        self.journal.update(done, ts=ts)
        return done

    async def amend(self, order: Order, *, price: float, parent_id: str, leg: str) -> Order:
        ts, cid = self.ts, order.client_order_id
        detail = {"client_order_id": cid, "price": price}
        try:
            done = await self.venue.amend_order(cid, price=price, symbol=order.symbol)
        except CryptobotError as exc:
            self.journal.request(action="amend", ts=ts, symbol=order.symbol, detail=detail,
                                 outcome="failed", message=str(exc), client_order_id=cid,
                                 parent_id=parent_id, leg=leg)  # fmt: skip
            raise
        self.journal.request(action="amend", ts=ts, symbol=order.symbol, detail=detail,
                             outcome=done.status, client_order_id=cid, parent_id=parent_id,
                             leg=leg)  # fmt: skip
        self.journal.update(done, ts=ts)
        return done

    async def executed(self, report: dict[str, Any]) -> None:
        self.journal.executed(report, ts=self.ts)

    async def setting(self, *, action: str, symbol: str, value: Any) -> None:
        ts = self.ts
        try:
            if action == "set_margin_mode":
                await self.venue.set_margin_mode(symbol, value)
            else:
                await self.venue.set_leverage(symbol, value)
        except CryptobotError as exc:
            self.journal.request(action=action, ts=ts, symbol=symbol, detail={"value": value},
                                 outcome="failed", message=str(exc))  # fmt: skip
            raise
        self.journal.request(action=action, ts=ts, symbol=symbol, detail={"value": value},
                             outcome="ok")  # fmt: skip

    async def event(self, *, level: str, kind: str, message: str, symbol: str | None,
                    client_order_id: str | None, data: dict[str, Any] | None = None,
                    ) -> None:  # fmt: skip
        self.journal.event(ts=self.ts, level=level, kind=kind, message=message,
                           symbol=symbol, client_order_id=client_order_id,
                           data=data)  # fmt: skip

    async def refused(self, leg: Leg, *, strategy: str, reason: str,
                      gates: dict[str, str]) -> None:  # fmt: skip
        """An entry refused before any request (a gate, the venue's leverage): journaled as
        ``refused`` with the verdicts, so ``journal orders`` shows why it was not sent."""
        self.journal.refused(leg.request, parent_id=leg.client_order_id, strategy=strategy,
                             ts=self.ts, reason=reason, gates=gates)  # fmt: skip

    async def seen(self, order: Order, *, parent_id: str, leg: str, strategy: str) -> None:
        self.journal.found(order, parent_id=parent_id, leg=leg, strategy=strategy,
                           ts=self.ts)  # fmt: skip

    async def absent(self, leg: Leg, *, reason: str) -> None:
        self.journal.settled(leg.client_order_id, status="not_placed", reason=reason,
                             ts=self.ts)  # fmt: skip

    async def gone(self, client_order_id: str, *, reason: str) -> None:
        self.journal.settled(client_order_id, status="canceled", reason=reason, ts=self.ts)

    async def record(self, *, fills: list[Fill], positions: list[Position],
                     payments: list[FundingPayment] | None = None,
                     balance: Balance | None = None) -> None:  # fmt: skip
        self.journal.fills(fills)
        self.journal.positions(positions, ts=self.ts)
        self.journal.payments(payments or [])
        if balance is not None:  # a reconcile's record has no balance read
            self.journal.snapshot(balance, ts=self.ts)


@dataclass
class DryRunDispatch:
    """Requests written down, nothing sent, nothing stored: ``requests`` in the order a real
    run would send them. A create answers as a venue accepting it (open, nothing filled yet)."""

    now: int
    dry: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)

    def at(self, ts: int) -> None:
        self.now = ts

    def expect(self, leg: Leg, *, parent_id: str, strategy: str, gates: dict[str, str] | None,
               sized: dict[str, Any] | None) -> None:  # fmt: skip
        return None

    async def unsent(self, leg: Leg) -> None:
        return None

    async def create(
        self, leg: Leg, *, parent_id: str, strategy: str, gates: dict[str, str] | None = None,
        sized: dict[str, Any] | None = None,
    ) -> Order:  # fmt: skip
        req = leg.request
        self.requests.append(
            {"request": "create_order", "order": parent_id, "leg": leg.name,
             "client_order_id": req.client_order_id, "symbol": req.symbol, "type": req.type,
             "side": req.side, "amount": req.amount, "price": req.price,
             "trigger_price": req.trigger_price, "reduce_only": req.reduce_only,
             "post_only": req.post_only}
        )  # fmt: skip
        return Order(
            id="", client_order_id=leg.client_order_id, timestamp=self.now, updated=self.now,
            symbol=req.symbol, type=req.type, side=req.side, amount=req.amount,
            price=req.price, trigger_price=req.trigger_price, reduce_only=req.reduce_only,
            post_only=req.post_only, status="open", filled=0.0, average=None, fee=0.0,
            liquidity="taker",
        )  # fmt: skip

    async def cancel(self, order: Order, *, parent_id: str | None, leg: str | None) -> Order:
        self.requests.append({"request": "cancel_order", "order": parent_id, "leg": leg,
                              "client_order_id": order.client_order_id,
                              "symbol": order.symbol})  # fmt: skip
        return replace(order, status="canceled")

    async def amend(self, order: Order, *, price: float, parent_id: str, leg: str) -> Order:
        self.requests.append({"request": "amend_order", "order": parent_id, "leg": leg,
                              "client_order_id": order.client_order_id, "symbol": order.symbol,
                              "price": price})  # fmt: skip
        return replace(order, price=price)

    async def executed(self, report: dict[str, Any]) -> None:
        return None

    async def setting(self, *, action: str, symbol: str, value: Any) -> None:
        self.requests.append({"request": action, "symbol": symbol, "value": value})

    async def event(self, *, level: str, kind: str, message: str, symbol: str | None,
                    client_order_id: str | None, data: dict[str, Any] | None = None,
                    ) -> None:  # fmt: skip
        return None  # a dry run stores nothing: no event, refusal, look-up or fill either

    async def refused(self, leg: Leg, *, strategy: str, reason: str,
                      gates: dict[str, str]) -> None:  # fmt: skip
        return None

    async def seen(self, order: Order, *, parent_id: str, leg: str, strategy: str) -> None:
        return None

    async def absent(self, leg: Leg, *, reason: str) -> None:
        return None

    async def gone(self, client_order_id: str, *, reason: str) -> None:
        return None

    async def record(self, *, fills: list[Fill], positions: list[Position],
                     payments: list[FundingPayment] | None = None,
                     balance: Balance | None = None) -> None:  # fmt: skip
        return None


__all__ = ["Dispatch", "DryRunDispatch", "VenueDispatch"]
