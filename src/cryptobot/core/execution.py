"""What the executor is asked to do (``ExecutionRequest``) and what it did (``ExecutionReport``,
``execution/1``): the orders it placed for one entry, their fills, and how well it went.

The report is built from the orders' final states and the venue's fills of them (fees, maker or
taker), so it says what the venue did, not what was intended. Slippage is signed so that a
positive number is a cost: a buy filled above the expected price, a sell below it (in basis
points of the expected price, and in the market's ticks).
"""

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from cryptobot.core.account import Fill, Order, OrderSide
from cryptobot.core.numbers import plain, record_number
from cryptobot.core.timeutil import iso

EXECUTION_SCHEMA = "execution/1"
#: filled: all of it; partial / unfilled: stopped with ``reason`` (a remainder below the
#: market's minimum, a refusal, no quote); pending: a market order still open after the wait;
#: unknown: an order's outcome could not be learnt (reconcile before sending anything more)
ExecutionStatus = Literal["filled", "partial", "unfilled", "pending", "unknown"]


@dataclass(frozen=True)
class ExecutionRequest:
    """One entry to work: ``qty`` contracts of ``symbol`` bought or sold, its orders' client ids
    derived from ``client_order_id`` (the sized order's), its cost measured against
    ``expected_price`` (the signal's entry)."""

    symbol: str
    side: OrderSide
    qty: float
    client_order_id: str
    expected_price: float

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, got {self.side!r}")
        record_number(self.qty, name="qty", gt=0)  # text is no number here ("1")
        record_number(self.expected_price, name="expected_price", gt=0)
        if not (isinstance(self.client_order_id, str) and 0 < len(self.client_order_id) <= 36):
            raise ValueError(
                f"client_order_id must be 1-36 characters, got {self.client_order_id!r}"
            )


@dataclass(frozen=True)
class ExecutionReport:
    request: ExecutionRequest
    mode: Literal["maker_first", "taker"]
    qty: float  # the request's qty on the market's step
    status: ExecutionStatus
    reason: str | None
    orders: tuple[Order, ...]  # every order of the entry, in the order they were placed
    fills: tuple[Fill, ...]  # the venue's fills of them
    tick: float | None
    fee_currency: str | None
    reprices: int  # price changes sent (amends, or cancel + new)
    requotes: int  # post-only orders refused (or canceled on arrival) as they would take
    started: int
    finished: int
    unsent: float = 0.0  # left unplaced: below the market's minimum, or refused
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def filled(self) -> float:
        """What the orders filled, summed in decimal (23 fills of 0.001 are 0.023)."""
        return float(sum((Decimal(repr(o.filled)) for o in self.orders), Decimal(0)))

    @property
    def average_price(self) -> float | None:
        filled = self.filled
        if filled <= 0:
            return None
        return sum(o.filled * (o.average or 0.0) for o in self.orders) / filled

    def liquidity(self) -> tuple[float, float, float]:
        """Maker quantity, taker quantity and fees: from the venue's fills of each order where
        they account for all it filled, else from the order (a post-only limit fills as a
        maker, a market order as a taker; the order's own fee)."""
        maker = taker = fees = 0.0
        for order in self.orders:
            mine = [f for f in self.fills if f.client_order_id == order.client_order_id]
            if mine and math.isclose(sum(f.amount for f in mine), order.filled, rel_tol=1e-9):
                maker += sum(f.amount for f in mine if f.taker_or_maker == "maker")
                taker += sum(f.amount for f in mine if f.taker_or_maker == "taker")
                fees += sum(f.fee for f in mine)
            elif order.type == "market":
                taker, fees = taker + order.filled, fees + order.fee
            else:
                maker, fees = maker + order.filled, fees + order.fee
        return maker, taker, fees

    def slippage(self) -> tuple[float | None, float | None]:
        """(bps, ticks) of the average price against the expected one; positive: a cost."""
        average = self.average_price
        if average is None:
            return None, None
        sign = 1.0 if self.request.side == "buy" else -1.0
        gap = sign * (average - self.request.expected_price)
        ticks = gap / self.tick if self.tick else None
        return gap / self.request.expected_price * 1e4, ticks

    def to_record(self) -> dict[str, Any]:
        """The report as strict JSON (no NaN or infinity: None)."""
        maker, taker, fees = self.liquidity()
        bps, ticks = self.slippage()
        filled = self.filled
        request = self.request
        return plain(
            {
                "schema": EXECUTION_SCHEMA,
                "client_order_id": request.client_order_id,
                "symbol": request.symbol,
                "side": request.side,
                "mode": self.mode,
                "status": self.status,
                "reason": self.reason,
                "qty_requested": request.qty,
                "qty": self.qty,
                "filled": filled,
                "remaining": max(0.0, float(Decimal(repr(self.qty)) - Decimal(repr(filled)))),
                "unsent": self.unsent,
                "average_price": self.average_price,
                "expected_price": request.expected_price,
                "slippage_bps": bps,
                "slippage_ticks": ticks,
                "maker_qty": maker,
                "taker_qty": taker,
                "maker_share": maker / filled if filled > 0 else None,
                "fees": fees,
                "fee_currency": self.fee_currency,
                "reprices": self.reprices,
                "requotes": self.requotes,
                "orders": [_order_row(o) for o in self.orders],
                "started": iso(self.started),
                "finished": iso(self.finished),
                "notes": list(self.notes),
            },
            digits=12,
        )


def _order_row(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "type": order.type,
        "price": order.price,
        "amount": order.amount,
        "filled": order.filled,
        "average": order.average,
        "status": order.status,
        "post_only": order.post_only,
    }


__all__ = ["EXECUTION_SCHEMA", "ExecutionReport", "ExecutionRequest", "ExecutionStatus"]
