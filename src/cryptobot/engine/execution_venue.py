"""The venue as the maker-first executor sees it inside ``trade``: reads go to the venue, every
order request through the desk's dispatch (journaled before it leaves and with its answer; only
written down on a dry run), and each order's new state into the journal as it is seen, so
``journal orders`` and a re-run know every order the execution placed. The orders are legs of
the sized order: ``entry`` (the first), then ``e2``, ``e3``.. (``execution_plan``)."""

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from cryptobot.core.account import Fill, Order, OrderRequest, OrderSide, OrderType
from cryptobot.core.market import BestBidAsk, Market
from cryptobot.engine.bracket import ENTRY, Bracket, Leg
from cryptobot.engine.dispatch import Dispatch
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.market_rules import add_steps


@dataclass
class DeskVenue:
    """``engine.execution.ExecutionVenue`` on ``venue`` for ``bracket``'s entry; ``gates``: the
    verdicts journaled with its first order (None: a re-run going on with it), and ``sized``:
    the sized order kept with it."""

    venue: TradingExchange
    send: Dispatch
    bracket: Bracket
    gates: dict[str, str] | None
    sized: dict[str, Any] | None = None
    orders: dict[str, Order] = field(default_factory=dict)  # as last seen, in sending order
    placed: set[str] = field(default_factory=set)  # client ids this run sent

    @property
    def id(self) -> str:
        return self.venue.id

    @property
    def amends_in_place(self) -> bool:
        return self.venue.amends_in_place

    def working(self) -> Order | None:
        """The entry's order still open, if one is."""
        return next((o for o in self.orders.values() if o.status == "open"), None)

    # ---- reads -------------------------------------------------------------------------
    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return await self.venue.load_markets(reload)

    async def now(self) -> int:
        ts = await self.venue.now()
        self.send.at(ts)  # the journal's rows on the clock the execution runs on
        return ts

    async def fetch_best_bid_ask(self, symbol: str) -> BestBidAsk:
        return await self.venue.fetch_best_bid_ask(symbol)

    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[Fill]:
        return await self.venue.fetch_my_trades(symbol, since, limit)

    async def fetch_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        order = await self.venue.fetch_order(client_order_id, symbol=symbol)
        known = self.orders.get(client_order_id)
        self.orders[client_order_id] = order
        if known is None or (known.status, known.filled) != (order.status, order.filled):
            await self.send.seen(order, parent_id=self._parent, leg=self._leg(client_order_id),
                                 strategy=self.bracket.order.strategy)  # fmt: skip
        return order

    # ---- requests, through the dispatch ------------------------------------------------
    async def create_order(
        self, *, symbol: str, type: OrderType, side: OrderSide, amount: float,
        price: float | None = None, trigger_price: float | None = None,
        reduce_only: bool = False, post_only: bool = False, client_order_id: str | None = None,
    ) -> Order:  # fmt: skip
        cid = client_order_id or ""
        req = OrderRequest(symbol=symbol, type=type, side=side, amount=amount, price=price,
                           trigger_price=trigger_price, reduce_only=reduce_only,
                           post_only=post_only, client_order_id=cid)  # fmt: skip
        first = self._leg(cid) == ENTRY  # its row carries the sized entry (its slippage)
        leg = Leg(self._leg(cid), req,
                  expected_price=self.bracket.entry.expected_price if first else None)  # fmt: skip
        self.placed.add(cid)
        order = await self.send.create(leg, parent_id=self._parent,
                                       strategy=self.bracket.order.strategy,
                                       gates=self.gates if first else None,
                                       sized=self.sized if first else None)  # fmt: skip
        self.orders[cid] = order
        return order

    async def cancel_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        known = await self._known(client_order_id, symbol)
        done = await self.send.cancel(known, parent_id=self._parent,
                                      leg=self._leg(client_order_id))  # fmt: skip
        self.orders[client_order_id] = done
        return done

    async def amend_order(
        self, client_order_id: str, *, price: float, symbol: str | None = None
    ) -> Order:
        known = await self._known(client_order_id, symbol)
        done = await self.send.amend(known, price=price, parent_id=self._parent,
                                     leg=self._leg(client_order_id))  # fmt: skip
        self.orders[client_order_id] = done
        return done

    async def _known(self, client_order_id: str, symbol: str | None) -> Order:
        known = self.orders.get(client_order_id)
        return known or await self.fetch_order(client_order_id, symbol=symbol)

    @property
    def _parent(self) -> str:
        return self.bracket.order.client_order_id

    def _leg(self, client_order_id: str) -> str:
        return self.bracket.leg_name(client_order_id)


def entry_of(orders: list[Order], *, step: float | None) -> Order:
    """An entry's orders as one order: what they filled (summed in decimal, at their average
    price, their fees), open while one still works, for what may be held once that one fills
    (the stop's rule, ``engine.trade``: an open entry that has filled nothing is covered whole).
    """
    dec = [Decimal(repr(o.filled)) for o in orders]
    filled = float(sum(dec, Decimal(0)))
    working = [o for o in orders if o.status == "open"]
    rest = float(sum((Decimal(repr(o.remaining)) for o in working), Decimal(0)))
    average = sum(o.filled * (o.average or 0.0) for o in orders) / filled if filled > 0 else None
    status = "open" if working else ("closed" if filled > 0 else "canceled")
    amount = add_steps(filled, rest, step=step)
    return replace(orders[0], amount=amount, filled=filled, average=average, status=status,
                   fee=sum(o.fee for o in orders),
                   updated=max(o.updated for o in orders))  # fmt: skip


__all__ = ["DeskVenue", "entry_of"]
