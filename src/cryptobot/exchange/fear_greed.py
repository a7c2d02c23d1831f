"""alternative.me's Crypto Fear & Greed index, a crowd-data source (``data.sources``).

It lives with the venues because it is a network client: one JSON request, its HTTP failures
raised as the exchange errors the shared retry policy knows (429/418 with Retry-After, 5xx,
timeouts), so it is retried exactly like the exchange's read-only calls.
"""

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from cryptobot.core.errors import ExchangeFailure
from cryptobot.core.timeutil import DAY_MS
from cryptobot.data.sources import FEAR_GREED_SOURCE, rows_frame
from cryptobot.exchange.ccxt_exchange import retry_after_seconds
from cryptobot.exchange.ccxt_modules import package
from cryptobot.exchange.retry import RetryAfter

ccxt = package("ccxt")


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
        return rows_frame(rows[:limit])

    def _get(self, url: str) -> Any:
        """One GET; failures are raised as the exchange errors the retry policy knows."""
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
