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
is the venue-neutral one (:mod:`account`, :mod:`orders`, :mod:`matching`) under Binance's
rules; its signed routes, in Binance's parameters, codes and shapes, are in
:mod:`binance_trading`. This module only routes GET/POST/PUT/DELETE to them.

Faults are injected on demand (:class:`~tests.emulator.faults.Faults`): 429 with Retry-After,
418, 5xx, slow responses (client timeouts), malformed JSON, and a response dropped after the
request was processed. Every request is logged with its time and outcome so tests can check
back-off.
"""

import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow.parquet as pq

from tests.emulator.account import Account, Rejected
from tests.emulator.binance_trading import TradingApi, check_signed, refusal
from tests.emulator.margin import brackets_from
from tests.emulator.matching import Rules
from tests.emulator.serving import DEFAULT_NOW, SHARED, TF_MS, VenueServer

# Binance's documented BTCUSDT brackets: (notional cap, maintenance margin rate, max leverage)
BTC_BRACKETS = [
    (50_000, 0.004, 125),
    (250_000, 0.005, 100),
    (3_000_000, 0.01, 50),
    (15_000_000, 0.025, 20),
    (30_000_000, 0.05, 10),
    (80_000_000, 0.1, 5),
    (100_000_000, 0.125, 4),
    (200_000_000, 0.15, 3),
    (300_000_000, 0.25, 2),
    (500_000_000, 0.5, 1),
]
EXTRA_MARKETS = ("USDCUSDT", "BTCUSDT_250627")  # a stablecoin perp and a quarterly future
#: Binance rejects a crossing GTX order (-5022) and keeps client ids unique among open orders
RULES = Rules(post_only="reject", unique_ids="open", protection_follows_position=False)


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


class BinanceEmulator(VenueServer):
    key_header: ClassVar[str] = "X-MBX-APIKEY"
    secret_params: ClassVar[tuple[str, ...]] = ("signature",)

    def __init__(
        self, data_dir: Path = SHARED, now_ms: int = DEFAULT_NOW, balance: float = 10_000.0
    ) -> None:
        self.on_klines: Any = None  # optional callback(count) after each served klines page
        self.latency_s = 0.0  # added to every klines answer, to observe concurrency
        self.in_flight = 0
        self.max_in_flight = 0
        account = Account(brackets=brackets_from(BTC_BRACKETS), balance=balance)
        super().__init__(data_dir, now_ms, account, RULES)
        self.trading = TradingApi(self.engine)

    def min_notional(self, base: str) -> float:
        return 5.0 if base != "BTC" else 100.0

    def rate_limited(self) -> dict[str, Any]:
        return {"code": -1003, "msg": "Too many requests; current limit exceeded."}

    def unwell(self) -> dict[str, Any]:
        return {"code": -1001, "msg": "Internal error."}

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
                return refusal(no)
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
            return refusal(no)

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
        tick, step = self.tick_step(base)
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

    def klines(self, q: dict[str, str]) -> tuple[int, Any]:
        base, interval = self.base_of(q.get("symbol")), q.get("interval", "")
        if base is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if interval not in TF_MS:
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
        tf = TF_MS[interval]
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
        base = self.base_of(q.get("symbol"))
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
        base, period = self.base_of(q.get("symbol")), q.get("period", "")
        if base is None:
            raise Rejected(-1121, "Invalid symbol.")
        if period not in TF_MS or period in ("1m", "3m"):
            raise Rejected(-1130, "Invalid period.")
        tf = TF_MS[period]
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
            first, end = np.searchsorted(bars[:, 0], [t, t + tf])  # the bars are in time order
            volume, buy = float(bars[first:end, 5].sum()), self.taker_split(t)
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
