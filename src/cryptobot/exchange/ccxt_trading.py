"""The live venue: ccxt's async client behind :class:`TradingExchange`.

Reachable only through ``factory.open_venue`` with all three live switches on (DESIGN.md §3).
What each venue needs on the wire is its :class:`~cryptobot.exchange.ccxt_dialects.Dialect`.

Failures, by what they mean for the account:

- reads (balance, positions, orders, fills, funding) and cancels are retried with back-off,
  honouring Retry-After; a cancel whose earlier try went through (its answer lost) returns the
  canceled order instead of "unknown order";
- a refusal (by the venue's error code) raises its ``exchange.errors`` kind: nothing changed;
- an order-creating call is NEVER sent twice. Refused before processing (429/418 or a
  transient code) it raises ``OrderNotPlaced``. After an ambiguous failure (timeout, lost
  response, 5xx, unknown code) the order is looked up by its client id, tolerating
  ``not_found_tolerance`` "not found" answers (a venue may list a new order late) and waiting
  at least ``settle_s`` in all (Binance refuses a request older than its ``recvWindow``, 10 s
  in ccxt, so an order still in flight cannot land after that): found, it is returned as if
  the call had answered; certainly absent, ``OrderNotPlaced`` (the caller decides whether to
  send it again); the look-up failing too, ``OrderStatusUnknown`` (reconcile, do not resend).

Amends (``amend_order``, where the dialect ``amends_in_place``) are sent once too: an
ambiguous failure looks the order up and returns it as it stands (at its old price or the new
one: the caller sees which), an answer that it is so already (Binance -5027) returns it. The
best bid and ask are the top of ``fetch_order_book`` (5 levels).

Binance needs a symbol to look an order up; the adapter remembers the symbol of every client
id it sent or saw, and otherwise searches the open orders (``symbol=`` names it directly).
Secrets stay inside the ccxt client: no message, log line or ``repr`` of this class holds them.
"""

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from cryptobot.core.account import (
    Balance,
    Fill,
    FundingPayment,
    MarginMode,
    Order,
    OrderRequest,
    OrderSide,
    OrderType,
    Position,
)
from cryptobot.core.config import Secrets
from cryptobot.core.errors import CryptobotError, ExchangeFailure, UnknownSymbolError
from cryptobot.core.market import BestBidAsk
from cryptobot.core.numbers import short
from cryptobot.core.settings import ExchangeSettings
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.ccxt_dialects import DIALECTS, Dialect, venue_answer
from cryptobot.exchange.ccxt_exchange import CcxtExchange
from cryptobot.exchange.ccxt_modules import package
from cryptobot.exchange.errors import (
    AmendNotSupported,
    InvalidOrder,
    OrderNotFound,
    OrderNotOpen,
    OrderNotPlaced,
    OrderStatusUnknown,
    PostOnlyWouldTake,
    TradingError,
)
from cryptobot.exchange.market_rules import check_order
from cryptobot.exchange.retry import RetryAfter, RetryPolicy, describe, retry_after_of

log = logging.getLogger(__name__)
T = TypeVar("T")
ccxt = package("ccxt")
BOOK_LEVELS = 5  # the order book depth asked for (a limit both venues accept)


class CcxtTradingExchange(CcxtExchange, TradingExchange):
    def __init__(
        self,
        exchange_id: str,
        venue: ExchangeSettings,
        retry: RetryPolicy,
        secrets: Secrets | None = None,
        *,
        not_found_tolerance: int = 3,
        settle_s: float = 10.0,
        working_type: str = "CONTRACT_PRICE",
    ) -> None:
        if exchange_id not in DIALECTS:
            raise CryptobotError(
                f"live trading is not available on {exchange_id!r}; "
                f"use one of {', '.join(DIALECTS)} (or paper)"
            )
        super().__init__(exchange_id, venue, retry, secrets)
        self.dialect: Dialect = DIALECTS[exchange_id]
        _mask_in_ccxt_logs(self._secrets.values())
        self._ccxt.options.update(self.dialect.options)
        self.not_found_tolerance = not_found_tolerance
        self.settle_s = settle_s
        self.working_type = working_type
        self._where: dict[str, tuple[str, bool]] = {}  # client id -> symbol, conditional
        self._made_by: dict[str, tuple[str, OrderType]] = {}  # venue order id -> client id, type
        self._margin_modes: dict[str, MarginMode] = {}  # symbol -> its mode, set or looked up
        self.amends_in_place = self.dialect.amends_in_place

    def __repr__(self) -> str:
        return f"CcxtTradingExchange({self.id!r})"

    # ---- account -----------------------------------------------------------------------------
    async def fetch_balance(self) -> Balance:
        raw = await self._read("fetch balance", self._ccxt.fetch_balance)
        return self.dialect.balance(raw)

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        await self.load_markets()
        rows = await self._read("fetch positions", lambda: self._ccxt.fetch_positions(symbols))
        return [_position(p) for p in rows if float(p.get("contracts") or 0.0) > 0.0]

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        await self._known(symbol)
        if not (math.isfinite(leverage) and float(leverage).is_integer() and leverage >= 1):
            raise TradingError(f"{self.id}: leverage must be a whole number >= 1, got {leverage}")
        await self._setting(
            f"set {symbol} leverage {int(leverage)}",
            lambda: self._ccxt.set_leverage(int(leverage), symbol),
        )

    async def set_margin_mode(self, symbol: str, margin_mode: MarginMode) -> None:
        await self._known(symbol)
        if margin_mode not in ("isolated", "cross"):
            raise TradingError(f"margin mode must be isolated or cross, got {margin_mode!r}")
        self._margin_modes.pop(symbol, None)  # refused, it stays what it was: look it up
        await self._setting(
            f"set {symbol} margin mode {margin_mode}",
            lambda: self._ccxt.set_margin_mode(margin_mode, symbol),
        )
        self._margin_modes[symbol] = margin_mode

    async def _margin_mode(self, symbol: str) -> MarginMode:
        """The symbol's margin mode, for a venue whose orders must name it: the one this
        adapter set, else looked up once."""
        if symbol not in self._margin_modes:
            raw = await self._read(
                f"fetch {symbol} margin mode", lambda: self._ccxt.fetch_margin_mode(symbol)
            )
            self._margin_modes[symbol] = "isolated" if raw["marginMode"] == "isolated" else "cross"
        return self._margin_modes[symbol]

    async def _setting(self, what: str, fn: Callable[[], Awaitable[Any]]) -> None:
        """A setting is idempotent: retried like a read; "already so" is success."""

        async def apply() -> None:
            try:
                await fn()
            except ccxt.BaseError as exc:
                if venue_answer(exc)[0] not in self.dialect.already_set:
                    raise

        await self._read(what, apply)

    # ---- orders ------------------------------------------------------------------------------
    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            await self._known(symbol)
        else:
            await self.load_markets()
        rows: list[dict[str, Any]] = []
        for params in self.dialect.open_order_calls():
            rows += await self._read(
                f"fetch open orders {params}",
                lambda p=params: self._ccxt.fetch_open_orders(symbol, None, None, dict(p)),
            )
        orders = [self._order(r) for r in rows]
        return sorted(orders, key=lambda o: (o.timestamp, o.id))

    async def fetch_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        """The newest order with this client id, open or done (a triggered conditional order
        carries the fill of the market order it became)."""
        symbol, conditional = await self._locate(client_order_id, symbol)
        kinds = [conditional] if conditional is not None else [True, False]
        # a route not known (an id this process neither sent nor saw): both asked at once,
        # one round trip instead of two (an entry's look-up stands before it leaves)
        answers = await asyncio.gather(
            *(self._fetch_kind(client_order_id, symbol, kind) for kind in kinds),
            return_exceptions=True,
        )
        for kind, raw in zip(kinds, answers, strict=True):
            if not isinstance(raw, BaseException):
                self._where[client_order_id] = (symbol, kind)
                return await self._with_fill(self._order(raw), raw)
        failed = [a for a in answers if not isinstance(a, OrderNotFound)]
        raise failed[0] if failed else answers[-1]

    async def _fetch_kind(self, client_order_id: str, symbol: str, kind: bool) -> dict[str, Any]:
        """The raw order of ``client_order_id`` on one route (conditional or plain)."""
        return await self._read(
            f"fetch order {client_order_id}",
            lambda: self.dialect.fetch_order(self._ccxt, symbol, client_order_id, conditional=kind),
        )

    async def create_order(
        self,
        *,
        symbol: str,
        type: OrderType,
        side: OrderSide,
        amount: float,
        price: float | None = None,
        trigger_price: float | None = None,
        reduce_only: bool = False,
        post_only: bool = False,
        client_order_id: str | None = None,
        close_position: bool = False,
    ) -> Order:
        """Sent once. ``close_position`` (stop-market and take-profit only): close the whole
        position when it fires, whatever its size then (Binance's ``closePosition``, Bitget's
        position TP/SL; ``amount`` is checked, and not sent where the venue takes none). A
        post-only order the venue cancels on arrival (it would have traded at once) raises
        ``PostOnlyWouldTake`` like one the venue refuses."""
        req = OrderRequest(symbol, type, side, amount, price, trigger_price, reduce_only,
                           post_only, client_order_id)  # fmt: skip
        market = (await self.load_markets()).get(symbol)
        if market is None:
            await self._known(symbol)
        check_order(req, market, last_price=math.nan)  # the venue checks the price side
        if close_position and not self.dialect.is_conditional(req):
            raise TradingError("close_position is for stop_market and take_profit orders")
        mode = await self._margin_mode(symbol) if self.dialect.needs_margin_mode(req) else None
        kind, qty, limit, params = self.dialect.order_args(
            req, close_position=close_position, working_type=self.working_type, margin_mode=mode
        )
        conditional = self.dialect.is_conditional(req)
        if client_order_id is not None:
            self._where[client_order_id] = (symbol, conditional)
        try:
            raw = await self._ccxt.create_order(symbol, kind, side, qty, limit, params)
        except ccxt.BaseError as exc:
            return await self._after_failed_create(req, exc)
        if self.dialect.answers_with_order:
            order = self._order(raw)
        else:
            order = await self._accepted(req, raw, conditional)
        if req.post_only and order.status == "canceled" and not order.filled:
            raise PostOnlyWouldTake(
                f"create limit {side} {symbol} {client_order_id or ''}: the venue canceled the "
                "post-only order on arrival (it would have traded at once)"
            )
        return order

    async def _accepted(self, req: OrderRequest, raw: dict[str, Any], conditional: bool) -> Order:
        """A venue that answers an accepted order with its ids: the order as it lists it."""
        cid = str(raw.get("clientOrderId") or req.client_order_id or "")
        self._where[cid] = (req.symbol, conditional)
        accepted = Order(
            id=str(raw.get("id") or ""), client_order_id=cid, timestamp=0, updated=0,
            symbol=req.symbol, type=req.type, side=req.side, amount=req.amount,
            price=req.price, trigger_price=req.trigger_price, reduce_only=req.reduce_only,
            post_only=req.post_only, status="open", filled=0.0, average=None, fee=0.0,
            liquidity="maker" if req.type == "limit" else "taker", reason=None,
        )  # fmt: skip
        return await self._resolve(replace(req, client_order_id=cid), f"look up {cid}", accepted)

    async def _after_failed_create(self, req: OrderRequest, exc: ccxt.BaseError) -> Order:
        what = f"create {req.type} {req.side} {req.symbol} {req.client_order_id or ''}".rstrip()
        code, _ = venue_answer(exc)
        if isinstance(exc, RetryAfter) or code in self.dialect.transient:
            raise OrderNotPlaced(
                f"{what}: refused unprocessed ({_text(exc, code)}); nothing was placed",
                retry_after=retry_after_of(exc),
            ) from None
        if self.dialect.refusal(code) is not None or code in self.dialect.auth:
            raise self._refused(what, exc, code) from None
        if isinstance(exc, ccxt.BadSymbol):
            raise UnknownSymbolError(f"{self.id}: {_text(exc, code)}") from None
        if req.client_order_id is None:
            raise OrderStatusUnknown(
                f"{what}: {_text(exc, code)}; the order has no client id to look it up by: "
                "reconcile before sending anything"
            ) from None
        log.warning("%s: %s; looking the order up by its client id", what, _text(exc, code))
        return await self._resolve(req, what)

    async def _resolve(self, req: OrderRequest, what: str, accepted: Order | None = None) -> Order:
        """The order as the venue lists it, looked up by client id (a few "not found" answers
        tolerated: a venue may list a new order late). After an ambiguous failure
        (``accepted`` None) an order the venue does not have is certainly absent; one the
        venue ``accepted`` is returned as accepted when it cannot be listed yet."""
        cid = req.client_order_id or ""
        misses, waited, attempt = 0, 0.0, 0
        while True:
            attempt += 1
            try:
                return await self.fetch_order(cid, symbol=req.symbol)
            except OrderNotFound:
                misses += 1
            except (ExchangeFailure, TradingError) as exc:
                if accepted is not None:
                    return accepted
                raise OrderStatusUnknown(
                    f"{what}: the order may exist and could not be looked up ({exc}); "
                    "reconcile before sending it again"
                ) from None
            if misses > self.not_found_tolerance and accepted is not None:
                return accepted
            if misses > self.not_found_tolerance and waited >= self.settle_s:
                raise OrderNotPlaced(
                    f"{what}: the request failed and the venue has no such order after "
                    f"{misses} look-ups over {waited:.1f}s; nothing was placed"
                )
            pause = self._retry.delay(attempt, None)
            await self._retry.sleep(pause)
            waited += pause

    async def amend_order(
        self, client_order_id: str, *, price: float, symbol: str | None = None
    ) -> Order:
        """Looked up first (the venue's amend names the order by its id, side and amount);
        see the module's docstring for failures. Binance cancels a post-only order the new
        price would make take: ``PostOnlyWouldTake`` (look it up)."""
        if not self.amends_in_place:
            raise AmendNotSupported(f"{self.id}: {self.dialect.no_amend}; nothing was sent")
        order = await self.fetch_order(client_order_id, symbol=symbol)
        if order.status != "open":
            raise OrderNotOpen(f"{self.id}: order {client_order_id} is {order.status}, not open")
        if order.type != "limit":
            raise InvalidOrder(f"order {client_order_id} is a {order.type}: only a limit's price "
                               "can be amended")  # fmt: skip
        req = OrderRequest(order.symbol, "limit", order.side, order.amount, price, None,
                           order.reduce_only, order.post_only, client_order_id)  # fmt: skip
        check_order(req, (await self.load_markets())[order.symbol], last_price=math.nan)
        what = f"amend {client_order_id} to {short(price)}"
        try:
            raw = await self.dialect.amend_order(self._ccxt, order, float(price))
        except ccxt.BaseError as exc:
            return await self._after_failed_amend(order, what, exc)
        amended = self._order(raw)
        if order.post_only and amended.status == "canceled":
            raise PostOnlyWouldTake(f"{what}: the venue canceled the post-only order (it would "
                                    "have traded at once)")  # fmt: skip
        return amended

    async def _after_failed_amend(self, order: Order, what: str, exc: ccxt.BaseError) -> Order:
        code, _ = venue_answer(exc)
        cid = order.client_order_id
        if code in self.dialect.unchanged:
            return await self.fetch_order(cid, symbol=order.symbol)
        if isinstance(exc, RetryAfter) or code in self.dialect.transient:
            raise TradingError(f"{what}: refused unprocessed ({_text(exc, code)}); the order is "
                               "unchanged") from None  # fmt: skip
        if self.dialect.refusal(code) is not None or code in self.dialect.auth:
            raise self._refused(what, exc, code) from None
        log.warning("%s: %s; looking the order up by its client id", what, _text(exc, code))
        try:
            return await self.fetch_order(cid, symbol=order.symbol)
        except (ExchangeFailure, TradingError) as lookup:
            raise OrderStatusUnknown(
                f"{what}: {_text(exc, code)}, and the look-up failed too ({lookup}): "
                "reconcile before changing it again"
            ) from None

    async def fetch_best_bid_ask(self, symbol: str) -> BestBidAsk:
        """The top of the venue's order book; an empty side is None, the time the book's (0
        when the venue sends none)."""
        await self._known(symbol)
        book = await self._read(
            f"fetch {symbol} book", lambda: self._ccxt.fetch_order_book(symbol, BOOK_LEVELS)
        )
        bid, ask = _top(book.get("bids")), _top(book.get("asks"))
        return BestBidAsk(symbol=symbol, bid=bid[0], ask=ask[0], bid_size=bid[1],
                          ask_size=ask[1], timestamp=int(book.get("timestamp") or 0))  # fmt: skip

    async def cancel_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        """The canceled order. The venue cannot tell a second cancel from a retry whose first
        answer was lost (aiohttp itself re-sends a DELETE on a dropped connection), so an order
        canceled already is returned as canceled; a filled one raises ``OrderNotOpen``."""
        symbol, conditional = await self._locate(client_order_id, symbol)
        if conditional is None:  # which route holds it: one look-up says
            await self.fetch_order(client_order_id, symbol=symbol)
            conditional = self._where[client_order_id][1]
        try:
            await self._read(
                f"cancel {client_order_id}",
                lambda: self.dialect.cancel_order(
                    self._ccxt, symbol, client_order_id, conditional=conditional
                ),
            )
        except OrderNotFound:
            order = await self.fetch_order(client_order_id, symbol=symbol)
            if order.status != "canceled":
                raise OrderNotOpen(
                    f"{self.id}: order {client_order_id} is {order.status}, not open"
                ) from None
            return order
        return await self.fetch_order(client_order_id, symbol=symbol)

    # ---- history -----------------------------------------------------------------------------
    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[Fill]:
        """Binance lists fills per symbol: without ``symbol``, those of every symbol this
        adapter has sent orders on or that holds a position."""
        symbols = [symbol] if symbol else await self._traded_symbols()
        fills: list[Fill] = []
        for s in symbols:
            await self._known(s)
            rows = await self._read(
                f"fetch {s} fills", lambda s=s: self._ccxt.fetch_my_trades(s, since, limit)
            )
            fills += [await self._fill(r) for r in rows]
        fills.sort(key=lambda f: (f.timestamp, f.id))
        return fills[:limit] if limit else fills

    async def fetch_funding_payments(
        self, symbol: str | None = None, since: int | None = None
    ) -> list[FundingPayment]:
        """The venues' rows (Binance's income, Bitget's bills) carry the amount only:
        ``rate``, ``contracts`` and ``price`` are 0 (the funding rate history has the rate).
        A venue that lists them per symbol is asked for each symbol traded or held."""
        if symbol is not None:
            await self._known(symbol)
        else:
            await self.load_markets()
        each = self.dialect.funding_by_symbol and symbol is None
        rows: list[dict[str, Any]] = []
        for s in await self._traded_symbols() if each else [symbol]:
            rows += await self._read(
                "fetch funding payments", lambda s=s: self._ccxt.fetch_funding_history(s, since)
            )
        return sorted(
            (
                FundingPayment(
                    id=str(r.get("id") or ""),
                    timestamp=int(r["timestamp"]),
                    symbol=r["symbol"],
                    amount=float(r["amount"]),
                    rate=0.0,
                    contracts=0.0,
                    price=0.0,
                )
                for r in rows
            ),
            key=lambda f: (f.timestamp, f.id),
        )

    # ---- plumbing ----------------------------------------------------------------------------
    async def _read(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A call safe to repeat: transient failures (by class or by the venue's code) retried
        with back-off; the rest raised as the refusal its code names."""

        async def attempt() -> T:
            try:
                return await fn()
            except ccxt.BaseError as exc:
                code, _ = venue_answer(exc)
                if code in self.dialect.transient or code in self.dialect.ambiguous:
                    raise ccxt.ExchangeNotAvailable(_text(exc, code)) from None
                raise

        try:
            return await self._retry.call(what, attempt)
        except ccxt.BaseError as exc:
            code, _ = venue_answer(exc)
            if isinstance(exc, ccxt.BadSymbol) and code is None:
                raise UnknownSymbolError(f"{self.id}: {_text(exc, code)}") from None
            if code is None and isinstance(exc, ccxt.OrderNotFound):
                raise OrderNotFound(f"{what}: {_text(exc, code)}") from None
            raise self._refused(what, exc, code) from None

    def _refused(self, what: str, exc: BaseException, code: int | None) -> Exception:
        if code in self.dialect.auth or isinstance(exc, ccxt.AuthenticationError):
            return CryptobotError(
                f"{self.id} refused the API keys; check CRYPTOBOT_API_KEY/CRYPTOBOT_API_SECRET"
            )
        kind = self.dialect.refusal(code)
        if kind is None:
            return ExchangeFailure(f"{what}: {_text(exc, code)}")
        return kind(f"{what}: {_text(exc, code)}")

    async def _locate(self, client_order_id: str, symbol: str | None) -> tuple[str, bool | None]:
        """The symbol (and route) of a client id: remembered, named, or found among the open
        orders."""
        if client_order_id in self._where:
            known, conditional = self._where[client_order_id]
            if symbol in (None, known):
                return known, conditional
        if symbol is not None:
            await self._known(symbol)
            return symbol, None
        for order in await self.fetch_open_orders():
            if order.client_order_id == client_order_id:
                return self._where[client_order_id]
        raise OrderNotFound(
            f"{self.id}: no open order {client_order_id!r} and none sent by this process; "
            "name its symbol to look up a done order"
        )

    def _order(self, raw: dict[str, Any]) -> Order:
        order = _order(raw, *self.dialect.order_kind(raw))
        conditional = order.type in ("stop_market", "take_profit")
        self._where.setdefault(order.client_order_id, (order.symbol, conditional))
        if not conditional:
            self._made_by[order.id] = (order.client_order_id, order.type)
        return order

    async def _with_fill(self, order: Order, raw: dict[str, Any]) -> Order:
        """A triggered conditional order: its fill is the market order it became."""
        actual = self.dialect.triggered_order_id(raw)
        if not actual:
            return order
        market = await self._read(
            f"fetch order {actual}", lambda: self._ccxt.fetch_order(actual, order.symbol)
        )
        self._made_by[actual] = (order.client_order_id, order.type)
        filled = float(market.get("filled") or 0.0)
        return replace(order, filled=filled, average=_num(market.get("average")))

    async def _fill(self, r: dict[str, Any]) -> Fill:
        order_id = str(r.get("order") or "")
        if order_id and order_id not in self._made_by:
            raw = await self._read(
                f"fetch order {order_id}", lambda: self._ccxt.fetch_order(order_id, r["symbol"])
            )
            self._order(raw)
        client_id, order_type = self._made_by.get(order_id, ("", "market"))
        fee = r.get("fee") or {}
        cost = float(r.get("cost") or 0.0)
        fee_cost = float(fee.get("cost") or 0.0)
        return Fill(
            id=str(r["id"]),
            order_id=order_id,
            client_order_id=client_id,
            timestamp=int(r["timestamp"]),
            symbol=r["symbol"],
            order_type=order_type,
            side=r["side"],
            amount=float(r["amount"]),
            price=float(r["price"]),
            cost=cost,
            fee=fee_cost,
            fee_rate=float(fee.get("rate") or (fee_cost / cost if cost else 0.0)),
            taker_or_maker=r.get("takerOrMaker") or "taker",
            realized_pnl=self.dialect.realized_pnl(r.get("info") or {}),
        )

    async def _traded_symbols(self) -> list[str]:
        held = {p.symbol for p in await self.fetch_positions()}
        return sorted(held | {s for s, _ in self._where.values()})


class _Mask(logging.Filter):
    """ccxt's debug log prints each request with its headers, the API key among them."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "****")
            record.msg, record.args = text, None
        return True


def _mask_in_ccxt_logs(secrets: list[str]) -> None:
    if not secrets:
        return
    for name in ("ccxt", "ccxt.base.exchange"):
        logger = logging.getLogger(name)
        logger.filters = [f for f in logger.filters if not isinstance(f, _Mask)]
        logger.addFilter(_Mask(secrets))


def _text(exc: BaseException, code: int | None) -> str:
    """One line about a failure: the venue's code and message, or the exception's kind
    (``describe``: never a URL's query, which carries the signature)."""
    if code is not None:
        _, msg = venue_answer(exc)
        return f"venue error {code} {msg}".rstrip()
    return describe(exc)


def _order(raw: dict[str, Any], kind: OrderType | None, closes: bool) -> Order:
    """ccxt's order as the interface's; ``kind`` and ``closes`` as the dialect reads them."""
    if kind is None:
        kind = "market" if raw.get("type") == "market" else "limit"
    status = raw.get("status") or "open"
    reason = None
    if status not in ("open", "closed", "canceled", "rejected"):
        status, reason = "canceled", str(status)  # expired: nothing left to reduce, or IOC
    trigger = _num(raw.get("triggerPrice"))
    price = trigger if kind == "take_profit" else _num(raw.get("price"))
    timestamp = int(raw.get("timestamp") or 0)
    return Order(
        id=str(raw.get("id") or ""),
        client_order_id=str(raw.get("clientOrderId") or ""),
        timestamp=timestamp,
        updated=int(raw.get("lastUpdateTimestamp") or timestamp),
        symbol=raw["symbol"],
        type=kind,
        side=raw["side"],
        amount=float(raw.get("amount") or 0.0),
        price=price,
        trigger_price=trigger if kind == "stop_market" else None,
        reduce_only=bool(raw.get("reduceOnly")) or closes,
        post_only=bool(raw.get("postOnly")),
        status=status,
        filled=float(raw.get("filled") or 0.0),
        average=_num(raw.get("average")),
        fee=float((raw.get("fee") or {}).get("cost") or 0.0),
        liquidity="maker" if kind == "limit" else "taker",
        reason=reason,
    )


def _position(p: dict[str, Any]) -> Position:
    notional = abs(float(p.get("notional") or 0.0))
    margin = float(p.get("initialMargin") or 0.0)
    leverage = p.get("leverage") or (notional / margin if margin else 1.0)
    return Position(
        symbol=p["symbol"],
        side=p["side"],
        contracts=float(p["contracts"]),
        contract_size=float(p.get("contractSize") or 1.0),
        entry_price=float(p["entryPrice"]),
        mark_price=float(p.get("markPrice") or 0.0),
        notional=notional,
        unrealized_pnl=float(p.get("unrealizedPnl") or 0.0),
        leverage=float(leverage),
        margin_mode=p.get("marginMode") or "cross",
        initial_margin=margin,
        liquidation_price=_num(p.get("liquidationPrice")),
        timestamp=int(p.get("timestamp") or 0),
    )


def _top(levels: Any) -> tuple[float | None, float | None]:
    """The best level (price, size) of one side of a ccxt order book; (None, None) if empty."""
    if not levels or not isinstance(levels, list) or not isinstance(levels[0], list | tuple):
        return None, None
    first = levels[0]
    return _num(first[0]), _num(first[1]) if len(first) > 1 else None


def _num(value: Any) -> float | None:
    """A price ccxt may give as None, 0 or a string: None unless a positive finite number."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


__all__ = ["CcxtTradingExchange"]
