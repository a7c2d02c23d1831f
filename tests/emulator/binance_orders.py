"""Orders on the emulated Binance USDⓈ-M venue: plain orders (``/fapi/v1/order``: MARKET and
LIMIT with GTC/IOC/FOK/GTX) and conditional algo orders (``/fapi/v1/algoOrder``: STOP_MARKET and
TAKE_PROFIT_MARKET, ``algoId``/``clientAlgoId``), and the matching engine that runs them
against a scripted price path.

The book is one price per symbol (the last trade, also used as the mark): bid = last,
ask = last + one tick. A MARKET order takes the ask (buy) or the bid (sell). A LIMIT order that
reaches the other side fills at once as taker (a GTX one is refused with -5022 instead);
otherwise it rests and fills as maker at its own price once the other side trades through it
(a bid at L fills when the bid falls below L, an ask at L when the ask rises above L).
A stop triggers when the last price touches its trigger and becomes a MARKET order filled at
that tick's price: when the path gaps through the stop, that is the gap price, not the trigger.

Client ids are unique among *open* orders only, as on Binance ("A unique id among open
orders"): a filled order's id can be sent again and makes a second order. ``placements``
counts how many orders each client id produced so a chaos test can assert there were no
duplicates.
"""

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.emulator.binance_account import Account, _n

PLAIN_TYPES = ("MARKET", "LIMIT")
ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
ALGO_ONLY = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
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
    side: str
    type: str
    qty: float
    price: float
    tif: str
    reduce_only: bool
    time: int
    status: str = "NEW"
    executed: float = 0.0
    cum_quote: float = 0.0
    update_time: int = 0
    hidden: int = 0  # lookups still answered "does not exist" (fault)
    pending: bool = False  # a partial fill left the rest for the next tick (fault)
    algo_id: int | None = None  # set when a triggered algo order made this order

    @property
    def remaining(self) -> float:
        return round(self.qty - self.executed, 12)

    def as_binance(self) -> dict[str, Any]:
        avg = self.cum_quote / self.executed if self.executed else 0.0
        return {
            "orderId": self.id,
            "symbol": self.symbol,
            "status": self.status,
            "clientOrderId": self.client_id,
            "price": _n(self.price),
            "avgPrice": _n(avg),
            "origQty": _n(self.qty),
            "executedQty": _n(self.executed),
            "cumQty": _n(self.executed),
            "cumQuote": _n(self.cum_quote),
            "timeInForce": self.tif,
            "type": self.type,
            "reduceOnly": self.reduce_only,
            "closePosition": False,
            "side": self.side,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": self.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": self.time,
            "updateTime": self.update_time or self.time,
        }


@dataclass
class AlgoOrder:
    id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: float  # 0 with close_position
    trigger: float
    working_type: str
    reduce_only: bool
    close_position: bool
    time: int
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    hidden: int = 0

    def triggered_by(self, price: float) -> bool:
        rising = (self.type == "STOP_MARKET") == (self.side == "BUY")
        return price >= self.trigger if rising else price <= self.trigger

    def as_binance(self) -> dict[str, Any]:
        return {
            "algoId": self.id,
            "clientAlgoId": self.client_id,
            "algoType": "CONDITIONAL",
            "orderType": self.type,
            "symbol": self.symbol,
            "side": self.side,
            "positionSide": "BOTH",
            "timeInForce": "GTC",
            "quantity": _n(self.qty),
            "algoStatus": self.status,
            "triggerPrice": _n(self.trigger),
            "price": "0",
            "icebergQuantity": None,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": self.working_type,
            "priceMatch": "NONE",
            "closePosition": self.close_position,
            "priceProtect": False,
            "reduceOnly": self.reduce_only,
            "activatePrice": "",
            "callbackRate": "",
            "createTime": self.time,
            "updateTime": self.update_time or self.time,
            "triggerTime": self.trigger_time,
            "goodTillDate": 0,
            "actualOrderId": str(self.actual_order_id or ""),
        }


@dataclass
class Book:
    """All orders of the account, the prices, and the counters tests read."""

    account: Account
    prices: dict[str, float] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    algos: dict[int, AlgoOrder] = field(default_factory=dict)
    placements: Counter = field(default_factory=Counter)  # client id -> orders it produced
    duplicates_refused: int = 0
    liquidations: list[tuple[str, float, int]] = field(default_factory=list)
    next_id: int = 8_000_000_000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.status in OPEN and symbol in (None, o.symbol)]

    def open_algos(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.algos.values() if a.status == "NEW" and symbol in (None, a.symbol)]

    def by_client_id(self, client_id: str) -> list[Order | AlgoOrder]:
        """Every order, plain or algo, ever accepted under ``client_id`` (oldest first)."""
        found: list[Order | AlgoOrder] = [
            o for o in self.orders.values() if o.client_id == client_id and o.algo_id is None
        ]
        return found + [a for a in self.algos.values() if a.client_id == client_id]

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
