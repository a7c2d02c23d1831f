"""The trading half of the simulated venues: the replay exchange and the paper broker.

Both are a ``SimAccount`` (``exchange.sim``) stepped over closed bars; they differ in where the
bars come from and where the account is kept. Every call runs the same way:

1. open a *session* on the stored account (the paper broker locks it: one writer at a time);
2. read the venue's clock (``now``) and refuse one that went back;
3. match every bar that has closed since the account last looked, for each symbol holding a
   position or open orders: a fill happens when the clock passes the bar, whoever asks next. A
   bad bar (NaN, zero, a high below the low...) is stepped over, never applied: it cannot lock
   the account, and the next good bar goes on as normal;
4. do what was asked (place, amend, cancel, read) and store the result: all of it, or
   nothing. Once stored, each bad bar stepped over is reported once, as a warning on this
   module's logger (a call that fails stores nothing, so the next call steps over it and
   reports it).

**The book** (``fetch_best_bid_ask``) is a model of the price feed, the one the matching
checks orders against: from the close of the newest valid bar, the bid ``spread_ticks`` ticks
below it and the ask as far above (rounded outwards onto the tick), each showing
``top_of_book_pct`` % of that bar's volume; its time is the bar's close. A buy limit at or
above the ask (a sell at or below the bid) trades at once: a post-only one is refused, another
pays the taker fee. ``spread_ticks`` 0 (``SimSetup``'s default, the backtest's model) quotes
the close on both sides: an order at the close takes. ``amend_order`` moves a resting limit in
place; it is then matched as if placed at the amend (Binance requeues an amended order).

The matching engine (numba) loads with the first trading call: a replay exchange that only
serves candles (``scan --offline``) never pays for it.
"""

import inspect
import logging
import math
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Protocol, TypeVar

from cryptobot.core.account import (
    AccountState,
    Balance,
    Fill,
    FundingPayment,
    Ledger,
    MarginMode,
    Order,
    OrderRequest,
    OrderSide,
    OrderType,
    Position,
)
from cryptobot.core.errors import UnknownSymbolError
from cryptobot.core.market import BestBidAsk
from cryptobot.core.timeutil import iso
from cryptobot.exchange.base import TradingExchange
from cryptobot.exchange.errors import DuplicateClientOrderId, OrderNotFound, TradingError
from cryptobot.exchange.market_rules import GRID_TOLERANCE, snap
from cryptobot.fills.costs import Costs
from cryptobot.fills.liquidation import Venue

if TYPE_CHECKING:
    from cryptobot.exchange.sim import SimAccount

T = TypeVar("T")
R = TypeVar("R", Fill, FundingPayment)
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SimSetup:
    """How a simulated venue trades: costs (``backtest.*`` in the config; each market's own
    maker/taker where ``load_markets`` states them), the deposit, the leverage and margin mode
    a symbol starts with, the liquidation formula (``venue``) and the bars orders are matched
    against (``timeframe``; None: the replay exchange's smallest stored timeframe, the paper
    broker's 1m).

    ``costs`` has no default on purpose: a default would be ``Costs()``, free trading (no fee,
    no slippage) that nobody chose. ``exchange.factory.sim_setup`` passes the config's."""

    costs: Costs
    initial_balance: float = 1000.0
    currency: str = "USDT"
    leverage: float = 1.0
    margin_mode: MarginMode = "isolated"
    venue: Venue = "binance"
    max_leverage: float = 125.0  # where a market states none
    timeframe: str | None = None
    spread_ticks: int = 0  # the book: bid and ask this many ticks either side of the close
    top_of_book_pct: float = 5.0  # size at the bid and at the ask: this % of the bar's volume

    def new_state(self) -> AccountState:
        balance = self.initial_balance
        return AccountState(Ledger(self.currency, deposited=balance, wallet=balance))


@dataclass(frozen=True)
class Bar:
    """One closed bar of the matching timeframe, with the funding charged at its open."""

    time: int  # open time, ms
    open: float
    high: float
    low: float
    close: float
    volume: float
    funding_rate: float = 0.0
    funding_price: float = math.nan  # NaN: the close before

    @property
    def valid(self) -> bool:
        """A price feed's bar is input: prices finite and positive, the open and the close
        inside the low-high range, a finite volume of zero or more and a finite funding rate.
        Anything else would poison the account for good (a NaN wallet, a NaN entry price)."""
        prices = (self.open, self.high, self.low, self.close)
        if not all(math.isfinite(p) and p > 0 for p in prices):
            return False
        inside = all(self.low <= p <= self.high for p in (self.open, self.close))
        return (
            inside
            and math.isfinite(self.volume)
            and self.volume >= 0
            and (math.isfinite(self.funding_rate))
        )


class Session(Protocol):
    """One call's hold on a stored account: the state as stored, and the done orders and fills
    the working state leaves out. ``keep`` hands over the account's changes; leaving the session
    without an error stores them, an error stores nothing."""

    state: AccountState

    async def find_order(self, client_order_id: str) -> Order | None:
        """A stored order that is no longer open."""

    async def fills(self, symbol: str | None, since: int | None) -> list[Fill]:
        """Stored fills of ``symbol`` (all: None) at or after ``since``, oldest first."""

    async def payments(self, symbol: str | None, since: int | None) -> list[FundingPayment]:
        """Stored funding payments of ``symbol`` (all: None) at or after ``since``, oldest
        first."""

    def keep(self, account: "SimAccount") -> None: ...


class SimulatedExchange(TradingExchange):
    """``TradingExchange`` on a simulated account; a venue provides its sessions, its bars and
    its last bar."""

    setup: SimSetup
    amends_in_place = True

    @abstractmethod
    def session(self) -> AbstractAsyncContextManager[Session]: ...

    @abstractmethod
    async def bars(self, symbol: str, since: int, until: int) -> list[Bar]:
        """Bars of the matching timeframe with open time >= ``since`` that have closed by
        ``until``, oldest first, with their funding."""

    @abstractmethod
    async def last_bar(self, symbol: str, now: int) -> Bar | None:
        """The newest valid bar of the matching timeframe closed by ``now`` (None: none)."""

    @abstractmethod
    def bar_ms(self, symbol: str) -> int:
        """The length of ``symbol``'s matching bars in ms."""

    # ---- the trading interface -----------------------------------------------------------
    async def fetch_balance(self) -> Balance:
        return await self._call(lambda account, now, session: account.balance())

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        return await self._call(lambda account, now, session: account.positions(symbols))

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return await self._call(lambda account, now, session: account.open_orders(symbol))

    async def fetch_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        async def find(account: "SimAccount", now: int, session: Session) -> Order:
            order = await _lookup(account, session, client_order_id)
            if order is None:
                raise OrderNotFound(f"no order {client_order_id}")
            return order

        return await self._call(find)

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
    ) -> Order:
        req = OrderRequest(
            symbol=symbol, type=type, side=side, amount=amount, price=price,
            trigger_price=trigger_price, reduce_only=reduce_only, post_only=post_only,
            client_order_id=client_order_id,
        )  # fmt: skip

        async def place(account: "SimAccount", now: int, session: Session) -> Order:
            account.market(symbol)  # an unknown symbol is refused before anything else
            cid = client_order_id or f"auto-{account.state.ledger.sequence + 1}"
            if await _lookup(account, session, cid) is not None:
                raise DuplicateClientOrderId(
                    f"an order {cid} exists already (fetch it by its client order id)"
                )
            last = await self._price_for(account, symbol, now)
            return account.place(req, client_order_id=cid, now=now, last_price=last)

        return await self._call(place)

    async def cancel_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        async def cancel(account: "SimAccount", now: int, session: Session) -> Order:
            known = await _lookup(account, session, client_order_id) is not None
            return account.cancel(client_order_id, now=now, known=known)

        return await self._call(cancel)

    async def amend_order(
        self, client_order_id: str, *, price: float, symbol: str | None = None
    ) -> Order:
        async def amend(account: "SimAccount", now: int, session: Session) -> Order:
            order = account.state.orders.get(client_order_id)
            if order is None:  # done or unknown: the cancel's refusal says which
                known = await _lookup(account, session, client_order_id) is not None
                return account.cancel(client_order_id, now=now, known=known)
            last = await self._price_for(account, order.symbol, now)
            return account.amend(client_order_id, price=price, now=now, last_price=last)

        return await self._call(amend)

    async def fetch_best_bid_ask(self, symbol: str) -> BestBidAsk:
        market = (await self.load_markets()).get(symbol)
        if market is None:
            raise UnknownSymbolError(f"the venue lists no market {symbol}")
        now = await self.now()
        bar = await self.last_bar(symbol, now)
        if bar is None:
            return BestBidAsk(symbol, None, None, None, None, now)
        bid, ask = spread_quote(bar.close, market.tick_size, self.setup.spread_ticks)
        size = bar.volume / market.contract_size * self.setup.top_of_book_pct / 100
        return BestBidAsk(symbol, bid, ask, size, size, bar.time + self.bar_ms(symbol))

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        await self._call(lambda account, now, session: account.set_leverage(symbol, leverage))

    async def set_margin_mode(self, symbol: str, margin_mode: MarginMode) -> None:
        await self._call(lambda account, now, session: account.set_margin_mode(symbol, margin_mode))

    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[Fill]:
        """Oldest first: from ``since`` the first ``limit`` fills, without it the last ones."""

        async def trades(account: "SimAccount", now: int, session: Session) -> list[Fill]:
            fills = [*await session.fills(symbol, since), *select(account.fills, symbol, since)]
            if limit is None:
                return fills
            return fills[:limit] if since is not None else fills[max(0, len(fills) - limit) :]

        return await self._call(trades)

    async def fetch_funding_payments(
        self, symbol: str | None = None, since: int | None = None
    ) -> list[FundingPayment]:
        async def paid(account: "SimAccount", now: int, session: Session) -> list[FundingPayment]:
            stored = await session.payments(symbol, since)
            return [*stored, *select(account.payments, symbol, since)]

        return await self._call(paid)

    # ---- one call ------------------------------------------------------------------------
    async def _call(self, op: Callable[["SimAccount", int, Session], T | Awaitable[T]]) -> T:
        from cryptobot.exchange.sim import SimAccount  # numba loads with the first trading call

        markets = await self.load_markets()
        async with self.session() as session:
            account = SimAccount(session.state, markets=markets, setup=self.setup)
            now = await self.now()
            account.see(now)
            for symbol, cursor in account.active():
                for bar in await self.bars(symbol, cursor, now):
                    account.match(symbol, bar)
            result = op(account, now, session)
            if inspect.isawaitable(result):
                result = await result
            session.keep(account)
        for line in account.skipped:
            log.warning(line)
        return result

    async def _price_for(self, account: "SimAccount", symbol: str, now: int) -> float:
        book = account.state.books.get(symbol)
        if book is not None and book.cursor is not None and math.isfinite(book.last_close):
            return book.last_close  # matched up to now already
        bar = await self.last_bar(symbol, now)
        if bar is None:
            raise TradingError(f"{symbol}: no price at {iso(now)} to check the order against")
        return bar.close


async def _lookup(account: "SimAccount", session: Session, client_order_id: str) -> Order | None:
    """An order open, changed in this call, or stored as done."""
    order = account.state.orders.get(client_order_id) or account.changed.get(client_order_id)
    return order or await session.find_order(client_order_id)


def spread_quote(last: float, tick: float | None, spread_ticks: int) -> tuple[float, float]:
    """The simulated book's bid and ask around the ``last`` close (the module's *book*):
    ``spread_ticks`` ticks either side, rounded outwards onto the tick; the close on both sides
    without a spread or a tick."""
    if not tick or spread_ticks <= 0:
        return last, last
    grid = Decimal(repr(tick))
    units = Decimal(repr(last)) / grid
    nearest = units.to_integral_value()
    if abs(units - nearest) <= Decimal(repr(GRID_TOLERANCE)):  # on the tick up to float noise
        units = nearest
    below = units.to_integral_value(rounding=ROUND_FLOOR)
    above = units.to_integral_value(rounding=ROUND_CEILING)
    bid = snap(float((below - spread_ticks) * grid), tick)
    ask = snap(float((above + spread_ticks) * grid), tick)
    return bid, ask


def select(records: Iterable[R], symbol: str | None, since: int | None) -> list[R]:
    """``records`` (fills, funding payments) of ``symbol`` (all: None) at or after ``since``."""
    return [
        r for r in records
        if symbol in (None, r.symbol) and (since is None or r.timestamp >= since)
    ]  # fmt: skip


__all__ = ["Bar", "Session", "SimSetup", "SimulatedExchange", "Venue", "select", "spread_quote"]
