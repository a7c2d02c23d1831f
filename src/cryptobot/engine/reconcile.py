"""Reconciliation: the venue is the truth; the journal is brought in line with it, and every
difference is reported and journaled (an ``events`` row of its kind) once.

A cycle (at ``trade``'s start-up, on ``trade --reconcile``, and each cycle of a loop) reads the
account's balance (journaled as a snapshot, its equity fed to the circuit breaker as ``risk
equity`` feeds it), the venue's positions and its open orders (plain and conditional: stops and
take-profits are algo or plan orders on the live venues), carries out a tripped breaker's
actions first (``engine.breaker_actions``: a drawdown this cycle's reading tripped included),
then settles, in this order:

- **orders** the journal holds as working (``sending``, ``unknown``, ``open``):
  ``order_gone``: an open one the venue no longer lists, looked up by its client id and
  journaled as the venue states it (filled, canceled, expired; forgotten altogether:
  ``canceled``), or a request that never landed (``not_placed``, once it cannot be in flight
  any more); ``order_found``: a request whose answer was lost, the order found at the venue;
  ``offline_fill``: an order that filled (in part) while nothing was running: its fills are
  recorded (the venue's fills of the symbol, read only for the symbols where an order changed,
  or where the journal holds fewer fills than its orders filled: a run that died between the
  two);
- **positions**: ``no_stop``: a position of a journaled sized order without a reduce-only stop
  covering it gets one, by ``trade``'s own path (the sized order kept in the journal is traded
  again: its entry is found and never re-sent, the stop placed for what is held, or the
  position closed and a CRITICAL event journaled when the venue will not take one);
  ``unknown_position``: a position no journaled order opened is adopted as manual for
  ``manage``; without a stop it is said so and left to ``manage`` (there is no sized order to
  take a stop price from);
- **orphans**: our stops and targets still working on a symbol without a position (and without
  an entry of ours still working there) are canceled; ``manual_close`` when none of our exit
  orders filled (the position was closed by hand), ``closed_by_exit`` when one did (a stop
  filled; Binance leaves the targets working). Protection is never re-created on a flat
  position.

A position counts as a sized order's when the journal's orders explain it: what they filled on
its symbol nets to a position on its side (an order a reconcile found closed by hand, or by its
own exits, counts no more), and that order's entry is the newest filled on that side. A
position the journal nets to flat (closed by its stop, its targets, by hand or by ``trade
--close``) is someone else's: adopted, never given the old order's stop.

Idempotent: what a cycle repairs is no longer a difference, and what it can only report (an
unknown position, a stop that covers less than the position) carries a ``key`` journaled with
its event, so a second reconcile reports nothing new. A dry run (``--dry-run``) reads the same
and lists the requests it would send, storing nothing.
"""

import math
from dataclasses import dataclass, field, replace
from typing import Any

from cryptobot.core.account import Order, OrderRequest, Position
from cryptobot.core.errors import CryptobotError, OutOfOrder
from cryptobot.engine.bracket import ENTRY, Leg
from cryptobot.engine.breaker_actions import carry_out
from cryptobot.engine.reconcile_report import Difference
from cryptobot.engine.trade import TradeDesk, TradeSetup, open_desk
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.errors import OrderNotFound
from cryptobot.journal.trading import OrderRow, ReconcileRows
from cryptobot.risk.context import observe_equity

#: a difference's journal level: what a trader must look at is a warning
LEVELS = {"manual_close": "WARNING", "no_stop": "WARNING", "unknown_position": "WARNING",
          "breaker": "WARNING"}  # fmt: skip
EPS = 1e-9
#: the kinds of difference that end a sized order's position (its orders then explain none)
CLOSED = ("manual_close", "closed_by_exit")
#: entries journaled ``not_placed`` looked up for a position nobody's orders explain
MISJUDGED = 3


async def reconcile(
    venue: TradingExchange, *, setup: TradeSetup, dry_run: bool
) -> tuple[list[Difference], list[dict[str, Any]]]:
    """One reconcile cycle on ``venue`` under the run lock (module docstring): the differences
    and, for a dry run, the requests its repairs would have sent."""
    async with open_desk(venue, setup=setup, dry_run=dry_run) as desk:
        found = await reconcile_desk(desk)
    return found, desk.requests


async def reconcile_desk(desk: TradeDesk) -> list[Difference]:
    """One cycle with a desk already open (``trade``'s start-up): the differences found,
    each journaled as an event of its kind."""
    now = await desk.venue.now()
    desk.send.at(now)
    await _observe_equity(desk, now=now)
    found = await carry_out(desk, now=now)
    positions = await desk.venue.fetch_positions()
    working = {o.client_order_id: o for o in await desk.venue.fetch_open_orders()}
    cycle = _Cycle(desk, positions=positions, working=working)
    found += await cycle.orders()
    found += await cycle.protection()
    found += await cycle.orphans()
    if found:  # the repairs moved orders (a stop replaced, a position closed): settle again
        cycle.working = {o.client_order_id: o for o in await desk.venue.fetch_open_orders()}
        found += await cycle.orders()
    await cycle.record(changed=bool(found) or bool(cycle.filled))
    for d in found:
        level = "CRITICAL" if d.failed else LEVELS.get(d.kind, "INFO")
        await desk.send.event(level=level, kind=d.kind, message=d.message, symbol=d.symbol,
                              client_order_id=d.client_order_id,
                              data={"key": d.key, "action": d.action})  # fmt: skip
    return found


async def _observe_equity(desk: TradeDesk, *, now: int) -> None:
    """The account's equity as the venue states it, journaled (an account snapshot) and fed to
    the breaker as ``risk equity`` feeds it (``risk.context.observe_equity``: one rule), before
    the breaker's actions are judged: a drawdown seen here trips it and the trip's actions
    run in this very cycle. A dry run stores neither; a reading that is not a finite number
    (a venue's placeholder) is journaled but never fed (the breaker refuses it): a WARNING
    event says the breaker judges on its last reading."""
    if desk.send.dry:
        return
    balance = await desk.venue.fetch_balance()
    await desk.send.record(fills=[], positions=[], balance=balance)
    setup = desk.setup
    if not math.isfinite(balance.total):
        await desk.send.event(level="WARNING", kind="equity_unreadable", symbol=None,
                              client_order_id=None, data={"venue": setup.venue},
                              message=f"{setup.venue} stated the account's equity as "
                              f"{balance.total}: the breaker keeps its last reading")  # fmt: skip
        return
    try:
        observe_equity(setup.root, account=setup.venue, equity=balance.total, now=now,
                       risk=setup.risk,
                       label=f"equity {balance.total:g} (reconcile {setup.venue})")  # fmt: skip
    except OutOfOrder as exc:  # a reading the breaker refuses (dated before its last day: the
        # venue's clock behind another reader's) must not stop the cycle and the actions a
        # trip already in force asks for
        message = (f"the breaker refused {setup.venue}'s equity {balance.total:g}: {exc}; "
                   "it judges on its last reading")  # fmt: skip
        await desk.send.event(level="WARNING", kind="equity_refused", symbol=None,
                              client_order_id=None, data={"venue": setup.venue},
                              message=message)  # fmt: skip


@dataclass
class _Cycle:
    desk: TradeDesk
    positions: list[Position]
    working: dict[str, Order]  # the venue's open orders, by client id
    rows: dict[str, OrderRow] = field(default_factory=dict)  # the journal's working orders
    filled: set[str] = field(default_factory=set)  # symbols whose fills are read
    keys: dict[str, set[str]] = field(default_factory=dict)
    read: ReconcileRows | None = None  # the journal as orders() read it, when it changed none

    # ---- orders ----------------------------------------------------------------------------
    async def orders(self) -> list[Difference]:
        read = self.desk.journal.reconcile_rows(CLOSED)
        self.rows = {r.client_order_id: r for r in read.working}
        self.filled |= read.owed
        out: list[Difference] = []
        for row in self.rows.values():
            order = self.working.get(row.client_order_id)
            if order is not None:
                out += await self._listed(row, order)
            elif row.status == "open":
                out += await self._unlisted(row)
            else:
                out += await self._in_flight(row)
        self.read = None if out else read  # a steady cycle's journal, unchanged since
        return out

    async def _listed(self, row: OrderRow, order: Order) -> list[Difference]:
        """An order the venue still works: the journal takes its state when it differs."""
        if row.status == order.status and (row.filled or 0.0) >= order.filled - EPS:
            return []
        await self._seen(row, order)
        if row.status != "open":
            return [self._found(row, order)]
        return [self._fill(row, order)]

    async def _unlisted(self, row: OrderRow) -> list[Difference]:
        """An open order the venue no longer lists: done (filled, canceled, expired)."""
        try:
            order = await self._lookup(row)
        except CryptobotError:
            return []  # the venue would not say: the next cycle asks again
        if order is None:
            why = "the venue no longer knows it (it forgets old canceled orders)"
            await self.desk.send.gone(row.client_order_id, reason=why)
            return [_diff("order_gone", row, "journaled canceled", f"{_name(row)}: {why}")]
        await self._seen(row, order)
        out = [_diff("order_gone", row, f"journaled {order.status}",
                     f"{_name(row)}: {order.status} at the venue, {order.filled:g} of "
                     f"{order.amount:g} filled")]  # fmt: skip
        if order.filled > (row.filled or 0.0) + EPS:
            out.append(self._fill(row, order))
        return out

    async def _in_flight(self, row: OrderRow) -> list[Difference]:
        """A request without an answer (``sending``: a run killed in between; ``unknown``):
        found, the journal takes it; certainly absent, it was never placed."""
        try:
            order = await self._lookup(row)
        except CryptobotError:
            return []
        if order is not None:
            await self._seen(row, order)
            out = [self._found(row, order)]
            if order.filled > EPS:
                self.filled.add(row.symbol)
            return out
        setup = self.desk.setup
        if setup.in_flight(sent_at=row.updated_at, now=await self.desk.venue.now()):
            return []  # it may still land: the next cycle asks again
        why = f"the venue has no such order after {setup.lookups} look-ups: it was not placed"
        await self.desk.send.absent(_leg(row), reason=why)
        return [_diff("order_gone", row, "journaled not_placed", f"{_name(row)}: {why}")]

    def _found(self, row: OrderRow, order: Order) -> Difference:
        return _diff("order_found", row, f"journaled {order.status}",
                     f"{_name(row)}: its answer was lost; the venue holds it ({order.status}, "
                     f"{order.filled:g} filled)")  # fmt: skip

    def _fill(self, row: OrderRow, order: Order) -> Difference:
        self.filled.add(row.symbol)
        was = row.filled or 0.0
        return _diff("offline_fill", row, "fills recorded",
                     f"{_name(row)}: filled {order.filled - was:g} more while no run was "
                     f"watching ({was:g} -> {order.filled:g} of {order.amount:g})")  # fmt: skip

    async def _lookup(self, row: OrderRow) -> Order | None:
        """The order at the venue by its client id, tolerating the venue's "not found" for a
        while after it was placed (``TradeSetup.lookups``); None when it never answers."""
        setup = self.desk.setup
        for attempt in range(1, setup.lookups + 1):
            try:
                return await self.desk.venue.fetch_order(row.client_order_id, symbol=row.symbol)
            except OrderNotFound:
                if attempt < setup.lookups:
                    await setup.sleep(setup.pause_s)
        return None

    async def _seen(self, row: OrderRow, order: Order) -> None:
        await self.desk.send.seen(order, parent_id=row.parent_id, leg=row.leg, strategy="")

    # ---- positions -------------------------------------------------------------------------
    async def protection(self) -> list[Difference]:
        read = self.read or self.desk.journal.reconcile_rows(CLOSED)  # as orders() left it
        filled = [r for r in read.filled if r.parent_id not in read.closed]
        out: list[Difference] = []
        for position in self.positions:
            mine = [r for r in filled if r.symbol == position.symbol]
            entry = _owner(position, mine)
            if entry is None and (found := await self._misjudged(position)):
                out.append(found[0])
                entry = _owner(position, sorted([*mine, found[1]], key=lambda r: r.created_at))
            if entry is not None:
                out += await self._protect(position, entry)
            else:
                out += self._adopt(position)
        return out

    async def _misjudged(self, position: Position) -> tuple[Difference, OrderRow] | None:
        """An entry journaled ``not_placed`` that the venue holds after all (a request that
        landed after every look-up gave up on it): found by its client id, journaled as the
        venue states it, and its row as it is now."""
        side = "buy" if position.side == "long" else "sell"
        for row in self.desk.journal.unplaced_entries(position.symbol, side)[:MISJUDGED]:
            try:
                order = await self._lookup(row)
            except CryptobotError:
                continue
            if order is None or order.filled <= EPS:
                continue
            await self._seen(row, order)
            self.filled.add(row.symbol)
            now = replace(row, status=order.status, filled=order.filled)
            return self._found(row, order), now
        return None

    def _stops(self, position: Position) -> list[Order]:
        exit_side = "sell" if position.side == "long" else "buy"
        return [o for o in self.working.values()
                if o.symbol == position.symbol and o.type == "stop_market" and o.reduce_only
                and o.side == exit_side]  # fmt: skip

    async def _protect(self, position: Position, entry: OrderRow) -> list[Difference]:
        """A sized order's position without a stop covering it: ``trade``'s path again."""
        parent, symbol = entry.parent_id, position.symbol
        closing = any(cid.startswith(f"{parent}-close") for cid in self.working)
        if closing or any(s.amount >= position.contracts - EPS for s in self._stops(position)):
            return []  # protected, or a close of ours is on its way (a venue filling next bar)
        key = f"{parent}|{position.contracts:g}"
        record = self.desk.journal.sized_order(parent)
        if record is None:
            why = ("it has no stop covering it and the journal kept no sized order for it "
                   "(sent before trade kept them): left to manage")  # fmt: skip
            return self._once("no_stop", symbol, parent, "none", f"{symbol}: {why}", key=key)
        order = TradeOrder.from_record(record)
        split = record.get("tp_split")
        desk = self.desk
        setup = replace(desk.setup, split=None if split is None else tuple(split))
        (out,) = await TradeDesk(desk.venue, setup=setup, dispatch=desk.send,
                                 journal=desk.journal).trade([order])  # fmt: skip
        done = [f"{leg.leg} {leg.action}" for leg in out.legs
                if leg.action in ("placed", "canceled", "failed")]  # fmt: skip
        message = (f"{symbol}: the {position.side} position of {position.contracts:g} had no "
                   f"stop covering it")  # fmt: skip
        if not done and not out.failed:
            why = "its sized order's stop covers what that order filled; the rest is not its"
            return self._once("no_stop", symbol, parent, "none", f"{message}: {why}", key=key)
        action = ", ".join(done) or out.status
        why = out.reason.removeprefix(f"{symbol}: ")
        text = f"{message}: {why}" if out.failed else f"{message}: {action}"
        return [Difference(kind="no_stop", symbol=symbol, client_order_id=parent, action=action,
                           message=text, failed=out.failed)]  # fmt: skip

    def _adopt(self, position: Position) -> list[Difference]:
        p = position
        key = f"{p.symbol}|{p.side}|{p.contracts:g}|{p.entry_price:g}"
        message = (f"{p.symbol}: a {p.side} position of {p.contracts:g} @ {p.entry_price:g} "
                   "that no journaled order opened: adopted as manual, for manage")  # fmt: skip
        if not any(s.amount >= p.contracts - EPS for s in self._stops(p)):
            message += ("; it has no stop on the venue and no sized order to take one from: "
                        "left to manage")  # fmt: skip
        return self._once("unknown_position", p.symbol, None, "adopted as manual", message,
                          key=key)  # fmt: skip

    def _once(self, kind: str, symbol: str, cid: str | None, action: str, message: str, *,
              key: str) -> list[Difference]:  # fmt: skip
        """A difference a cycle can only report: reported the first time only."""
        if kind not in self.keys:
            self.keys[kind] = self.desk.journal.event_keys(kind)
        if key in self.keys[kind]:
            return []
        self.keys[kind].add(key)
        return [Difference(kind=kind, symbol=symbol, client_order_id=cid, action=action,
                           message=message, key=key)]  # fmt: skip

    # ---- orphans ---------------------------------------------------------------------------
    async def orphans(self) -> list[Difference]:
        held = {p.symbol for p in self.positions}
        ours = [(row, self.working[cid]) for cid, row in self.rows.items() if cid in self.working]
        entering = {o.symbol for row, o in ours if not o.reduce_only}
        parents: dict[str, list[tuple[OrderRow, Order]]] = {}
        for row, order in ours:
            if order.reduce_only and order.symbol not in held | entering:
                parents.setdefault(row.parent_id, []).append((row, order))
        out = []
        for parent, legs in parents.items():
            out.append(await self._orphaned(parent, legs))
        return out

    async def _orphaned(self, parent: str, legs: list[tuple[OrderRow, Order]]) -> Difference:
        """A flat symbol's stops and targets of ``parent``, canceled (never re-placed)."""
        symbol = legs[0][1].symbol
        done, failed = [], []
        for row, order in legs:
            try:
                await self.desk.send.cancel(order, parent_id=parent, leg=row.leg)
                done.append(row.leg)
            except OrderNotFound:
                done.append(row.leg)  # filled or canceled meanwhile: the next cycle sees it
            except CryptobotError as exc:
                failed.append(f"{row.leg} ({exc})")
        rows = self.desk.journal.orders_of(parent).values()
        exited = any(r.leg != ENTRY and r.status == "closed" and (r.filled or 0.0) > 0
                     for r in rows)  # fmt: skip
        kind = "closed_by_exit" if exited else "manual_close"
        how = "closed by one of its exit orders" if exited else "closed by hand"
        message = (f"{symbol}: the position of {parent} is gone ({how}); its orphaned "
                   f"{', '.join(done) or 'orders'} canceled, no protection re-placed")  # fmt: skip
        if failed:
            message += f"; not canceled: {', '.join(failed)}"
        return Difference(kind=kind, symbol=symbol, client_order_id=parent,
                          action=f"canceled {', '.join(done)}" if done else "none",
                          message=message, failed=bool(failed))  # fmt: skip

    # ---- the record ------------------------------------------------------------------------
    async def record(self, *, changed: bool) -> None:
        """Fills of the symbols where an order filled, and the positions now, when the cycle
        found a difference."""
        venue = self.desk.venue
        fills = []
        for symbol in sorted(self.filled):
            try:
                fills += await venue.fetch_my_trades(symbol)
            except CryptobotError:
                continue  # still owed: the next cycle reads them (``ReconcileRows.owed``)
        if changed:  # a steady cycle stores nothing (a loop's cycle would write each time)
            await self.desk.send.record(fills=fills, positions=await venue.fetch_positions())


def _owner(position: Position, filled: list[OrderRow]) -> OrderRow | None:
    """The entry of the sized order ``position`` is, if the journal's orders explain it: what
    they filled on its symbol (those of orders a reconcile found closed left out) nets to a
    position on its side, and the newest entry on that side is its sized order's. Netting to
    flat (closed by its stop, its targets or ``trade --close``) or to the other side, the
    position is someone else's."""
    net = sum((r.filled or 0.0) * (1 if r.side == "buy" else -1) for r in filled)
    side = "buy" if position.side == "long" else "sell"
    if abs(net) <= EPS or (net > 0) != (side == "buy"):
        return None
    entries = [r for r in filled if r.leg == ENTRY and r.side == side]
    return entries[-1] if entries else None


def _diff(kind: str, row: OrderRow, action: str, message: str) -> Difference:
    return Difference(kind=kind, symbol=row.symbol, client_order_id=row.client_order_id,
                      action=action, message=message)  # fmt: skip


def _name(row: OrderRow) -> str:
    return f"{row.symbol} {row.leg} {row.client_order_id}"


def _leg(row: OrderRow) -> Leg:
    req = OrderRequest(symbol=row.symbol, type=row.type, side=row.side,  # type: ignore[arg-type]
                       amount=row.amount, client_order_id=row.client_order_id)  # fmt: skip
    return Leg(row.leg, req)


__all__ = ["Difference", "reconcile", "reconcile_desk"]
