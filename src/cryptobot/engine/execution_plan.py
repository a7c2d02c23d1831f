"""The executor's decisions that need no venue: each order's client id, a maker order's price,
and how much one child order may carry (``engine.execution`` sends them).

- **Client ids**: the n-th order of an entry is the sized order's own id for n = 1 (what a
  plain market entry, and the backtest, use), then ``<id>-e2``, ``<id>-e3``.. (the leg ``e<n>``
  of ``risk.orders.leg_order_id``; ``risk.orders.leg_of_order`` names them all by the entry's
  id): every child, re-quote and cancel-and-new reprice its own id, in the order they are
  sent. A venue never sees an id twice, and a re-run finds what was
  sent by asking for them in turn (the executor sends the next only once the one before is
  done). Ids stop at the venues' 36 characters.
- **Maker price**: a buy joins the best bid; each reprice steps ``ticks`` ticks up from its own
  price (toward the market), or to the best bid if that has moved above it, never nearer than
  one tick below the ask (a post-only order must rest). A sell mirrors it around the ask.
- **Child size**: at most ``max_book_impact_pct`` % of the size shown where the order would
  take (the ask for a buy, the bid for a sell; no usable size: no cap), on the step, and at
  least the market's minimum (quantity and notional at the price). A child never leaves a
  remainder below that minimum behind: it takes it along. A remainder below the minimum
  cannot be sent at all (``None``).
"""

from decimal import Decimal

from cryptobot.core.account import OrderSide
from cryptobot.core.market import BestBidAsk, Market
from cryptobot.exchange.market_rules import add_steps, snap
from cryptobot.risk.orders import ENTRY_ORDERS, leg_order_id
from cryptobot.risk.sizing import floor_to_step

MAX_CLIENT_ID = 36  # Binance's limit, the strictest of the supported venues


def entry_order_id(client_order_id: str, n: int) -> str | None:
    """The client id of the ``n``-th order (from 1) of the entry ``client_order_id``; None when
    it would be longer than a venue takes."""
    cid = client_order_id if n == 1 else leg_order_id(client_order_id, f"{ENTRY_ORDERS}{n}")
    return cid if len(cid) <= MAX_CLIENT_ID else None


def maker_price(
    *, side: OrderSide, quote: BestBidAsk, tick: float, previous: float | None, ticks: int
) -> float:
    """Where a post-only order of ``side`` rests next (the module's *maker price*); ``previous``
    its current price (None: a new order joins the best price)."""
    if side == "buy":
        best, bound = float(quote.bid or 0.0), add_steps(float(quote.ask or 0.0), -tick, step=tick)
        stepped = best if previous is None else max(best, previous + ticks * tick)
        price = min(stepped, bound)
    else:
        best, bound = float(quote.ask or 0.0), add_steps(float(quote.bid or 0.0), tick, step=tick)
        stepped = best if previous is None else min(best, previous - ticks * tick)
        price = max(stepped, bound)
    return snap(price, tick)


def minimum_qty(market: Market, price: float) -> float:
    """The least an opening order may carry at ``price``: the market's minimum quantity (one
    step without one) and enough for its minimum notional, on the step."""
    step = market.step_size
    least = market.min_qty or step or 0.0
    if market.min_notional and price > 0:
        need = market.min_notional / (price * market.contract_size)
        steps = floor_to_step(need, step)
        if steps < need:
            steps = add_steps(steps, step or 0.0, step=step)
        least = max(least, steps)
    return least


def child_qty(
    *, remaining: float, market: Market, price: float, shown: float | None, max_impact_pct: float
) -> float | None:
    """How much the next order carries of ``remaining`` (the module's *child size*); None: the
    remainder is below the market's minimum and cannot be sent."""
    least = minimum_qty(market, price)
    if remaining <= 0 or remaining < least:
        return None
    qty = remaining
    if shown is not None:
        cap = float(Decimal(repr(shown)) * Decimal(repr(max_impact_pct)) / 100)
        qty = min(remaining, floor_to_step(cap, market.step_size))
    qty = max(qty, least)
    if add_steps(remaining, -qty, step=market.step_size) < least:
        qty = remaining
    return qty


__all__ = ["MAX_CLIENT_ID", "child_qty", "entry_order_id", "maker_price", "minimum_qty"]
