"""The replay exchange: a lake's stored candles served through the exchange interface with a
clock, and a simulated account trading on them.

The clock decides what exists: only bars that have closed by ``clock.now`` are served (a
replayed venue cannot know a forming bar's partial values), tickers are computed from the
candles of the last 24 hours (the last price: the open of the bar trading at the clock, its
first trade, which a market order sent then meets; past the stored bars, the last close), and
funding and open interest are cut at the clock too. Advancing the clock is how backtests and
the daemon move through history; it never goes back.

Trading (``TradingExchange``): an order rests until the clock has passed the first stored bar
opening at or after the moment it was placed, and fills by ``fills/``'s rules (see
``exchange.sim``): market orders at that bar's open with slippage, stops and take-profits by the
backtest's exit rules, each market's maker/taker fee from ``load_markets``, funding at the
stored funding times, isolated liquidation at fills.liquidation's price. Orders are matched on
``setup.timeframe`` (default: the symbol's smallest stored timeframe). The account lives in
memory, one per exchange object.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cryptobot.core.account import AccountState, Fill, FundingPayment, Order
from cryptobot.core.errors import CryptobotError, DataError, UnknownSymbolError
from cryptobot.core.market import Market
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import DAY_MS, iso
from cryptobot.data.lake import OHLCV, Lake
from cryptobot.exchange.base import FundingRate, OhlcvRow, OpenInterest, Ticker
from cryptobot.exchange.errors import ClockWentBack
from cryptobot.exchange.simulated import Bar, SimSetup, SimulatedExchange, select
from cryptobot.fills.funding import funding_charges

if TYPE_CHECKING:
    from cryptobot.exchange.sim import SimAccount


@dataclass
class ReplayClock:
    """The replayed time in ms; it moves forward only."""

    now_ms: int

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ClockWentBack(f"the replay clock cannot move back ({ms} ms)")
        self.now_ms += ms

    async def wait(self, seconds: float) -> None:
        """``seconds`` pass: the clock moves (what a venue on this clock waits by)."""
        self.advance(round(seconds * 1000))

    def move_to(self, ms: int) -> None:
        if ms < self.now_ms:
            raise ClockWentBack(
                f"the replay clock is at {iso(self.now_ms)}; it cannot move back to {iso(ms)}"
            )
        self.now_ms = ms


class ReplayExchange(SimulatedExchange):
    ohlcv_limit = 1500
    funding_limit = 1000
    open_interest_limit = 500
    open_interest_max_days = 3650

    def __init__(
        self,
        lake: Lake,
        source_exchange: str,
        clock: ReplayClock | None = None,
        *,
        setup: SimSetup,
    ):
        """``setup`` is required (its costs above all): a replay that traded for free by default
        would flatter every strategy run on it. A replay that only serves candles still says
        what its account would pay (``exchange.factory.sim_setup``: the config's)."""
        self.id = source_exchange
        self.setup = setup
        self._lake = lake
        self._series: dict[tuple[str, str], np.ndarray] = {}
        self._funding: dict[tuple[str, str], np.ndarray] = {}
        self._state = self.setup.new_state()
        self._done: dict[str, Order] = {}  # orders no longer open, by client order id
        self._fills: list[Fill] = []
        self._payments: list[FundingPayment] = []
        self._markets: dict[str, Market] | None = None
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

    async def wait(self, seconds: float) -> None:
        await self.clock.wait(seconds)

    def waits_in_real_time(self) -> bool:
        return False

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        if self._markets is None or reload:
            stored = self._lake.read_markets(self.id)
            self._markets = {s: stored.get(s) or _assumed_market(s) for s in self._timeframes}
        return self._markets

    async def fetch_tickers(self) -> dict[str, Ticker]:
        now = self.clock.now_ms
        out = {}
        for symbol, tfs in self._timeframes.items():
            tf = min(tfs, key=timeframe_ms)
            bars = self._closed(symbol, tf, now - DAY_MS, now)
            last = self._trading_open(symbol, tf, now)
            if last is None and len(bars):
                last = float(bars[-1, 4])
            volume = float((bars[:, 4] * bars[:, 5]).sum()) if len(bars) else 0.0
            out[symbol] = Ticker(symbol, last, volume, now if len(bars) else None)
        return out

    def _trading_open(self, symbol: str, timeframe: str, now: int) -> float | None:
        """The open of the stored bar trading at ``now`` (opened by then, not closed): the
        venue's newest trade a replay knows without looking past the clock. After a close it is
        the next bar's open, the price a market order sent at that close meets (as a live
        ticker's last is). None: no such bar, or its open is no price."""
        bars = self._load(symbol, timeframe)
        i = int(np.searchsorted(bars[:, 0], now, side="right")) - 1
        if i < 0 or bars[i, 0] + timeframe_ms(timeframe) <= now:
            return None
        price = float(bars[i, 1])
        return price if np.isfinite(price) and price > 0 else None

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

    # ---- trading on the stored bars ------------------------------------------------------
    def session(self) -> "_MemorySession":
        return _MemorySession(self)

    async def bars(self, symbol: str, since: int, until: int) -> list[Bar]:
        tf = self._matching_timeframe(symbol)
        rows = self._closed(symbol, tf, since, until)
        charges = self._charges(symbol, tf)
        first = int(np.searchsorted(self._load(symbol, tf)[:, 0], since, side="left"))
        return [
            Bar(int(r[0]), *map(float, r[1:6]), *map(float, charges[first + i]))
            for i, r in enumerate(rows)
        ]

    async def last_bar(self, symbol: str, now: int) -> Bar | None:
        self._known(symbol)
        rows = self._closed(symbol, self._matching_timeframe(symbol), now - 2 * DAY_MS, now)
        bars = (Bar(int(r[0]), *map(float, r[1:6])) for r in rows[::-1])
        return next((b for b in bars if b.valid), None)  # a bad stored bar is no price

    def bar_ms(self, symbol: str) -> int:
        return timeframe_ms(self._matching_timeframe(symbol))

    def _matching_timeframe(self, symbol: str) -> str:
        stored = self._timeframes[symbol]
        wanted = self.setup.timeframe
        if wanted is None:
            return min(stored, key=timeframe_ms)
        if wanted not in stored:
            raise DataError(
                f"the replay exchange matches orders on {wanted} bars; none are stored for "
                f"{symbol} (stored: {', '.join(sorted(stored, key=timeframe_ms))})"
            )
        return wanted

    def _charges(self, symbol: str, tf: str) -> np.ndarray:
        """Funding charged at each stored bar's open (``fills.funding``'s rule)."""
        key = (symbol, tf)
        if key not in self._funding:
            stamps = self._load(symbol, tf)[:, 0].astype(np.int64)
            funding = self._lake.read_funding(self.id, symbol)
            self._funding[key] = funding_charges(stamps, funding, None)[0]
        return self._funding[key]

    def _known(self, symbol: str) -> None:
        if symbol not in self._timeframes:
            raise UnknownSymbolError(f"replay exchange {self.id!r} has no candles for {symbol}")

    def _closed(self, symbol: str, timeframe: str, start: int, now: int) -> np.ndarray:
        """Bars with open time >= start that have closed by ``now``."""
        bars = self._load(symbol, timeframe)
        if not len(bars):
            return bars
        tf_ms = timeframe_ms(timeframe)
        lo = np.searchsorted(bars[:, 0], start, side="left")
        hi = np.searchsorted(bars[:, 0], now - tf_ms, side="right")
        return bars[lo:hi]

    def _load(self, symbol: str, timeframe: str) -> np.ndarray:
        key = (symbol, timeframe)
        if key not in self._series:
            frame = self._lake.read_candles(self.id, symbol, timeframe)
            self._series[key] = frame[OHLCV].to_numpy(dtype="float64")
        return self._series[key]

    def _newest_close(self) -> int:
        """Default clock: the moment the newest stored bar of any series closed."""
        newest = 0
        for symbol, tfs in self._timeframes.items():
            for tf in tfs:
                last = self._lake.last_candle_time(self.id, symbol, tf)
                newest = max(newest, (last or 0) + timeframe_ms(tf))
        return newest


class _MemorySession:
    """A call on the in-memory account: it works on a copy, kept only if the call succeeds."""

    def __init__(self, venue: ReplayExchange) -> None:
        self._venue = venue
        self.state: AccountState = venue._state.working_copy()
        self._account: SimAccount | None = None

    async def find_order(self, client_order_id: str) -> Order | None:
        return self._venue._done.get(client_order_id)

    async def fills(self, symbol: str | None, since: int | None) -> list[Fill]:
        return select(self._venue._fills, symbol, since)

    async def payments(self, symbol: str | None, since: int | None) -> list[FundingPayment]:
        return select(self._venue._payments, symbol, since)

    def keep(self, account: "SimAccount") -> None:
        self._account = account

    async def __aenter__(self) -> "_MemorySession":
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None or self._account is None:
            return
        venue = self._venue
        venue._state = self.state
        venue._done.update(
            (cid, o) for cid, o in self._account.changed.items() if o.status != "open"
        )
        venue._fills.extend(self._account.fills)
        venue._payments.extend(self._account.payments)


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
