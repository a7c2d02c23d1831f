"""One scan: refresh the candles the strategies need, run them on closed bars, keep what is
actionable now (triggered on one of the last ``within`` bars) or worth watching (armed).

The detectors are the same functions a backtest runs over the whole history; the scan only
looks at the newest bars of their output.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cryptobot.analysis.strength import relative_strength, universe_percentiles
from cryptobot.core.errors import CryptobotError
from cryptobot.core.settings import Settings
from cryptobot.core.setup import Setup
from cryptobot.core.timeframes import last_closed_open, timeframe_ms
from cryptobot.data.fetcher import Fetcher, FetchPlan
from cryptobot.data.lake import Lake
from cryptobot.exchange.base import Exchange
from cryptobot.strategies.base import Strategy, SymbolData
from cryptobot.strategies.registry import resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanRequest:
    strategies: list[str]
    symbols: list[str] | None = None
    top: int | None = None
    within: int = 1
    min_confidence: int | None = None  # None: each strategy's configured minimum (or 0)
    offline: bool = False
    bars: int = 500


@dataclass
class ScanResult:
    as_of: int
    symbols: list[str]
    setups: list[Setup]
    errors: list[str] = field(default_factory=list)


async def scan(exchange: Exchange, lake: Lake, settings: Settings, req: ScanRequest) -> ScanResult:
    chosen = resolve(req.strategies, settings)
    timeframes = timeframes_of(chosen)
    markets = await exchange.load_markets()
    fetcher = Fetcher(exchange, lake, settings.universe, settings.fetch.concurrency)
    symbols = await fetcher.select(FetchPlan(symbols=req.symbols, top=req.top), markets)
    benchmark = settings.scan.benchmark
    wanted = symbols + ([benchmark] if benchmark in markets and benchmark not in symbols else [])
    errors = []
    if not req.offline:
        plan = FetchPlan(symbols=wanted, timeframes=timeframes, bars=req.bars)
        errors = [f"{r.symbol} {r.dataset}: {r.error}" for r in await fetcher.run(plan) if r.error]
    now = await exchange.now()
    frames = {s: load_frames(lake, exchange.id, s, timeframes, now, req.bars) for s in wanted}
    setups = detect_all(exchange.id, symbols, frames, chosen, settings.scan.benchmark, now)
    return ScanResult(now, symbols, _keep(setups, chosen, req, now), errors)


def timeframes_of(chosen: list[tuple[Strategy, Any]]) -> list[str]:
    """Every timeframe the strategies read, shortest first."""
    return sorted({tf for s, p in chosen for tf in s.timeframes(p)}, key=timeframe_ms)


def detect_all(
    exchange_id: str,
    symbols: list[str],
    frames: dict[str, dict[str, pd.DataFrame]],
    chosen: list[tuple[Strategy, Any]],
    benchmark: str,
    now: int,
) -> list[Setup]:
    """Every strategy on every symbol (a detector returns nothing when it has too few bars)."""
    bench = frames.get(benchmark, {})
    ranks = _rs_percentiles(symbols, frames, bench, chosen)
    out = []
    for symbol in symbols:
        data = SymbolData(exchange_id, symbol, frames[symbol], ranks.get(symbol), bench)
        for strategy, params in chosen:
            out += strategy.detect(data, params)
    return out


def load_frames(
    lake: Lake, exchange_id: str, symbol: str, timeframes: list[str], now: int, bars: int
) -> dict[str, pd.DataFrame]:
    """The last ``bars`` bars of each timeframe that had closed by ``now``."""
    out = {}
    for tf in timeframes:
        tf_ms = timeframe_ms(tf)
        last = last_closed_open(now, tf_ms)
        frame = lake.read_candles(exchange_id, symbol, tf, last - (bars - 1) * tf_ms, last)
        out[tf] = frame.reset_index(drop=True)
    return out


def _rs_percentiles(symbols, frames, bench, chosen) -> dict[str, pd.Series]:
    """Universe percentiles of relative strength for the breakout strategy, when it runs."""
    params = [p for s, p in chosen if s.name == "breakout"]
    if not params or len(symbols) < 2:
        return {}
    tf, period = params[0].confirm_timeframe, params[0].rs_period
    if tf not in bench or len(bench[tf]) == 0:
        return {}
    strengths = {
        s: relative_strength(frames[s][tf], bench[tf], period)
        for s in symbols
        if len(frames[s].get(tf, ())) > period
    }
    table = universe_percentiles(strengths)
    return {s: table[s] for s in table.columns}


def _keep(setups: list[Setup], chosen, req: ScanRequest, now: int) -> list[Setup]:
    minimum = {s.name: getattr(p, "min_confidence", 0) for s, p in chosen}
    kept = []
    for setup in setups:
        floor = req.min_confidence if req.min_confidence is not None else minimum[setup.strategy]
        tf_ms = timeframe_ms(setup.timeframe)
        recent = setup.ts >= last_closed_open(now, tf_ms) - (req.within - 1) * tf_ms
        if setup.confidence >= floor and (setup.status == "armed" or recent):
            kept.append(setup)
    return sorted(kept, key=lambda s: (-s.ts, s.status != "triggered", -s.confidence, s.symbol))


async def watch(
    run_once: Callable[[], Awaitable[int]],
    wait: Callable[[int], Awaitable[None]],
    cycles: int | None = None,
) -> None:
    """Scan, then wait for the next candle close, again and again (``cycles`` times if given).

    ``run_once`` returns the scan's clock; ``wait`` sleeps until the next bar after it closed.
    A failing scan is logged and the loop carries on at the next close.
    """
    done = 0
    while cycles is None or done < cycles:
        try:
            as_of = await run_once()
        except CryptobotError as exc:
            log.error("scan failed: %s", exc)
            as_of = None
        done += 1
        if cycles is None or done < cycles:
            await wait(as_of)


def seconds_to_next_close(now_ms: int, timeframe: str, grace_s: float = 2.0) -> float:
    """Seconds from ``now_ms`` until the current ``timeframe`` bar has closed (plus a grace
    period for the exchange to publish it)."""
    tf_ms = timeframe_ms(timeframe)
    return (tf_ms - now_ms % tf_ms) / 1000 + grace_s
