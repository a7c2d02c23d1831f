"""The exchange interface everything above ``exchange/`` talks to.

It is the subset of ccxt's unified API the bot uses, with plain return types, so strategies,
fetchers and the daemon cannot tell a live venue from the replay exchange.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from cryptobot.core.market import Market

#: ``[open_time_ms, open, high, low, close, volume]`` as ccxt returns it.
OhlcvRow = list[float]


@dataclass(frozen=True)
class Ticker:
    symbol: str
    last: float | None
    quote_volume: float  # 24h, in the quote currency
    timestamp: int | None


@dataclass(frozen=True)
class FundingRate:
    timestamp: int
    funding_rate: float


@dataclass(frozen=True)
class OpenInterest:
    timestamp: int
    open_interest: float | None  # contracts / base units
    open_interest_value: float | None  # in the quote currency


class Exchange(ABC):
    """An async venue. ``id`` names its folder in the lake."""

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
