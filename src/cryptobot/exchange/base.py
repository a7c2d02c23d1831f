"""The exchange interface everything above ``exchange/`` talks to.

It is the subset of ccxt's unified API the bot uses, with plain return types, so strategies,
fetchers and the daemon cannot tell a live venue from the replay exchange or the paper broker.
Two levels:

- :class:`Exchange` reads the market: contract specs, tickers, candles, funding, open interest,
  and the venue's clock (``now``). It is the ``data.source.MarketDataSource`` the fetcher reads.
- :class:`TradingExchange` adds the account: balance, positions, open orders (conditional ones
  included), an order by its client order id, creating (market, limit, post-only, reduce-only
  stop-market and take-profit), amending (a resting limit's price) and cancelling orders,
  leverage, margin mode, the account's fills and its funding payments, and the best bid and
  ask a maker order is priced from. Refusals are the exceptions of ``exchange.errors``; records
  are ``core.account``'s.

Library code takes the time from ``now()``, never from ``time.time()``: a replayed clock then
drives everything, signal staleness included.
"""

import asyncio
from abc import ABC, abstractmethod
from typing import Protocol

from cryptobot.core.account import (
    Balance,
    Fill,
    FundingPayment,
    MarginMode,
    Order,
    OrderSide,
    OrderType,
    Position,
)
from cryptobot.core.market import BestBidAsk, Market
from cryptobot.data.source import FundingRate, OhlcvRow, OpenInterest, Ticker


class Clock(Protocol):
    """Anything that tells a venue's time in ms: an exchange, a replay clock, a test's clock."""

    async def now(self) -> int: ...


class Exchange(ABC):
    """An async venue's market data. ``id`` names its folder in the lake."""

    id: str
    #: Largest page of candles one request may return.
    ohlcv_limit: int
    funding_limit: int
    open_interest_limit: int
    #: How far back the venue keeps open-interest history, in days.
    open_interest_max_days: int

    @abstractmethod
    async def now(self) -> int:
        """The venue's clock in ms (the replay exchange's simulated clock)."""

    async def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass on the venue's clock: a live venue's passes by itself (a real
        sleep); a replayed one is moved (the replay exchange), so whoever waits on a venue (the
        maker-first executor) drives a replay as it would wait on a live one."""
        await asyncio.sleep(seconds)

    def waits_in_real_time(self) -> bool:
        """Whether :meth:`wait` lasts what it waits (a replayed clock moves at once): a caller
        lets go of what other processes need (the journal) only over a wait that lasts."""
        return True

    @abstractmethod
    async def load_markets(self, reload: bool = False) -> dict[str, Market]: ...

    @abstractmethod
    async def fetch_tickers(self) -> dict[str, Ticker]: ...

    @abstractmethod
    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int, limit: int
    ) -> list[OhlcvRow]:
        """Bars with open time >= ``since``, oldest first, at most ``limit``. The newest may
        still be forming; callers keep only closed bars."""

    @abstractmethod
    async def fetch_funding_history(
        self, symbol: str, since: int, limit: int
    ) -> list[FundingRate]: ...

    @abstractmethod
    async def fetch_open_interest_history(
        self, symbol: str, period: str, since: int, limit: int
    ) -> list[OpenInterest]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook; most implementations hold nothing
        """Release connections."""

    async def __aenter__(self) -> "Exchange":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class TradingExchange(Exchange):
    """A venue that also holds an account and takes orders (one-way position mode: one
    position per symbol, long or short).

    Order types: ``market``; ``limit`` (``post_only`` to insist on resting); ``stop_market``
    (reduce-only, ``trigger_price``); ``take_profit`` (reduce-only limit at ``price``). A
    reduce-only order never increases nor flips a position: it is cut to what the position
    holds, and canceled when nothing is left to reduce. Amounts must be whole steps and prices
    on the tick of the market (``load_markets``).
    """

    #: whether ``amend_order`` moves a resting order's price in place (Binance's modify
    #: order, the simulated venues); False: it raises ``AmendNotSupported``
    amends_in_place: bool = False

    @abstractmethod
    async def fetch_balance(self) -> Balance: ...

    @abstractmethod
    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """Open positions (flat symbols are left out)."""

    @abstractmethod
    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders still working, conditional (stop-market, take-profit) ones included, in the
        order they were placed."""

    @abstractmethod
    async def fetch_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        """The order with this client order id, open or done; ``OrderNotFound`` if none.
        ``symbol``: the order's, when the caller knows it (a live venue may need it to find
        a done order; a simulated one does not)."""

    @abstractmethod
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
        """Place an order; the venue answers with it as accepted (``open``). Raises
        ``InvalidOrder`` (and its kinds: step, tick, minimum, post-only, reduce-only,
        duplicate id), ``InsufficientMargin`` or ``UnknownSymbolError``."""

    @abstractmethod
    async def cancel_order(self, client_order_id: str, *, symbol: str | None = None) -> Order:
        """Cancel an open order; ``OrderNotOpen`` when it is done already (a second cancel),
        ``OrderNotFound`` when the venue never had it. ``symbol`` as for ``fetch_order``."""

    @abstractmethod
    async def fetch_best_bid_ask(self, symbol: str) -> BestBidAsk:
        """The top of ``symbol``'s book now: what a maker order is priced from."""

    @abstractmethod
    async def amend_order(
        self, client_order_id: str, *, price: float, symbol: str | None = None
    ) -> Order:
        """Move a resting limit order to ``price`` (on the tick) in place: same client id,
        same amount, what has filled kept; the order as it stands after. Only where
        ``amends_in_place``; elsewhere ``AmendNotSupported`` and nothing is sent (cancel it and
        place the rest under a new client id). A post-only order the new price would make take
        raises ``PostOnlyWouldTake``: Binance then cancels the order, the simulated venues keep
        it at its old price, so look it up. ``OrderNotOpen`` when it is done already (filled
        or canceled meanwhile)."""

    @abstractmethod
    async def set_leverage(self, symbol: str, leverage: float) -> None: ...

    @abstractmethod
    async def set_margin_mode(self, symbol: str, margin_mode: MarginMode) -> None: ...

    @abstractmethod
    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[Fill]:
        """The account's fills, oldest first (``since``: at or after that time)."""

    @abstractmethod
    async def fetch_funding_payments(
        self, symbol: str | None = None, since: int | None = None
    ) -> list[FundingPayment]:
        """The funding the account paid or received, per symbol, oldest first (``since``: at
        or after that time); ccxt's ``fetch_funding_history`` of the account."""


__all__ = [
    "Clock",
    "Exchange",
    "FundingRate",
    "OhlcvRow",
    "OpenInterest",
    "Ticker",
    "TradingExchange",
]
