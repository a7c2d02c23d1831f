"""The live adapter: ccxt's async client behind :class:`Exchange`.

ccxt is imported here and nowhere else. Public market data needs no keys; keys (from the
environment only) add leverage brackets. Order methods arrive with the trading issue and will
sit behind the live switches of DESIGN.md §3.

Crowd data (:mod:`cryptobot.data.sources`): the long/short ratio of all accounts through ccxt's
unified ``fetchLongShortRatioHistory`` (any venue that has it); Binance's top-trader ratios and
taker buy/sell volume through ccxt's implicit API (``/futures/data/...``: ccxt has no unified
method for them). Liquidations: Binance's ``!forceOrder@arr`` stream through ccxt pro's
``watch_liquidations_for_symbols`` (a second, WebSocket client made on first use).
"""

import logging
import math
import re
import ssl
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

from cryptobot.core.config import Secrets
from cryptobot.core.errors import CryptobotError, ExchangeFailure, UnknownSymbolError
from cryptobot.core.market import Market
from cryptobot.core.settings import ExchangeSettings
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.venues import CCXT_VENUES
from cryptobot.exchange.base import Exchange, FundingRate, OhlcvRow, OpenInterest, Ticker
from cryptobot.exchange.ccxt_modules import package
from cryptobot.exchange.retry import RetryAfter, RetryPolicy, describe

log = logging.getLogger(__name__)
T = TypeVar("T")
ccxt = package("ccxt")
ccxt_async = package("ccxt.async_support")

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
#: Binance's ``/futures/data`` statistics without a unified ccxt method -> the implicit call
_BINANCE_STATS = {
    "top_long_short_accounts": "fapiDataGetTopLongShortAccountRatio",
    "top_long_short_positions": "fapiDataGetTopLongShortPositionRatio",
    "taker_volume": "fapiDataGetTakerlongshortRatio",
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
        self._params = params
        self._venue = venue
        self._ccxt = self._client(ccxt_async)
        self._ws: Any = None  # ccxt pro's client, made by the first watch
        self._last_liquidation: Any = None  # the newest cached liquidation already handed out
        self._markets: dict[str, Market] | None = None

    def _client(self, module: Any) -> Any:
        """A ccxt client of ``module`` (async or pro) with this venue's URLs and error hook."""
        client = getattr(module, self.id)(dict(self._params))
        if self._venue.sandbox:
            client.set_sandbox_mode(True)
        urls = client.urls["api"]
        if self._venue.api_base:
            urls = _rebase(urls, self._venue.api_base.rstrip("/"))
        if self._venue.ws_base and isinstance(urls, dict) and "ws" in urls:
            urls["ws"] = _rebase(urls["ws"], self._venue.ws_base.rstrip("/"), scheme="wss?")
        client.urls["api"] = urls
        base = self._venue.api_base if module is ccxt_async else self._venue.ws_base
        if base and not base.startswith(("https:", "wss:")):
            client.timeout_on_exit = 0  # its 250 ms at close let TLS connections shut: none here
        if client.verify and not client.options.get("include_OS_certificates"):
            client.ssl_context = tls_context(client.cafile)
        _install_error_hook(client)
        return client

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
        return [r[:6] for r in _expect_list(rows, "candles")]  # ccxt drops rows with no time

    async def fetch_funding_history(self, symbol: str, since: int, limit: int) -> list[FundingRate]:
        await self._known(symbol)
        rows = await self._call(
            f"fetch {symbol} funding",
            lambda: self._ccxt.fetch_funding_rate_history(symbol, since, limit),
        )
        out = []
        for r in _expect_list(rows, "funding"):
            rate = _number(r.get("fundingRate"))  # none: NaN, which the lake refuses by name
            out.append(FundingRate(_stamp(r.get("timestamp"), f"{symbol} funding"),
                                   math.nan if rate is None else rate))  # fmt: skip
        return out

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
                _stamp(r.get("timestamp"), f"{symbol} open interest"),
                r.get("openInterestAmount"),
                r.get("openInterestValue"),
            )
            for r in _expect_list(rows, "open interest")
        ]

    def crowd_kinds(self) -> frozenset[str]:
        """The crowd series (besides open interest) this venue serves."""
        kinds = {"long_short"} if self._ccxt.has.get("fetchLongShortRatioHistory") else set()
        return frozenset(kinds | (set(_BINANCE_STATS) if self.id == "binanceusdm" else set()))

    async def fetch_crowd_history(
        self, kind: str, symbol: str, period: str, since: int, limit: int
    ) -> list[dict[str, Any]]:
        """Rows of a crowd series (columns as :mod:`cryptobot.data.series` names them) from
        ``since`` on, at most ``limit``, oldest first."""
        await self._known(symbol)
        until = since + (limit - 1) * timeframe_ms(period)
        what = f"fetch {symbol} {kind} {period}"
        if kind == "long_short":
            rows = await self._call(
                what,
                lambda: self._ccxt.fetch_long_short_ratio_history(
                    symbol, period, since, limit, {"until": until}
                ),
            )
            return [_ratio_row(r.get("info") or {}, r) for r in _expect_list(rows, kind)]
        if kind not in _BINANCE_STATS or self.id != "binanceusdm":
            raise CryptobotError(f"{self.id} serves no {kind} history")
        request = {
            "symbol": self._ccxt.market_id(symbol),
            "period": period,
            "startTime": since,
            "endTime": until,
            "limit": limit,
        }
        rows = await self._call(what, lambda: getattr(self._ccxt, _BINANCE_STATS[kind])(request))
        parse = _taker_row if kind == "taker_volume" else _ratio_row
        return [parse(r, r) for r in _expect_list(rows, kind)]

    async def watch_liquidations(self, symbols: list[str]) -> list[dict[str, Any]]:
        """The liquidations the venue streamed since the previous call (all symbols when
        ``symbols`` is empty), as ``timestamp, symbol, side, price, quantity``; waits for the
        next one when none is waiting. A dropped connection raises :class:`ExchangeFailure`;
        the next call reconnects and subscribes again."""
        if self._ws is None:
            self._ws = self._client(package("ccxt.pro"))
            markets = await self._call("load markets", self._ccxt.load_markets)
            self._ws.set_markets(markets)
        if waiting := self._new_liquidations(symbols):
            return waiting
        try:
            await self._ws.watch_liquidations_for_symbols(symbols)
        except ccxt.BaseError as exc:  # dropped, refused, or garbled: the caller reconnects
            raise ExchangeFailure(f"liquidation stream: {describe(exc)}") from None
        return self._new_liquidations(symbols)

    def _new_liquidations(self, symbols: list[str]) -> list[dict[str, Any]]:
        """What ccxt cached since the last look. ccxt wakes a watch with the one message that
        resolved it; the others of the same read, and those that came while the caller was
        busy, wait in its cache, so they are taken from there: everything after the last item
        taken (found by identity; all of the cache if it was pushed out, said as a warning)."""
        items = list(getattr(self._ws, "liquidations", None) or ())
        last = self._last_liquidation
        start = next((i + 1 for i in range(len(items) - 1, -1, -1) if items[i] is last), None)
        if start is None and last is not None and items:
            log.warning("%s: liquidations came faster than they were stored; some lost", self.id)
        batch = items[start or 0 :]
        if batch:
            self._last_liquidation = batch[-1]
        return [_liquidation_row(x) for x in batch if not symbols or x.get("symbol") in symbols]

    async def close(self) -> None:
        await self._ccxt.close()
        if self._ws is not None:
            await self._ws.close()

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


@lru_cache(maxsize=4)
def tls_context(cafile: str) -> ssl.SSLContext:
    """The certificates ccxt's clients verify TLS with, loaded once per process: ccxt loads its
    CA bundle again for every client it opens (~25 ms each), and one context serves any number
    of connections. The same file, so the same checks."""
    return ssl.create_default_context(cafile=cafile)


def _rebase(urls: Any, base: str, scheme: str = "https?") -> Any:
    """Point every API URL of ``scheme`` at ``base`` while keeping its path (``/fapi/v1``...)."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base, scheme) for k, v in urls.items()}
    if isinstance(urls, str):
        return re.sub(rf"^{scheme}://[^/]+", base, urls)
    return urls


def _number(value: Any) -> float | None:
    """A venue's number (often a string) as a float; None when absent or unreadable (the lake
    then refuses the row by name instead of storing a made-up value)."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _stamp(value: Any, what: str) -> int:
    """A row's time as integer ms; a row without a readable one is the venue's failure, named
    (one series' error row, not a crash of the run)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ExchangeFailure(f"the exchange answered {what} with a row timed {value!r}") from None


def _ratio_row(info: dict[str, Any], unified: dict[str, Any]) -> dict[str, Any]:
    """Binance's ``longShortRatio/longAccount/shortAccount`` (Bybit: ``buyRatio/sellRatio``)."""
    return {
        "timestamp": _stamp(unified.get("timestamp") or info.get("timestamp"), "long/short"),
        "long_short_ratio": _number(unified.get("longShortRatio", info.get("longShortRatio"))),
        "long_account": _number(info.get("longAccount", info.get("buyRatio"))),
        "short_account": _number(info.get("shortAccount", info.get("sellRatio"))),
    }


def _taker_row(info: dict[str, Any], _: dict[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": _stamp(info.get("timestamp"), "taker volume"),
        "buy_volume": _number(info.get("buyVol")),
        "sell_volume": _number(info.get("sellVol")),
    }


def _liquidation_row(x: dict[str, Any]) -> dict[str, Any]:
    """ccxt's liquidation structure; the quantity is Binance's accumulated fill (``z``)."""
    info = x.get("info") or {}
    return {
        "timestamp": x.get("timestamp"),
        "symbol": x.get("symbol"),
        "side": x.get("side"),
        "price": _number(x.get("price")),
        "quantity": _number(info.get("z", x.get("contracts"))),
    }


def _install_error_hook(client: Any) -> None:
    """Give ccxt's 429/418 errors the Retry-After header, make every 5xx transient (ccxt would
    classify a Binance 5xx by its body code), and treat an unparsable JSON body as a transient
    bad response rather than an empty result. The hook is private to the client: ccxt calls
    it with its own positional signature, which it must keep."""
    original = client.handle_errors

    def _handle_errors(code, reason, url, method, headers, body, response, *rest):
        lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
        if code in (418, 429):
            raise RetryAfter(f"{client.id} HTTP {code} {reason}", retry_after_seconds(lowered))
        if code >= 500:  # whatever error code the body carries, the venue itself is unwell
            raise ccxt.ExchangeNotAvailable(f"{client.id} HTTP {code} {reason}")
        if code == 200 and body and response is None and "json" in lowered.get("content-type", ""):
            raise ccxt.BadResponse(f"{client.id} malformed JSON from {url.split('?')[0]}")
        return original(code, reason, url, method, headers, body, response, *rest)

    client.handle_errors = _handle_errors


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """The ``Retry-After`` seconds of a response's headers (keys in lower case), if any."""
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _expect_list(rows: Any, what: str) -> list[Any]:
    if not isinstance(rows, list):
        raise ExchangeFailure(f"the exchange answered {what} with {type(rows).__name__}")
    return rows
