"""The matching engine of an emulated venue: it checks and accepts orders, fills them against
the price path, triggers conditional orders, settles funding and liquidates. Both venues run
it; what differs between them is in :class:`Rules` and in their routes (which parse the
venue's parameters into these calls and answer a :class:`Refused` with the venue's code).

A MARKET order takes the ask (buy) or the bid (sell). A LIMIT order that reaches the other side
fills at once as taker (a POST_ONLY one is refused, or canceled on arrival, by the venue's
rule); otherwise it rests and fills as maker at its own price once the other side trades
through it (a bid at L fills when the bid falls below L, an ask at L when the ask rises above
L). A conditional order triggers when the last price touches its trigger and becomes a MARKET
order filled at that tick's price: when the path gaps through a stop, that is the gap price,
not the trigger.

The price path is the test's to drive: :meth:`Matching.tick` sets the next price of a symbol
(a jump is a gap), :meth:`Matching.advance` steps the emulator's clock over the stored candles
(each bar ticks open, the extreme nearer the open, the other extreme, close; funding is
settled at the stored funding times on the way). Faults that belong to the venue rather than
to one HTTP request come from the venue's ``faults``: a partial first fill, and a new order
that lookups report as not found for its first N lookups.
"""

import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from tests.emulator.account import Account, Refused
from tests.emulator.orders import OPEN, Book, Conditional, Order, Spec

_STEP_TFS = (("1m", 60_000), ("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000))


class Venue(Protocol):
    """What the engine needs from the emulator that serves it."""

    now_ms: int
    faults: Any

    def spec(self, symbol: str) -> Spec | None: ...
    def bars(self, base: str, interval: str) -> np.ndarray: ...
    def funding(self, base: str) -> list[tuple[int, float]]: ...


@dataclass(frozen=True)
class Rules:
    """Where the two venues' books behave differently.

    ``post_only``: a post-only order that would trade at once is refused (Binance's GTX,
    -5022) or accepted and canceled on arrival. ``unique_ids``: a client id may not repeat
    among the open orders (Binance: "A unique id among open orders") or among all orders ever
    placed. ``protection_follows_position``: conditional orders are the position's own and
    are canceled when it is closed (Bitget's TP/SL) rather than left to expire when they fire
    (Binance's reduce-only algo orders)."""

    post_only: Literal["reject", "cancel"] = "reject"
    unique_ids: Literal["open", "all"] = "open"
    protection_follows_position: bool = False


class Matching:
    def __init__(self, venue: Venue, account: Account, rules: Rules | None = None) -> None:
        self.venue = venue
        self.account = account
        self.rules = rules or Rules()
        self.book = Book(account)
        self.lock = threading.RLock()

    # ---- helpers ---------------------------------------------------------------------------
    def spec(self, symbol: str | None) -> Spec:
        """The symbol's filters; the first use also prices it from the stored candles."""
        spec = self.venue.spec(symbol or "")
        if spec is None:
            raise Refused("unknown_symbol", symbol=symbol)
        if symbol not in self.book.prices:
            price = self._last_close(symbol or "")
            if price is None:
                raise Refused("unknown_symbol", symbol=symbol)
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

    def check_qty(self, qty: float, spec: Spec) -> float:
        if not spec.on_grid(qty, spec.step):
            raise Refused("qty_step", step=spec.step)
        return qty

    def check_price(self, price: float, spec: Spec) -> float:
        if not spec.on_grid(price, spec.tick):
            raise Refused("price_tick", tick=spec.tick)
        return price

    def reducible(self, symbol: str, side: str) -> float:
        """How much an order on ``side`` can reduce the position (0 when it cannot)."""
        pos = self.account.position(symbol).qty
        return abs(pos) if (pos > 0 and side == "SELL") or (pos < 0 and side == "BUY") else 0.0

    def _hidden(self) -> int:
        return self.venue.faults.not_found

    def _unique(self, client_id: str, taken: list[Order] | list[Conditional]) -> None:
        if any(o.client_id == client_id for o in taken):
            self.book.duplicates_refused += 1
            raise Refused("duplicate_id", client_id=client_id)

    # ---- plain orders ----------------------------------------------------------------------
    def place(
        self,
        *,
        symbol: str,
        side: str,
        kind: str,
        qty: float,
        price: float,
        tif: str,
        reduce_only: bool,
        client_id: str | None,
    ) -> Order:
        """A MARKET or LIMIT order (``price`` 0 for MARKET), checked on the symbol's grid."""
        with self.lock:
            spec = self.spec(symbol)
            self.check_qty(qty, spec)
            if kind == "LIMIT":
                self.check_price(price, spec)
            client_id = client_id or f"emu{self.book.next_id + 1}"
            plain = [o for o in self.book.orders.values() if o.conditional_id is None]
            self._unique(client_id, plain if self.rules.unique_ids == "all" else
                         [o for o in plain if o.status in OPEN])  # fmt: skip
            self._admit(symbol, side, qty, price, reduce_only, spec)
            bid, ask = self.book.bid_ask(symbol, spec)
            crosses = kind == "LIMIT" and (price >= ask if side == "BUY" else price <= bid)
            if tif == "POST_ONLY" and crosses and self.rules.post_only == "reject":
                raise Refused("post_only_would_take")
            now = self.venue.now_ms
            order = Order(self.book.new_id(), client_id, symbol, side, kind, qty, price, tif,
                          reduce_only, now, hidden=self._hidden())  # fmt: skip
            self.book.orders[order.id] = order
            self.book.placements[client_id] += 1
            if tif == "POST_ONLY" and crosses:
                order.status, order.update_time = "CANCELED", now
            elif kind == "MARKET" or crosses:
                self._take(order, spec, first=True)
            return order

    def _admit(
        self, symbol: str, side: str, qty: float, price: float, reduce_only: bool, spec: Spec
    ) -> None:
        """The venues' pre-trade checks: reduce-only must reduce, notional and margin suffice."""
        if reduce_only:
            if not self.reducible(symbol, side):
                raise Refused("reduce_only_rejected")
            return
        reference = price or self.book.prices[symbol]
        if qty * reference < spec.min_notional:
            raise Refused("min_notional", minimum=spec.min_notional)
        growing = max(0.0, qty - self.reducible(symbol, side))
        lev = self.account.position(symbol).leverage
        marks = self.marks()
        need = growing * reference / lev
        if need > self.account.available(marks, self.book.order_margin(marks)) + 1e-9:
            raise Refused("insufficient_margin")

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
            qty = min(qty, self.reducible(order.symbol, order.side))
            if qty <= 0:
                order.status, order.pending = "EXPIRED", False
                order.update_time = self.venue.now_ms
                return
        now = self.venue.now_ms
        trade = self.account.fill(symbol=order.symbol, side=order.side, qty=qty, price=price,
                                  maker=maker, order_id=order.id, time=now)  # fmt: skip
        order.executed = round(order.executed + qty, 12)
        order.cum_quote += qty * price
        order.fee += trade.commission
        order.update_time = now
        if (
            order.reduce_only
            and order.remaining > 0
            and not self.reducible(order.symbol, order.side)
        ):
            order.status, order.pending = "EXPIRED", False  # nothing left to reduce
        else:
            order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        self._after_fill(order.symbol)

    def _after_fill(self, symbol: str) -> None:
        """A venue whose TP/SL belong to the position cancels them once it is closed."""
        if self.rules.protection_follows_position and not self.account.position(symbol).qty:
            for c in self.book.open_conditionals(symbol):
                c.status, c.update_time = "CANCELED", self.venue.now_ms

    def amend(
        self, *, symbol: str, order_id: str | None, client_id: str | None, qty: float, price: float
    ) -> Order:
        """A resting LIMIT order gets a new price and/or quantity in place (Binance's modify
        order): the same order and client id, its fills kept. A POST_ONLY order the new price
        would make take is canceled by the amendment (and the amend refused as post-only would
        take); an amend to what the order already is changes nothing and is refused."""
        with self.lock:
            order = self._find(symbol, order_id, client_id, count_lookup=False)
            spec = self.spec(order.symbol)
            if order.status not in OPEN or order.type != "LIMIT":
                raise Refused("order_not_found")
            self.check_qty(qty, spec)
            self.check_price(price, spec)
            bid, ask = self.book.bid_ask(order.symbol, spec)
            if qty <= order.executed:
                raise Refused("amend_below_filled")
            if (qty, price) == (order.qty, order.price):
                raise Refused("amend_no_change")
            crosses = price >= ask if order.side == "BUY" else price <= bid
            if crosses and order.tif == "POST_ONLY":
                order.status, order.pending = "CANCELED", False
                order.update_time = self.venue.now_ms
                raise Refused("post_only_would_take")
            order.qty, order.price, order.update_time = qty, price, self.venue.now_ms
            self.book.amends[order.client_id] += 1
            if crosses:
                self._take(order, spec, first=False)
            return order

    def replace(
        self,
        *,
        symbol: str,
        order_id: str | None,
        client_id: str | None,
        new_client_id: str,
        qty: float,
        price: float,
    ) -> Order:
        """Bitget's modify-order: an unfilled resting LIMIT order is canceled and a new one
        placed with ``new_client_id`` at ``price`` for ``qty`` (its side, time in force and
        reduce-only kept), checked like any new order (a refused one leaves the old order
        canceled, as Bitget's asynchronous replacement would)."""
        with self.lock:
            order = self._find(symbol, order_id, client_id, count_lookup=False)
            if order.status != "NEW" or order.type != "LIMIT" or order.executed:
                raise Refused("modify_not_new")
            order.status, order.update_time = "CANCELED", self.venue.now_ms
            return self.place(symbol=order.symbol, side=order.side, kind="LIMIT", qty=qty,
                              price=price, tif=order.tif, reduce_only=order.reduce_only,
                              client_id=new_client_id)  # fmt: skip

    def _find(
        self,
        symbol: str | None,
        order_id: str | None,
        client_id: str | None,
        *,
        count_lookup: bool = True,
        triggered: bool = True,
    ) -> Order:
        """The order named by ``order_id`` or else ``client_id`` (newest with that id).
        ``triggered``: the market orders conditional ones became answer to their client id."""
        matches = [
            o
            for o in self.book.orders.values()
            if o.symbol == symbol
            and (
                str(o.id) == order_id
                or (
                    order_id is None
                    and o.client_id == client_id
                    and (triggered or o.conditional_id is None)
                )
            )
        ]
        if not matches:
            raise Refused("order_not_found")
        order = matches[-1]
        if count_lookup and order.hidden > 0:
            order.hidden -= 1
            raise Refused("order_not_found")
        return order

    def lookup(
        self,
        *,
        symbol: str | None,
        order_id: str | None = None,
        client_id: str | None = None,
        triggered: bool = True,
    ) -> Order:
        with self.lock:
            return self._find(symbol, order_id, client_id, triggered=triggered)

    def cancel(
        self, *, symbol: str | None, order_id: str | None = None, client_id: str | None = None
    ) -> Order:
        with self.lock:
            try:
                order = self._find(symbol, order_id, client_id, count_lookup=False)
            except Refused:
                raise Refused("cancel_unknown") from None
            if order.status not in OPEN:
                raise Refused("cancel_unknown")
            order.status, order.pending = "CANCELED", False
            order.update_time = self.venue.now_ms
            return order

    def cancel_all(self, symbol: str | None) -> None:
        with self.lock:
            for order in self.book.open_orders(symbol):
                order.status, order.pending = "CANCELED", False
                order.update_time = self.venue.now_ms

    # ---- conditional orders ----------------------------------------------------------------
    def place_conditional(
        self,
        *,
        symbol: str,
        side: str,
        kind: str,
        qty: float,
        trigger: float,
        working_type: str,
        reduce_only: bool,
        close_position: bool,
        client_id: str | None,
        plan: str = "",
        needs_position: bool = False,
    ) -> Conditional:
        """A STOP_MARKET or TAKE_PROFIT_MARKET order. ``close_position``: the whole position
        when it fires (``qty`` 0). ``needs_position``: the venue takes it only against a
        position that holds ``qty`` (Bitget's TP/SL)."""
        with self.lock:
            spec = self.spec(symbol)
            self.check_price(trigger, spec)
            if not close_position:
                self.check_qty(qty, spec)
            client_id = client_id or f"emualgo{self.book.next_id + 1}"
            taken = list(self.book.conditionals.values())
            self._unique(client_id, taken if self.rules.unique_ids == "all" else
                         [c for c in taken if c.status == "NEW"])  # fmt: skip
            if needs_position:
                held = self.reducible(symbol, side)
                if not held or (not close_position and qty > held + 1e-12):
                    raise Refused("no_position", held=held)
            conditional = Conditional(self.book.new_id(), client_id, symbol, side, kind, qty,
                                      trigger, working_type, reduce_only, close_position,
                                      self.venue.now_ms, plan=plan,
                                      hidden=self._hidden())  # fmt: skip
            if conditional.triggered_by(self.book.prices[symbol]):
                raise Refused("would_trigger", side=side, kind=kind,
                              price=self.book.prices[symbol])  # fmt: skip
            if not (reduce_only or close_position):
                self._admit(symbol, side, qty, trigger, False, spec)
            self.book.conditionals[conditional.id] = conditional
            self.book.placements[client_id] += 1
            return conditional

    def _find_conditional(
        self, order_id: str | None, client_id: str | None, *, count_lookup: bool = True
    ) -> Conditional:
        matches = [
            c
            for c in self.book.conditionals.values()
            if str(c.id) == order_id or (order_id is None and c.client_id == client_id)
        ]
        if not matches:
            raise Refused("order_not_found")
        conditional = matches[-1]
        if count_lookup and conditional.hidden > 0:
            conditional.hidden -= 1
            raise Refused("order_not_found")
        return conditional

    def lookup_conditional(
        self, *, order_id: str | None = None, client_id: str | None = None, count: bool = True
    ) -> Conditional:
        """``count``: a look-up the "not found" fault answers (a cancel's is not)."""
        with self.lock:
            return self._find_conditional(order_id, client_id, count_lookup=count)

    def cancel_conditional(
        self, *, order_id: str | None = None, client_id: str | None = None
    ) -> Conditional:
        with self.lock:
            try:
                conditional = self._find_conditional(order_id, client_id, count_lookup=False)
            except Refused:
                raise Refused("cancel_unknown") from None
            if conditional.status != "NEW":
                raise Refused("cancel_unknown")
            conditional.status, conditional.update_time = "CANCELED", self.venue.now_ms
            return conditional

    def cancel_all_conditionals(self, symbol: str | None) -> None:
        with self.lock:
            for c in self.book.open_conditionals(symbol):
                c.status, c.update_time = "CANCELED", self.venue.now_ms

    def _trigger(self, conditional: Conditional, spec: Spec) -> None:
        """The order fires: it becomes a MARKET order filled at this tick's price; a
        reduce-only or close-position one with nothing left to reduce expires instead."""
        now = self.venue.now_ms
        conditional.trigger_time = conditional.update_time = now
        reducible = self.reducible(conditional.symbol, conditional.side)
        qty = reducible if conditional.close_position else conditional.qty
        if conditional.reduce_only:
            qty = min(qty, reducible)
        if qty <= 0:
            conditional.status = "EXPIRED"
            return
        order = Order(self.book.new_id(), conditional.client_id, conditional.symbol,
                      conditional.side, "MARKET", qty, 0.0, "GTC",
                      conditional.reduce_only or conditional.close_position, now,
                      conditional_id=conditional.id)  # fmt: skip
        self.book.orders[order.id] = order
        conditional.status, conditional.actual_order_id = "TRIGGERED", order.id
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
            for conditional in self.book.open_conditionals(symbol):
                # an earlier one that fired may have closed the position and canceled it
                if conditional.status == "NEW" and conditional.triggered_by(price):
                    self._trigger(conditional, spec)
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
        order = Order(self.book.new_id(), f"autoclose-{now}", symbol,
                      "SELL" if pos.qty > 0 else "BUY", "MARKET", abs(pos.qty), 0.0, "IOC",
                      True, now)  # fmt: skip
        self.book.orders[order.id] = order
        notional = pos.qty * level
        self.account.fill(symbol=symbol, side=order.side, qty=order.qty, price=level,
                          maker=False, order_id=order.id, time=now, fee_rate=0.0)  # fmt: skip
        self.account.clear(symbol, notional, now)
        order.executed, order.cum_quote = order.qty, order.qty * level
        order.status, order.update_time = "FILLED", now
        self.book.liquidations.append((symbol, level, now))
        self._after_fill(symbol)

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
        symbols |= {c.symbol for c in self.book.open_conditionals()}
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
