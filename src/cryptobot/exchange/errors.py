"""What a venue refuses, as exceptions a caller can act on (each is one clear line).

Every venue raises these for the same reasons, so code above ``exchange/`` handles a refusal
the same way in replay, paper and live (the ccxt adapter maps ccxt's exceptions onto them). An
order refused here was not placed: nothing of the account changed. An unknown symbol raises
``core.errors.UnknownSymbolError``.
"""

from cryptobot.core.errors import CryptobotError


class TradingError(CryptobotError):
    """The venue refused a trading call."""


class InvalidOrder(TradingError):
    """The order is malformed: a NaN, infinite, zero or negative amount or price, a price
    where none belongs or none where one is needed, an unknown type or side."""


class StepViolation(InvalidOrder):
    """The amount is not a whole number of the market's quantity steps (never rounded for
    the caller: rounding is the sizing's decision)."""


class TickViolation(InvalidOrder):
    """A price or trigger price is not on the market's price tick."""


class BelowMinimum(InvalidOrder):
    """The order is below the market's minimum quantity or minimum notional (reduce-only
    orders are exempt, so a stop can always close what is left)."""


class PostOnlyWouldTake(InvalidOrder):
    """A post-only limit would trade at once against the current price (it must rest)."""


class ReduceOnlyWouldIncrease(InvalidOrder):
    """A reduce-only order on the side of the open position would increase it."""


class AmendNotSupported(TradingError):
    """The venue cannot move a resting order's price in place (Bitget's modify-order replaces
    the order under a new client id): nothing was sent; cancel it and place anew."""


class DuplicateClientOrderId(InvalidOrder):
    """The venue already knows an order with this client order id (open or done): a retry of
    an order that went through never places a second one. Look it up with ``fetch_order``."""


class InsufficientMargin(TradingError):
    """The free balance does not cover the margin (and fee) the order needs."""


class LeverageRefused(TradingError):
    """A leverage or margin mode the market does not allow, or a change while the symbol has
    a position or open orders."""


class OrderNotFound(TradingError):
    """No order with this client order id."""


class OrderNotOpen(OrderNotFound):
    """The order is known but no longer open (filled, canceled or rejected): it cannot be
    canceled again."""


class OrderNotPlaced(TradingError):
    """An order-creating call failed and the venue certainly holds no such order: refused
    before it was processed (429/418: ``retry_after`` seconds), or looked up by its client id
    until it was certainly absent. Nothing was placed; sending it again (same client id) is the
    caller's decision, never the adapter's."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OrderStatusUnknown(TradingError):
    """An order-creating call failed ambiguously (a timeout, a lost response) and the look-up
    by client id failed too: the order may exist. Do not send it again; reconcile first."""


class ClockWentBack(TradingError):
    """The venue's clock is earlier than a time it has already seen: a simulated account only
    moves forward (replaying the past again needs a new account)."""


__all__ = [
    "AmendNotSupported",
    "BelowMinimum",
    "ClockWentBack",
    "DuplicateClientOrderId",
    "InsufficientMargin",
    "InvalidOrder",
    "LeverageRefused",
    "OrderNotFound",
    "OrderNotOpen",
    "OrderNotPlaced",
    "OrderStatusUnknown",
    "PostOnlyWouldTake",
    "ReduceOnlyWouldIncrease",
    "StepViolation",
    "TickViolation",
    "TradingError",
]
