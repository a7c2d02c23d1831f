"""The matching engine of the emulated Binance USDⓈ-M venue: it validates and accepts orders
with Binance's error codes, fills them against the price path, triggers algo orders, settles
funding and liquidates (see :mod:`binance_orders` for the book's rules).

The price path is the test's to drive: :meth:`Matching.tick` sets the next price of a symbol
(a jump is a gap), :meth:`Matching.advance` steps the emulator's clock over the stored candles
(each bar ticks open, the extreme nearer the open, the other extreme, close; funding is
settled at the stored funding times on the way). Faults that belong to the venue rather than
to one HTTP request come from the emulator's :class:`Faults`: a partial first fill, and a new
order that lookups report as "does not exist" (-2013) for its first N lookups.
"""

import threading
from typing import Any, Protocol

import numpy as np

from tests.emulator.binance_account import Account, Rejected
from tests.emulator.binance_orders import (
    ALGO_ONLY,
    ALGO_TYPES,
    OPEN,
    PLAIN_TYPES,
    AlgoOrder,
    Book,
    Order,
    Spec,
)

_STEP_TFS = (("1m", 60_000), ("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000))


class Venue(Protocol):
    """What the engine needs from the emulator that serves it."""

    now_ms: int
    faults: Any

    def spec(self, symbol: str) -> Spec | None: ...
    def bars(self, base: str, interval: str) -> np.ndarray: ...
    def funding(self, base: str) -> list[tuple[int, float]]: ...


def _flag(q: dict[str, str], key: str) -> bool:
    return str(q.get(key, "false")).lower() == "true"


def _number(q: dict[str, str], key: str) -> float:
    try:
        value = float(q[key])
    except (KeyError, ValueError):
        raise Rejected(
            -1102, f"Mandatory parameter '{key}' was not sent, was empty/null, or malformed."
        ) from None
    if not np.isfinite(value) or value <= 0:
        raise Rejected(-1102, f"Parameter '{key}' was malformed.")
    return value


class Matching:
    def __init__(self, venue: Venue, account: Account) -> None:
        self.venue = venue
        self.account = account
        self.book = Book(account)
        self.lock = threading.RLock()

    # ---- helpers ---------------------------------------------------------------------------
    def spec(self, symbol: str | None) -> Spec:
        """The symbol's filters; the first use also prices it from the stored candles."""
        spec = self.venue.spec(symbol or "")
        if spec is None:
            raise Rejected(-1121, "Invalid symbol.")
        if symbol not in self.book.prices:
            price = self._last_close(symbol or "")
            if price is None:
                raise Rejected(-1121, "Invalid symbol.")
            self.book.prices[symbol or ""] = price
        return spec

    def _last_close(self, symbol: str) -> float | None:
        """The close of the newest bar closed by the emulator's clock (finest file first)."""
        for tf, ms in _STEP_TFS:
            bars = self.venue.bars(symbol[:-4], tf)
            done = bars[bars[:, 0] + ms <= self.venue.now_ms] if len(bars) else bars
            if len(done):
                return float(done[-1, 4])
        return None

    def marks(self) -> dict[str, float]:
        return dict(self.book.prices)

    def _qty(self, q: dict[str, str], spec: Spec) -> float:
        qty = _number(q, "quantity")
        if not spec.on_grid(qty, spec.step):
            raise Rejected(-1111, "Precision is over the maximum defined for this asset.")
        return qty

    def _price(self, q: dict[str, str], key: str, spec: Spec) -> float:
        price = _number(q, key)
        if not spec.on_grid(price, spec.tick):
            raise Rejected(-4014, "Price not increased by tick size.")
        return price

    def _reduces(self, symbol: str, side: str) -> float:
        """How much an order on ``side`` can reduce the position (0 when it cannot)."""
        pos = self.account.position(symbol).qty
        return abs(pos) if (pos > 0 and side == "SELL") or (pos < 0 and side == "BUY") else 0.0

    def _side(self, q: dict[str, str]) -> str:
        side = q.get("side", "")
        if side not in ("BUY", "SELL"):
            raise Rejected(-1117, "Invalid side.")
        return side

    def _hidden(self) -> int:
        return self.venue.faults.not_found

    # ---- plain orders ----------------------------------------------------------------------
    def place(self, q: dict[str, str]) -> Order:
        with self.lock:
            symbol, kind = q.get("symbol"), q.get("type", "")
            spec = self.spec(symbol)
            side = self._side(q)
            if kind in ALGO_ONLY:
                raise Rejected(
                    -4120,
                    "Order type not supported for this endpoint. "
                    "Please use the Algo Order API endpoints instead.",
                )
            if kind not in PLAIN_TYPES:
                raise Rejected(-1116, "Invalid orderType.")
            qty = self._qty(q, spec)
            price = self._price(q, "price", spec) if kind == "LIMIT" else 0.0
            tif = q.get("timeInForce", "GTC")
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise Rejected(-1115, "Invalid timeInForce.")
            client_id = q.get("newClientOrderId") or f"emu{self.book.next_id + 1}"
            if any(o.client_id == client_id for o in self.book.open_orders()):
                self.book.duplicates_refused += 1
                raise Rejected(-4116, "ClientOrderId is duplicated.")
            reduce_only = _flag(q, "reduceOnly")
            self._admit(symbol or "", side, kind, qty, price, reduce_only, spec)
            bid, ask = self.book.bid_ask(symbol or "", spec)
            crosses = kind == "LIMIT" and (price >= ask if side == "BUY" else price <= bid)
            if tif == "GTX" and crosses:
                raise Rejected(
                    -5022,
                    "Due to the order could not be executed as maker, "
                    "the Post Only order will be rejected.",
                )
            now = self.venue.now_ms
            order = Order(
                self.book.new_id(),
                client_id,
                symbol or "",
                side,
                kind,
                qty,
                price,
                tif,
                reduce_only,
                now,
                hidden=self._hidden(),
            )
            self.book.orders[order.id] = order
            self.book.placements[client_id] += 1
            if kind == "MARKET" or crosses:
                self._take(order, spec, first=True)
            return order

    def _admit(
        self,
        symbol: str,
        side: str,
        kind: str,
        qty: float,
        price: float,
        reduce_only: bool,
        spec: Spec,
    ) -> None:
        """Binance's pre-trade checks: reduce-only must reduce, notional and margin suffice."""
        if reduce_only:
            if not self._reduces(symbol, side):
                raise Rejected(-2022, "ReduceOnly Order is rejected.")
            return
        reference = price or self.book.prices[symbol]
        if qty * reference < spec.min_notional:
            raise Rejected(
                -4164,
                f"Order's notional must be no smaller than {spec.min_notional:g} "
                "(unless you choose reduce only).",
            )
        growing = max(0.0, qty - self._reduces(symbol, side))
        lev = self.account.position(symbol).leverage
        marks = self.marks()
        need = growing * reference / lev
        if need > self.account.available(marks, self.book.order_margin(marks)) + 1e-9:
            raise Rejected(-2019, "Margin is insufficient.")

    def _take(self, order: Order, spec: Spec, *, first: bool) -> None:
        """Fill what can fill now as taker: all of a MARKET/crossing order, unless a partial
        fill was asked for (the rest then waits for the next tick)."""
        bid, ask = self.book.bid_ask(order.symbol, spec)
        price = ask if order.side == "BUY" else bid
        if order.type == "LIMIT":
            price = min(price, order.price) if order.side == "BUY" else max(price, order.price)
        qty = order.remaining
        faults = self.venue.faults
        if first and faults.partial and faults.rng.random() < faults.partial:
            part = spec.floor_qty(qty * faults.partial_share)
            if 0 < part < qty:
                qty, order.pending = part, True
        if order.type == "LIMIT" and order.tif == "FOK" and qty < order.remaining:
            order.status, order.pending = "EXPIRED", False
            return
        self._execute(order, qty, price, maker=False)
        if order.type == "LIMIT" and order.tif == "IOC" and order.remaining > 0:
            order.status, order.pending = "EXPIRED", False

    def _execute(self, order: Order, qty: float, price: float, *, maker: bool) -> None:
        if order.reduce_only:
            qty = min(qty, self._reduces(order.symbol, order.side))
            if qty <= 0:
                order.status, order.pending = "EXPIRED", False
                order.update_time = self.venue.now_ms
                return
        now = self.venue.now_ms
        self.account.fill(
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            maker=maker,
            order_id=order.id,
            time=now,
        )
        order.executed = round(order.executed + qty, 12)
        order.cum_quote += qty * price
        order.update_time = now
        if (
            order.reduce_only
            and order.remaining > 0
            and not self._reduces(order.symbol, order.side)
        ):
            order.status, order.pending = "EXPIRED", False  # nothing left to reduce
        else:
            order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"

    def amend(self, q: dict[str, str]) -> Order:
        """``PUT /fapi/v1/order``: a resting LIMIT order gets a new price and/or quantity."""
        with self.lock:
            order = self._find(q, count_lookup=False)
            spec = self.spec(order.symbol)
            if order.status not in OPEN or order.type != "LIMIT":
                raise Rejected(-2013, "Order does not exist.")
            qty, price = self._qty(q, spec), self._price(q, "price", spec)
            bid, ask = self.book.bid_ask(order.symbol, spec)
            if qty <= order.executed:
                raise Rejected(-4005, "Quantity greater than max quantity.")
            if (price >= ask if order.side == "BUY" else price <= bid) and order.tif == "GTX":
                raise Rejected(
                    -5022,
                    "Due to the order could not be executed as maker, "
                    "the Post Only order will be rejected.",
                )
            order.qty, order.price, order.update_time = qty, price, self.venue.now_ms
            if price >= ask if order.side == "BUY" else price <= bid:
                self._take(order, spec, first=False)
            return order

    def _find(self, q: dict[str, str], *, count_lookup: bool = True) -> Order:
        """The order named by ``orderId`` or ``origClientOrderId`` (newest with that id)."""
        symbol = q.get("symbol")
        matches = [
            o
            for o in self.book.orders.values()
            if o.symbol == symbol
            and (
                str(o.id) == q.get("orderId")
                or ("orderId" not in q and o.client_id == q.get("origClientOrderId"))
            )
        ]
        if not matches:
            raise Rejected(-2013, "Order does not exist.")
        order = matches[-1]
        if count_lookup and order.hidden > 0:
            order.hidden -= 1
            raise Rejected(-2013, "Order does not exist.")
        return order

    def lookup(self, q: dict[str, str]) -> Order:
        with self.lock:
            return self._find(q)

    def cancel(self, q: dict[str, str]) -> Order:
        with self.lock:
            try:
                order = self._find(q, count_lookup=False)
            except Rejected:
                raise Rejected(-2011, "Unknown order sent.") from None
            if order.status not in OPEN:
                raise Rejected(-2011, "Unknown order sent.")
            order.status, order.pending = "CANCELED", False
            order.update_time = self.venue.now_ms
            return order

    def cancel_all(self, symbol: str | None) -> None:
        with self.lock:
            for order in self.book.open_orders(symbol):
                order.status, order.pending = "CANCELED", False
                order.update_time = self.venue.now_ms

    # ---- algo orders -----------------------------------------------------------------------
    def place_algo(self, q: dict[str, str]) -> AlgoOrder:
        with self.lock:
            if q.get("algoType") != "CONDITIONAL":
                raise Rejected(-1102, "Mandatory parameter 'algoType' was not sent or is invalid.")
            symbol, kind = q.get("symbol") or "", q.get("type", "")
            spec = self.spec(symbol)
            side = self._side(q)
            if kind not in ALGO_TYPES:
                raise Rejected(-1116, "Invalid orderType.")
            trigger = self._price(q, "triggerPrice", spec)
            close_position = _flag(q, "closePosition")
            reduce_only = _flag(q, "reduceOnly")
            if close_position and ("quantity" in q or reduce_only):
                raise Rejected(
                    -1106, "Parameter 'quantity' or 'reduceOnly' sent when not required."
                )
            qty = 0.0 if close_position else self._qty(q, spec)
            client_id = q.get("clientAlgoId") or f"emualgo{self.book.next_id + 1}"
            if any(a.client_id == client_id for a in self.book.open_algos()):
                self.book.duplicates_refused += 1
                raise Rejected(-4116, "ClientOrderId is duplicated.")
            algo = AlgoOrder(
                self.book.new_id(),
                client_id,
                symbol,
                side,
                kind,
                qty,
                trigger,
                q.get("workingType", "CONTRACT_PRICE"),
                reduce_only,
                close_position,
                self.venue.now_ms,
                hidden=self._hidden(),
            )
            if algo.triggered_by(self.book.prices[symbol]):
                raise Rejected(-2021, "Order would immediately trigger.")
            if not (reduce_only or close_position):
                self._admit(symbol, side, "MARKET", qty, trigger, False, spec)
            self.book.algos[algo.id] = algo
            self.book.placements[client_id] += 1
            return algo

    def _find_algo(self, q: dict[str, str], *, count_lookup: bool = True) -> AlgoOrder:
        matches = [
            a
            for a in self.book.algos.values()
            if str(a.id) == q.get("algoId")
            or ("algoId" not in q and a.client_id == q.get("clientAlgoId"))
        ]
        if not matches:
            raise Rejected(-2013, "Order does not exist.")
        algo = matches[-1]
        if count_lookup and algo.hidden > 0:
            algo.hidden -= 1
            raise Rejected(-2013, "Order does not exist.")
        return algo

    def lookup_algo(self, q: dict[str, str]) -> AlgoOrder:
        with self.lock:
            return self._find_algo(q)

    def cancel_algo(self, q: dict[str, str]) -> AlgoOrder:
        with self.lock:
            try:
                algo = self._find_algo(q, count_lookup=False)
            except Rejected:
                raise Rejected(-2011, "Unknown order sent.") from None
            if algo.status != "NEW":
                raise Rejected(-2011, "Unknown order sent.")
            algo.status, algo.update_time = "CANCELED", self.venue.now_ms
            return algo

    def cancel_all_algos(self, symbol: str | None) -> None:
        with self.lock:
            for algo in self.book.open_algos(symbol):
                algo.status, algo.update_time = "CANCELED", self.venue.now_ms

    def _trigger(self, algo: AlgoOrder, spec: Spec) -> None:
        """The stop fires: it becomes a MARKET order filled at this tick's price; a
        reduce-only or closePosition stop with nothing left to reduce expires instead."""
        now = self.venue.now_ms
        algo.trigger_time = algo.update_time = now
        reducible = self._reduces(algo.symbol, algo.side)
        qty = reducible if algo.close_position else algo.qty
        if algo.reduce_only:
            qty = min(qty, reducible)
        if qty <= 0:
            algo.status = "EXPIRED"
            return
        order = Order(
            self.book.new_id(),
            algo.client_id,
            algo.symbol,
            algo.side,
            "MARKET",
            qty,
            0.0,
            "GTC",
            algo.reduce_only or algo.close_position,
            now,
            algo_id=algo.id,
        )
        self.book.orders[order.id] = order
        algo.status, algo.actual_order_id = "TRIGGERED", order.id
        self._take(order, spec, first=False)

    # ---- the price path --------------------------------------------------------------------
    def tick(self, symbol: str, price: float) -> None:
        """The next traded price of ``symbol``: stops trigger, resting orders fill, a
        position whose liquidation price was crossed is liquidated."""
        with self.lock:
            spec = self.spec(symbol)
            self.book.prices[symbol] = price
            for order in self.book.open_orders(symbol):
                if order.pending:
                    order.pending = False
                    self._take(order, spec, first=False)
            for algo in self.book.open_algos(symbol):
                if algo.triggered_by(price):
                    self._trigger(algo, spec)
            bid, ask = self.book.bid_ask(symbol, spec)
            for order in self.book.open_orders(symbol):
                if order.type == "LIMIT" and (
                    bid < order.price if order.side == "BUY" else ask > order.price
                ):
                    self._execute(order, order.remaining, order.price, maker=True)
            self._liquidate(symbol, price)

    def _liquidate(self, symbol: str, price: float) -> None:
        pos = self.account.position(symbol)
        level = self.account.liquidation(symbol, self.marks())
        if not pos.qty or level <= 0 or (price > level if pos.qty > 0 else price < level):
            return
        self.cancel_all(symbol)
        now = self.venue.now_ms
        order = Order(
            self.book.new_id(),
            f"autoclose-{now}",
            symbol,
            "SELL" if pos.qty > 0 else "BUY",
            "MARKET",
            abs(pos.qty),
            0.0,
            "IOC",
            True,
            now,
        )
        self.book.orders[order.id] = order
        notional = pos.qty * level
        self.account.fill(
            symbol=symbol,
            side=order.side,
            qty=order.qty,
            price=level,
            maker=False,
            order_id=order.id,
            time=now,
            fee_rate=0.0,
        )
        self.account.clear(symbol, notional, now)
        order.executed, order.cum_quote = order.qty, order.qty * level
        order.status, order.update_time = "FILLED", now
        self.book.liquidations.append((symbol, level, now))

    def advance(self, to_ms: int) -> None:
        """Step the clock to ``to_ms`` over the stored candles of every symbol the account
        touches, settling funding at each stored funding time passed on the way."""
        with self.lock:
            start = self.venue.now_ms
            events: list[tuple[int, int, str, float]] = []  # (time, order, symbol, value)
            for symbol in self._active():
                base = symbol[:-4]
                events += [(t, 0, symbol, r) for t, r in self._funding_in(base, start, to_ms)]
                events += self._ticks(base, symbol, start, to_ms)
            for t, kind, symbol, value in sorted(events):
                self.venue.now_ms = max(self.venue.now_ms, t)
                if kind == 0:
                    self.account.fund(symbol, value, self.book.prices[symbol], t)
                else:
                    self.tick(symbol, value)
            self.venue.now_ms = to_ms

    def _active(self) -> list[str]:
        symbols = {o.symbol for o in self.book.open_orders()}
        symbols |= {a.symbol for a in self.book.open_algos()}
        symbols |= {s for s, p in self.account.positions.items() if p.qty}
        return sorted(symbols | set(self.book.prices))

    def _funding_in(self, base: str, start: int, end: int) -> list[tuple[int, float]]:
        saved, self.venue.now_ms = self.venue.now_ms, end
        try:
            return [(t, r) for t, r in self.venue.funding(base) if start < t <= end]
        finally:
            self.venue.now_ms = saved

    def _ticks(self, base: str, symbol: str, start: int, end: int) -> list:
        """Open, nearer extreme, farther extreme, close of each bar that closes in
        (start, end], from the finest stored timeframe that has such bars."""
        for tf, ms in _STEP_TFS:
            bars = self.venue.bars(base, tf)
            if not len(bars):
                continue
            inside = bars[(bars[:, 0] + ms > start) & (bars[:, 0] + ms <= end)]
            if len(inside):
                out = []
                for t, o, h, low, c in inside[:, :5]:
                    path = (o, low, h, c) if o - low < h - o else (o, h, low, c)
                    out += [(int(t) + ms * i // 4, 1, symbol, float(p)) for i, p in enumerate(path)]
                return out
        return []
