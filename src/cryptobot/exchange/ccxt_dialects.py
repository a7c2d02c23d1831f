"""What differs between venues behind ccxt's unified trading calls: the request parameters of
each order type, how a client id is looked up, and what each of the venue's error codes means.

ccxt already unifies most of it; what is left is a small table per venue, as ccxt keeps one
(``exceptions``) per exchange. The adapter (``ccxt_trading``) reads only this table, so a
second venue (Bitget: ``clientOid``, isolated margin on every order, its tpsl endpoints) is
one more :class:`Dialect` subclass.

Errors are told apart by the venue's error CODE, not by ccxt's exception class: ccxt picks its
code table by the host name (``fapi.binance.com``), so behind a proxy, on a testnet or on the
loopback emulator the same refusal arrives as a different class. Each code is one of:

- a refusal (:data:`Dialect.refusals`): the venue processed the request and said no; nothing
  changed. Mapped onto ``exchange.errors``.
- transient (:data:`Dialect.transient`): the venue did not process it (overloaded, rate limit,
  clock skew); a read may be retried, an order was certainly not placed.
- ambiguous (:data:`Dialect.ambiguous`): the venue may have processed it ("execution status
  unknown"); an order must be looked up before anything else is decided.
"""

import json
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from cryptobot.core.account import Balance, OrderRequest
from cryptobot.core.errors import UnknownSymbolError
from cryptobot.exchange.errors import (
    BelowMinimum,
    DuplicateClientOrderId,
    InsufficientMargin,
    InvalidOrder,
    LeverageRefused,
    OrderNotFound,
    PostOnlyWouldTake,
    ReduceOnlyWouldIncrease,
    StepViolation,
    TickViolation,
)

_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


def venue_answer(exc: BaseException) -> tuple[int | None, str]:
    """The venue's error code and message carried in a ccxt exception's text (ccxt puts the
    response body there: ``binanceusdm {"code":-2019,"msg":"Margin is insufficient."}``)."""
    text = str(exc)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
            code = body.get("code")
            if isinstance(code, int) or (isinstance(code, str) and code.lstrip("-").isdigit()):
                return int(code), str(body.get("msg") or "")
        except (ValueError, AttributeError):
            pass
    match = _CODE.search(text)
    return (int(match.group(1)), "") if match else (None, "")


class Dialect(ABC):
    """One venue's table. Subclasses fill in the codes and the parameters (Binance USDⓈ-M
    here; Bitget is the trade issue's next venue and is not written yet)."""

    #: code -> the ``exchange.errors`` refusal it means
    refusals: ClassVar[dict[int, type[Exception]]] = {}
    #: codes of a request the venue did not process
    transient: frozenset[int] = frozenset()
    #: codes of a request whose outcome is unknown
    ambiguous: frozenset[int] = frozenset()
    #: codes of an unknown order (a look-up or a cancel)
    unknown_order: frozenset[int] = frozenset()
    #: codes saying the setting asked for is already in place (not an error)
    already_set: frozenset[int] = frozenset()
    #: codes of refused API keys
    auth: frozenset[int] = frozenset()
    #: ccxt options the adapter needs on this venue
    options: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def order_args(
        self, req: OrderRequest, *, close_position: bool, working_type: str
    ) -> tuple[str, float | None, float | None, dict[str, Any]]:
        """ccxt ``create_order``'s type, amount, price and params for ``req``."""

    def is_conditional(self, req: OrderRequest) -> bool:
        return req.type in ("stop_market", "take_profit")

    @abstractmethod
    def lookup_params(self, client_order_id: str, *, conditional: bool) -> dict[str, Any]:
        """ccxt params naming an order by its client id (``fetch_order``/``cancel_order``)."""

    @abstractmethod
    def open_order_calls(self) -> list[dict[str, Any]]:
        """The ``fetch_open_orders`` params that together list every working order."""

    @abstractmethod
    def balance(self, raw: dict[str, Any]) -> Balance:
        """The account's balance from the venue's raw balance answer."""

    def refusal(self, code: int | None) -> type[Exception] | None:
        return self.refusals.get(code) if code is not None else None


class BinanceUsdm(Dialect):
    """Binance USDⓈ-M futures (one-way mode). Conditional orders (STOP_MARKET,
    TAKE_PROFIT_MARKET) go through the Algo Order API (``clientAlgoId``; the old endpoint
    answers -4120 since December 2025), which ccxt ≥ 4.5.27 routes to when a trigger price is
    given, and are listed only with ``{'trigger': True}``. Post-only is ``timeInForce: GTX``
    (-5022 when it would cross).

    A take-profit is a TAKE_PROFIT_MARKET triggered at the target (the interface's ``price``):
    an exchange-side conditional like the stop, so it fires while the bot is away; it fills as
    a taker, where the simulated venues rest a limit at the target."""

    refusals: ClassVar[dict[int, type[Exception]]] = {
        -1013: InvalidOrder,  # a filter failed
        -1102: InvalidOrder,  # a parameter missing or malformed
        -1106: InvalidOrder,  # a parameter sent when not required
        -1111: StepViolation,  # precision over the maximum
        -1116: InvalidOrder,  # invalid order type
        -1117: InvalidOrder,  # invalid side
        -1121: UnknownSymbolError,
        -2010: InvalidOrder,  # new order rejected
        -2018: InsufficientMargin,  # balance insufficient
        -2019: InsufficientMargin,  # margin insufficient
        -2021: InvalidOrder,  # the stop would trigger at once
        -2022: ReduceOnlyWouldIncrease,
        -4003: StepViolation,  # quantity less than or equal to zero
        -4005: InvalidOrder,  # quantity greater than max quantity
        -4014: TickViolation,
        -4028: LeverageRefused,
        -4048: LeverageRefused,  # margin type cannot change with a position or orders
        -4116: DuplicateClientOrderId,
        -4120: InvalidOrder,  # a conditional type on the plain order endpoint
        -4131: InvalidOrder,  # PERCENT_PRICE filter
        -4161: LeverageRefused,
        -4164: BelowMinimum,
        -5022: PostOnlyWouldTake,
        -2013: OrderNotFound,
        -2011: OrderNotFound,
    }
    transient = frozenset({-1003, -1008, -1021, -1015})
    ambiguous = frozenset({-1000, -1001, -1006, -1007})
    unknown_order = frozenset({-2011, -2013})
    already_set = frozenset({-4046, -4059})
    auth = frozenset({-1022, -2014, -2015})
    options: ClassVar[dict[str, Any]] = {
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        "setMarginMode": {"throwMarginModeAlreadySet": True},
    }

    def order_args(
        self, req: OrderRequest, *, close_position: bool, working_type: str
    ) -> tuple[str, float | None, float | None, dict[str, Any]]:
        params: dict[str, Any] = {}
        if req.client_order_id is not None:
            params["clientOrderId"] = req.client_order_id  # clientAlgoId on the algo route
        if req.type in ("market", "limit"):
            if req.reduce_only:
                params["reduceOnly"] = True
            if req.type == "market":
                return "market", req.amount, None, params
            params["timeInForce"] = "GTX" if req.post_only else "GTC"
            return "limit", req.amount, req.price, params
        trigger_key = "stopLossPrice" if req.type == "stop_market" else "takeProfitPrice"
        params[trigger_key] = req.trigger_price if req.type == "stop_market" else req.price
        params["workingType"] = working_type
        if close_position:  # the whole position, whatever its size: no quantity, no reduceOnly
            params["closePosition"] = True
            return "market", None, None, params
        params["reduceOnly"] = True
        return "market", req.amount, None, params

    def lookup_params(self, client_order_id: str, *, conditional: bool) -> dict[str, Any]:
        if conditional:
            return {"trigger": True, "clientAlgoId": client_order_id}
        return {"origClientOrderId": client_order_id}

    def open_order_calls(self) -> list[dict[str, Any]]:
        return [{}, {"trigger": True}]

    def balance(self, raw: dict[str, Any]) -> Balance:
        """From ``/fapi/v3/account``. Binance reports no running totals of deposits, realised
        PnL, fees or funding: ``deposited`` is the wallet and the totals are 0 (the journal
        keeps the history: fills and funding payments)."""
        info = raw.get("info") or {}
        wallet = float(info.get("totalWalletBalance") or 0.0)
        upnl = float(info.get("totalUnrealizedProfit") or 0.0)
        free = float(info.get("availableBalance") or 0.0)
        assets = info.get("assets") or []
        updated = max((int(a.get("updateTime") or 0) for a in assets), default=0)
        return Balance(
            currency="USDT",
            timestamp=updated,
            total=wallet + upnl,
            free=free,
            used=wallet + upnl - free,
            wallet=wallet,
            unrealized_pnl=upnl,
            deposited=wallet,
            realized_pnl=0.0,
            fees=0.0,
            funding=0.0,
        )


#: ccxt id -> its dialect (the venues that trade live)
DIALECTS: dict[str, Dialect] = {"binanceusdm": BinanceUsdm()}

__all__ = ["DIALECTS", "BinanceUsdm", "Dialect", "venue_answer"]
