"""What differs between venues behind ccxt's unified trading calls: the request parameters of
each order type, how an order is found and canceled by its client id, what the venue's answers
hold, and what each of the venue's error codes means.

ccxt already unifies most of it; what is left is a small table and a few calls per venue, as
ccxt keeps one table (``exceptions``) per exchange. The adapter (``ccxt_trading``) reads only
its :class:`Dialect`: Binance USDⓈ-M (:class:`BinanceUsdm`) and Bitget USDT-M
(:class:`Bitget`) are one subclass each, and the adapter has no venue branch of its own.

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

from cryptobot.core.account import Balance, MarginMode, Order, OrderRequest, OrderType
from cryptobot.core.errors import UnknownSymbolError
from cryptobot.exchange.errors import (
    AmendNotSupported,
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
    TradingError,
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
    """One venue's table and calls. ``client`` below is the adapter's ccxt async client."""

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
    #: the venue answers an accepted order with the order (else with its ids only)
    answers_with_order: ClassVar[bool] = True
    #: the venue lists funding payments one symbol at a time
    funding_by_symbol: ClassVar[bool] = False
    #: the venue's API keys come with a passphrase (CRYPTOBOT_API_PASSWORD)
    needs_passphrase: ClassVar[bool] = False
    #: a resting limit's price can be changed in place (same client id, fills kept)
    amends_in_place: ClassVar[bool] = False
    #: why not, where not (the refusal's message)
    no_amend: ClassVar[str] = "the venue has no in-place amend"
    #: codes saying an amend asks for what the order already is (not an error)
    unchanged: frozenset[int] = frozenset()

    @abstractmethod
    def order_args(
        self,
        req: OrderRequest,
        *,
        close_position: bool,
        working_type: str,
        margin_mode: MarginMode | None,
    ) -> tuple[str, float | None, float | None, dict[str, Any]]:
        """ccxt ``create_order``'s type, amount, price and params for ``req``; ``margin_mode``
        is the symbol's when :meth:`needs_margin_mode` says the order must name it."""

    def needs_margin_mode(self, req: OrderRequest) -> bool:
        return False

    def is_conditional(self, req: OrderRequest) -> bool:
        return req.type in ("stop_market", "take_profit")

    @abstractmethod
    async def fetch_order(
        self, client: Any, symbol: str, client_order_id: str, *, conditional: bool
    ) -> dict[str, Any]:
        """The newest order with this client id, as ccxt parses it; ``OrderNotFound`` (or the
        venue's not-found code) when the venue has none."""

    @abstractmethod
    async def cancel_order(
        self, client: Any, symbol: str, client_order_id: str, *, conditional: bool
    ) -> dict[str, Any]:
        """Cancel the order; ``OrderNotFound`` (or the venue's code) when none is open."""

    async def amend_order(self, client: Any, order: Order, price: float) -> dict[str, Any]:
        """Send the venue's amend of ``order`` (open, a limit) to ``price``: ccxt's answer. A venue
        whose ``amends_in_place`` is False keeps this refusal (the caller cancels and re-places)."""
        raise AmendNotSupported(self.no_amend)  # a venue without amends_in_place: nothing sent

    @abstractmethod
    def open_order_calls(self) -> list[dict[str, Any]]:
        """The ``fetch_open_orders`` params that together list every working order."""

    @abstractmethod
    def order_kind(self, raw: dict[str, Any]) -> tuple[OrderType | None, bool]:
        """An order's type as the interface names it (None: not one of its four) and whether
        the venue marks it as closing only (reduce-only without a ``reduceOnly`` field)."""

    @abstractmethod
    def triggered_order_id(self, raw: dict[str, Any]) -> str:
        """The id of the market order a fired conditional order became ("" if none)."""

    @abstractmethod
    def realized_pnl(self, fill_info: dict[str, Any]) -> float:
        """The PnL a fill realised, from the venue's raw fill."""

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
    (-5022 when it would cross). A resting limit is amended in place (``PUT /fapi/v1/order``,
    ccxt's ``edit_order`` with the venue's order id: price and the unchanged quantity); a
    post-only order the new price would make take is canceled by Binance ("the order will be
    cancelled by the amendment"), an amend to what the order is already answers -5027.

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
        -5026: InvalidOrder,  # amended too often (10,000 times)
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
    amends_in_place: ClassVar[bool] = True
    unchanged = frozenset({-5027})  # "No need to modify the order."

    def order_args(
        self,
        req: OrderRequest,
        *,
        close_position: bool,
        working_type: str,
        margin_mode: MarginMode | None,
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

    def _named(self, client_order_id: str, *, conditional: bool) -> dict[str, Any]:
        if conditional:
            return {"trigger": True, "clientAlgoId": client_order_id}
        return {"origClientOrderId": client_order_id}

    async def fetch_order(
        self, client: Any, symbol: str, client_order_id: str, *, conditional: bool
    ) -> dict[str, Any]:
        named = self._named(client_order_id, conditional=conditional)
        return await client.fetch_order(None, symbol, named)

    async def cancel_order(
        self, client: Any, symbol: str, client_order_id: str, *, conditional: bool
    ) -> dict[str, Any]:
        named = self._named(client_order_id, conditional=conditional)
        return await client.cancel_order(None, symbol, named)

    async def amend_order(self, client: Any, order: Order, price: float) -> dict[str, Any]:
        """By the venue's order id: ccxt would send ``orderId=None`` with a client id only."""
        return await client.edit_order(order.id, order.symbol, "limit", order.side,
                                       order.amount, price)  # fmt: skip

    def open_order_calls(self) -> list[dict[str, Any]]:
        return [{}, {"trigger": True}]

    def order_kind(self, raw: dict[str, Any]) -> tuple[OrderType | None, bool]:
        info = raw.get("info") or {}
        kind = _BINANCE_TYPES.get(str(info.get("type") or info.get("orderType") or "").upper())
        return kind, bool(info.get("closePosition"))

    def triggered_order_id(self, raw: dict[str, Any]) -> str:
        return str((raw.get("info") or {}).get("actualOrderId") or "")

    def realized_pnl(self, fill_info: dict[str, Any]) -> float:
        return float(fill_info.get("realizedPnl") or 0.0)

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
        return _balance(wallet=wallet, upnl=upnl, free=free, timestamp=updated)


class Bitget(Dialect):
    """Bitget USDT-M perpetuals through ccxt's classic-account v2 ``mix`` routes (``uta`` off:
    a unified trading account is not supported), productType USDT-FUTURES, one-way position
    mode (the account must be set so: ccxt then sends no ``tradeSide``, and Bitget refuses a
    hedge-mode order with 40774).

    - Every plain order names the symbol's margin mode (``marginMode`` isolated/crossed): ccxt
      sends crossed when none is given, and Bitget refuses an order whose mode is not the
      symbol's (40808), so the adapter passes the mode it set or looked up.
    - Stops and take-profits are the position's TP/SL (``place-tpsl-order``): ``loss_plan`` /
      ``profit_plan`` with a size, ``pos_loss`` / ``pos_profit`` for the whole position
      (``close_position``); ``triggerType`` fill_price (the adapter's CONTRACT_PRICE) or
      mark_price. Bitget takes one only against a position holding its size (40891) and
      cancels them when the position is closed. They are listed with ``planType:
      profit_loss`` (open: orders-plan-pending, done: orders-plan-history), which is also how
      one is found by its ``clientOid`` (the order-detail route knows plain orders only), and
      canceled with its own planType.
    - A placed order is answered with its ids only; the adapter looks it up. A post-only order
      that would trade at once is canceled by the venue on arrival rather than refused.
    - Funding payments are account bills (``contract_settle_fee``), listed per symbol.
    - No amend in place: ``modify-order`` (ccxt's ``edit_order``) cancels the order and places
      a new one under ``newClientOid``, asynchronously (the new order id is not answered), and
      Bitget documents it for hedge mode only; a caller cancels and places anew itself."""

    refusals: ClassVar[dict[int, type[Exception]]] = {
        40786: DuplicateClientOrderId,  # Duplicate clientOid
        45034: DuplicateClientOrderId,  # clientOid duplicate
        43118: DuplicateClientOrderId,  # clientOrderId duplicate
        40762: InsufficientMargin,  # the order amount exceeds the balance
        43012: InsufficientMargin,  # insufficient balance
        40754: InsufficientMargin,  # balance not enough
        40711: InsufficientMargin,  # insufficient contract account balance
        40712: InsufficientMargin,  # insufficient margin
        22002: ReduceOnlyWouldIncrease,  # no position to close
        40757: ReduceOnlyWouldIncrease,  # not enough position is available
        40891: ReduceOnlyWouldIncrease,  # insufficient position, can not set TP/SL
        43023: ReduceOnlyWouldIncrease,  # insufficient position, can not set TP/SL
        40837: ReduceOnlyWouldIncrease,  # no position, no TP/SL can be made
        45110: BelowMinimum,  # less than the minimum amount 5 USDT
        45111: BelowMinimum,  # less than the minimum order quantity
        43006: BelowMinimum,  # less than the minimum transaction quantity
        22034: BelowMinimum,  # less than the minimum order amount
        45115: TickViolation,  # the price should be a multiple of the tick
        43028: TickViolation,  # price: an integer multiple of the tick
        22038: StepViolation,  # quantity: an integral multiple of the step
        40017: InvalidOrder,  # parameter verification failed
        40019: InvalidOrder,  # a parameter cannot be empty
        40020: InvalidOrder,  # a parameter error
        40774: InvalidOrder,  # a hedge-mode order on a one-way account
        40808: InvalidOrder,  # parameter verification exception (margin mode, scale)
        43011: InvalidOrder,  # the parameter does not meet the specification
        40915: InvalidOrder,  # long take-profit not above the mark price
        40917: InvalidOrder,  # long stop not below the mark price
        45122: InvalidOrder,  # short stop not above the mark price
        45061: InvalidOrder,  # short take-profit not below the price
        43030: InvalidOrder,  # a position take-profit exists already
        43031: InvalidOrder,  # a position stop-loss exists already
        40034: UnknownSymbolError,  # parameter (the symbol) does not exist
        40309: UnknownSymbolError,  # the contract has been removed
        45044: LeverageRefused,  # leverage not within the suitable range
        45045: LeverageRefused,  # exceeds the maximum possible leverage
        45117: LeverageRefused,  # positions or orders: the margin mode cannot change
        40920: LeverageRefused,  # position or order exists: the position mode cannot change
        40109: OrderNotFound,  # the order cannot be found
        40768: OrderNotFound,  # order does not exist
        43001: OrderNotFound,  # the order does not exist
        43025: OrderNotFound,  # plan order does not exist
        43020: OrderNotFound,  # TP/SL order does not exist
        45057: OrderNotFound,  # the order does not exist
        22001: OrderNotFound,  # no order to cancel
    }
    transient = frozenset({429, 40008, 40200})  # rate limit, timestamp expired, upgrade
    ambiguous = frozenset({40010, 40015, 40725, 40908, 40910, 43059, 45001})
    unknown_order = frozenset({40109, 40768, 43001, 43025, 43020, 45057, 22001})
    already_set = frozenset({40814, 45054})  # no change in leverage
    auth = frozenset({40001, 40002, 40003, 40005, 40006, 40009, 40011, 40012, 40014, 40037})
    options: ClassVar[dict[str, Any]] = {"uta": False}
    answers_with_order: ClassVar[bool] = False
    funding_by_symbol: ClassVar[bool] = True
    needs_passphrase: ClassVar[bool] = True
    no_amend: ClassVar[str] = (
        "Bitget's modify-order replaces the order under a new client id (cancel and new, "
        "asynchronously); cancel it and place the rest under the next client id"
    )

    def order_args(
        self,
        req: OrderRequest,
        *,
        close_position: bool,
        working_type: str,
        margin_mode: MarginMode | None,
    ) -> tuple[str, float | None, float | None, dict[str, Any]]:
        params: dict[str, Any] = {}
        if req.client_order_id is not None:
            params["clientOrderId"] = req.client_order_id  # clientOid on the wire
        if req.type in ("market", "limit"):
            if margin_mode is None:
                raise TradingError("a Bitget order needs the symbol's margin mode")
            params["marginMode"] = margin_mode
            if req.reduce_only:
                params["reduceOnly"] = True
            if req.type == "market":
                return "market", req.amount, None, params
            if req.post_only:
                params["postOnly"] = True  # force: post_only
            else:
                params["timeInForce"] = "GTC"
            return "limit", req.amount, req.price, params
        if working_type not in _BITGET_TRIGGERS:
            raise TradingError(
                f"working type {working_type!r} is not one of {list(_BITGET_TRIGGERS)}"
            )
        stop = req.type == "stop_market"
        params["stopLossPrice" if stop else "takeProfitPrice"] = (
            req.trigger_price if stop else req.price
        )
        params["planType"] = _TPSL_PLANS[(stop, close_position)]
        params["triggerType"] = _BITGET_TRIGGERS[working_type]
        return "market", req.amount, None, params

    def needs_margin_mode(self, req: OrderRequest) -> bool:
        return not self.is_conditional(req)

    async def fetch_order(
        self, client: Any, symbol: str, client_order_id: str, *, conditional: bool
    ) -> dict[str, Any]:
        named = {"clientOrderId": client_order_id}
        if not conditional:
            return await client.fetch_order(None, symbol, named)
        for listing in (client.fetch_open_orders, client.fetch_canceled_and_closed_orders):
            rows = await listing(symbol, None, None, {"planType": "profit_loss", **named})
            if rows:
                return rows[-1]
        raise OrderNotFound(f"{client.id}: no TP/SL order {client_order_id!r} on {symbol}")

    async def cancel_order(
        self, client: Any, symbol: str, client_order_id: str, *, conditional: bool
    ) -> dict[str, Any]:
        named = {"clientOrderId": client_order_id}
        if not conditional:
            return await client.cancel_order(None, symbol, named)
        found = await self.fetch_order(client, symbol, client_order_id, conditional=True)
        plan = (found.get("info") or {}).get("planType")
        raw = await client.cancel_order(None, symbol, {"trigger": True, "planType": plan, **named})
        if not raw.get("id"):  # the venue listed it as a failure: not open (any more)
            raise OrderNotFound(f"{client.id}: no open TP/SL order {client_order_id!r}")
        return raw

    def open_order_calls(self) -> list[dict[str, Any]]:
        return [{}, {"planType": "profit_loss"}]

    def order_kind(self, raw: dict[str, Any]) -> tuple[OrderType | None, bool]:
        info = raw.get("info") or {}
        plan = str(info.get("planType") or "")
        if plan:
            return _BITGET_PLAN_TYPES.get(plan), plan in _BITGET_PLAN_TYPES
        return _BINANCE_TYPES.get(str(info.get("orderType") or "").upper()), False

    def triggered_order_id(self, raw: dict[str, Any]) -> str:
        return str((raw.get("info") or {}).get("executeOrderId") or "")

    def realized_pnl(self, fill_info: dict[str, Any]) -> float:
        return float(fill_info.get("profit") or 0.0)

    def balance(self, raw: dict[str, Any]) -> Balance:
        """From ``/api/v2/mix/account/accounts`` (the USDT row): the wallet is the equity less
        the unrealised PnL; ``available`` is what new orders may use. The answer carries no
        time (``timestamp`` 0) and no running totals (as Binance's)."""
        rows = raw.get("info") or []
        row = next((r for r in rows if str(r.get("marginCoin")).upper() == "USDT"), {})
        equity = float(row.get("accountEquity") or 0.0)
        upnl = float(row.get("unrealizedPL") or 0.0)
        free = float(row.get("available") or 0.0)
        return _balance(wallet=equity - upnl, upnl=upnl, free=free, timestamp=0)


def _balance(*, wallet: float, upnl: float, free: float, timestamp: int) -> Balance:
    return Balance(
        currency="USDT",
        timestamp=timestamp,
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


_BINANCE_TYPES: dict[str, OrderType] = {
    "MARKET": "market",
    "LIMIT": "limit",
    "STOP_MARKET": "stop_market",
    "TAKE_PROFIT_MARKET": "take_profit",
}
#: (is a stop, closes the whole position) -> Bitget's TP/SL planType
_TPSL_PLANS = {
    (True, False): "loss_plan",
    (True, True): "pos_loss",
    (False, False): "profit_plan",
    (False, True): "pos_profit",
}
_BITGET_PLAN_TYPES: dict[str, OrderType] = {
    plan: "stop_market" if stop else "take_profit" for (stop, _), plan in _TPSL_PLANS.items()
}
#: the adapter's working type (Binance's words) -> Bitget's triggerType
_BITGET_TRIGGERS = {"CONTRACT_PRICE": "fill_price", "MARK_PRICE": "mark_price"}

#: ccxt id -> its dialect (the venues that trade live)
DIALECTS: dict[str, Dialect] = {"binanceusdm": BinanceUsdm(), "bitget": Bitget()}

__all__ = ["DIALECTS", "BinanceUsdm", "Bitget", "Dialect", "venue_answer"]
