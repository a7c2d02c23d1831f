"""A simulated account: orders, positions and money, matched bar by bar with ``fills/``.

The replay exchange and the paper broker are this one account on different bars (stored candles
under a replayed clock; a live price feed) and different storage (memory; the journal). It has
no clock and no I/O of its own: the venue hands it the time and the closed bars.

**When** an order can fill: from the first bar that opens at or after the moment it was placed,
once that bar has closed (a venue matches closed bars only, as the backtest does).

**Inside a bar**, in this order (the backtest kernel's order, with the kernel's functions):

1. funding at the open for a position held then (``fills.funding`` says when and on what price,
   ``fills.model.funding_cash`` how much);
2. market orders at the open, in the order they were placed (``fills.model.market_order_fill``:
   slippage for the order's share of the bar's volume, held inside the bar; the taker fee);
3. the position's exits: the nearest reduce-only stop-market, the take-profits (and reduce-only
   limits) and the liquidation price, through ``fills.model.exits_in_bar`` (gaps at the open
   first, then **stop first** inside the bar), priced by ``fills.model.exit_fill``;
4. other limit orders (``fills.model.limit_fill``: touch, or through with ``backtest.limit_fill:
   through``), the maker fee, or the taker fee for a limit that was marketable when placed. A
   position opened or grown here meets its stop and liquidation price for the rest of the bar
   (stop first: the path after the fill is unknown); its take-profits wait for the next bar;
5. the close marks the position (unrealised PnL, the funding price of the next bar).

A position that closes takes its reduce-only orders with it (canceled: "position closed").
Reduce-only orders placed while flat (a bracket sent with its entry) rest until a position opens.
A reduce-only order is cut to what the position holds; with nothing to reduce it is canceled.

**Money**: one settle currency. Opening margin = notional at the fill / leverage, released pro
rata when the position shrinks; realised PnL, fees and funding move the wallet, and each is
also summed, so ``wallet = deposited + realized - fees + funding`` can be checked. Open orders
that can open a position reserve their margin; ``free`` = equity - margin used - reserved.
**Liquidation** at the matching model's price (``fills.liquidation``, the formula sizing
estimates with too), recomputed whenever the position changes; for cross margin with the wallet
as the balance and the other cross positions' maintenance margin and PnL at their last close.
"""

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from cryptobot.core.account import (
    MARGIN_MODES,
    AccountState,
    Balance,
    Book,
    Fill,
    FundingPayment,
    Liquidity,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    side_sign,
)
from cryptobot.core.errors import UnknownSymbolError
from cryptobot.core.market import Market
from cryptobot.core.numbers import finite, short
from cryptobot.core.timeutil import iso
from cryptobot.exchange.errors import (
    ClockWentBack,
    InsufficientMargin,
    InvalidOrder,
    LeverageRefused,
    OrderNotFound,
    OrderNotOpen,
    PostOnlyWouldTake,
    ReduceOnlyWouldIncrease,
)
from cryptobot.exchange.market_rules import add_steps, check_order, snap
from cryptobot.exchange.simulated import Bar, SimSetup, spread_quote
from cryptobot.fills import brackets as bracket_rules
from cryptobot.fills.costs import C_TAKER, C_THROUGH
from cryptobot.fills.liquidation import liquidation_price
from cryptobot.fills.model import (
    LIQUIDATION,
    STOP,
    TARGET,
    exit_fill,
    exits_in_bar,
    fee,
    funding_cash,
    limit_fill,
    limit_rate,
    market_order_fill,
    stop_trigger,
    takes,
)


class SimAccount:
    """The working account of one venue call: ``state`` plus what the call changed
    (``changed`` orders by client order id, new ``fills``), for the venue to store."""

    def __init__(
        self, state: AccountState, *, markets: Mapping[str, Market], setup: SimSetup
    ) -> None:
        self.state = state
        self.markets = markets
        self.setup = setup
        self.changed: dict[str, Order] = {}
        self.fills: list[Fill] = []
        self.payments: list[FundingPayment] = []
        self.skipped: list[str] = []  # the bad bars this call stepped over, one line each
        self._costs: dict[str, np.ndarray] = {}
        self._held: set[str] = set()  # symbols holding a position at some point of this bar

    # ---- time and bars -------------------------------------------------------------------
    def see(self, now: int) -> None:
        """Move the account's clock to ``now``; refuse a clock that goes back."""
        ledger = self.state.ledger
        if now < ledger.clock:
            raise ClockWentBack(
                f"the clock says {iso(now)}, before {iso(ledger.clock)} which this account "
                "has seen already (time only moves forward)"
            )
        ledger.clock = now

    def active(self) -> list[tuple[str, int]]:
        """Symbols with a position or open orders, and the open time their next bar needs."""
        return [(s, b.cursor) for s, b in self.state.books.items() if b.cursor is not None]

    def match(self, symbol: str, bar: Bar) -> None:
        """Live one closed bar of ``symbol`` (see the module's order of events). A bad bar
        (``Bar.valid``) is stepped over, never applied: what would have filled on it fills on
        the next good bar, and ``skipped`` says which bar was left out."""
        book = self.state.books[symbol]
        if book.cursor is None or bar.time < book.cursor:
            return  # matched already, or nothing rests
        if not bar.valid:
            self.skipped.append(
                f"{symbol}: skipped the bar at {iso(bar.time)} from the price feed, not a valid "
                f"OHLC bar (open {bar.open!r}, high {bar.high!r}, low {bar.low!r}, close "
                f"{bar.close!r}, volume {bar.volume!r}, funding {bar.funding_rate!r})"
            )
            book.cursor = bar.time + 1
            return
        self._held.discard(symbol)
        if book.side:
            self._held.add(symbol)
            self._funding(book, bar)
        for order in self._due(symbol, bar.time, "market"):
            self._market_order(book, order, bar)
        if book.side:
            self._exits(book, bar, start=bar.open, targets=True)
        entered_at = self._limits(book, bar)
        if book.side and not math.isnan(entered_at):
            self._exits(book, bar, start=entered_at, targets=False)
        if symbol in self._held and not book.side:
            self._cancel_reducing(symbol, bar.time, "position closed")
        book.last_close = bar.close
        resting = any(o.symbol == symbol for o in self.state.orders.values())
        book.cursor = bar.time + 1 if book.side or resting else None

    # ---- orders --------------------------------------------------------------------------
    def place(
        self, req: OrderRequest, *, client_order_id: str, now: int, last_price: float
    ) -> Order:
        """Accept ``req`` (the caller checked the id is new) or raise why not; nothing changes
        when it is refused."""
        market = self.market(req.symbol)
        check_order(req, market, last_price=last_price)
        req = replace(req, amount=float(req.amount), price=_float(req.price),
                      trigger_price=_float(req.trigger_price))  # fmt: skip
        book = self.book(req.symbol)
        sign = side_sign(req.side)
        if req.reduce_only and book.side == sign:
            raise ReduceOnlyWouldIncrease(
                f"{req.symbol}: a reduce-only {req.side} would add to the "
                f"{_side_name(book.side)} position"
            )
        marketable = req.price is not None and self._takes(market, sign, req.price, last_price)
        if req.post_only and marketable:
            raise PostOnlyWouldTake(
                f"{req.symbol}: a post-only {req.side} at {short(req.price)} would take at once "
                f"(the last price is {short(last_price)})"
            )
        if not req.reduce_only:
            reference = req.price if req.price is not None else last_price
            self._require_margin(book, sign, req.amount, reference)
        ledger = self.state.ledger
        ledger.sequence += 1
        liquidity: Liquidity = "maker" if req.price is not None and not marketable else "taker"
        if req.type == "stop_market":
            liquidity = "taker"
        order = Order(
            id=str(ledger.sequence), client_order_id=client_order_id, timestamp=now,
            updated=now, symbol=req.symbol, type=req.type, side=req.side,
            amount=req.amount, price=req.price, trigger_price=req.trigger_price,
            reduce_only=req.reduce_only, post_only=req.post_only, status="open", filled=0.0,
            average=None, fee=0.0, liquidity=liquidity,
        )  # fmt: skip
        self._store(order)
        if book.cursor is None:
            book.cursor, book.last_close = now, last_price
        return order

    def amend(self, client_order_id: str, *, price: float, now: int, last_price: float) -> Order:
        """Move the open limit order ``client_order_id`` to ``price`` (its amount and fills
        kept); from now on it is matched as if placed now. Nothing changes when it is refused."""
        order = self.state.orders[client_order_id]
        if order.type != "limit":
            raise InvalidOrder(f"order {client_order_id} is a {order.type}: only a limit's price "
                               "can be amended")  # fmt: skip
        market = self.market(order.symbol)
        req = OrderRequest(symbol=order.symbol, type="limit", side=order.side,
                           amount=order.amount, price=price, reduce_only=order.reduce_only,
                           post_only=order.post_only, client_order_id=client_order_id)  # fmt: skip
        check_order(req, market, last_price=last_price)
        sign = side_sign(order.side)
        marketable = self._takes(market, sign, float(price), last_price)
        if order.post_only and marketable:
            raise PostOnlyWouldTake(
                f"{order.symbol}: order {client_order_id} post-only at {short(price)} would take "
                f"at once (the last price is {short(last_price)}); it stays at "
                f"{short(order.price)}"
            )
        if not order.reduce_only:
            book = self.book(order.symbol)
            self._require_margin(book, sign, self._left(order), float(price),
                                 released=self._reservation(order))  # fmt: skip
        liquidity: Liquidity = "taker" if marketable else "maker"
        return self._update(order, now, price=float(price), timestamp=now, liquidity=liquidity)

    def cancel(self, client_order_id: str, *, now: int, known: bool) -> Order:
        """Cancel an open order; ``known``: whether the venue has it among its done orders."""
        order = self.state.orders.get(client_order_id)
        if order is None:
            if known:
                raise OrderNotOpen(f"order {client_order_id} is not open (done already)")
            raise OrderNotFound(f"no order {client_order_id}")
        return self._update(order, now, status="canceled", reason="canceled")

    def set_leverage(self, symbol: str, leverage: float) -> None:
        market = self.market(symbol)
        try:
            value = finite(leverage, name="leverage", ge=1)
        except ValueError as exc:
            raise LeverageRefused(f"{symbol}: {exc}") from None
        cap = market.max_leverage or self.setup.max_leverage
        if value > cap:
            raise LeverageRefused(f"{symbol}: leverage {short(value)} is above the {cap:g}x cap")
        self._settings_change(symbol).leverage = value

    def set_margin_mode(self, symbol: str, margin_mode: MarginMode) -> None:
        self.market(symbol)
        if margin_mode not in MARGIN_MODES:
            raise LeverageRefused(f"unknown margin mode {margin_mode!r}; use isolated or cross")
        self._settings_change(symbol).margin_mode = margin_mode

    # ---- what the account holds ----------------------------------------------------------
    def balance(self) -> Balance:
        ledger = self.state.ledger
        unrealised = sum((self._unrealised(b) for b in self.state.books.values() if b.side), 0.0)
        used = sum((b.margin for b in self.state.books.values()), 0.0) + self._reserved()
        total = ledger.wallet + unrealised
        return Balance(
            currency=ledger.currency, timestamp=ledger.clock, total=total,
            free=max(0.0, total - used), used=used, wallet=ledger.wallet,
            unrealized_pnl=unrealised, deposited=ledger.deposited,
            realized_pnl=ledger.realized_pnl, fees=ledger.fees, funding=ledger.funding,
        )  # fmt: skip

    def positions(self, symbols: list[str] | None = None) -> list[Position]:
        out = []
        for symbol, b in sorted(self.state.books.items()):
            if not b.side or (symbols is not None and symbol not in symbols):
                continue
            size = self.markets[symbol].contract_size
            out.append(
                Position(
                    symbol=symbol, side="long" if b.side > 0 else "short",
                    contracts=b.contracts, contract_size=size, entry_price=b.entry_price,
                    mark_price=b.last_close, notional=b.contracts * size * b.last_close,
                    unrealized_pnl=self._unrealised(b), leverage=b.leverage,
                    margin_mode=b.margin_mode, initial_margin=b.margin,
                    liquidation_price=None if math.isnan(b.liquidation_price)
                    else b.liquidation_price,
                    timestamp=b.opened,
                )
            )  # fmt: skip
        return out

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        orders = [o for o in self.state.orders.values() if symbol in (None, o.symbol)]
        return sorted(orders, key=lambda o: int(o.id))

    def market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise UnknownSymbolError(f"the venue lists no market {symbol}")
        return market

    def book(self, symbol: str) -> Book:
        book = self.state.books.get(symbol)
        if book is None:
            book = Book(symbol, self.setup.leverage, self.setup.margin_mode)
            self.state.books[symbol] = book
        return book

    # ---- matching ------------------------------------------------------------------------
    def _due(self, symbol: str, when: int, *types: str) -> list[Order]:
        """Open orders of ``symbol`` placed by ``when``, of these types, oldest first."""
        due = [
            o
            for o in self.state.orders.values()
            if o.symbol == symbol and o.timestamp <= when and o.type in types
        ]
        return sorted(due, key=lambda o: int(o.id))

    def _funding(self, book: Book, bar: Bar) -> None:
        if bar.funding_rate == 0.0:
            return
        price = bar.funding_price if math.isfinite(bar.funding_price) else book.last_close
        size = self.markets[book.symbol].contract_size
        cash = funding_cash(book.side, book.contracts * size, price, bar.funding_rate)
        ledger = self.state.ledger
        ledger.wallet += cash
        ledger.funding += cash
        paid = FundingPayment(  # one per symbol and bar: its id needs no counter
            id=f"{book.symbol}@{bar.time}", timestamp=bar.time, symbol=book.symbol, amount=cash,
            rate=bar.funding_rate, contracts=book.side * book.contracts, price=price,
        )  # fmt: skip
        self.payments.append(paid)

    def _market_order(self, book: Book, order: Order, bar: Bar) -> None:
        sign = side_sign(order.side)
        amount = self._left(order)
        if order.reduce_only:
            amount = min(amount, book.contracts) if book.side == -sign else 0.0
            if amount <= 0.0:
                self._update(order, bar.time, status="canceled", reason="reduce-only: no position")
                return
        size = self.markets[book.symbol].contract_size
        costs = self._costs_of(book.symbol)
        price = market_order_fill(
            bar.open, sign, amount * size, bar.volume, bar.high, bar.low, costs
        )
        if not order.reduce_only and not self._margin_at_fill(book, order, price, bar.time):
            return
        taker = float(costs[C_TAKER])
        self._execute(
            book, order, amount=amount, price=price, rate=taker, liquidity="taker", when=bar.time
        )

    def _exits(self, book: Book, bar: Bar, *, start: float, targets: bool) -> None:
        """Stops, take-profits and liquidation of the position during the bar from ``start``
        (its open, or the price a limit filled at inside it)."""
        side, symbol = book.side, book.symbol
        size = self.markets[symbol].contract_size
        due = self._due(symbol, bar.time, "stop_market", "take_profit", "limit")
        stops = sorted(
            (o for o in due if o.type == "stop_market" and side_sign(o.side) == -side),
            key=lambda o: -side * o.trigger_price,
        )  # nearest first
        closing = [o for o in due if o.reduce_only and side_sign(o.side) == -side]
        tps = sorted(
            (o for o in closing if o.price is not None and targets), key=lambda o: side * o.price
        )  # nearest first
        liq = self._liquidation(book)
        stop = stops[0].trigger_price if stops else math.nan
        if math.isnan(stop) and math.isnan(liq) and not tps:
            return
        tp_px = np.array([o.price for o in tps], dtype=np.float64)
        tp_q = np.array([min(self._left(o), book.contracts) * size for o in tps], dtype=np.float64)
        before = tp_q.copy()
        out = np.empty((len(tps) + 2, 3))
        costs = self._costs_of(symbol)
        through = bool(costs[C_THROUGH] > 0.0)
        m = exits_in_bar(side, start, bar.high, bar.low, book.contracts * size, stop, liq,
                         tp_px, tp_q, through, out)  # fmt: skip
        hit = iter([tps[j] for j in range(len(tps)) if tp_q[j] < before[j]])
        for e in range(m):
            kind, price, qty = int(out[e, 0]), float(out[e, 1]), float(out[e, 2])
            if kind == TARGET:
                order = next(hit)
                px, _ = exit_fill(kind, price, -side, qty, bar.volume, bar.high, bar.low, costs)
                liquidity: Liquidity = order.liquidity
                rate = limit_rate(liquidity == "taker", costs)
                amount = snap(qty / size, self.markets[symbol].step_size)
                self._execute(book, order, amount=amount, price=px, rate=float(rate),
                              liquidity=liquidity, when=bar.time)  # fmt: skip
            elif kind == STOP:
                self._stops(book, stops, price, start, bar, costs)
            elif kind == LIQUIDATION:
                self._liquidate(book, price, bar.time, costs)

    def _stops(self, book: Book, stops: list[Order], price: float, start: float, bar: Bar,
               costs: np.ndarray) -> None:  # fmt: skip
        """The nearest stop fills at ``price`` (the trigger, or the open it gapped to); farther
        stops the bar also reached fill at their own triggers while the position lasts."""
        side = book.side
        size = self.markets[book.symbol].contract_size
        for n, order in enumerate(stops):
            trigger = price if n == 0 else stop_trigger(
                -side, order.trigger_price, start, bar.high, bar.low
            )  # fmt: skip
            if not book.side or math.isnan(trigger):
                return
            amount = min(self._left(order), book.contracts)
            px, rate = exit_fill(STOP, trigger, -side, amount * size, bar.volume, bar.high,
                                 bar.low, costs)  # fmt: skip
            self._execute(book, order, amount=amount, price=px, rate=float(rate),
                          liquidity="taker", when=bar.time)  # fmt: skip

    def _limits(self, book: Book, bar: Bar) -> float:
        """Fill the limit orders (not reduce-only) the bar reached; the last fill's price."""
        last = math.nan
        costs = self._costs_of(book.symbol)
        through = bool(costs[C_THROUGH] > 0.0)
        for order in self._due(book.symbol, bar.time, "limit"):
            if order.reduce_only or order.status != "open":
                continue
            sign = side_sign(order.side)
            price = limit_fill(sign, order.price, bar.open, bar.high, bar.low, through)
            if math.isnan(price) or not self._margin_at_fill(book, order, price, bar.time):
                continue
            rate = limit_rate(order.liquidity == "taker", costs)
            self._execute(book, order, amount=self._left(order), price=price, rate=float(rate),
                          liquidity=order.liquidity, when=bar.time)  # fmt: skip
            last = price
        return last

    def _liquidate(self, book: Book, price: float, when: int, costs: np.ndarray) -> None:
        """The venue closes the whole position at its liquidation price."""
        ledger = self.state.ledger
        ledger.sequence += 1
        sign = -book.side
        _, rate = exit_fill(LIQUIDATION, price, sign, 0.0, 0.0, price, price, costs)
        liquidation = Order(
            id=str(ledger.sequence), client_order_id=f"liquidation-{ledger.sequence}",
            timestamp=when, updated=when, symbol=book.symbol, type="market",
            side="buy" if sign > 0 else "sell", amount=book.contracts, price=None,
            trigger_price=None, reduce_only=True, post_only=False, status="open", filled=0.0,
            average=None, fee=0.0, liquidity="taker", reason="liquidation",
        )  # fmt: skip
        self._execute(book, liquidation, amount=book.contracts, price=price, rate=float(rate),
                      liquidity="taker", when=when, order_type="liquidation")  # fmt: skip

    # ---- booking -------------------------------------------------------------------------
    def _execute(
        self,
        book: Book,
        order: Order,
        *,
        amount: float,
        price: float,
        rate: float,
        liquidity: Liquidity,
        when: int,
        order_type: str | None = None,
    ) -> None:
        """Book a fill of ``amount`` contracts of ``order`` at ``price`` paying ``rate``."""
        market = self.markets[book.symbol]
        size, step = market.contract_size, market.step_size
        sign = side_sign(order.side)
        paid = fee(price, amount * size, rate)
        realised = 0.0
        self._held.add(book.symbol)
        if book.side in (0, sign):
            self._grow(book, sign, amount, price, when)
        else:
            closing = min(amount, book.contracts)
            realised = book.side * (price - book.entry_price) * closing * size
            book.margin -= book.margin * closing / book.contracts
            book.contracts = add_steps(book.contracts, -closing, step=step)
            if book.contracts <= 0.0:
                book.side, book.contracts, book.margin = 0, 0.0, 0.0
                book.entry_price = book.liquidation_price = math.nan
            rest = add_steps(amount, -closing, step=step)
            if rest > 0.0:
                self._grow(book, sign, rest, price, when)
        ledger = self.state.ledger
        ledger.wallet += realised - paid
        ledger.realized_pnl += realised
        ledger.fees += paid
        ledger.sequence += 1
        self.fills.append(
            Fill(
                id=str(ledger.sequence), order_id=order.id,
                client_order_id=order.client_order_id, timestamp=when, symbol=book.symbol,
                order_type=order_type or order.type, side=order.side, amount=amount,
                price=price, cost=amount * size * price, fee=paid, fee_rate=rate,
                taker_or_maker=liquidity, realized_pnl=realised,
            )
        )  # fmt: skip
        filled = add_steps(order.filled, amount, step=step)
        average = (
            ((order.average or 0.0) * order.filled + price * amount) / filled if filled else None
        )
        cut = order.reduce_only and not book.side and filled < order.amount
        status = "closed" if filled >= order.amount or cut else "open"
        self._update(
            order, when, filled=filled, average=average, fee=order.fee + paid, status=status,
            reason="reduce-only: filled up to the position" if cut else order.reason,
        )  # fmt: skip
        self._link_liquidation(book)

    def _grow(self, book: Book, sign: int, amount: float, price: float, when: int) -> None:
        market = self.markets[book.symbol]
        if not book.side:
            book.side, book.contracts, book.entry_price, book.opened = sign, 0.0, price, when
        held = book.contracts
        book.contracts = add_steps(held, amount, step=market.step_size)
        book.entry_price = (book.entry_price * held + price * amount) / (held + amount)
        book.margin += amount * market.contract_size * price / book.leverage

    def _link_liquidation(self, book: Book) -> None:
        """The isolated position's liquidation price, after any change of the position."""
        if book.margin_mode == "isolated":
            book.liquidation_price = self._liquidation_of(book, book.margin, 0.0, 0.0)

    def _liquidation(self, book: Book) -> float:
        """The price at which the venue liquidates ``book`` now (NaN: never)."""
        if book.margin_mode == "isolated":
            return book.liquidation_price
        others = [b for b in self.state.books.values() if b.side and b is not book]
        isolated = sum(b.margin for b in others if b.margin_mode == "isolated")
        cross = [b for b in others if b.margin_mode == "cross"]
        maintenance = sum(self._maintenance(b) for b in cross)
        upnl = sum(self._unrealised(b) for b in cross)
        balance = self.state.ledger.wallet - isolated
        book.liquidation_price = self._liquidation_of(book, balance, maintenance, upnl)
        return book.liquidation_price

    def _liquidation_of(self, book: Book, balance: float, maintenance: float, upnl: float) -> float:
        if not book.side:
            return math.nan
        market = self.markets[book.symbol]
        found = liquidation_price(
            "long" if book.side > 0 else "short",
            book.contracts * market.contract_size,
            book.entry_price,
            balance=balance,
            brackets=self._brackets(market),
            venue=self.setup.venue,
            taker_fee=float(self._costs_of(book.symbol)[C_TAKER]),
            other_maintenance=maintenance,
            other_upnl=upnl,
        )
        return math.nan if found.price is None else found.price

    def _brackets(self, market: Market) -> list[bracket_rules.Bracket]:
        return bracket_rules.for_market(market, self.setup.venue, self.setup.max_leverage)

    def _maintenance(self, book: Book) -> float:
        market = self.markets[book.symbol]
        notional = book.contracts * market.contract_size * book.last_close
        return bracket_rules.bracket_for(self._brackets(market), notional).maintenance_margin(
            notional
        )

    # ---- margin --------------------------------------------------------------------------
    def _opening(self, book: Book, sign: int, amount: float) -> float:
        """How much of an order of ``amount`` opens or adds (the rest closes the position)."""
        if book.side in (0, sign):
            return amount
        return max(0.0, amount - book.contracts)

    def _need(self, book: Book, sign: int, amount: float, price: float) -> float:
        size = self.markets[book.symbol].contract_size
        opening = self._opening(book, sign, amount) * size
        taker = float(self._costs_of(book.symbol)[C_TAKER])
        return opening * price / book.leverage + fee(price, opening, taker)

    def _require_margin(
        self, book: Book, sign: int, amount: float, price: float, *, released: float = 0.0
    ) -> None:
        """Refuse an order needing more than is free (``released``: what the order it replaces
        holds, free again if it goes through)."""
        need, free = self._need(book, sign, amount, price), self.balance().free + released
        if need > free:
            raise InsufficientMargin(
                f"{book.symbol}: the order needs {need:,.2f} {self.state.ledger.currency} of "
                f"margin and fees at {book.leverage:g}x; {free:,.2f} is free"
            )

    def _margin_at_fill(self, book: Book, order: Order, price: float, when: int) -> bool:
        """Whether the free balance (this order's reservation back) covers the order at the
        price it fills at; if not it is rejected there."""
        sign = side_sign(order.side)
        free = self.balance().free + self._reservation(order)
        if self._need(book, sign, self._left(order), price) <= free:
            return True
        self._update(order, when, status="rejected",
                     reason=f"insufficient margin at the fill price {short(price)}")  # fmt: skip
        return False

    def _reserved(self) -> float:
        return sum((self._reservation(o) for o in self.state.orders.values()), 0.0)

    def _reservation(self, order: Order) -> float:
        """Margin an open order holds: what it could open at its price (the last close for a
        market order); nothing for reduce-only orders."""
        if order.reduce_only or order.status != "open":
            return 0.0
        book = self.state.books[order.symbol]
        price = order.price if order.price is not None else book.last_close
        opening = self._opening(book, side_sign(order.side), self._left(order))
        return opening * self.markets[order.symbol].contract_size * price / book.leverage

    # ---- helpers -------------------------------------------------------------------------
    def _unrealised(self, book: Book) -> float:
        size = self.markets[book.symbol].contract_size
        return book.side * (book.last_close - book.entry_price) * book.contracts * size

    def _left(self, order: Order) -> float:
        """What ``order`` has still to fill, as an exact decimal difference (not
        ``Order.remaining``'s float one: the fill it sizes must leave a whole-step position)."""
        return add_steps(order.amount, -order.filled, step=self.markets[order.symbol].step_size)

    def _costs_of(self, symbol: str) -> np.ndarray:
        costs = self._costs.get(symbol)
        if costs is None:
            costs = self.setup.costs.for_market(self.markets.get(symbol)).array()
            self._costs[symbol] = costs
        return costs

    def _takes(self, market: Market, sign: int, price: float, last_price: float) -> bool:
        """Whether a limit at ``price`` trades at once against the book around ``last_price``
        (``simulated.spread_quote``): a buy at or above the ask, a sell at or below the bid."""
        bid, ask = spread_quote(last_price, market.tick_size, self.setup.spread_ticks)
        return takes(sign, price, ask if sign > 0 else bid)

    def _settings_change(self, symbol: str) -> Book:
        book = self.book(symbol)
        if book.side or any(o.symbol == symbol for o in self.state.orders.values()):
            raise LeverageRefused(
                f"{symbol}: close its position and cancel its orders before changing its "
                "leverage or margin mode"
            )
        return book

    def _cancel_reducing(self, symbol: str, when: int, reason: str) -> None:
        for order in list(self.state.orders.values()):
            if order.symbol == symbol and order.reduce_only:
                self._update(order, when, status="canceled", reason=reason)

    def _update(self, order: Order, when: int, **changes: object) -> Order:
        new = replace(order, updated=max(when, order.updated), **changes)
        self._store(new)
        return new

    def _store(self, order: Order) -> None:
        if order.status == "open":
            self.state.orders[order.client_order_id] = order
        else:
            self.state.orders.pop(order.client_order_id, None)
        self.changed[order.client_order_id] = order


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _side_name(side: int) -> str:
    return "long" if side > 0 else "short"


__all__ = ["SimAccount"]
