"""Where crowd data comes from: a small protocol for a vendor of series, and the vendors we have.

A :class:`CrowdSource` serves some series kinds of :mod:`cryptobot.data.series` page by page,
and says how much history it keeps. The fetcher pages through what the lake lacks within that
history and files each page under the source's ``name``, so two vendors of the same kind never
mix. A new vendor (CoinAnk, Coinglass: paid APIs) is one class with these members, made in
:func:`crowd_sources`; the readers (:mod:`cryptobot.data.crowd`) and the ``cot_crowd`` trigger
read the lake and never learn who filled it.

The vendors here: the exchange itself (open interest through the exchange interface; long/short
ratios and taker volume where the venue's ccxt adapter serves them, see :class:`CrowdVenue`)
and alternative.me's Fear & Greed index (one JSON request, retried like the exchange's).
"""

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

import pandas as pd

from cryptobot.core.errors import ExchangeFailure
from cryptobot.core.timeutil import DAY_MS
from cryptobot.exchange.base import Exchange

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

    def __init__(self, exchange: Exchange) -> None:
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
        return _frame(rows)


class FearGreedSource:
    """alternative.me's Crypto Fear & Greed index: ``GET <url>?limit=N&format=json`` answers
    the newest N days (0: every day since February 2018), newest first, each stamped at 00:00
    UTC in epoch seconds. The whole history is a few hundred kB, so a page is everything from
    ``since`` to today in one request."""

    name = FEAR_GREED_SOURCE
    per_symbol = False
    max_days = None
    page_limit = 100_000

    def __init__(self, url: str, *, retry: Any, timeout_s: float) -> None:
        self.url = url
        self._retry = retry  # an exchange.retry.RetryPolicy: 429/5xx/timeouts are retried
        self._timeout_s = timeout_s

    def kinds(self) -> frozenset[str]:
        return frozenset({"fear_greed"})

    async def page(
        self, kind: str, *, symbol: str | None, period: str, since: int, limit: int, now: int
    ) -> pd.DataFrame:
        days = max(0, (now - since) // DAY_MS) + 2  # since's day to today, both included
        query = urlencode({"limit": days, "format": "json"})
        url = f"{self.url}{'&' if '?' in self.url else '?'}{query}"
        body = await self._retry.call(
            "fetch the Fear & Greed index", lambda: asyncio.to_thread(self._get, url)
        )
        rows = _fear_greed_rows(body, self.url)
        rows = sorted((r for r in rows if r["timestamp"] >= since), key=lambda r: r["timestamp"])
        return _frame(rows[:limit])

    def _get(self, url: str) -> Any:
        """One GET; failures are raised as the exchange errors the retry policy knows."""
        import ccxt

        from cryptobot.exchange.ccxt_exchange import retry_after_seconds
        from cryptobot.exchange.retry import RetryAfter

        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            host = f"{self.url.split('/')[2]} HTTP {exc.code}"
            if exc.code in (418, 429):
                headers = {k.lower(): v for k, v in exc.headers.items()}
                raise RetryAfter(host, retry_after_seconds(headers)) from None
            if exc.code >= 500:
                raise ccxt.ExchangeNotAvailable(host) from None
            raise ExchangeFailure(f"{host} for {self.url}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ccxt.NetworkError(f"{self.url}: {getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(text)
        except ValueError:
            raise ccxt.BadResponse(f"{self.url} answered malformed JSON") from None


def crowd_sources(exchange: Exchange, *, fear_greed_url: str, retry: Any, timeout_s: float):
    """Every source ``fetch --crowd`` asks, in order: the exchange, then the index."""
    return [
        ExchangeSource(exchange),
        FearGreedSource(fear_greed_url, retry=retry, timeout_s=timeout_s),
    ]


def _fear_greed_rows(body: Any, url: str) -> list[dict[str, Any]]:
    """``{"data": [{"value": "40", "timestamp": "1551157200", ...}], "metadata": {...}}``."""
    error = body.get("metadata", {}).get("error") if isinstance(body, dict) else None
    data = body.get("data") if isinstance(body, dict) else None
    if error or not isinstance(data, list):
        raise ExchangeFailure(f"{url} answered no index data ({error or 'no data list'})")
    rows = []
    for item in data:
        try:
            rows.append({"timestamp": int(item["timestamp"]) * 1000, "value": float(item["value"])})
        except (KeyError, TypeError, ValueError):
            raise ExchangeFailure(f"{url} answered a malformed day: {item!r:.120}") from None
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"timestamp": pd.Series(dtype="int64")})
    return frame.astype({"timestamp": "int64"})
