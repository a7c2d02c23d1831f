"""What a market accepts: an order checked against its contract rules before it may rest.

Every venue refuses the same orders for the same reasons (``exchange.errors``), so the simulated
venues check them here and the live adapter can check them before a request leaves:

- amounts and prices are numbers (int, float, Decimal: never a str, a bool or None, which a
  venue would misread), finite and positive (NaN slips through every comparison, so it is
  refused first); ``reduce_only`` and ``post_only`` are booleans; a limit and a take-profit
  need a price, a stop-market a trigger price, and a market order takes neither;
- stop-market and take-profit orders are reduce-only (protective exits of a position; stop
  entries are not offered); only a limit can be post-only;
- the amount is a whole number of steps and prices sit on the tick (never rounded here: the
  sizing rounds down, and a venue that rounded for it would trade a quantity nobody sized);
- an opening order reaches the market's minimum quantity and notional; a reduce-only order is
  exempt, so a stop can always close what is left;
- a stop that the last price has already passed would trigger at once: refused, as Binance
  refuses it ("order would immediately trigger");
- a client order id is 1-36 characters of ``A-Z a-z 0-9 . : / _ -`` (Binance's rule, the
  strictest of the supported venues).
"""

import math
import numbers
import re
from decimal import Decimal

from cryptobot.core.account import ORDER_TYPES, OrderRequest, side_sign
from cryptobot.core.market import Market
from cryptobot.core.numbers import finite, short
from cryptobot.exchange.errors import (
    BelowMinimum,
    InvalidOrder,
    StepViolation,
    TickViolation,
)

CLIENT_ID_CHARS = "A-Za-z0-9.:/_-"  # what every venue takes in a client order id
CLIENT_ID = re.compile(rf"^[{CLIENT_ID_CHARS}]{{1,36}}$")
GRID_TOLERANCE = 1e-6  # of one step: float noise (0.1 + 0.2) is on the grid, a real offset is not


def check_order(req: OrderRequest, market: Market, *, last_price: float) -> None:
    """Raise the ``InvalidOrder`` kind that ``req`` breaks on ``market``, the market trading
    at ``last_price``; return quietly when the order may rest."""
    _check_kind(req)
    amount = _number(req.amount, "amount")
    if not on_grid(amount, market.step_size):
        raise StepViolation(
            f"{req.symbol}: amount {short(amount)} is not a whole number of steps of "
            f"{short(market.step_size)} (round it down to the step)"
        )
    for name in ("price", "trigger_price"):
        value = getattr(req, name)
        if value is not None and not on_grid(_number(value, name), market.tick_size):
            raise TickViolation(
                f"{req.symbol}: {name} {short(value)} is not on the price tick "
                f"{short(market.tick_size)}"
            )
    if req.type == "stop_market" and stop_would_trigger(
        side_sign(req.side), req.trigger_price, last_price
    ):
        raise InvalidOrder(
            f"{req.symbol}: a {req.side} stop at {short(req.trigger_price)} would trigger at "
            f"once (the last price is {short(last_price)})"
        )
    if not req.reduce_only:
        _check_minimums(req, market, amount, req.price if req.price is not None else last_price)


def _check_kind(req: OrderRequest) -> None:
    if req.type not in ORDER_TYPES:
        raise InvalidOrder(f"unknown order type {req.type!r}; use one of {', '.join(ORDER_TYPES)}")
    if req.side not in ("buy", "sell"):
        raise InvalidOrder(f"unknown order side {req.side!r}; use buy or sell")
    needs_price = req.type in ("limit", "take_profit")
    if needs_price and req.price is None:
        raise InvalidOrder(f"a {req.type} order needs a price")
    if not needs_price and req.price is not None:
        raise InvalidOrder(f"a {req.type} order takes no price")
    if req.type == "stop_market" and req.trigger_price is None:
        raise InvalidOrder("a stop_market order needs a trigger_price")
    if req.type != "stop_market" and req.trigger_price is not None:
        raise InvalidOrder(f"a {req.type} order takes no trigger_price")
    if req.type in ("stop_market", "take_profit") and not req.reduce_only:
        raise InvalidOrder(f"{req.type} orders are reduce-only (protective exits of a position)")
    for flag in ("reduce_only", "post_only"):
        if not isinstance(getattr(req, flag), bool):
            raise InvalidOrder(f"{flag} must be true or false, got {short(getattr(req, flag))}")
    if req.post_only and req.type != "limit":
        raise InvalidOrder("only a limit order can be post-only")
    if req.client_order_id is not None and not (
        isinstance(req.client_order_id, str) and CLIENT_ID.match(req.client_order_id)
    ):
        raise InvalidOrder(
            f"client_order_id {short(req.client_order_id)} must be 1-36 characters of "
            "A-Z a-z 0-9 . : / _ -"
        )


def _check_minimums(req: OrderRequest, market: Market, amount: float, price: float) -> None:
    if market.min_qty is not None and amount < market.min_qty:
        raise BelowMinimum(
            f"{req.symbol}: amount {short(amount)} is below the minimum {short(market.min_qty)}"
        )
    notional = amount * market.contract_size * price
    if market.min_notional is not None and notional < market.min_notional:
        raise BelowMinimum(
            f"{req.symbol}: notional {notional:.2f} ({short(amount)} at {short(price)}) is "
            f"below the minimum {short(market.min_notional)}"
        )


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        raise InvalidOrder(f"{name} must be a number, got {short(value)}")
    try:
        return finite(value, name=name, gt=0)
    except ValueError as exc:
        raise InvalidOrder(str(exc)) from None


def stop_would_trigger(order_side: int, trigger: float | None, last_price: float) -> bool:
    """A sell stop at or above the last price (a buy stop at or below) has been passed already."""
    if trigger is None or not math.isfinite(last_price):
        return False
    return (last_price - trigger) * order_side >= 0.0


def on_grid(value: float, step: float | None) -> bool:
    """Whether ``value`` is a whole number of ``step`` (no step: anything is)."""
    if not step:
        return True
    units = value / step
    return abs(units - round(units)) <= GRID_TOLERANCE


def snap(value: float, step: float | None) -> float:
    """``value`` put exactly on the ``step`` grid it is already on up to float noise (a position
    built from whole steps stays whole steps after many adds and cuts: 0.1 + 0.2 is 0.3)."""
    if not step:
        return value
    return float(Decimal(round(value / step)) * Decimal(repr(step)))


def add_steps(held: float, change: float, *, step: float | None) -> float:
    """``held + change`` (a negative change: a cut) summed in decimal and put on the ``step``
    grid: float sums drift (23 fills of 0.001 make 0.023000000000000013), so a position, an
    order's filled amount and what it has left are the exact decimal sums of their fills, with
    a market step or without one."""
    total = Decimal(repr(float(held))) + Decimal(repr(float(change)))
    return snap(float(total), step)


__all__ = ["add_steps", "check_order", "on_grid", "snap", "stop_would_trigger"]
