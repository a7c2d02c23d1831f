"""Where market data comes from: the calls ``fetch`` makes, as a protocol, and the records they
return.

The lake is filled from anything that answers these calls: a live venue through ccxt, the replay
exchange, a test double. ``exchange/`` implements them (its interface extends this one); ``data/``
only names them here, so the data layer imports nothing from the exchange layer above it and
the two no longer import each other.
"""

from dataclasses import dataclass
from typing import Protocol

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


class MarketDataSource(Protocol):
    """A venue's market data: contract specs, tickers, candles, funding and open interest, and
    its clock (which decides which bars have closed). ``id`` names its folder in the lake."""

    id: str
    #: Largest page of candles one request may return.
    ohlcv_limit: int
    funding_limit: int
    open_interest_limit: int
    #: How far back the venue keeps open-interest history, in days.
    open_interest_max_days: int

    async def now(self) -> int: ...

    async def load_markets(self, reload: bool = False) -> dict[str, Market]: ...

    async def fetch_tickers(self) -> dict[str, Ticker]: ...

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int, limit: int
    ) -> list[OhlcvRow]: ...

    async def fetch_funding_history(
        self, symbol: str, since: int, limit: int
    ) -> list[FundingRate]: ...

    async def fetch_open_interest_history(
        self, symbol: str, period: str, since: int, limit: int
    ) -> list[OpenInterest]: ...


__all__ = ["FundingRate", "MarketDataSource", "OhlcvRow", "OpenInterest", "Ticker"]
