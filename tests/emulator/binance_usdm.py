"""Binance USDⓈ-M REST emulator served on 127.0.0.1 for the real ccxt client.

It speaks the endpoints ``ccxt.binanceusdm`` calls for market data (exchangeInfo, klines,
24h tickers, funding history, open-interest history, leverage brackets, time), Binance's crowd
statistics (global and top-trader long/short ratios, taker buy/sell volume: ``/futures/data``,
the last 30 days only, as Binance keeps them) and alternative.me's Fear & Greed index
(``/fng/``, newest first, epoch seconds as strings) with the response shapes recorded in
``../shared/data/exchange-fixtures`` (nautilus_trader's copies of Binance's documented examples:
ratio and taker rows carry their numbers as strings, the taker timestamp too). Candles, funding
and Fear & Greed are the real files in ``../shared/data``; what the files lack is synthesised
and says so: quote volume (volume x close), taker-buy volume (half the volume), open interest
and the long/short shares (smooth deterministic curves), the taker buy/sell split of the real
volume of each period (a curve around one half), leverage brackets (Binance's documented
BTCUSDT table for every symbol). The liquidation stream is served by :mod:`binance_ws`.

The emulator has its own clock (``now_ms``): only bars that opened by then exist, and the bar
that is still open is served as it is in the file (a live venue would serve it partly formed).

The trading account (balance, positions, orders, algo orders, fills, funding, liquidation)
lives in :mod:`binance_account`, :mod:`binance_orders` and :mod:`binance_matching`; its signed
routes in :mod:`binance_trading`. This module only routes GET/POST/PUT/DELETE to them.

Faults are injected on demand (:class:`Faults`): 429 with Retry-After, 418, 5xx, slow
responses (client timeouts), malformed JSON, and a response dropped after the request was
processed. Every request is logged with its time and outcome so tests can check back-off.
"""

import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow.parquet as pq

from tests.emulator.binance_account import Account, Rejected
from tests.emulator.binance_margin import BTC_BRACKETS, brackets_from
from tests.emulator.binance_matching import Matching
from tests.emulator.binance_orders import Spec
from tests.emulator.binance_trading import TradingApi, check_signed
from tests.emulator.loopback import LoopbackServer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_NOW = 1_744_027_200_000  # 2025-04-07T12:00:00Z: inside most shared Binance series

_TF_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "1w": 604_800_000,
}
# tick size, step size per base (Binance USDⓈ-M values); others get a price-based guess.
_SPECS = {
    "BTC": ("0.10", "0.001"),
    "ETH": ("0.01", "0.001"),
    "SOL": ("0.0100", "1"),
    "XRP": ("0.0001", "0.1"),
    "BNB": ("0.010", "0.01"),
    "LTC": ("0.01", "0.001"),
    "ADA": ("0.00010", "1"),
    "LINK": ("0.001", "0.01"),
    "BCH": ("0.01", "0.001"),
}
EXTRA_MARKETS = ("USDCUSDT", "BTCUSDT_250627")  # a stablecoin perp and a quarterly future


# the routes that place, change, cancel or look up orders (for ``Faults.paths``)
TRADING_PATHS = (
    "/fapi/v1/order",
    "/fapi/v1/algoOrder",
    "/fapi/v1/openOrders",
    "/fapi/v1/openAlgoOrders",
    "/fapi/v1/allOpenOrders",
    "/fapi/v1/algoOpenOrders",
    "/fapi/v3/positionRisk",
    "/fapi/v3/account",
    "/fapi/v1/userTrades",
    "/fapi/v1/leverage",
    "/fapi/v1/marginType",
)


@dataclass
class Faults:
    """What goes wrong, and how often (``rate`` is the chance per request).

    Per request (``kinds``): 429 and 418 with Retry-After, 500/502/503, ``slow`` (the request
    waits ``slow_s`` before it is processed: an order still lands after the client gave up),
    ``late`` (processed at once, answered after ``slow_s``: the client times out on an order
    that exists), ``drop`` (processed, then the connection is closed without an answer: the
    response is lost after the order was accepted), ``malformed`` (a truncated JSON body).
    Per order (the matching engine reads these): ``partial`` is the chance that an order's
    first fill is only ``partial_share`` of it (the rest fills at the next tick) and every new
    order answers "does not exist" (-2013) to its first ``not_found`` lookups."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500")  # 429 418 500 502 503 slow late malformed drop
    retry_after_s: int = 1
    slow_s: float = 2.0
    paths: tuple[str, ...] = ("/fapi/v1/klines",)  # only these paths fail ("" = all)
    seed: int = 7
    first: int = 0  # the first N requests to each path fail for sure (then ``rate`` decides)
    partial: float = 0.0
    partial_share: float = 0.5
    not_found: int = 0
    rng: random.Random = field(init=False)
    seen: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def pick(self, path: str) -> str | None:
        if not any(path.startswith(p) for p in self.paths):
            return None
        self.seen[path] = self.seen.get(path, 0) + 1
        if self.seen[path] <= self.first:
            return self.rng.choice(self.kinds)
        if not self.rate:
            return None
        return self.rng.choice(self.kinds) if self.rng.random() < self.rate else None


@dataclass
class Hit:
    t: float
    path: str
    params: dict[str, str]
    outcome: str  # "ok" or the fault kind
    retry_after: int | None = None
    method: str = "GET"
    status: int | None = None  # what the route answered (None: faulted before routing)


class BinanceEmulator(LoopbackServer):
    def __init__(
        self, data_dir: Path = SHARED, now_ms: int = DEFAULT_NOW, balance: float = 10_000.0
    ) -> None:
        self.data_dir = data_dir
        self.now_ms = now_ms
        self.faults = Faults()
        self.hits: list[Hit] = []
        self.on_klines: Any = None  # optional callback(count) after each served klines page
        self.latency_s = 0.0  # added to every klines answer, to observe concurrency
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self.symbols = sorted(
            p.name.removesuffix("_USDT_USDT")
            for p in (data_dir / "candles" / "binance").glob("*_USDT_USDT")
        )
        self.account = Account(balance=balance, brackets=brackets_from(BTC_BRACKETS))
        self.engine = Matching(self, self.account)
        self.trading = TradingApi(self.engine)
        super().__init__(_handler(self))

    def count(self, path: str, outcome: str | None = None) -> int:
        return sum(1 for h in self.hits if h.path == path and outcome in (None, h.outcome))

    # ---- data ----------------------------------------------------------------------------
    def bars(self, base: str, interval: str) -> np.ndarray:
        """All bars of a file as rows [ts, o, h, l, c, v] (empty when there is no file)."""
        key = (base, interval)
        if key not in self._cache:
            path = (
                self.data_dir / "candles" / "binance" / f"{base}_USDT_USDT" / f"{interval}.parquet"
            )
            if path.exists():
                t = pq.read_table(path).to_pandas()
                cols = ["timestamp", "open", "high", "low", "close", "volume"]
                self._cache[key] = t[cols].to_numpy(dtype="float64")
            else:
                self._cache[key] = np.empty((0, 6))
        return self._cache[key]

    def visible(self, base: str, interval: str) -> np.ndarray:
        """Bars that have opened by the emulator's clock (the last one may still be open)."""
        bars = self.bars(base, interval)
        return bars[bars[:, 0] <= self.now_ms]

    def closed(self, base: str, interval: str) -> np.ndarray:
        bars = self.bars(base, interval)
        return bars[bars[:, 0] + _TF_MS[interval] <= self.now_ms]

    def funding(self, base: str) -> list[tuple[int, float]]:
        path = self.data_dir / "funding" / "binance" / f"{base}_USDT_USDT.parquet"
        if not path.exists():
            return []
        t = pq.read_table(path).to_pandas()
        return [
            (int(a), float(b))
            for a, b in zip(t.timestamp, t.funding_rate, strict=True)
            if a <= self.now_ms
        ]

    def spec(self, symbol: str) -> Spec | None:
        """Tick, step and minimum notional of a tradable perpetual (None: unknown symbol)."""
        base = self._base_of(symbol)
        if base is None:
            return None
        tick, step = _SPECS.get(base, self._guess_spec(base))
        return Spec(float(tick), float(step), 5.0 if base != "BTC" else 100.0)

    # ---- endpoints -----------------------------------------------------------------------
    def route(
        self,
        path: str,
        q: dict[str, str],
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        signed = self.trading.routes(q).get((method, path))
        if signed is not None:
            try:
                check_signed(q, headers or {})
            except Rejected as no:
                return no.status, no.body
            return self.trading.answer(signed)
        public = self.trading.public_routes(q).get(path)
        if public is not None and method == "GET":
            return self.trading.answer(public)
        if method != "GET":
            return 404, {"code": -1000, "msg": f"emulator does not serve {method} {path}"}
        routes = {
            "/fapi/v1/time": lambda: (200, {"serverTime": self.now_ms}),
            "/fapi/v1/exchangeInfo": self.exchange_info,
            "/fapi/v1/klines": lambda: self.klines(q),
            "/fapi/v1/ticker/24hr": lambda: self.tickers(q),
            "/fapi/v1/fundingRate": lambda: self.funding_rate(q),
            "/futures/data/openInterestHist": lambda: self.open_interest(q),
            "/futures/data/globalLongShortAccountRatio": lambda: self.ratios(q, 0.0),
            "/futures/data/topLongShortAccountRatio": lambda: self.ratios(q, 1.0),
            "/futures/data/topLongShortPositionRatio": lambda: self.ratios(q, 2.0),
            "/futures/data/takerlongshortRatio": lambda: self.taker_volume(q),
            "/fng/": lambda: self.fear_greed(q),
            "/fapi/v1/leverageBracket": lambda: self.brackets(q),
        }
        if path not in routes:
            return 404, {"code": -1000, "msg": f"emulator does not serve {path}"}
        try:
            return routes[path]()
        except Rejected as no:
            return no.status, no.body

    def _base_of(self, symbol: str | None) -> str | None:
        if symbol and symbol.endswith("USDT") and symbol[:-4] in self.symbols:
            return symbol[:-4]
        return None

    def exchange_info(self) -> tuple[int, Any]:
        symbols = [self._symbol_info(f"{b}USDT", b, "PERPETUAL") for b in self.symbols]
        symbols.append(self._symbol_info("USDCUSDT", "USDC", "PERPETUAL"))
        symbols.append(self._symbol_info("BTCUSDT_250627", "BTC", "CURRENT_QUARTER"))
        return 200, {
            "timezone": "UTC",
            "serverTime": self.now_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                }
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }

    def _symbol_info(self, symbol: str, base: str, contract: str) -> dict[str, Any]:
        tick, step = _SPECS.get(base, self._guess_spec(base))
        return {
            "symbol": symbol,
            "pair": f"{base}USDT",
            "contractType": contract,
            "deliveryDate": 4133404800000 if contract == "PERPETUAL" else 1751011200000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": base,
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": max(0, -int(math.log10(float(tick)))),
            "quantityPrecision": max(0, -int(math.log10(float(step)))),
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": tick,
                    "maxPrice": "1000000",
                    "tickSize": tick,
                },
                {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000000", "minQty": step},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "stepSize": step,
                    "maxQty": "100000",
                    "minQty": step,
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": "5" if base != "BTC" else "100"},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": [
                "LIMIT",
                "MARKET",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }

    def _guess_spec(self, base: str) -> tuple[str, str]:
        bars = self.bars(base, "5m")
        price = float(bars[-1, 4]) if len(bars) else 1.0
        digits = max(0, 4 - math.floor(math.log10(price)))
        return f"{10**-digits:.{digits}f}", "1"

    def klines(self, q: dict[str, str]) -> tuple[int, Any]:
        base, interval = self._base_of(q.get("symbol")), q.get("interval", "")
        if base is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if interval not in _TF_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        limit = min(int(q.get("limit", 500)), 1500)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.latency_s)
        with self._lock:
            self.in_flight -= 1
        bars = self.visible(base, interval)
        if "endTime" in q:
            bars = bars[bars[:, 0] <= int(q["endTime"])]
        if "startTime" in q:
            bars = bars[bars[:, 0] >= int(q["startTime"])][:limit]
        else:
            bars = bars[-limit:]
        tf = _TF_MS[interval]
        rows = [
            [
                int(b[0]),
                _s(b[1]),
                _s(b[2]),
                _s(b[3]),
                _s(b[4]),
                _s(b[5]),
                int(b[0]) + tf - 1,
                _s(b[5] * b[4]),
                100,
                _s(b[5] / 2),
                _s(b[5] * b[4] / 2),
                "0",
            ]
            for b in bars
        ]
        with self._lock:
            served = self.count("/fapi/v1/klines", "ok") + 1
        if self.on_klines:
            self.on_klines(served)
        return 200, rows

    def tickers(self, q: dict[str, str]) -> tuple[int, Any]:
        out = []
        for b in self.symbols:
            bars = self.visible(b, "5m")
            day = bars[bars[:, 0] > self.now_ms - 86_400_000]
            out.append(self._ticker(f"{b}USDT", day))
        # the stablecoin perp and the quarterly are the busiest, so a correct ranking must skip them
        top = max((t["quoteVolume"] for t in out), default="0")
        for extra in EXTRA_MARKETS:
            out.append(self._ticker(extra, np.empty((0, 6)), float(top) * 3))
        if "symbol" in q:
            out = [t for t in out if t["symbol"] == q["symbol"]]
            return (200, out[0]) if out else (400, {"code": -1121, "msg": "Invalid symbol."})
        return 200, out

    def _ticker(self, symbol: str, day: np.ndarray, quote_volume: float | None = None) -> dict:
        last = float(day[-1, 4]) if len(day) else 1.0
        first = float(day[0, 1]) if len(day) else 1.0
        qv = quote_volume if quote_volume is not None else float((day[:, 4] * day[:, 5]).sum())
        return {
            "symbol": symbol,
            "priceChange": _s(last - first),
            "priceChangePercent": _s((last / first - 1) * 100),
            "weightedAvgPrice": _s(last),
            "lastPrice": _s(last),
            "lastQty": "1",
            "openPrice": _s(first),
            "highPrice": _s(day[:, 2].max() if len(day) else last),
            "lowPrice": _s(day[:, 3].min() if len(day) else last),
            "volume": _s(day[:, 5].sum() if len(day) else 0.0),
            "quoteVolume": _s(qv),
            "openTime": self.now_ms - 86_400_000,
            "closeTime": self.now_ms,
            "firstId": 1,
            "lastId": 2,
            "count": 2,
        }

    def funding_rate(self, q: dict[str, str]) -> tuple[int, Any]:
        base = self._base_of(q.get("symbol"))
        if base is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        rows = self.funding(base)
        limit = min(int(q.get("limit", 100)), 1000)
        if "endTime" in q:
            rows = [r for r in rows if r[0] <= int(q["endTime"])]
        rows = (
            [r for r in rows if r[0] >= int(q["startTime"])][:limit]
            if "startTime" in q
            else rows[-limit:]
        )
        return 200, [
            {"symbol": f"{base}USDT", "fundingTime": t, "fundingRate": f"{r:.8f}", "markPrice": ""}
            for t, r in rows
        ]

    def _stat_stamps(self, q: dict[str, str]) -> tuple[str, int, list[int]]:
        """Base, period length and the period stamps a ``/futures/data`` request asks for,
        within the last 30 days (what Binance keeps)."""
        base, period = self._base_of(q.get("symbol")), q.get("period", "")
        if base is None:
            raise Rejected(-1121, "Invalid symbol.")
        if period not in _TF_MS or period in ("1m", "3m"):
            raise Rejected(-1130, "Invalid period.")
        tf = _TF_MS[period]
        limit = min(int(q.get("limit", 30)), 500)
        newest = (self.now_ms // tf) * tf
        oldest = newest - 30 * 86_400_000  # Binance keeps 30 days
        start = max(int(q.get("startTime", oldest)), oldest)
        end = min(int(q.get("endTime", newest)), newest)
        start = -(-start // tf) * tf
        stamps = list(range(start, end + 1, tf))
        return base, tf, stamps[:limit] if "startTime" in q else stamps[-limit:]

    def open_interest(self, q: dict[str, str]) -> tuple[int, Any]:
        base, _, stamps = self._stat_stamps(q)
        prices = self.bars(base, "5m")
        rows = []
        for t in stamps:
            amount = 10_000 * (1 + 0.2 * math.sin(t / 86_400_000))
            i = np.searchsorted(prices[:, 0], t, side="right") - 1 if len(prices) else -1
            price = float(prices[i, 4]) if i >= 0 else 1.0
            rows.append(
                {
                    "symbol": f"{base}USDT",
                    "sumOpenInterest": _s(amount),
                    "sumOpenInterestValue": _s(amount * price),
                    "timestamp": t,
                }
            )
        return 200, rows

    def long_share(self, t: int, phase: float) -> float:
        """The synthetic share of accounts long at ``t`` (``phase``: which ratio)."""
        days = t / 86_400_000
        return 0.5 + 0.15 * math.sin(days / 2.7 + phase) + 0.04 * math.sin(days * 3.4 + phase)

    def ratios(self, q: dict[str, str], phase: float) -> tuple[int, Any]:
        base, _, stamps = self._stat_stamps(q)
        rows = []
        for t in stamps:
            long = round(self.long_share(t, phase), 4)
            rows.append(
                {
                    "symbol": f"{base}USDT",
                    "longShortRatio": f"{long / (1 - long):.4f}",
                    "longAccount": f"{long:.4f}",
                    "shortAccount": f"{1 - long:.4f}",
                    "timestamp": t,
                }
            )
        return 200, rows

    def taker_split(self, t: int) -> float:
        return 0.5 + 0.1 * math.sin(t / 86_400_000 * 1.3)

    def taker_volume(self, q: dict[str, str]) -> tuple[int, Any]:
        """Per period: the real volume of the 5m bars inside it, split by a synthetic curve.
        Only closed periods are served."""
        base, tf, stamps = self._stat_stamps(q)
        bars = self.bars(base, "5m")
        rows = []
        for t in (t for t in stamps if t + tf <= self.now_ms):
            inside = bars[(bars[:, 0] >= t) & (bars[:, 0] < t + tf)]
            volume, buy = float(inside[:, 5].sum()), self.taker_split(t)
            rows.append(
                {
                    "buySellRatio": f"{buy / (1 - buy):.4f}",
                    "buyVol": f"{volume * buy:.4f}",
                    "sellVol": f"{volume * (1 - buy):.4f}",
                    "timestamp": str(t),
                }
            )
        return 200, rows

    def fear_greed(self, q: dict[str, str]) -> tuple[int, Any]:
        """alternative.me's ``/fng/``: ``limit`` newest days first (0: all history)."""
        path = self.data_dir / "sentiment" / "fear_greed_alternative_me_daily.parquet"
        table = pq.read_table(path).to_pandas()
        days = table[table.timestamp <= self.now_ms].iloc[::-1]
        limit = int(q.get("limit", 1))
        days = days if limit == 0 else days.head(limit)
        data = [
            {
                "value": str(int(v)),
                "value_classification": _fng_class(int(v)),
                "timestamp": str(int(t) // 1000),
            }
            for t, v in zip(days.timestamp, days.value, strict=True)
        ]
        if data:
            data[0]["time_until_update"] = str(86_400 - self.now_ms // 1000 % 86_400)
        return 200, {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}

    def brackets(self, q: dict[str, str]) -> tuple[int, Any]:
        rows = [
            {
                "bracket": i,
                "initialLeverage": b.max_leverage,
                "notionalCap": int(b.cap),
                "notionalFloor": int(b.floor),
                "maintMarginRatio": b.mmr,
                "cum": b.cum,
            }
            for i, b in enumerate(brackets_from(BTC_BRACKETS), start=1)
        ]
        return 200, [{"symbol": f"{b}USDT", "brackets": rows} for b in self.symbols]


def _s(x: float) -> str:
    return repr(float(x))


def _fng_class(value: int) -> str:
    """alternative.me's labels for the index's bands."""
    for top, label in ((24, "Extreme Fear"), (46, "Fear"), (54, "Neutral"), (74, "Greed")):
        if value <= top:
            return label
    return "Extreme Greed"


def _handler(emu: BinanceEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size).decode() if size else ""
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            q |= {k: v[-1] for k, v in parse_qs(body).items()}
            headers = {"X-MBX-APIKEY": self.headers.get("X-MBX-APIKEY", "")}
            with emu._lock:
                fault = emu.faults.pick(url.path)
                logged = {k: v for k, v in q.items() if k != "signature"}  # never log secrets
                hit = Hit(time.monotonic(), url.path, logged, fault or "ok", method=method)
                emu.hits.append(hit)
            if fault in ("429", "418"):
                hit.retry_after = emu.faults.retry_after_s
                body = {"code": -1003, "msg": "Too many requests; current limit exceeded."}
                return self._send(int(fault), body, {"Retry-After": str(hit.retry_after)})
            if fault in ("500", "502", "503"):
                return self._send(int(fault), {"code": -1001, "msg": "Internal error."})
            if fault == "slow":
                time.sleep(emu.faults.slow_s)
            try:
                status, answer = emu.route(url.path, q, method, headers)
            except Exception as exc:  # an emulator bug: visible in hits, answered as a 500
                hit.outcome = f"emulator error: {exc!r}"
                return self._send(500, {"code": -1, "msg": repr(exc)})
            hit.status = status
            if fault == "drop":  # processed, then the connection dies before any answer
                self.close_connection = True
                return None
            if fault == "late":  # processed at once, answered after the client gave up
                time.sleep(emu.faults.slow_s)
            if fault == "malformed":
                return self._send_raw(200, b'[[1744000000000, "83000.1", "8', "application/json")
            return self._send(status, answer)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

        def _send_raw(
            self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            try:
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                self.close_connection = True

    return Handler
