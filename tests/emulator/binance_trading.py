"""The signed trading and account routes of the Binance USDⓈ-M emulator, as ccxt 4.5.90's
``binanceusdm`` calls them:

=========================================  =================================================
ccxt                                       route
=========================================  =================================================
fetch_balance                              GET /fapi/v3/account (v2 with ``useV2``; also
                                           /fapi/v2/balance, /fapi/v3/balance)
fetch_positions / fetch_position           GET /fapi/v3/positionRisk (v2 with ``useV2``)
create_order (market, limit, GTX)          POST /fapi/v1/order
create_order with a trigger price          POST /fapi/v1/algoOrder (algoType CONDITIONAL);
                                           a conditional type sent to /fapi/v1/order: -4120
edit_order                                 PUT /fapi/v1/order
cancel_order (``trigger``: algo)           DELETE /fapi/v1/order, DELETE /fapi/v1/algoOrder
cancel_all_orders (``trigger``: algo)      DELETE /fapi/v1/allOpenOrders, /algoOpenOrders
fetch_order (``trigger``: algo)            GET /fapi/v1/order, GET /fapi/v1/algoOrder
fetch_open_orders (``trigger``: algo)      GET /fapi/v1/openOrders, GET /fapi/v1/openAlgoOrders
fetch_orders                               GET /fapi/v1/allOrders (algo: /allAlgoOrders)
fetch_my_trades                            GET /fapi/v1/userTrades
fetch_funding_history / ledger             GET /fapi/v1/income
fetch_trading_fee                          GET /fapi/v1/commissionRate
set_leverage, set_margin_mode              POST /fapi/v1/leverage, POST /fapi/v1/marginType
fetch_leverages / fetch_margin_modes       GET /fapi/v1/symbolConfig
=========================================  =================================================

plus the public ``/fapi/v1/ticker/bookTicker``, ``/fapi/v1/depth`` (ccxt's ``fetch_bids_asks``
and ``fetch_order_book``: the shared book's levels and sizes) and ``/fapi/v1/premiumIndex`` from
the emulator's price path. ``PUT /fapi/v1/order`` amends in place as Binance documents it: a
GTX order the new price would make take is canceled (and the request answered -5022), an amend
to the order's own price and quantity is -5027. Any API key and secret are accepted; a signed
route only checks that the key header, ``timestamp`` and ``signature`` are present (the HMAC is
not verified), and neither is ever stored: the request log keeps no signature and no key.

This module is Binance's wire: it parses the form parameters into the shared matching engine's
calls (:mod:`matching`), answers what the engine refuses with Binance's error code
(:data:`CODES`) and renders the book and the account in Binance's shapes (numbers as strings
with eight decimals, ``/fapi/v1/income`` rows for the ledger).
"""

import math
from collections.abc import Callable
from typing import Any

from tests.emulator.account import Account, Refused, Rejected
from tests.emulator.margin import bracket_of
from tests.emulator.matching import Matching
from tests.emulator.orders import TOP_QTY, Conditional, Order

Answer = tuple[int, Any]
_V3_POSITION = (
    *("symbol", "positionSide", "positionAmt", "unrealizedProfit", "isolatedMargin"),
    *("notional", "isolatedWallet", "initialMargin", "maintMargin", "updateTime"),
)
_V2_POSITION = (
    *("symbol", "initialMargin", "maintMargin", "positionInitialMargin"),
    *("openOrderInitialMargin", "leverage", "entryPrice", "maxNotional", "unrealizedProfit"),
    *("bidNotional", "askNotional", "positionSide", "positionAmt", "updateTime"),
)
DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
#: order types the plain order endpoint refuses since December 2025 (-4120)
ALGO_ONLY = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
_TIFS = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "GTX": "POST_ONLY"}
#: what the matching engine refuses -> Binance's code and message
CODES: dict[str, tuple[int, str]] = {
    "unknown_symbol": (-1121, "Invalid symbol."),
    "qty_step": (-1111, "Precision is over the maximum defined for this asset."),
    "price_tick": (-4014, "Price not increased by tick size."),
    "duplicate_id": (-4116, "ClientOrderId is duplicated."),
    "reduce_only_rejected": (-2022, "ReduceOnly Order is rejected."),
    "min_notional": (
        -4164,
        "Order's notional must be no smaller than {minimum:g} (unless you choose reduce only).",
    ),
    "insufficient_margin": (-2019, "Margin is insufficient."),
    "post_only_would_take": (
        -5022,
        "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    ),
    "order_not_found": (-2013, "Order does not exist."),
    "cancel_unknown": (-2011, "Unknown order sent."),
    "amend_below_filled": (-4005, "Quantity greater than max quantity."),
    "amend_no_change": (-5027, "No need to modify the order."),
    "would_trigger": (-2021, "Order would immediately trigger."),
    "leverage_invalid": (-4028, "Leverage {leverage} is not valid"),
    "margin_mode_busy": (-4048, "Margin type cannot be changed if there exists position."),
}
_INCOME = {
    "realized_pnl": "REALIZED_PNL",
    "fee": "COMMISSION",
    "funding": "FUNDING_FEE",
    "liquidation_clear": "INSURANCE_CLEAR",
}


def rejected(no: Refused) -> Rejected:
    """What the engine refused, in Binance's code and message."""
    code, msg = CODES[no.reason]
    return Rejected(code, msg.format(**no.detail))


def refusal(no: Rejected) -> Answer:
    """Binance's answer to a request it refuses: ``{"code": -2019, "msg": "..."}``."""
    return no.status, {"code": no.code, "msg": no.msg}


def _n(x: float) -> str:
    """Binance prints numbers as strings with a fixed number of decimals."""
    return f"{float(x) + 0.0:.8f}"


def _flag(q: dict[str, str], key: str) -> bool:
    return str(q.get(key, "false")).lower() == "true"


def _number(q: dict[str, str], key: str) -> float:
    try:
        value = float(q[key])
    except (KeyError, ValueError):
        raise Rejected(
            -1102, f"Mandatory parameter '{key}' was not sent, was empty/null, or malformed."
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise Rejected(-1102, f"Parameter '{key}' was malformed.")
    return value


def _side(q: dict[str, str]) -> str:
    side = q.get("side", "")
    if side not in ("BUY", "SELL"):
        raise Rejected(-1117, "Invalid side.")
    return side


def check_signed(q: dict[str, str], headers: dict[str, str]) -> None:
    if not headers.get("X-MBX-APIKEY"):
        raise Rejected(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    for key in ("timestamp", "signature"):
        if not q.get(key):
            raise Rejected(
                -1102, f"Mandatory parameter '{key}' was not sent, was empty/null, or malformed."
            )


class TradingApi:
    def __init__(self, engine: Matching) -> None:
        self.engine = engine
        self.account = engine.account
        self.book = engine.book

    def routes(self, q: dict[str, str]) -> dict[tuple[str, str], Callable[[], Any]]:
        """(method, path) -> a thunk answering the request with ``q``."""
        e = self.engine
        return {
            ("GET", "/fapi/v2/balance"): self.balance,
            ("GET", "/fapi/v3/balance"): self.balance,
            ("GET", "/fapi/v2/account"): lambda: self.account_info(v3=False),
            ("GET", "/fapi/v3/account"): lambda: self.account_info(v3=True),
            ("GET", "/fapi/v2/positionRisk"): lambda: self.position_risk(q, v3=False),
            ("GET", "/fapi/v3/positionRisk"): lambda: self.position_risk(q, v3=True),
            ("GET", "/fapi/v1/symbolConfig"): lambda: self.symbol_config(q),
            ("POST", "/fapi/v1/order"): lambda: order_row(self.place(q)),
            ("PUT", "/fapi/v1/order"): lambda: order_row(self.amend(q)),
            ("GET", "/fapi/v1/order"): lambda: order_row(e.lookup(**_named(q))),
            ("DELETE", "/fapi/v1/order"): lambda: order_row(e.cancel(**_named(q))),
            ("GET", "/fapi/v1/openOrders"): lambda: self.open_orders(q),
            ("GET", "/fapi/v1/allOrders"): lambda: self.all_orders(q),
            ("DELETE", "/fapi/v1/allOpenOrders"): lambda: e.cancel_all(q.get("symbol")) or DONE,
            ("POST", "/fapi/v1/algoOrder"): lambda: algo_row(self.place_algo(q)),
            ("GET", "/fapi/v1/algoOrder"): lambda: algo_row(e.lookup_conditional(**_algo(q))),
            ("DELETE", "/fapi/v1/algoOrder"): lambda: self.cancel_algo(q),
            ("GET", "/fapi/v1/openAlgoOrders"): lambda: self.open_algos(q),
            ("GET", "/fapi/v1/allAlgoOrders"): lambda: self.all_algos(q),
            ("DELETE", "/fapi/v1/algoOpenOrders"): lambda: (
                e.cancel_all_conditionals(q.get("symbol")) or DONE
            ),
            ("GET", "/fapi/v1/userTrades"): lambda: self.user_trades(q),
            ("GET", "/fapi/v1/income"): lambda: self.income(q),
            ("GET", "/fapi/v1/commissionRate"): lambda: self.commission(q),
            ("POST", "/fapi/v1/leverage"): lambda: self.leverage(q),
            ("POST", "/fapi/v1/marginType"): lambda: self.margin_type(q),
        }

    def public_routes(self, q: dict[str, str]) -> dict[str, Callable[[], Any]]:
        return {
            "/fapi/v1/ticker/bookTicker": lambda: self.book_ticker(q),
            "/fapi/v1/depth": lambda: self.depth(q),
            "/fapi/v1/premiumIndex": lambda: self.premium_index(q),
        }

    def answer(self, thunk: Callable[[], Any]) -> Answer:
        try:
            with self.engine.lock:
                return 200, thunk()
        except Refused as no:
            return refusal(rejected(no))
        except Rejected as no:
            return refusal(no)

    # ---- orders in Binance's parameters ------------------------------------------------------
    def place(self, q: dict[str, str]) -> Order:
        symbol, kind = q.get("symbol") or "", q.get("type", "")
        self.engine.spec(symbol)
        side = _side(q)
        if kind in ALGO_ONLY:
            raise Rejected(
                -4120,
                "Order type not supported for this endpoint. "
                "Please use the Algo Order API endpoints instead.",
            )
        if kind not in ("MARKET", "LIMIT"):
            raise Rejected(-1116, "Invalid orderType.")
        qty = _number(q, "quantity")
        price = _number(q, "price") if kind == "LIMIT" else 0.0
        tif = q.get("timeInForce", "GTC")
        if tif not in _TIFS:
            raise Rejected(-1115, "Invalid timeInForce.")
        return self.engine.place(symbol=symbol, side=side, kind=kind, qty=qty, price=price,
                                 tif=_TIFS[tif], reduce_only=_flag(q, "reduceOnly"),
                                 client_id=q.get("newClientOrderId"))  # fmt: skip

    def amend(self, q: dict[str, str]) -> Order:
        """``PUT /fapi/v1/order``: a resting LIMIT order gets a new price and/or quantity."""
        return self.engine.amend(**_named(q), qty=_number(q, "quantity"),
                                 price=_number(q, "price"))  # fmt: skip

    def place_algo(self, q: dict[str, str]) -> Conditional:
        if q.get("algoType") != "CONDITIONAL":
            raise Rejected(-1102, "Mandatory parameter 'algoType' was not sent or is invalid.")
        symbol, kind = q.get("symbol") or "", q.get("type", "")
        self.engine.spec(symbol)
        side = _side(q)
        if kind not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
            raise Rejected(-1116, "Invalid orderType.")
        trigger = _number(q, "triggerPrice")
        close_position = _flag(q, "closePosition")
        reduce_only = _flag(q, "reduceOnly")
        if close_position and ("quantity" in q or reduce_only):
            raise Rejected(-1106, "Parameter 'quantity' or 'reduceOnly' sent when not required.")
        qty = 0.0 if close_position else _number(q, "quantity")
        return self.engine.place_conditional(
            symbol=symbol, side=side, kind=kind, qty=qty, trigger=trigger,
            working_type=q.get("workingType", "CONTRACT_PRICE"), reduce_only=reduce_only,
            close_position=close_position, client_id=q.get("clientAlgoId"),
        )  # fmt: skip

    # ---- account ---------------------------------------------------------------------------
    def _totals(self) -> dict[str, float]:
        marks = self.engine.marks()
        positions = [p for p in self.account.positions.values() if p.qty]
        upnl = sum(p.upnl(marks[p.symbol]) for p in positions)
        cross_upnl = sum(p.upnl(marks[p.symbol]) for p in positions if not p.isolated)
        position_im = sum(abs(p.qty) * marks[p.symbol] / p.leverage for p in positions)
        order_im = self.book.order_margin(marks)
        maint = sum(self.account.maintenance(p.qty * marks[p.symbol]) for p in positions)
        available = self.account.available(marks, order_im)
        return {
            "wallet": self.account.balance,
            "upnl": upnl,
            "cross_upnl": cross_upnl,
            "position_im": position_im,
            "order_im": order_im,
            "maint": maint,
            "cross_wallet": self.account.cross_wallet(),
            "available": available,
        }

    def balance(self) -> list[dict[str, Any]]:
        t = self._totals()
        return [
            {
                "accountAlias": "SgsR",
                "asset": "USDT",
                "balance": _n(t["wallet"]),
                "crossWalletBalance": _n(t["cross_wallet"]),
                "crossUnPnl": _n(t["cross_upnl"]),
                "availableBalance": _n(t["available"]),
                "maxWithdrawAmount": _n(max(0.0, t["available"])),
                "marginAvailable": True,
                "updateTime": self.engine.venue.now_ms,
            }
        ]

    def account_info(self, *, v3: bool) -> dict[str, Any]:
        t = self._totals()
        now = self.engine.venue.now_ms
        asset = {
            "asset": "USDT",
            "walletBalance": _n(t["wallet"]),
            "unrealizedProfit": _n(t["upnl"]),
            "marginBalance": _n(t["wallet"] + t["upnl"]),
            "maintMargin": _n(t["maint"]),
            "initialMargin": _n(t["position_im"] + t["order_im"]),
            "positionInitialMargin": _n(t["position_im"]),
            "openOrderInitialMargin": _n(t["order_im"]),
            "crossWalletBalance": _n(t["cross_wallet"]),
            "crossUnPnl": _n(t["cross_upnl"]),
            "availableBalance": _n(t["available"]),
            "maxWithdrawAmount": _n(max(0.0, t["available"])),
            "marginAvailable": True,
            "updateTime": now,
        }
        rows = [
            risk_row(self.account, s, self.engine.marks(), now)
            for s, p in sorted(self.account.positions.items())
            if p.qty or not v3
        ]
        keep = _V3_POSITION if v3 else _V2_POSITION
        positions = []
        for row in rows:
            row |= {
                "unrealizedProfit": row["unRealizedProfit"],
                "maxNotional": row["maxNotionalValue"],
            }
            entry = {k: row[k] for k in keep}
            if not v3:
                entry["isolated"] = row["marginType"] == "isolated"
            positions.append(entry)
        info = {
            "totalInitialMargin": asset["initialMargin"],
            "totalMaintMargin": asset["maintMargin"],
            "totalWalletBalance": asset["walletBalance"],
            "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"],
            "totalPositionInitialMargin": asset["positionInitialMargin"],
            "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
            "totalCrossWalletBalance": asset["crossWalletBalance"],
            "totalCrossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "assets": [asset],
            "positions": positions,
        }
        if not v3:
            info |= {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True}
            info |= {"updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}
        return info

    def position_risk(self, q: dict[str, str], *, v3: bool) -> list[dict[str, Any]]:
        """v2 lists every symbol the account has touched, v3 only open positions (and has no
        leverage or margin type: those are in ``symbolConfig``)."""
        now, marks = self.engine.venue.now_ms, self.engine.marks()
        rows = [
            risk_row(self.account, s, marks, now)
            for s, p in sorted(self.account.positions.items())
            if q.get("symbol") in (None, s) and (p.qty or not v3)
        ]
        if v3:
            drop = ("leverage", "marginType", "isAutoAddMargin", "maxNotionalValue")
            rows = [{k: v for k, v in r.items() if k not in drop} for r in rows]
        return rows

    def symbol_config(self, q: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "symbol": s,
                "marginType": "ISOLATED" if p.isolated else "CROSSED",
                "isAutoAddMargin": False,
                "leverage": p.leverage,
                "maxNotionalValue": _n(self.account.brackets[0].cap),
            }
            for s, p in sorted(self.account.positions.items())
            if q.get("symbol") in (None, s)
        ]

    def leverage(self, q: dict[str, str]) -> dict[str, Any]:
        symbol = q.get("symbol") or ""
        self.engine.spec(symbol)
        try:
            leverage = int(q.get("leverage", ""))
        except ValueError:
            raise Rejected(-1102, "Mandatory parameter 'leverage' was not sent.") from None
        self.account.set_leverage(symbol, leverage)
        cap = max(b.cap for b in self.account.brackets if b.max_leverage >= leverage)
        return {"leverage": leverage, "maxNotionalValue": _n(cap), "symbol": symbol}

    def margin_type(self, q: dict[str, str]) -> dict[str, Any]:
        symbol, kind = q.get("symbol") or "", q.get("marginType")
        self.engine.spec(symbol)
        if kind not in ("ISOLATED", "CROSSED"):
            raise Rejected(-1102, "Mandatory parameter 'marginType' was not sent or is invalid.")
        busy = bool(self.book.open_orders(symbol) or self.book.open_conditionals(symbol))
        if not self.account.set_isolated(symbol, kind == "ISOLATED", busy):
            raise Rejected(-4046, "No need to change margin type.")
        return {"code": 200, "msg": "success"}

    def commission(self, q: dict[str, str]) -> dict[str, Any]:
        self.engine.spec(q.get("symbol"))
        return {
            "symbol": q.get("symbol"),
            "makerCommissionRate": _n(self.account.maker_fee),
            "takerCommissionRate": _n(self.account.taker_fee),
        }

    # ---- orders ----------------------------------------------------------------------------
    def open_orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        return [order_row(o) for o in self.book.open_orders(q.get("symbol"))]

    def all_orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        rows = [o for o in self.book.orders.values() if o.symbol == q.get("symbol")]
        rows = [o for o in rows if o.id >= int(q.get("orderId", 0))]
        return [order_row(o) for o in _window(rows, q, lambda o: o.time, 500)]

    def open_algos(self, q: dict[str, str]) -> list[dict[str, Any]]:
        return [algo_row(a) for a in self.book.open_conditionals(q.get("symbol"))]

    def all_algos(self, q: dict[str, str]) -> list[dict[str, Any]]:
        rows = [a for a in self.book.conditionals.values() if a.symbol == q.get("symbol")]
        return [algo_row(a) for a in _window(rows, q, lambda a: a.time, 500)]

    def cancel_algo(self, q: dict[str, str]) -> dict[str, Any]:
        algo = self.engine.cancel_conditional(**_algo(q))
        return {"algoId": algo.id, "clientAlgoId": algo.client_id, "code": "200", "msg": "success"}

    def user_trades(self, q: dict[str, str]) -> list[dict[str, Any]]:
        if not q.get("symbol"):
            raise Rejected(-1102, "Mandatory parameter 'symbol' was not sent.")
        rows = [t for t in self.account.trades if t.symbol == q["symbol"]]
        rows = [t for t in rows if t.id >= int(q.get("fromId", 0))]
        return [
            {
                "buyer": t.side == "BUY",
                "commission": _n(t.commission),
                "commissionAsset": "USDT",
                "id": t.id,
                "maker": t.maker,
                "orderId": t.order_id,
                "price": _n(t.price),
                "qty": _n(t.qty),
                "quoteQty": _n(t.qty * t.price),
                "realizedPnl": _n(t.realized),
                "side": t.side,
                "positionSide": "BOTH",
                "symbol": t.symbol,
                "time": t.time,
            }
            for t in _window(rows, q, lambda t: t.time, 500)
        ]

    def income(self, q: dict[str, str]) -> list[dict[str, Any]]:
        rows = [
            income_row(r)
            for r in self.account.ledger
            if q.get("symbol") in (None, r["symbol"])
            and q.get("incomeType") in (None, _INCOME[r["kind"]])
        ]
        limit = min(int(q.get("limit", 100)), 1000)
        return _window(rows, q, lambda r: r["time"], limit)

    # ---- public prices ---------------------------------------------------------------------
    def _quotes(self, q: dict[str, str]) -> list[tuple[str, float, float]]:
        e = self.engine
        symbols = [q["symbol"]] if "symbol" in q else sorted(self.book.prices)
        out = []
        for s in symbols:
            bid, ask = self.book.bid_ask(s, e.spec(s))
            out.append((s, bid, ask))
        return out

    def book_ticker(self, q: dict[str, str]) -> Any:
        now = self.engine.venue.now_ms
        rows = [
            {
                "symbol": s,
                "bidPrice": _n(bid),
                "bidQty": _n(self.book.top_qty.get(s, TOP_QTY)),
                "askPrice": _n(ask),
                "askQty": _n(self.book.top_qty.get(s, TOP_QTY)),
                "time": now,
            }
            for s, bid, ask in self._quotes(q)
        ]
        return rows[0] if "symbol" in q else rows

    def depth(self, q: dict[str, str]) -> dict[str, Any]:
        """``/fapi/v1/depth``: the book's levels (``limit`` 5, 10, 20.. as Binance allows)."""
        symbol = q.get("symbol") or ""
        limit = int(q.get("limit") or 500)
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise Rejected(-1130, "Invalid data sent for a parameter.")
        bids, asks = self.book.depth(symbol, self.engine.spec(symbol), min(limit, 20))
        now = self.engine.venue.now_ms
        return {
            "lastUpdateId": self.book.next_id,
            "E": now,
            "T": now,
            "bids": [[_n(p), _n(v)] for p, v in bids],
            "asks": [[_n(p), _n(v)] for p, v in asks],
        }

    def premium_index(self, q: dict[str, str]) -> Any:
        now = self.engine.venue.now_ms
        rows = [
            {
                "symbol": s,
                "markPrice": _n(bid),
                "indexPrice": _n(bid),
                "estimatedSettlePrice": _n(bid),
                "lastFundingRate": "0.00010000",
                "interestRate": "0.00010000",
                "nextFundingTime": (now // 28_800_000 + 1) * 28_800_000,
                "time": now,
            }
            for s, bid, _ in self._quotes(q)
        ]
        return rows[0] if "symbol" in q else rows


def _window(rows: list, q: dict[str, str], time_of: Callable[[Any], int], limit: int) -> list:
    """Binance's startTime/endTime/limit: the oldest ``limit`` rows from startTime, else the
    newest ``limit``."""
    rows = [r for r in rows if int(q.get("startTime", 0)) <= time_of(r)]
    if "endTime" in q:
        rows = [r for r in rows if time_of(r) <= int(q["endTime"])]
    limit = min(int(q.get("limit", limit)), 1000)
    return rows[:limit] if "startTime" in q else rows[-limit:]


def _named(q: dict[str, str]) -> dict[str, Any]:
    """The engine's names for an order Binance names by ``orderId`` or ``origClientOrderId``."""
    return {
        "symbol": q.get("symbol"),
        "order_id": q.get("orderId"),
        "client_id": q.get("origClientOrderId"),
    }


def _algo(q: dict[str, str]) -> dict[str, Any]:
    return {"order_id": q.get("algoId"), "client_id": q.get("clientAlgoId")}


# ---- Binance's shapes -------------------------------------------------------------------------
def order_row(o: Order) -> dict[str, Any]:
    tif = "GTX" if o.tif == "POST_ONLY" else o.tif
    return {
        "orderId": o.id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_id,
        "price": _n(o.price),
        "avgPrice": _n(o.average),
        "origQty": _n(o.qty),
        "executedQty": _n(o.executed),
        "cumQty": _n(o.executed),
        "cumQuote": _n(o.cum_quote),
        "timeInForce": tif,
        "type": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": o.time,
        "updateTime": o.update_time or o.time,
    }


def algo_row(a: Conditional) -> dict[str, Any]:
    return {
        "algoId": a.id,
        "clientAlgoId": a.client_id,
        "algoType": "CONDITIONAL",
        "orderType": a.type,
        "symbol": a.symbol,
        "side": a.side,
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": _n(a.qty),
        "algoStatus": a.status,
        "triggerPrice": _n(a.trigger),
        "price": "0",
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": a.working_type,
        "priceMatch": "NONE",
        "closePosition": a.close_position,
        "priceProtect": False,
        "reduceOnly": a.reduce_only,
        "activatePrice": "",
        "callbackRate": "",
        "createTime": a.time,
        "updateTime": a.update_time or a.time,
        "triggerTime": a.trigger_time,
        "goodTillDate": 0,
        "actualOrderId": str(a.actual_order_id or ""),
    }


def income_row(r: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as ``/fapi/v1/income`` lists it."""
    trade = str(r["trade"]) if r["trade"] else ""
    return {
        "symbol": r["symbol"],
        "incomeType": _INCOME[r["kind"]],
        "income": _n(r["amount"]),
        "asset": "USDT",
        "info": trade,
        "time": r["time"],
        "tranId": r["id"],
        "tradeId": trade,
    }


def risk_row(account: Account, symbol: str, marks: dict[str, float], time: int) -> dict[str, Any]:
    """One row of ``/fapi/v2/positionRisk`` (v3 adds margins and drops leverage)."""
    pos = account.position(symbol)
    mark = marks.get(symbol, pos.entry)
    notional = pos.qty * mark
    bracket = bracket_of(account.brackets, abs(notional))
    return {
        "symbol": symbol,
        "positionSide": "BOTH",
        "positionAmt": _n(pos.qty),
        "entryPrice": _n(pos.entry),
        "breakEvenPrice": _n(pos.entry * (1 + account.taker_fee * (1 if pos.qty > 0 else -1))),
        "markPrice": _n(mark),
        "unRealizedProfit": _n(pos.upnl(mark)),
        "liquidationPrice": _n(account.liquidation(symbol, marks)),
        "leverage": str(pos.leverage),
        "maxNotionalValue": _n(bracket.cap),
        "marginType": "isolated" if pos.isolated else "cross",
        "isolatedMargin": _n(pos.isolated_wallet + pos.upnl(mark) if pos.isolated else 0.0),
        "isAutoAddMargin": "false",
        "notional": _n(notional),
        "isolatedWallet": _n(pos.isolated_wallet),
        "initialMargin": _n(abs(notional) / pos.leverage),
        "maintMargin": _n(account.maintenance(notional) if pos.qty else 0.0),
        "positionInitialMargin": _n(abs(notional) / pos.leverage),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "marginAsset": "USDT",
        "updateTime": pos.update_time or time,
    }
