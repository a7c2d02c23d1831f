"""``fetch``: bring the lake up to date from an exchange and the crowd-data sources.

For each series (candles of a timeframe, funding, and the periodic series of
:mod:`cryptobot.data.series`: open interest, long/short ratios, taker volume, Fear & Greed) the
fetcher works out which ranges of the requested window are missing -- before the first stored
point when the requested start is earlier, every hole inside (:func:`missing_spans`), and after
the last one -- and pages through them with the source's largest page, each request starting
one period after the previous page ended, so N bars cost ceil(N / limit) requests. A source's
history limit (Binance keeps 30 days of its statistics) clips the start, so a cron job that
runs more often than that accumulates what the venue forgets. Only bars that have closed by the
exchange's clock are kept, and only observations known by it. Every page is written
(atomically) as it arrives, so a run killed half-way resumes where it stopped. Symbols run
concurrently, bounded by ``concurrency``; ccxt's throttle keeps the request rate within the
venue's limits.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cryptobot.core.errors import CryptobotError, DataError, UnknownSymbolError
from cryptobot.core.settings import UniverseSettings
from cryptobot.core.timeframes import bar_open, last_closed_open, timeframe_ms
from cryptobot.core.timeutil import DAY_MS, iso
from cryptobot.data import catalog
from cryptobot.data.lake import OHLCV, Lake
from cryptobot.data.series import FUNDING_HOLE_MS, holes, kind_of, nearest_second
from cryptobot.data.source import MarketDataSource
from cryptobot.data.sources import CrowdSource, ExchangeSource
from cryptobot.data.universe import top_symbols
from cryptobot.data.validate import first_conflict

log = logging.getLogger(__name__)

#: progress(key, done, total): called as pages arrive; ``total`` is the planned bar count.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FetchPlan:
    symbols: list[str] | None = None
    top: int | None = None
    timeframes: list[str] = field(default_factory=lambda: ["5m"])
    since: int | None = None
    days: float = 30.0
    bars: int | None = None  # instead of since/days: this many closed bars of each timeframe
    funding: bool = False
    open_interest: bool = False
    open_interest_period: str = "1h"  # also the period of the crowd series
    crowd: bool = False  # funding, and every series each source serves (open interest, ...)


@dataclass
class SeriesResult:
    symbol: str | None  # None: a series for the whole market (Fear & Greed)
    dataset: str  # a timeframe, "funding", or "<kind>:<period>" (open_interest:1h)
    new: int = 0
    total: int | None = 0  # None: unknown (the series failed)
    gaps: int | None = 0
    first: str | None = None
    last: str | None = None
    requests: int = 0
    error: str | None = None


class Fetcher:
    def __init__(
        self,
        exchange: MarketDataSource,
        lake: Lake,
        universe: UniverseSettings,
        *,
        concurrency: int = 4,
        progress: Progress | None = None,
        sources: list[CrowdSource] | None = None,
    ) -> None:
        self.exchange = exchange
        self.lake = lake
        self.universe = universe
        self.sources = sources if sources is not None else [ExchangeSource(exchange)]
        self._slots = asyncio.Semaphore(concurrency)
        self._progress = progress or (lambda key, done, total: None)

    async def run(self, plan: FetchPlan) -> list[SeriesResult]:
        markets = await self.exchange.load_markets()
        self.lake.write_markets(self.exchange.id, list(markets.values()))
        symbols = await self.select(plan, markets)
        now = await self.exchange.now()
        if plan.since is not None and plan.since > now:
            raise CryptobotError(
                f"--from {iso(plan.since)} is after the exchange's clock ({iso(now)}): "
                "nothing there can be stored yet"
            )
        start = plan.since if plan.since is not None else now - int(plan.days * DAY_MS)
        jobs = []
        period = plan.open_interest_period
        for symbol in symbols:
            for tf in plan.timeframes:
                out = SeriesResult(symbol, tf)
                begin = _start(plan, tf, start, now)
                jobs.append(self._guard(out, self.candles(symbol, tf, begin, now, out)))
            if plan.funding or plan.crowd:
                out = SeriesResult(symbol, "funding")
                jobs.append(self._guard(out, self.funding(symbol, start, now, out)))
            for source, kind in self._series_wanted(plan, per_symbol=True):
                out = SeriesResult(symbol, f"{kind}:{kind_of(kind).period or period}")
                job = self.series(source, kind, symbol=symbol, period=period, start=start,
                                  now=now, result=out)  # fmt: skip
                jobs.append(self._guard(out, job))
        for source, kind in self._series_wanted(plan, per_symbol=False):
            out = SeriesResult(None, f"{kind}:{kind_of(kind).period}")
            job = self.series(source, kind, symbol=None, period=period, start=start, now=now,
                              result=out)  # fmt: skip
            jobs.append(self._guard(out, job))
        results = list(await asyncio.gather(*jobs))
        catalog.refresh_views(self.lake.root)
        return results

    async def select(self, plan: FetchPlan, markets: dict) -> list[str]:
        if plan.symbols:
            unknown = [s for s in plan.symbols if s not in markets]
            if unknown:
                raise UnknownSymbolError(
                    f"{self.exchange.id} lists no contract {', '.join(unknown)}"
                    " (perpetuals are written like BTC/USDT:USDT)"
                )
            return list(plan.symbols)
        if not plan.top:
            raise CryptobotError("say which symbols: --symbols BTC/USDT:USDT,... or --top N")
        tickers = await self.exchange.fetch_tickers()
        chosen = top_symbols(markets, tickers, plan.top, self.universe)
        log.info("top %d by 24h quote volume: %s", plan.top, ", ".join(chosen))
        return chosen

    async def candles(
        self, symbol: str, tf: str, start: int, now: int, result: SeriesResult
    ) -> SeriesResult:
        tf_ms = timeframe_ms(tf)
        end = last_closed_open(now, tf_ms)
        start = bar_open(start - 1, tf_ms) + tf_ms  # first bar open at or after start
        stored = self.lake.read_candle_columns(
            self.exchange.id, symbol, tf, start - tf_ms, end, prices=()
        )["timestamp"]
        ranges = missing_spans(stored, start=start, end=end, step=tf_ms)
        planned = sum((hi - lo) // tf_ms + 1 for lo, hi in ranges)
        key = f"{symbol} {tf}"
        for lo, hi in ranges:
            cursor = lo
            while cursor <= hi:
                limit = min(self.exchange.ohlcv_limit, (hi - cursor) // tf_ms + 1)
                rows = await self.exchange.fetch_ohlcv(symbol, tf, cursor, limit)
                result.requests += 1
                rows = [r for r in rows if cursor <= r[0] <= hi]
                if not rows:
                    break
                frame = pd.DataFrame(rows, columns=OHLCV)
                _refuse_clash(frame, frame["timestamp"].to_numpy(), f"{tf} bars")
                written = self.lake.write_candles(
                    self.exchange.id,
                    symbol,
                    tf,
                    frame,
                    now_ms=now,
                    source="fetch",
                    check_spacing=False,  # bars of the timeframe asked for; a page may be sparse
                )
                result.new += written.new_rows
                self._progress(key, result.new, planned)
                cursor = int(rows[-1][0]) + tf_ms
        report = self.lake.candle_report(self.exchange.id, symbol, tf)
        result.total, result.gaps = report.bars, report.gaps
        result.first, result.last = iso(report.first), iso(report.last)
        self._progress(key, planned, planned)
        return result

    async def funding(
        self, symbol: str, start: int, now: int, result: SeriesResult
    ) -> SeriesResult:
        stored = self.lake.read_funding(self.exchange.id, symbol).timestamp.to_numpy()
        wanted = missing_spans(stored, start=start, end=now, step=1000, widest=FUNDING_HOLE_MS)
        for lo, hi in wanted:
            await self._funding_pages(symbol, lo, hi, result, now)
        _describe_rows(result, self.lake.read_funding(self.exchange.id, symbol), kind="funding")
        return result

    async def _funding_pages(
        self, symbol: str, lo: int, hi: int, result: SeriesResult, now: int
    ) -> None:
        """Funding times are not a fixed grid: page on from the last one served, 1 s later."""
        cursor, limit = lo, self.exchange.funding_limit
        while cursor <= hi:
            rows = await self.exchange.fetch_funding_history(symbol, cursor, limit)
            result.requests += 1
            rows = [r for r in rows if cursor <= r.timestamp <= hi]
            if rows:
                frame = pd.DataFrame(
                    {
                        "timestamp": [r.timestamp for r in rows],
                        "funding_rate": [r.funding_rate for r in rows],
                    }
                )
                _refuse_clash(frame, nearest_second(frame["timestamp"].to_numpy()), "funding rates")
                written = self.lake.write_funding(self.exchange.id, symbol, frame, now_ms=now)
                result.new += written.new_rows
                cursor = rows[-1].timestamp + 1000
            # a short page ends the range only within one of its intervals of the end: a venue
            # serving fewer rows than asked (a limit set above its cap) has more from there
            if not rows or (len(rows) < limit and hi - rows[-1].timestamp < _interval(rows)):
                break

    def _series_wanted(self, plan: FetchPlan, *, per_symbol: bool) -> list[tuple]:
        """(source, kind) of every periodic series the plan asks for: open interest with
        ``--open-interest``; everything each source serves with ``--crowd``."""
        asked = {"open_interest"} if plan.open_interest else set()
        return [
            (source, kind)
            for source in self.sources
            if source.per_symbol == per_symbol
            for kind in sorted(source.kinds() if plan.crowd else source.kinds() & asked)
        ]

    async def series(
        self,
        source: CrowdSource,
        kind: str,
        *,
        symbol: str | None,
        period: str,
        start: int,
        now: int,
        result: SeriesResult,
    ) -> SeriesResult:
        """Complete one periodic series from ``source`` within the history it keeps: up to the
        snapshot taken at the exchange's clock, or for a sum over a period (taker volume) up to
        the last period closed by it."""
        spec = kind_of(kind)
        period = spec.period or period
        p_ms = timeframe_ms(period)
        if source.max_days is not None:  # the oldest point the source still serves
            start = max(start, now - source.max_days * DAY_MS + p_ms)
        start = -(-start // p_ms) * p_ms
        end = last_closed_open(now, p_ms) + (0 if spec.summed else p_ms)
        stored = self.lake.read_series(kind, source.name, symbol, period).timestamp.to_numpy()
        for lo, hi in missing_spans(stored, start=start, end=end, step=p_ms):
            cursor = lo
            while cursor <= hi:
                n = min(source.page_limit, (hi - cursor) // p_ms + 1)
                page = await source.page(
                    kind, symbol=symbol, period=period, since=cursor, limit=n, now=now
                )
                result.requests += 1
                page = page[(page.timestamp >= cursor) & (page.timestamp <= hi)]
                if page.empty:
                    break
                _refuse_clash(page, nearest_second(page["timestamp"].to_numpy()), f"{kind} rows")
                written = self.lake.write_series(
                    kind, source.name, symbol, period, page, now_ms=now, origin="fetch"
                )
                result.new += written.new_rows
                cursor = int(page.timestamp.max()) + p_ms
        stored = self.lake.read_series(kind, source.name, symbol, period)
        _describe_rows(result, stored, kind=kind, period_ms=p_ms if spec.periodic else None)
        return result

    async def _guard(self, result: SeriesResult, job) -> SeriesResult:
        """Run one series into ``result``; a failure is recorded in its row (with what was
        stored and asked before it; its extent unknown) and the others carry on: one bad
        series must not cost the rest their rows, whatever it raised."""
        async with self._slots:
            try:
                return await job
            except Exception as exc:  # any failure is this series' own
                said = str(exc) if isinstance(exc, CryptobotError) else f"unexpected {exc!r}"
                debug = log.isEnabledFor(logging.DEBUG)
                log.error("%s %s: %s", result.symbol, result.dataset, said, exc_info=debug)
                result.error, result.total, result.gaps = said, None, None
                result.first = result.last = None
                return result


def _interval(rows: list) -> int:
    """The funding interval a page shows (its last step), at most the longest a venue has."""
    if len(rows) < 2:
        return FUNDING_HOLE_MS
    return min(FUNDING_HOLE_MS, rows[-1].timestamp - rows[-2].timestamp + 60_000)


def _refuse_clash(page: pd.DataFrame, stamps: np.ndarray, what: str) -> None:
    """A page holding two different rows for one time (``stamps``: as the lake files them) is
    the venue's error: which one is meant cannot be guessed (``--import`` refuses such a file
    alike); the same row twice is harmless."""
    if clash := first_conflict(page, stamps):
        raise DataError(f"the exchange served two different {what} for {iso(clash[2])}")


def _start(plan: FetchPlan, timeframe: str, start: int, now: int) -> int:
    if plan.bars is None:
        return start
    tf_ms = timeframe_ms(timeframe)
    return last_closed_open(now, tf_ms) - (plan.bars - 1) * tf_ms


def missing_spans(
    stored: np.ndarray, *, start: int, end: int, step: int, widest: int | None = None
) -> list[tuple[int, int]]:
    """The inclusive spans of [start, end] a series lacks, given its ``stored`` times (any
    order; those from ``widest`` before ``start`` on are enough): before its first point (an
    earlier --from back-fills), every hole inside (a back-fill killed or cut short by a page
    that never came, a scan's window fetched after a stale lake: each a hole no later run
    would fill if only the ends were asked for) and after its last (a re-run resumes).

    A hole is two points further apart than ``widest`` (default ``step``, the grid of a
    periodic series; funding: the longest interval a venue settles at); ``step`` is how far
    from a stored point the next one is asked for. A real hole at the venue (an outage) is
    asked for again on each run that covers it: one request, which brings nothing."""
    widest = step if widest is None else widest
    times = np.unique(stored[(stored >= start - widest) & (stored <= end)])
    if not len(times):
        return [(start, end)] if start <= end else []
    # from ``start`` when a point can be missing before the first: one interval of the series
    # (its first step, at most ``widest``: funding settled every 8, 4 or 1 h) or more away
    every = min(widest, int(times[1] - times[0])) if len(times) > 1 else step
    spans = [(start, int(times[0]) - step)] if times[0] - start >= every else []
    wide = np.flatnonzero(np.diff(times) > widest)
    spans += [(max(int(times[i]) + step, start), int(times[i + 1]) - step) for i in wide]
    spans.append((max(int(times[-1]) + step, start), end))
    return [(lo, hi) for lo, hi in spans if lo <= hi]


def _describe_rows(
    result: SeriesResult, stored: pd.DataFrame, *, kind: str, period_ms: int | None = None
) -> None:
    """The series' extent after the run, and the holes left in it (as ``--status`` counts
    them: a periodic series' missing periods, funding's settlements more than 8 h apart)."""
    result.total = len(stored)
    result.gaps, _ = holes(stored["timestamp"].to_numpy(), period_ms, kind=kind_of(kind))
    if len(stored):
        result.first = iso(int(stored.timestamp.min()))
        result.last = iso(int(stored.timestamp.max()))
