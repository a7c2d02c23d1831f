"""Where crowd data comes from: a small protocol for a vendor of series, and the vendors we have.

A :class:`CrowdSource` serves some series kinds of :mod:`cryptobot.data.series` page by page,
and says how much history it keeps. The fetcher pages through what the lake lacks within that
history and files each page under the source's ``name``, so two vendors of the same kind never
mix. A new vendor (CoinAnk, Coinglass: paid APIs) is one class with these members, listed in
``exchange.factory.crowd_sources``; the readers (:mod:`cryptobot.data.crowd`) and the
``cot_crowd`` trigger read the lake and never learn who filled it.

The vendors: the exchange itself (open interest through the market-data interface; long/short
ratios and taker volume where the venue's ccxt adapter serves them, see :class:`CrowdVenue`),
here; alternative.me's Fear & Greed index, a network client, in ``exchange.fear_greed``
(``exchange.factory.crowd_sources`` lists them for a fetch).
"""

from typing import Any, Protocol, runtime_checkable

import pandas as pd

from cryptobot.data.source import MarketDataSource

#: The folder Fear & Greed values are filed under (alternative.me's index).
FEAR_GREED_SOURCE = "alternative_me"


class CrowdSource(Protocol):
    """A vendor of crowd series."""

    name: str  # its folder in the lake (an exchange id, or the vendor's name)
    per_symbol: bool  # True: its kinds are per contract (ask per symbol); False: one series
    max_days: int | None  # how far back it keeps history (None: all of it)
    page_limit: int  # rows one request may return

    def kinds(self) -> frozenset[str]:
        """The series kinds it serves."""
        ...

    async def page(
        self, kind: str, *, symbol: str | None, period: str, since: int, limit: int, now: int
    ) -> pd.DataFrame:
        """Rows of ``kind`` stamped at or after ``since``, oldest first, at most ``limit``,
        with the kind's columns; ``now`` is the fetch's clock."""
        ...


@runtime_checkable
class CrowdVenue(Protocol):
    """What an exchange adapter offers beyond open interest (the live ccxt adapter does; the
    replay exchange does not, so replay serves open interest only)."""

    def crowd_kinds(self) -> frozenset[str]: ...

    async def fetch_crowd_history(
        self, kind: str, symbol: str, period: str, since: int, limit: int
    ) -> list[dict[str, Any]]: ...


class ExchangeSource:
    """The exchange's own statistics: open interest, and what :class:`CrowdVenue` adds."""

    per_symbol = True

    def __init__(self, exchange: MarketDataSource) -> None:
        self.exchange = exchange
        self.name = exchange.id
        self.max_days = exchange.open_interest_max_days
        self.page_limit = exchange.open_interest_limit

    def kinds(self) -> frozenset[str]:
        extra = self.exchange.crowd_kinds() if isinstance(self.exchange, CrowdVenue) else set()
        return frozenset({"open_interest", *extra})

    async def page(
        self, kind: str, *, symbol: str | None, period: str, since: int, limit: int, now: int
    ) -> pd.DataFrame:
        if kind == "open_interest":
            got = await self.exchange.fetch_open_interest_history(symbol, period, since, limit)
            rows = [
                {
                    "timestamp": r.timestamp,
                    "open_interest": r.open_interest,
                    "open_interest_value": r.open_interest_value,
                }
                for r in got
            ]
        else:
            assert isinstance(self.exchange, CrowdVenue), kind
            rows = await self.exchange.fetch_crowd_history(kind, symbol, period, since, limit)
        return rows_frame(rows)


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A page's rows as a frame with int64 timestamps (an empty page keeps the column)."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"timestamp": pd.Series(dtype="int64")})
    return frame.astype({"timestamp": "int64"})
