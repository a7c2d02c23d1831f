"""The orders of an emulated venue: plain orders (MARKET, LIMIT with GTC/IOC/FOK/POST_ONLY) and
conditional ones (STOP_MARKET, TAKE_PROFIT_MARKET: Binance's algo orders, Bitget's TP/SL plan
orders), and the book that holds them with the prices.

The book's words are the venues' common ones (Binance's names, which both venues' concepts fit);
each venue's routes render them in its own shapes. The book is one price per symbol (the last
trade, also used as the mark): bid = last, ask = last + one tick, each level (the venues' depth
routes list ``DEPTH_LEVELS``, one tick apart) showing ``top_qty`` of the symbol (``TOP_QTY``
unless a test sets it: what a maker-first executor splits its orders by).

``placements`` counts how many orders each client id produced, so a chaos test can assert there
were no duplicates whatever the venue's own rule for reusing an id.
"""

import math
from collections import Counter
from dataclasses import dataclass, field

from tests.emulator.account import Account

PLAIN_TYPES = ("MARKET", "LIMIT")
TOP_QTY = 10.0  # the size shown at each level of the book, unless a test sets the symbol's
DEPTH_LEVELS = 5
CONDITIONAL_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class Spec:
    tick: float
    step: float
    min_notional: float

    def on_grid(self, value: float, grid: float) -> bool:
        units = value / grid
        return abs(units - round(units)) < 1e-6

    def floor_qty(self, qty: float) -> float:
        """Quantities round down to the step (never more than was asked)."""
        return round(math.floor(qty / self.step + 1e-9) * self.step, 12)


@dataclass
class Order:
    id: int
    client_id: str
    symbol: str
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT
    qty: float
    price: float
    tif: str  # GTC / IOC / FOK / POST_ONLY
    reduce_only: bool
    time: int
    status: str = "NEW"  # NEW PARTIALLY_FILLED FILLED CANCELED EXPIRED
    executed: float = 0.0
    cum_quote: float = 0.0
    update_time: int = 0
    hidden: int = 0  # lookups still answered "does not exist" (fault)
    pending: bool = False  # a partial fill left the rest for the next tick (fault)
    conditional_id: int | None = None  # set when a triggered conditional order made this order
    fee: float = 0.0

    @property
    def remaining(self) -> float:
        return round(self.qty - self.executed, 12)

    @property
    def average(self) -> float:
        return self.cum_quote / self.executed if self.executed else 0.0


@dataclass
class Conditional:
    id: int
    client_id: str
    symbol: str
    side: str  # the side of the market order it becomes
    type: str  # STOP_MARKET / TAKE_PROFIT_MARKET
    qty: float  # 0 with close_position
    trigger: float
    working_type: str
    reduce_only: bool
    close_position: bool
    time: int
    plan: str = ""  # the venue's own name of the kind (Bitget's planType)
    status: str = "NEW"  # NEW TRIGGERED CANCELED EXPIRED
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    hidden: int = 0

    def triggered_by(self, price: float) -> bool:
        rising = (self.type == "STOP_MARKET") == (self.side == "BUY")
        return price >= self.trigger if rising else price <= self.trigger


@dataclass
class Book:
    """All orders of the account, the prices, and the counters tests read."""

    account: Account
    prices: dict[str, float] = field(default_factory=dict)
    top_qty: dict[str, float] = field(default_factory=dict)  # symbol -> size at each level
    orders: dict[int, Order] = field(default_factory=dict)
    conditionals: dict[int, Conditional] = field(default_factory=dict)
    placements: Counter = field(default_factory=Counter)  # client id -> orders it produced
    amends: Counter = field(default_factory=Counter)  # client id -> in-place amends applied
    duplicates_refused: int = 0
    liquidations: list[tuple[str, float, int]] = field(default_factory=list)
    next_id: int = 8_000_000_000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.status in OPEN and symbol in (None, o.symbol)]

    def open_conditionals(self, symbol: str | None = None) -> list[Conditional]:
        return [
            c
            for c in self.conditionals.values()
            if c.status == "NEW" and symbol in (None, c.symbol)
        ]

    def by_client_id(self, client_id: str) -> list[Order | Conditional]:
        """Every order, plain or conditional, ever accepted under ``client_id`` (oldest
        first; the market order a conditional one became is not counted again)."""
        found: list[Order | Conditional] = [
            o for o in self.orders.values() if o.client_id == client_id and o.conditional_id is None
        ]
        return found + [c for c in self.conditionals.values() if c.client_id == client_id]

    def order_margin(self, marks: dict[str, float]) -> float:
        """Initial margin held by open orders that would grow a position."""
        total = 0.0
        for o in self.open_orders():
            if not o.reduce_only:
                price = o.price or marks.get(o.symbol, 0.0)
                total += o.remaining * price / self.account.position(o.symbol).leverage
        return total

    # ---- prices ---------------------------------------------------------------------------
    def bid_ask(self, symbol: str, spec: Spec) -> tuple[float, float]:
        last = self.prices[symbol]
        return last, round(last + spec.tick, 10)

    def depth(
        self, symbol: str, spec: Spec, levels: int = DEPTH_LEVELS
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Bids (best first, one tick apart) and asks, each level ``top_qty`` of the symbol."""
        bid, ask = self.bid_ask(symbol, spec)
        qty = self.top_qty.get(symbol, TOP_QTY)
        bids = [(round(bid - n * spec.tick, 10), qty) for n in range(levels)]
        asks = [(round(ask + n * spec.tick, 10), qty) for n in range(levels)]
        return bids, asks
