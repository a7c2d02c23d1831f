"""The signed routes of the Bitget USDT-M emulator (classic account, v2 ``mix`` API, one-way
position mode), as ccxt 4.5.90's ``bitget`` calls them:

==========================================  ===============================================
ccxt                                        route
==========================================  ===============================================
fetch_balance                               GET /api/v2/mix/account/accounts
fetch_margin_mode, fetch_leverage           GET /api/v2/mix/account/account
set_leverage, set_margin_mode               POST /api/v2/mix/account/set-leverage,
                                            POST /api/v2/mix/account/set-margin-mode
fetch_positions / fetch_position            GET /api/v2/mix/position/all-position,
                                            GET /api/v2/mix/position/single-position
create_order (market, limit, post_only)     POST /api/v2/mix/order/place-order
create_order with stopLossPrice or          POST /api/v2/mix/order/place-tpsl-order
takeProfitPrice (TP/SL of the position)     (planType loss_plan, profit_plan: a size;
                                            pos_loss, pos_profit: the whole position)
edit_order (a plain limit)                  POST /api/v2/mix/order/modify-order
cancel_order (``trigger``: plan)            POST /api/v2/mix/order/cancel-order,
                                            POST /api/v2/mix/order/cancel-plan-order
fetch_order                                 GET /api/v2/mix/order/detail (plain orders only)
fetch_open_orders (``planType``/trigger)    GET /api/v2/mix/order/orders-pending,
                                            GET /api/v2/mix/order/orders-plan-pending
fetch_canceled_and_closed_orders (plan)     GET /api/v2/mix/order/orders-plan-history
fetch_my_trades                             GET /api/v2/mix/order/fills
fetch_funding_history                       GET /api/v2/mix/account/bill
==========================================  ===============================================

Bitget's wire as this module speaks it: JSON bodies and answers ``{"code": "00000", "msg":
"success", "requestTime": ..., "data": ...}``; a refusal is HTTP 400 with the code (a string)
and message of Bitget's error table (:data:`CODES`). ``marginMode`` (isolated/crossed) must
come with every plain order and match the symbol's margin mode (40808 otherwise: an order
without it is taken as crossed, as ccxt sends it). The account is in one-way mode: a
``tradeSide`` (hedge mode's open/close) or a TP/SL ``holdSide`` of long/short is refused with
40774; TP/SL orders name the position by ``holdSide`` buy (long) or sell (short), need a
position holding their size (40891) and are canceled with it when it is closed. A post-only
order that would trade at once is accepted and canceled on arrival, and a client id is refused
(40786) if any order ever carried it. Plan orders are TP/SL only (``normal_plan`` and trailing
plans are not emulated: their listings are empty and placing one is refused with 40017).
``modify-order`` is Bitget's cancel-and-replace: an unfilled (``live``) limit order, named by
``orderId`` or ``clientOid``, is canceled and a new one placed under ``newClientOid`` (required)
at ``newPrice`` for ``newSize`` (both, or neither: 40017); the answer carries the new client id
and no order id (Bitget creates the new order asynchronously). Bitget documents it for hedge
mode; this one-way emulator serves it anyway, so a test sees what ccxt's ``edit_order`` does.
Signed routes check that the ACCESS-* headers are present, not the signature. The public
``/api/v2/mix/market/merge-depth`` lists the shared book's levels and sizes.
"""

import math
from collections.abc import Callable
from typing import Any

from tests.emulator.account import Refused, Rejected
from tests.emulator.matching import Matching
from tests.emulator.orders import Conditional, Order

PRODUCT = "USDT-FUTURES"
TPSL_PLANS = ("profit_plan", "loss_plan", "pos_profit", "pos_loss")
_FORCES = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "post_only": "POST_ONLY"}
_FORCE_NAMES = {v: k for k, v in _FORCES.items()}
_STATES = {"NEW": "live", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
           "CANCELED": "canceled", "EXPIRED": "canceled"}  # fmt: skip
_PLAN_STATES = {"NEW": "live", "TRIGGERED": "executed", "CANCELED": "cancelled",
                "EXPIRED": "fail_trigger"}  # fmt: skip
_TRIGGER_TYPES = {"fill_price": "CONTRACT_PRICE", "mark_price": "MARK_PRICE"}
_TRIGGER_NAMES = {v: k for k, v in _TRIGGER_TYPES.items()}
#: what the matching engine refuses -> Bitget's code and message (its classic contract table)
CODES: dict[str, tuple[str, str]] = {
    "unknown_symbol": ("40034", "Parameter {symbol} does not exist"),
    "qty_step": ("22038", "Please enter the quantity as an integral multiple of {step:g}"),
    "price_tick": ("45115", "The price you enter should be a multiple of {tick:g}"),
    "duplicate_id": ("40786", "Duplicate clientOid"),
    "reduce_only_rejected": ("22002", "No position to close"),
    "min_notional": ("45110", "less than the minimum amount {minimum:g} USDT"),
    "insufficient_margin": ("40762", "The order amount exceeds the balance"),
    "order_not_found": (
        "40109",
        "The data of the order cannot be found, please confirm the order number",
    ),
    "cancel_unknown": ("40768", "Order does not exist"),
    "modify_not_new": (
        "40017",
        "Parameter verification failed: only a new limit order can be modified",
    ),
    "no_position": ("40891", "Insufficient position, can not set take profit or stop loss"),
    "leverage_invalid": ("45044", "Leverage is not within the suitable range after adjustment"),
    "margin_mode_busy": (
        "45117",
        "Currently holding positions or orders, the margin mode cannot be adjusted",
    ),
}
#: a TP/SL that would trigger at once, by (kind, the closing order's side)
_WOULD_TRIGGER = {
    ("STOP_MARKET", "SELL"): ("40917", "Stop price for long positions please < mark price {price}"),
    ("STOP_MARKET", "BUY"): ("45122", "Short position stop loss price please > mark price {price}"),
    ("TAKE_PROFIT_MARKET", "SELL"): (
        "40915",
        "Long position take profit price please > mark price",
    ),
    ("TAKE_PROFIT_MARKET", "BUY"): ("45061", "TP price of short position < Current price {price}"),
}
_AUTH = (
    ("ACCESS-KEY", "40001", "ACCESS_KEY cannot be empty"),
    ("ACCESS-SIGN", "40002", "ACCESS_SIGN cannot be empty"),
    ("ACCESS-TIMESTAMP", "40005", "Invalid ACCESS_TIMESTAMP"),
    ("ACCESS-PASSPHRASE", "40011", "ACCESS_PASSPHRASE cannot be empty"),
)
AUTH_HEADERS = tuple(h for h, _, _ in _AUTH)


def rejected(no: Refused) -> Rejected:
    """What the engine refused, in Bitget's code and message."""
    if no.reason == "would_trigger":
        code, msg = _WOULD_TRIGGER[(no.detail["kind"], no.detail["side"])]
    else:
        code, msg = CODES[no.reason]
    return Rejected(code, msg.format(**no.detail))


def check_signed(headers: dict[str, str]) -> None:
    for header, code, msg in _AUTH:
        if not headers.get(header):
            raise Rejected(code, msg)


def _s(x: float) -> str:
    """Bitget prints numbers as plain decimal strings."""
    return f"{float(x) + 0.0:.10f}".rstrip("0").rstrip(".") or "0"


def _text(q: dict[str, Any], key: str) -> str:
    value = q.get(key)
    if value in (None, ""):
        raise Rejected("40019", f"Parameter {key} cannot be empty")
    return str(value)


def _positive(q: dict[str, Any], key: str) -> float:
    try:
        value = float(_text(q, key))
    except ValueError:
        raise Rejected("40020", f"Parameter {key} error") from None
    if not math.isfinite(value) or value <= 0:
        raise Rejected("40020", f"Parameter {key} error")
    return value


def _choice(q: dict[str, Any], key: str, allowed: tuple[str, ...], default: str = "") -> str:
    value = str(q.get(key) or default).lower()
    if not value:
        raise Rejected("40019", f"Parameter {key} cannot be empty")
    if value not in allowed:
        raise Rejected("40020", f"Parameter {key} error")
    return value


class TradingApi:
    def __init__(self, engine: Matching) -> None:
        self.engine = engine
        self.account = engine.account
        self.book = engine.book

    def routes(self, q: dict[str, Any]) -> dict[tuple[str, str], Callable[[], Any]]:
        """(method, path) -> a thunk answering the request's ``data`` with ``q``."""
        v2 = "/api/v2/mix"
        return {
            ("GET", f"{v2}/account/accounts"): lambda: self.accounts(q),
            ("GET", f"{v2}/account/account"): lambda: self.one_account(q),
            ("POST", f"{v2}/account/set-leverage"): lambda: self.set_leverage(q),
            ("POST", f"{v2}/account/set-margin-mode"): lambda: self.set_margin_mode(q),
            ("GET", f"{v2}/account/bill"): lambda: self.bills(q),
            ("GET", f"{v2}/position/all-position"): lambda: self.positions(q, None),
            ("GET", f"{v2}/position/single-position"): lambda: self.positions(q, self._symbol(q)),
            ("POST", f"{v2}/order/place-order"): lambda: _ids(self.place(q)),
            ("POST", f"{v2}/order/place-tpsl-order"): lambda: _ids(self.place_tpsl(q)),
            ("POST", f"{v2}/order/place-plan-order"): _no_plans,
            ("POST", f"{v2}/order/modify-order"): lambda: self.modify(q),
            ("POST", f"{v2}/order/cancel-order"): lambda: _ids(self.cancel(q)),
            ("POST", f"{v2}/order/cancel-plan-order"): lambda: self.cancel_plans(q),
            ("GET", f"{v2}/order/detail"): lambda: self.detail(q),
            ("GET", f"{v2}/order/orders-pending"): lambda: self.pending(q),
            ("GET", f"{v2}/order/orders-plan-pending"): lambda: self.plans(q, live=True),
            ("GET", f"{v2}/order/orders-plan-history"): lambda: self.plans(q, live=False),
            ("GET", f"{v2}/order/fills"): lambda: self.fills(q),
        }

    def answer(self, thunk: Callable[[], Any]) -> tuple[int, Any]:
        now = self.engine.venue.now_ms
        try:
            with self.engine.lock:
                data = thunk()
        except Refused as no:
            return self.refusal(rejected(no))
        except Rejected as no:
            return self.refusal(no)
        return 200, {"code": "00000", "msg": "success", "requestTime": now, "data": data}

    def refusal(self, no: Rejected) -> tuple[int, Any]:
        """Bitget's answer to a request it refuses: its envelope with the code, no data."""
        now = self.engine.venue.now_ms
        return no.status, {"code": no.code, "msg": no.msg, "requestTime": now, "data": None}

    # ---- parameters ------------------------------------------------------------------------
    def _symbol(self, q: dict[str, Any]) -> str:
        """The request's symbol, on the one product this emulator lists."""
        self._product(q)
        symbol = _text(q, "symbol").upper()
        self.engine.spec(symbol)
        return symbol

    def _product(self, q: dict[str, Any]) -> None:
        if _text(q, "productType").upper() != PRODUCT:
            raise Rejected("40020", "Parameter productType error")

    def _coin(self, q: dict[str, Any]) -> None:
        if _text(q, "marginCoin").upper() != "USDT":
            raise Rejected("40020", "Parameter marginCoin error")

    def _mode(self, symbol: str) -> str:
        return "isolated" if self.account.position(symbol).isolated else "crossed"

    # ---- orders ----------------------------------------------------------------------------
    def place(self, q: dict[str, Any]) -> Order:
        symbol = self._symbol(q)
        self._coin(q)
        if q.get("tradeSide"):
            raise Rejected(
                "40774",
                "The order type for unilateral position must also be the unilateral position type.",
            )
        side = _choice(q, "side", ("buy", "sell"))
        kind = _choice(q, "orderType", ("market", "limit"))
        qty = _positive(q, "size")
        price = _positive(q, "price") if kind == "limit" else 0.0
        mode = _choice(q, "marginMode", ("isolated", "crossed"))
        if mode != self._mode(symbol):
            held = "FIXED" if self._mode(symbol) == "isolated" else "CROSSED"
            raise Rejected("40808", f"Parameter verification exception margin mode == {held}")
        force = _choice(q, "force", tuple(_FORCES), default="gtc")
        reduce_only = _choice(q, "reduceOnly", ("yes", "no"), default="no") == "yes"
        if any(k.startswith("presetStop") for k in q):
            raise Rejected("40017", "Parameter verification failed: preset TP/SL not emulated")
        return self.engine.place(symbol=symbol, side=side.upper(), kind=kind.upper(), qty=qty,
                                 price=price, tif=_FORCES[force], reduce_only=reduce_only,
                                 client_id=q.get("clientOid"))  # fmt: skip

    def place_tpsl(self, q: dict[str, Any]) -> Conditional:
        symbol = self._symbol(q)
        self._coin(q)
        plan = str(q.get("planType") or "")
        if plan not in TPSL_PLANS:
            raise Rejected("40017", f"Parameter verification failed: planType {plan!r}")
        trigger = _positive(q, "triggerPrice")
        trigger_type = _choice(q, "triggerType", tuple(_TRIGGER_TYPES))
        if str(q.get("executePrice") or "0") not in ("0", "0.0"):
            raise Rejected("40017", "Parameter verification failed: a limit TP/SL not emulated")
        hold = str(q.get("holdSide") or "")
        if hold in ("long", "short"):
            raise Rejected(
                "40774",
                "The order type for unilateral position must also be the unilateral position type.",
            )
        hold = _choice(q, "holdSide", ("buy", "sell"))
        whole = plan.startswith("pos_")
        qty = 0.0 if whole else _positive(q, "size")
        if whole and any(c.plan == plan for c in self.book.open_conditionals(symbol)):
            code = "43031" if plan == "pos_loss" else "43030"
            kind = "Stop loss" if plan == "pos_loss" else "Take profit"
            raise Rejected(code, f"{kind} order already existed")
        return self.engine.place_conditional(
            symbol=symbol, side="SELL" if hold == "buy" else "BUY",
            kind="STOP_MARKET" if "loss" in plan else "TAKE_PROFIT_MARKET",
            qty=qty, trigger=trigger, working_type=_TRIGGER_TYPES[trigger_type],
            reduce_only=True, close_position=whole, client_id=q.get("clientOid"), plan=plan,
            needs_position=True,
        )  # fmt: skip

    def _named(self, q: dict[str, Any]) -> tuple[str | None, str | None]:
        """``orderId`` (which wins) or ``clientOid``: one of them is required."""
        order_id, client_id = q.get("orderId") or None, q.get("clientOid") or None
        if not (order_id or client_id):
            raise Rejected("40924", "orderId and clientOid must have one")
        return order_id, client_id

    def modify(self, q: dict[str, Any]) -> dict[str, Any]:
        symbol = self._symbol(q)
        if q.get("marginCoin"):  # Bitget's example sends it, ccxt does not (and is served)
            self._coin(q)
        order_id, client_id = self._named(q)
        new_client_id = _text(q, "newClientOid")
        if ("newSize" in q) != ("newPrice" in q) or "newSize" not in q:
            raise Rejected("40017", "Parameter verification failed: modifying size and price, "
                           "please pass in both")  # fmt: skip
        qty, price = _positive(q, "newSize"), _positive(q, "newPrice")
        self.engine.replace(symbol=symbol, order_id=order_id, client_id=client_id,
                            new_client_id=new_client_id, qty=qty, price=price)  # fmt: skip
        return {"orderId": None, "clientOid": new_client_id}

    def depth(self, q: dict[str, Any]) -> dict[str, Any]:
        """``merge-depth``: the book's levels as strings, the time as a string."""
        symbol = self._symbol(q)
        limit = str(q.get("limit") or "100")
        if limit not in ("1", "5", "15", "50", "max", "100"):
            raise Rejected("40020", "Parameter limit error")
        levels = 1 if limit == "1" else 5
        bids, asks = self.book.depth(symbol, self.engine.spec(symbol), levels)
        return {
            "asks": [[_s(p), _s(v)] for p, v in asks],
            "bids": [[_s(p), _s(v)] for p, v in bids],
            "ts": str(self.engine.venue.now_ms),
            "scale": _s(self.engine.spec(symbol).tick),
            "precision": "scale0",
            "isMaxPrecision": "NO",
        }

    def cancel(self, q: dict[str, Any]) -> Order:
        symbol = self._symbol(q)
        order_id, client_id = self._named(q)
        return self.engine.cancel(symbol=symbol, order_id=order_id, client_id=client_id)

    def cancel_plans(self, q: dict[str, Any]) -> dict[str, Any]:
        """Each named plan order (or every one of the symbol) of ``planType`` (absent:
        normal_plan, of which this venue holds none) is canceled, or listed as a failure."""
        symbol = self._symbol(q)
        plan = str(q.get("planType") or "normal_plan")
        named = q.get("orderIdList")
        if named is None:
            named = [{"orderId": str(c.id)} for c in self.book.open_conditionals(symbol)]
        done, failed = [], []
        for item in named if isinstance(named, list) else []:
            order_id, client_id = item.get("orderId") or None, item.get("clientOid") or None
            try:
                found = self.engine.lookup_conditional(
                    order_id=order_id, client_id=client_id, count=False
                )
                if found.symbol != symbol or not _plan_in(found, plan):
                    raise Refused("cancel_unknown")
                done.append(_ids(self.engine.cancel_conditional(order_id=str(found.id))))
            except Refused:
                failed.append({"orderId": order_id or "", "clientOid": client_id or "",
                               "errorMsg": "Plan order does not exist",
                               "errorCode": "43025"})  # fmt: skip
        return {"successList": done, "failureList": failed}

    def detail(self, q: dict[str, Any]) -> dict[str, Any]:
        symbol = self._symbol(q)
        order_id, client_id = self._named(q)
        order = self.engine.lookup(symbol=symbol, order_id=order_id, client_id=client_id,
                                   triggered=False)  # fmt: skip
        return self.order_row(order) | {"state": _STATES[order.status], "cancelReason": ""}

    def pending(self, q: dict[str, Any]) -> dict[str, Any]:
        self._product(q)
        symbol = q.get("symbol")
        rows = [
            self.order_row(o) | {"status": _STATES[o.status]}
            for o in reversed(self.book.open_orders(symbol.upper() if symbol else None))
            if q.get("orderId") in (None, str(o.id)) and q.get("clientOid") in (None, o.client_id)
        ]
        return {"entrustedList": rows or None, "endId": rows[-1]["orderId"] if rows else None}

    def plans(self, q: dict[str, Any], *, live: bool) -> dict[str, Any]:
        """Open plan orders (``live``) or done ones, newest first. A look-up by id counts
        against the "not found" fault like any other."""
        self._product(q)
        plan = _text(q, "planType")
        symbol = (q.get("symbol") or "").upper() or None
        order_id, client_id = q.get("orderId") or None, q.get("clientOid") or None
        if order_id or client_id:
            try:
                found = [self.engine.lookup_conditional(order_id=order_id, client_id=client_id)]
            except Refused:
                found = []
        else:
            found = list(self.book.conditionals.values())
        rows = [
            c
            for c in reversed(found)
            if (c.status == "NEW") == live and symbol in (None, c.symbol) and _plan_in(c, plan)
        ]
        rows = _window(rows, q, lambda c: c.time)
        out = [self.plan_row(c) for c in rows]
        return {"entrustedList": out or None, "endId": out[-1]["orderId"] if out else None}

    # ---- fills and bills -------------------------------------------------------------------
    def fills(self, q: dict[str, Any]) -> dict[str, Any]:
        self._product(q)
        symbol = (q.get("symbol") or "").upper() or None
        trades = [
            t
            for t in reversed(self.account.trades)
            if symbol in (None, t.symbol) and q.get("orderId") in (None, str(t.order_id))
        ]
        rows = [
            {
                "tradeId": str(t.id),
                "symbol": t.symbol,
                "orderId": str(t.order_id),
                "price": _s(t.price),
                "baseVolume": _s(t.qty),
                "feeDetail": [_fee(t.commission)],
                "side": t.side.lower(),
                "quoteVolume": _s(t.qty * t.price),
                "profit": _s(t.realized),
                "enterPointSource": "API",
                "tradeSide": self._trade_side(t.order_id, t.side, t.closing >= t.qty),
                "posMode": "one_way_mode",
                "tradeScope": "maker" if t.maker else "taker",
                "cTime": str(t.time),
            }
            for t in _window(trades, q, lambda t: t.time)
        ]
        return {"fillList": rows or None, "endId": rows[-1]["tradeId"] if rows else None}

    def _trade_side(self, order_id: int, side: str, closing: bool) -> str:
        """One-way mode's names: buy_single, reduce_sell_single, burst_sell_single..."""
        order = self.book.orders.get(order_id)
        burst = order is not None and order.client_id.startswith("autoclose-")
        prefix = "burst_" if burst else "reduce_" if closing else ""
        return f"{prefix}{side.lower()}_single"

    def bills(self, q: dict[str, Any]) -> dict[str, Any]:
        """The ledger as account bills, newest first: funding (contract_settle_fee), each
        trade's PnL and fee (open_/close_long/short), liquidation clearance
        (risk_captital_user_transfer, Bitget's spelling); ``balance`` is the wallet after it."""
        self._product(q)
        symbol = (q.get("symbol") or "").upper() or None
        rows, balance = [], self.account.start_balance
        for r in self.account.ledger:
            balance += r["amount"]
            kind = self._bill_type(r)
            if symbol in (None, r["symbol"]) and q.get("businessType") in (None, kind):
                fee = r["amount"] if r["kind"] == "fee" else 0.0
                rows.append(
                    {
                        "billId": str(r["id"]),
                        "symbol": r["symbol"],
                        "amount": _s(r["amount"] - fee),
                        "fee": _s(fee),
                        "feeByCoupon": "",
                        "businessType": kind,
                        "coin": "USDT",
                        "balance": _s(balance),
                        "cTime": str(r["time"]),
                    }
                )
        rows = _window(list(reversed(rows)), q, lambda r: int(r["cTime"]))
        return {"bills": rows, "endId": rows[-1]["billId"] if rows else None}

    def _bill_type(self, r: dict[str, Any]) -> str:
        if r["kind"] == "funding":
            return "contract_settle_fee"
        if r["kind"] == "liquidation_clear":
            return "risk_captital_user_transfer"
        trade = self.account.trades[r["trade"] - 1]
        long = (trade.side == "SELL") == (trade.closing > 0)  # closes a long or opens one
        return f"{'close' if trade.closing else 'open'}_{'long' if long else 'short'}"

    # ---- account ---------------------------------------------------------------------------
    def _equity(self) -> dict[str, str]:
        marks = self.engine.marks()
        held = [p for p in self.account.positions.values() if p.qty]
        upnl = sum(p.upnl(marks[p.symbol]) for p in held)
        cross = sum(p.upnl(marks[p.symbol]) for p in held if not p.isolated)
        order_im = self.book.order_margin(marks)
        available = self.account.available(marks, order_im)
        return {
            "marginCoin": "USDT",
            "locked": _s(order_im),
            "available": _s(available),
            "crossedMaxAvailable": _s(available),
            "isolatedMaxAvailable": _s(available),
            "maxTransferOut": _s(max(0.0, available)),
            "accountEquity": _s(self.account.balance + upnl),
            "usdtEquity": _s(self.account.balance + upnl),
            "btcEquity": "0",
            "crossedRiskRate": "0",
            "unrealizedPL": _s(upnl),
            "coupon": "0",
            "crossedUnrealizedPL": _s(cross),
            "isolatedUnrealizedPL": _s(upnl - cross),
            "assetMode": "single",
        }

    def accounts(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        self._product(q)
        return [self._equity()]

    def one_account(self, q: dict[str, Any]) -> dict[str, Any]:
        symbol = self._symbol(q)
        self._coin(q)
        lev = str(self.account.position(symbol).leverage)
        return self._equity() | {
            "crossedMarginLeverage": lev,
            "isolatedLongLever": lev,
            "isolatedShortLever": lev,
            "marginMode": self._mode(symbol),
            "posMode": "one_way_mode",
        }

    def set_leverage(self, q: dict[str, Any]) -> dict[str, Any]:
        symbol = self._symbol(q)
        self._coin(q)
        leverage = _positive(q, "leverage")
        if not leverage.is_integer():
            raise Rejected("40020", "Parameter leverage error")
        self.account.set_leverage(symbol, int(leverage))
        return self._leverages(symbol) | {"crossMarginLeverage": str(int(leverage))}

    def set_margin_mode(self, q: dict[str, Any]) -> dict[str, Any]:
        """Bitget answers success when the mode is so already."""
        symbol = self._symbol(q)
        self._coin(q)
        mode = _choice(q, "marginMode", ("isolated", "crossed"))
        busy = bool(self.book.open_orders(symbol) or self.book.open_conditionals(symbol))
        self.account.set_isolated(symbol, mode == "isolated", busy)
        return self._leverages(symbol)

    def _leverages(self, symbol: str) -> dict[str, Any]:
        lev = str(self.account.position(symbol).leverage)
        return {"symbol": symbol, "marginCoin": "USDT", "longLeverage": lev,
                "shortLeverage": lev, "marginMode": self._mode(symbol)}  # fmt: skip

    def positions(self, q: dict[str, Any], symbol: str | None) -> list[dict[str, Any]]:
        self._product(q)
        self._coin(q)
        marks = self.engine.marks()
        return [
            self.position_row(s, marks)
            for s, p in sorted(self.account.positions.items())
            if p.qty and symbol in (None, s)
        ]

    # ---- Bitget's shapes -------------------------------------------------------------------
    def position_row(self, symbol: str, marks: dict[str, float]) -> dict[str, Any]:
        pos = self.account.position(symbol)
        mark = marks[symbol]
        notional = abs(pos.qty) * mark
        orders = self.book.open_orders(symbol)
        closing = sum(o.remaining for o in orders if o.reduce_only)
        opening = sum(o.remaining for o in orders if not o.reduce_only)
        margin = pos.isolated_wallet if pos.isolated else notional / pos.leverage
        maint = self.account.maintenance(notional)
        way = 1 if pos.qty > 0 else -1
        return {
            "marginCoin": "USDT",
            "symbol": symbol,
            "holdSide": "long" if pos.qty > 0 else "short",
            "openDelegateSize": _s(opening),
            "marginSize": _s(margin),
            "available": _s(max(0.0, abs(pos.qty) - closing)),
            "locked": _s(min(closing, abs(pos.qty))),
            "total": _s(abs(pos.qty)),
            "leverage": str(pos.leverage),
            "achievedProfits": "0",
            "openPriceAvg": _s(pos.entry),
            "marginMode": self._mode(symbol),
            "posMode": "one_way_mode",
            "unrealizedPL": _s(pos.upnl(mark)),
            "liquidationPrice": _s(self.account.liquidation(symbol, marks)),
            "keepMarginRate": _s(maint / notional - self.account.close_fee if notional else 0),
            "markPrice": _s(mark),
            "breakEvenPrice": _s(pos.entry * (1 + 2 * self.account.taker_fee * way)),
            "totalFee": "0",
            "deductedFee": "0",
            "marginRatio": _s(maint / (margin + pos.upnl(mark)) if margin else 0),
            "assetMode": "single",
            "uTime": str(pos.update_time),
            "autoMargin": "off",
            "cTime": str(pos.open_time),
        }

    def order_row(self, o: Order) -> dict[str, Any]:
        """An order as the detail and pending routes list it (they add ``state``/``status``).
        The market order a TP/SL became carries a client id of its own, as on Bitget."""
        return {
            "symbol": o.symbol,
            "size": _s(o.qty),
            "orderId": str(o.id),
            "clientOid": o.client_id if o.conditional_id is None else str(o.id),
            "baseVolume": _s(o.executed),
            "fee": _s(-o.fee),
            "price": _s(o.price),
            "priceAvg": _s(o.average) if o.executed else "",
            "side": o.side.lower(),
            "force": _FORCE_NAMES[o.tif],
            "totalProfits": "0",
            "posSide": "net",
            "marginCoin": "USDT",
            "presetStopSurplusPrice": "",
            "presetStopLossPrice": "",
            "quoteVolume": _s(o.cum_quote),
            "orderType": o.type.lower(),
            "leverage": str(self.account.position(o.symbol).leverage),
            "marginMode": self._mode(o.symbol),
            "reduceOnly": "YES" if o.reduce_only else "NO",
            "enterPointSource": "API",
            "tradeSide": f"{'reduce_' if o.reduce_only else ''}{o.side.lower()}_single",
            "posMode": "one_way_mode",
            "orderSource": "normal" if o.conditional_id is None else "plan",
            "cTime": str(o.time),
            "uTime": str(o.update_time or o.time),
        }

    def plan_row(self, c: Conditional) -> dict[str, Any]:
        made = self.book.orders.get(c.actual_order_id or 0)
        row = {
            "planType": c.plan,
            "symbol": c.symbol,
            "size": _s(c.qty) if c.qty else "",
            "orderId": str(c.id),
            "clientOid": c.client_id,
            "price": "0",
            "executePrice": "0",
            "callbackRatio": "",
            "triggerPrice": _s(c.trigger),
            "triggerType": _TRIGGER_NAMES[c.working_type],
            "planStatus": _PLAN_STATES[c.status],
            "side": c.side.lower(),
            "posSide": "net",
            "marginCoin": "USDT",
            "marginMode": self._mode(c.symbol),
            "enterPointSource": "API",
            "tradeSide": f"reduce_{c.side.lower()}_single",
            "posMode": "one_way_mode",
            "orderType": "market",
            "orderSource": "plan",
            "cTime": str(c.time),
            "uTime": str(c.update_time or c.time),
            "presetStopSurplusPrice": "",
            "stopSurplusTriggerPrice": "",
            "stopSurplusTriggerType": "",
            "presetStopLossPrice": "",
            "stopLossTriggerPrice": "",
            "stopLossTriggerType": "",
        }
        if c.status != "NEW":
            row |= {
                "executeOrderId": str(made.id) if made else "",
                "priceAvg": _s(made.average) if made and made.executed else "0",
                "baseVolume": _s(made.executed) if made else "0",
            }
        return row


def _ids(order: Order | Conditional) -> dict[str, str]:
    """What a place or cancel answers: the two ids, nothing else."""
    return {"orderId": str(order.id), "clientOid": order.client_id}


def _fee(commission: float) -> dict[str, str]:
    """A fill's ``feeDetail`` entry: Bitget reports the fee paid as a negative number."""
    return {"deduction": "no", "feeCoin": "USDT", "totalDeductionFee": "0",
            "totalFee": _s(-commission)}  # fmt: skip


def _no_plans() -> None:
    raise Rejected("40017", "Parameter verification failed: trigger plans are not emulated")


def _plan_in(c: Conditional, plan: str) -> bool:
    """``profit_loss`` lists every TP/SL plan; another planType only its own."""
    return c.plan in TPSL_PLANS if plan == "profit_loss" else c.plan == plan


def _window(rows: list, q: dict[str, Any], time_of: Callable[[Any], int]) -> list:
    """Bitget's startTime/endTime/limit over rows newest first (limit 100 at most)."""
    start, end = int(q.get("startTime") or 0), int(q.get("endTime") or 2**62)
    limit = min(int(q.get("limit") or 100), 100)
    return [r for r in rows if start <= time_of(r) <= end][:limit]
