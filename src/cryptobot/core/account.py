"""The records of an account at a venue: orders, fills, positions, the balance.

Field names are ccxt's unified ones in snake_case (``client_order_id``, ``trigger_price``,
``reduce_only``, ``taker_or_maker``, ``unrealized_pnl``...), so the live adapter maps ccxt's
dicts onto them field by field. Amounts are in contracts, as ccxt counts them (a linear USDT
perpetual's contract is usually one base unit: ``contract_size`` converts); prices and money in
the settle currency; times in ms since the epoch, UTC, on the venue's clock.

``Ledger`` and ``Book`` are the working state of a simulated account (the replay exchange and
the paper broker): what the journal stores so a paper account survives a restart.
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

OrderType = Literal["market", "limit", "stop_market", "take_profit"]
ORDER_TYPES: tuple[OrderType, ...] = ("market", "limit", "stop_market", "take_profit")
OrderSide = Literal["buy", "sell"]
OrderStatus = Literal["open", "closed", "canceled", "rejected"]
Liquidity = Literal["maker", "taker"]
MarginMode = Literal["isolated", "cross"]
MARGIN_MODES: tuple[MarginMode, ...] = ("isolated", "cross")


def side_sign(side: OrderSide) -> int:
    """+1 for a buy, -1 for a sell: the fills model's numeric side."""
    return 1 if side == "buy" else -1


@dataclass(frozen=True)
class OrderRequest:
    """What a caller asks a venue to place (``create_order``'s arguments as one record).

    ``price`` is the limit price of a ``limit`` or ``take_profit`` order (a take-profit is a
    reduce-only limit resting at its target); ``trigger_price`` is the stop of a
    ``stop_market`` order. ``client_order_id`` should be deterministic (``core.order``): a venue
    refuses a second order with an id it already knows, so a retry never trades twice.
    """

    symbol: str
    type: OrderType
    side: OrderSide
    amount: float
    price: float | None = None
    trigger_price: float | None = None
    reduce_only: bool = False
    post_only: bool = False
    client_order_id: str | None = None


@dataclass(frozen=True)
class Order:
    id: str
    client_order_id: str
    timestamp: int  # placed
    updated: int  # last change: a fill, the cancel
    symbol: str
    type: OrderType
    side: OrderSide
    amount: float
    price: float | None
    trigger_price: float | None
    reduce_only: bool
    post_only: bool
    status: OrderStatus
    filled: float
    average: float | None  # mean fill price
    fee: float  # paid so far, settle currency
    liquidity: Liquidity  # which fee its fills pay: a resting order is a maker
    reason: str | None = None  # why it was canceled or rejected

    @property
    def remaining(self) -> float:
        return self.amount - self.filled


@dataclass(frozen=True)
class Fill:
    """One execution (ccxt's "trade"): a part of an order, or a liquidation by the venue."""

    id: str
    order_id: str
    client_order_id: str
    timestamp: int
    symbol: str
    order_type: str  # the order's type, or "liquidation"
    side: OrderSide
    amount: float
    price: float
    cost: float  # amount x contract size x price
    fee: float
    fee_rate: float
    taker_or_maker: Liquidity
    realized_pnl: float  # what the part of the position this fill closed made (0 opening)


@dataclass(frozen=True)
class FundingPayment:
    """Funding the account paid or received for one symbol's position at a funding time
    (ccxt's account funding history): the wallet moves by ``amount`` (negative: paid). Kept per
    symbol so a caller holding several positions can tell each one's funding."""

    id: str
    timestamp: int
    symbol: str
    amount: float
    rate: float
    contracts: float  # the position it was charged on, signed: + long, - short
    price: float


@dataclass(frozen=True)
class Position:
    symbol: str
    side: Literal["long", "short"]
    contracts: float
    contract_size: float
    entry_price: float  # average
    mark_price: float  # the close of the last bar matched
    notional: float  # at the mark
    unrealized_pnl: float
    leverage: float
    margin_mode: MarginMode
    initial_margin: float
    liquidation_price: float | None
    timestamp: int  # opened


@dataclass(frozen=True)
class Balance:
    """The account in its settle currency. ``total`` = ``wallet`` + ``unrealized_pnl`` (the
    equity); ``used`` is the margin of positions and open orders; ``free`` what is left for new
    orders. The running totals say where the wallet came from:
    ``wallet = deposited + realized_pnl - fees + funding``."""

    currency: str
    timestamp: int
    total: float
    free: float
    used: float
    wallet: float
    unrealized_pnl: float
    deposited: float
    realized_pnl: float
    fees: float
    funding: float  # received (+) or paid (-)


@dataclass
class Ledger:
    """A simulated account's money and counters (mutable working state)."""

    currency: str
    deposited: float
    wallet: float
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    sequence: int = 0  # last order / fill number handed out
    clock: int = 0  # the latest venue time seen: time never goes back


@dataclass
class Book:
    """One symbol of a simulated account: its settings, its position (``side`` 0 when flat) and
    how far its bars have been matched (``cursor``: the open time the next bar must reach; None
    while nothing rests and nothing is held)."""

    symbol: str
    leverage: float
    margin_mode: MarginMode
    cursor: int | None = None
    last_close: float = math.nan
    side: int = 0
    contracts: float = 0.0
    entry_price: float = math.nan
    margin: float = 0.0
    liquidation_price: float = math.nan
    opened: int = 0


@dataclass
class AccountState:
    """Everything a simulated venue needs to go on: money, books, the orders still open."""

    ledger: Ledger
    books: dict[str, Book] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)  # open, by client order id

    def working_copy(self) -> "AccountState":
        """A copy a call may change and drop (a simulated venue keeps it only if the call
        succeeds): the ledger and books are records of plain values, copied one level; the
        orders are frozen, shared. ``copy.deepcopy`` gave the same at ~10x the cost, most of
        a replayed backtest's time."""
        return AccountState(ledger=copy.copy(self.ledger),
                            books={s: copy.copy(b) for s, b in self.books.items()},
                            orders=dict(self.orders))  # fmt: skip


__all__ = [
    "MARGIN_MODES",
    "ORDER_TYPES",
    "AccountState",
    "Balance",
    "Book",
    "Fill",
    "FundingPayment",
    "Ledger",
    "Liquidity",
    "MarginMode",
    "Order",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "side_sign",
]
