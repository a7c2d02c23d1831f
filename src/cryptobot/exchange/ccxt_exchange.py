"""The live adapter: ccxt's async client behind :class:`Exchange`.

ccxt is imported here and nowhere else. Public market data needs no keys; keys (from the
environment only) add leverage brackets. Order methods arrive with the trading issue and will
sit behind the live switches of DESIGN.md §3.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from cryptobot.core.config import Secrets
from cryptobot.core.errors import CryptobotError, ExchangeFailure, UnknownSymbolError
from cryptobot.core.market import Market
from cryptobot.core.settings import CCXT_VENUES, ExchangeSettings
from cryptobot.exchange.base import Exchange, FundingRate, OhlcvRow, OpenInterest, Ticker
from cryptobot.exchange.retry import RetryAfter, RetryPolicy, describe

log = logging.getLogger(__name__)
T = TypeVar("T")

SUPPORTED = CCXT_VENUES
#: Load only linear perpetual/futures markets: spot and options are not traded here.
_MARKET_OPTIONS: dict[str, dict[str, Any]] = {
    "binanceusdm": {"fetchMargins": False, "fetchCurrencies": False},
    "bybit": {
        "defaultType": "swap",
        "fetchMarkets": {"types": ["linear"]},
        "fetchCurrencies": False,
    },
    "bitget": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}},
}


class CcxtExchange(Exchange):
    def __init__(
        self,
        exchange_id: str,
        venue: ExchangeSettings,
        retry: RetryPolicy,
        secrets: Secrets | None = None,
    ) -> None:
        if exchange_id not in SUPPORTED:
            raise CryptobotError(
                f"unknown exchange {exchange_id!r}; use one of {', '.join(SUPPORTED)} or replay"
            )
        self.id = exchange_id
        self.ohlcv_limit = venue.ohlcv_limit
        self.funding_limit = venue.funding_limit
        self.open_interest_limit = venue.open_interest_limit
        self.open_interest_max_days = venue.open_interest_max_days
        self._retry = retry
        self._secrets = secrets or Secrets()
        params: dict[str, Any] = {
            "enableRateLimit": venue.enable_rate_limit,
            "timeout": venue.timeout_ms,
            "options": dict(_MARKET_OPTIONS[exchange_id]),
        }
        if self._secrets.has_keys:
            params |= {"apiKey": self._secrets.api_key, "secret": self._secrets.api_secret}
            if self._secrets.api_password:
                params["password"] = self._secrets.api_password
        self._ccxt = getattr(ccxt_async, exchange_id)(params)
        if venue.sandbox:
            self._ccxt.set_sandbox_mode(True)
        if venue.api_base:
            self._ccxt.urls["api"] = _rebase(self._ccxt.urls["api"], venue.api_base.rstrip("/"))
        _install_error_hook(self._ccxt)
        self._markets: dict[str, Market] | None = None

    async def now(self) -> int:
        return int(await self._call("fetch time", self._ccxt.fetch_time))

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        if self._markets is not None and not reload:
            return self._markets
        raw = await self._call("load markets", lambda: self._ccxt.load_markets(reload))
        tiers = await self._leverage_tiers()
        self._markets = {
            s: Market.from_ccxt(m, tiers.get(s))
            for s, m in raw.items()
            if m.get("contract") and m.get("linear")
        }
        return self._markets

    async def fetch_tickers(self) -> dict[str, Ticker]:
        await self.load_markets()
        raw = await self._call("fetch tickers", self._ccxt.fetch_tickers)
        return {
            s: Ticker(s, t.get("last"), float(t.get("quoteVolume") or 0.0), t.get("timestamp"))
            for s, t in raw.items()
        }

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int, limit: int
    ) -> list[OhlcvRow]:
        await self._known(symbol)
        rows = await self._call(
            f"fetch {symbol} {timeframe} candles",
            lambda: self._ccxt.fetch_ohlcv(symbol, timeframe, since, limit),
        )
        return [r[:6] for r in _expect_list(rows, "candles")]

    async def fetch_funding_history(self, symbol: str, since: int, limit: int) -> list[FundingRate]:
        await self._known(symbol)
        rows = await self._call(
            f"fetch {symbol} funding",
            lambda: self._ccxt.fetch_funding_rate_history(symbol, since, limit),
        )
        return [
            FundingRate(int(r["timestamp"]), float(r["fundingRate"]))
            for r in _expect_list(rows, "funding")
        ]

    async def fetch_open_interest_history(
        self, symbol: str, period: str, since: int, limit: int
    ) -> list[OpenInterest]:
        await self._known(symbol)
        rows = await self._call(
            f"fetch {symbol} open interest",
            lambda: self._ccxt.fetch_open_interest_history(symbol, period, since, limit),
        )
        return [
            OpenInterest(
                int(r["timestamp"]), r.get("openInterestAmount"), r.get("openInterestValue")
            )
            for r in _expect_list(rows, "open interest")
        ]

    async def close(self) -> None:
        await self._ccxt.close()

    async def _known(self, symbol: str) -> None:
        markets = await self.load_markets()
        if symbol not in markets:
            raise UnknownSymbolError(
                f"{self.id} lists no linear contract {symbol!r}"
                " (perpetuals are written like BTC/USDT:USDT)"
            )

    async def _leverage_tiers(self) -> dict[str, list[dict[str, Any]]]:
        """Maintenance-margin brackets; Binance serves them only to signed requests."""
        if not (self._secrets.has_keys and self._ccxt.has.get("fetchLeverageTiers")):
            log.info("%s: no API keys, leverage brackets not fetched", self.id)
            return {}
        try:
            return await self._call("fetch leverage tiers", self._ccxt.fetch_leverage_tiers)
        except (ccxt.AuthenticationError, ccxt.PermissionDenied, ExchangeFailure) as exc:
            log.warning("%s: leverage brackets unavailable (%s)", self.id, describe(exc))
            return {}

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._retry.call(what, fn)
        except ccxt.BadSymbol as exc:
            raise UnknownSymbolError(f"{self.id}: {describe(exc)}") from None
        except ccxt.AuthenticationError:
            raise CryptobotError(
                f"{self.id} refused the API keys; check CRYPTOBOT_API_KEY/CRYPTOBOT_API_SECRET"
            ) from None
        except ccxt.BaseError as exc:
            raise ExchangeFailure(f"{what}: {describe(exc)}") from None


def _rebase(urls: Any, base: str) -> Any:
    """Point every API URL at ``base`` while keeping its path (``/fapi/v1``...)."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base) for k, v in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^https?://[^/]+", base, urls)
    return urls


def _install_error_hook(client: Any) -> None:
    """Give ccxt's 429/418 errors the Retry-After header, make every 5xx transient (ccxt would
    classify a Binance 5xx by its body code), and treat an unparsable JSON body as a transient
    bad response rather than an empty result."""
    original = client.handle_errors

    def handle_errors(code, reason, url, method, headers, body, response, *rest):
        lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
        if code in (418, 429):
            raise RetryAfter(f"{client.id} HTTP {code} {reason}", _seconds(lowered))
        if code >= 500:  # whatever error code the body carries, the venue itself is unwell
            raise ccxt.ExchangeNotAvailable(f"{client.id} HTTP {code} {reason}")
        if code == 200 and body and response is None and "json" in lowered.get("content-type", ""):
            raise ccxt.BadResponse(f"{client.id} malformed JSON from {url.split('?')[0]}")
        return original(code, reason, url, method, headers, body, response, *rest)

    client.handle_errors = handle_errors


def _seconds(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _expect_list(rows: Any, what: str) -> list[Any]:
    if not isinstance(rows, list):
        raise ExchangeFailure(f"the exchange answered {what} with {type(rows).__name__}")
    return rows
