"""The replay exchange: a lake's stored candles served through :class:`Exchange` with a clock.

The clock decides what exists: only bars that have closed by ``clock.now`` are served (a
replayed venue cannot know a forming bar's partial values), tickers are computed from the
candles of the last 24 hours, and funding and open interest are cut at the clock too. Advancing
the clock is how backtests and the daemon move through history.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptobot.core.errors import CryptobotError, UnknownSymbolError
from cryptobot.core.market import Market
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import DAY_MS
from cryptobot.data.lake import OHLCV, Lake
from cryptobot.exchange.base import Exchange, FundingRate, OhlcvRow, OpenInterest, Ticker


@dataclass
class ReplayClock:
    now_ms: int

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class ReplayExchange(Exchange):
    ohlcv_limit = 1500
    funding_limit = 1000
    open_interest_limit = 500
    open_interest_max_days = 3650

    def __init__(self, lake: Lake, source_exchange: str, clock: ReplayClock | None = None):
        self.id = source_exchange
        self._lake = lake
        self._series: dict[tuple[str, str], np.ndarray] = {}
        sets = [(s, tf) for ex, s, tf in lake.candle_sets(source_exchange)]
        if not sets:
            raise CryptobotError(
                f"the replay exchange has no candles: {lake.root}/candles/{source_exchange}"
                " is empty (run `cryptobot fetch` or `cryptobot fetch --import` there first)"
            )
        self._timeframes: dict[str, list[str]] = {}
        for symbol, tf in sets:
            self._timeframes.setdefault(symbol, []).append(tf)
        self.clock = clock or ReplayClock(self._newest_close())

    async def now(self) -> int:
        return self.clock.now_ms

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        stored = self._lake.read_markets(self.id)
        return {s: stored.get(s) or _assumed_market(s) for s in self._timeframes}

    async def fetch_tickers(self) -> dict[str, Ticker]:
        now = self.clock.now_ms
        out = {}
        for symbol, tfs in self._timeframes.items():
            tf = min(tfs, key=timeframe_ms)
            bars = self._closed(symbol, tf, now - DAY_MS, now)
            last = float(bars[-1, 4]) if len(bars) else None
            volume = float((bars[:, 4] * bars[:, 5]).sum()) if len(bars) else 0.0
            out[symbol] = Ticker(symbol, last, volume, now if len(bars) else None)
        return out

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int, limit: int
    ) -> list[OhlcvRow]:
        self._known(symbol)
        bars = self._closed(symbol, timeframe, since, self.clock.now_ms)[:limit]
        return [[int(r[0]), *map(float, r[1:])] for r in bars]

    async def fetch_funding_history(self, symbol: str, since: int, limit: int) -> list[FundingRate]:
        self._known(symbol)
        frame = self._lake.read_funding(self.id, symbol)
        frame = _window(frame, since, self.clock.now_ms)[:limit]
        pairs = zip(frame.timestamp, frame.funding_rate, strict=True)
        return [FundingRate(int(t), float(r)) for t, r in pairs]

    async def fetch_open_interest_history(
        self, symbol: str, period: str, since: int, limit: int
    ) -> list[OpenInterest]:
        self._known(symbol)
        frame = self._lake.read_open_interest(self.id, symbol, period)
        if frame.empty:
            return []
        frame = _window(frame, since, self.clock.now_ms)[:limit]
        return [
            OpenInterest(int(t), float(a), float(v))
            for t, a, v in zip(
                frame.timestamp, frame.open_interest, frame.open_interest_value, strict=True
            )
        ]

    def _known(self, symbol: str) -> None:
        if symbol not in self._timeframes:
            raise UnknownSymbolError(f"replay exchange {self.id!r} has no candles for {symbol}")

    def _closed(self, symbol: str, timeframe: str, start: int, now: int) -> np.ndarray:
        """Bars with open time >= start that have closed by ``now``."""
        key = (symbol, timeframe)
        if key not in self._series:
            frame = self._lake.read_candles(self.id, symbol, timeframe)
            self._series[key] = frame[OHLCV].to_numpy(dtype="float64")
        bars = self._series[key]
        if not len(bars):
            return bars
        tf_ms = timeframe_ms(timeframe)
        lo = np.searchsorted(bars[:, 0], start, side="left")
        hi = np.searchsorted(bars[:, 0], now - tf_ms, side="right")
        return bars[lo:hi]

    def _newest_close(self) -> int:
        """Default clock: the moment the newest stored bar of any series closed."""
        newest = 0
        for symbol, tfs in self._timeframes.items():
            for tf in tfs:
                last = self._lake.last_candle_time(self.id, symbol, tf)
                newest = max(newest, (last or 0) + timeframe_ms(tf))
        return newest


def _window(frame: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    return frame[(frame.timestamp >= start) & (frame.timestamp <= end)]


def _assumed_market(symbol: str) -> Market:
    """A market with no stored spec: contract size 1 and no exchange limits (documented)."""
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    return Market(
        symbol=symbol,
        id=symbol.replace("/", "").split(":")[0],
        base=base,
        quote=quote,
        settle=settle or None,
        type="swap" if settle else "spot",
        linear=True,
        active=True,
        contract_size=1.0,
        tick_size=None,
        step_size=None,
        min_qty=None,
        min_notional=None,
        max_leverage=None,
        maker=None,
        taker=None,
    )


__all__ = ["ReplayClock", "ReplayExchange"]
