"""The orders of one sized order on a venue: the entry, its protective stop and its
take-profit ladder, each with its client id, its amount on the market's step and its prices on
the market's tick.

- **Client ids** are the sized order's id and the leg (``risk.orders.leg_order_id``, the ids
  the backtest and the composer record): the entry is the sized order's own id, the stop
  ``-sl``, the targets ``-tp1``.. in ladder order, a reduce-only close ``-close``. A stop
  re-sent for a grown fill is a new order with a new id (``-sl2``, ``-sl3``..; ``-close2``
  likewise: ``leg_order_id``'s ``sent``), so no id is ever reused on a venue.
- **Amounts** are rounded down to the venue's step (never above what was sized).
- **Prices** go onto the tick towards the entry: a stop a little nearer (the loss stays within
  what was sized) and a target a little nearer (it fills no later than planned).
- **The ladder**: a ``sized_order/2`` carries its rungs' quantities (the strategy's management
  ladder, as the backtest takes profits); a ``sized_order/1`` (or ``--tp-split``) takes
  ``split`` percent of the quantity at each target in turn (25/25/25/25 by default), each
  rounded down to the step; what is left rides for ``manage`` (the trailing remainder).
"""

from dataclasses import dataclass

from cryptobot.core.account import OrderRequest, OrderSide
from cryptobot.core.errors import DataError
from cryptobot.core.market import Market
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.manage.ticks import on_tick
from cryptobot.risk import leg_order_id, level_past_entry
from cryptobot.risk.sizing import floor_to_step

DEFAULT_SPLIT: tuple[float, ...] = (25.0, 25.0, 25.0, 25.0)
MAX_CLIENT_ID = 36  # Binance's limit, the strictest of the supported venues
ENTRY = "entry"


@dataclass(frozen=True)
class Leg:
    """One order of a bracket: ``name`` is its leg (``entry``, ``sl``, ``tp1``, ``close``..);
    ``expected_price``: the entry's price as sized, journaled with it for its slippage."""

    name: str
    request: OrderRequest
    expected_price: float | None = None

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id or ""


@dataclass(frozen=True)
class Bracket:
    """What one sized order sends: its entry and targets; the stop and a close are made by
    :meth:`stop` and :meth:`close` for the amount they must cover when they are sent."""

    order: TradeOrder
    market: Market
    entry: Leg
    targets: tuple[Leg, ...]

    @property
    def stop_price(self) -> float:
        return price_on_tick(self.order.stop or 0.0, self.market, toward=self.order.entry)

    def stop(self, *, amount: float, version: int) -> Leg:
        """The reduce-only stop-market for ``amount`` (the ``version``-th stop of the order)."""
        cid = leg_id(self.order.client_order_id, "sl", sent=version)
        req = OrderRequest(
            symbol=self.order.symbol, type="stop_market", side=_exit_side(self.order),
            amount=amount, trigger_price=self.stop_price, reduce_only=True, client_order_id=cid,
        )  # fmt: skip
        return Leg(self.leg_name(cid), req)

    def close(self, *, amount: float, version: int) -> Leg:
        """A reduce-only market order closing ``amount`` of the order's position."""
        cid = leg_id(self.order.client_order_id, "close", sent=version)
        req = OrderRequest(
            symbol=self.order.symbol, type="market", side=_exit_side(self.order),
            amount=amount, reduce_only=True, client_order_id=cid,
        )  # fmt: skip
        return Leg(self.leg_name(cid), req)

    def stop_ids(self, known: set[str]) -> list[str]:
        """Client ids of this order's stops among ``known`` ids, oldest version first."""
        return [leg_id(self.order.client_order_id, "sl", sent=v)
                for v in range(1, next_version(self, "sl", known))]  # fmt: skip

    def leg_name(self, client_order_id: str) -> str:
        """The leg an order of this bracket is, from its client id (``entry``, ``sl2``..)."""
        parent = self.order.client_order_id
        return ENTRY if client_order_id == parent else client_order_id.removeprefix(f"{parent}-")


def plan(order: TradeOrder, market: Market, *, split: tuple[float, ...] | None) -> Bracket:
    """The bracket of ``order`` on ``market``; ``split`` (percent per target) replaces a
    ``sized_order/2``'s own ladder. ``DataError`` when nothing can be sent (the quantity is
    below one step of the venue, the ids would be too long)."""
    amount = floor_to_step(order.qty, market.step_size)
    if amount <= 0:
        raise DataError(
            f"qty {order.qty:g} is below one step ({market.step_size:g}) of the venue's "
            f"{order.symbol}"
        )
    leg_id(order.client_order_id, "close", sent=99)  # the longest id a bracket can need
    why = level_past_entry(side=order.side, entry=order.entry, stop=order.stop,
                           targets=order.targets, tick=market.tick_size)  # fmt: skip
    if why is not None:
        raise DataError(why)
    entry = OrderRequest(
        symbol=order.symbol, type="market", side="buy" if order.buy else "sell",
        amount=amount, client_order_id=order.client_order_id,
    )  # fmt: skip
    rungs = ladder(order, amount=amount, step=market.step_size, split=split)
    targets = tuple(
        _target(order, market, n=n, price=price, qty=qty)
        for n, (price, qty) in enumerate(rungs, start=1)
        if qty > 0
    )
    return Bracket(
        order=order,
        market=market,
        entry=Leg(ENTRY, entry, expected_price=order.entry),
        targets=targets,
    )


def _target(order: TradeOrder, market: Market, *, n: int, price: float, qty: float) -> Leg:
    """The ``n``-th rung: a reduce-only take-profit of ``qty`` at ``price`` (on the tick)."""
    req = OrderRequest(
        symbol=order.symbol, type="take_profit", side=_exit_side(order), amount=qty,
        price=price_on_tick(price, market, toward=order.entry), reduce_only=True,
        client_order_id=leg_id(order.client_order_id, f"tp{n}"),
    )  # fmt: skip
    return Leg(f"tp{n}", req)


def ladder(
    order: TradeOrder, *, amount: float, step: float | None, split: tuple[float, ...] | None
) -> list[tuple[float, float]]:
    """(price, quantity) of each take-profit rung, nearest first; together never more than
    ``amount`` (what the entry asks for)."""
    if split is None and order.target_qty is not None:
        wanted = list(order.target_qty)
    else:
        shares = split or DEFAULT_SPLIT
        wanted = [amount * pct / 100 for pct in shares[: len(order.targets)]]
    out, left = [], amount
    for price, qty in zip(order.targets, wanted, strict=False):
        qty = min(floor_to_step(qty, step), left)
        out.append((price, qty))
        left = floor_to_step(left - qty, step)
    return out


def price_on_tick(price: float, market: Market, *, toward: float) -> float:
    """``price`` on the market's tick, rounded towards ``toward`` (the entry): the rule the
    backtest's positions use (``manage.ticks.on_tick``), seen from a long whose stop lies
    below the entry and whose targets above it."""
    return on_tick(1, price, market.tick_size or 0.0, price < toward)


def next_version(bracket: Bracket, leg: str, known: set[str]) -> int:
    """The first version of ``leg`` whose id is not among ``known`` client ids (the journal's
    and the venue's): a re-sent order never reuses an id."""
    version = 1
    while leg_id(bracket.order.client_order_id, leg, sent=version) in known:
        version += 1
    return version


def leg_id(client_order_id: str, leg: str, *, sent: int = 1) -> str:
    """The client id of ``leg`` (``ENTRY``: the sized order's own), its ``sent``-th order
    (``risk.orders.leg_order_id``); refused when longer than a venue takes."""
    cid = (client_order_id if leg == ENTRY
           else leg_order_id(client_order_id, leg, sent=sent))  # fmt: skip
    if len(cid) > MAX_CLIENT_ID:
        raise DataError(
            f"client_order_id {client_order_id!r} is too long for its legs ({cid!r} is "
            f"{len(cid)} characters, venues take {MAX_CLIENT_ID}): use a shorter "
            "execution.client_order_prefix"
        )
    return cid


def _exit_side(order: TradeOrder) -> OrderSide:
    return "sell" if order.buy else "buy"


__all__ = ["DEFAULT_SPLIT", "ENTRY", "Bracket", "Leg", "ladder", "leg_id", "next_version",
           "plan", "price_on_tick"]  # fmt: skip
