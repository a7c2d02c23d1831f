"""One scan: refresh the candles the strategies need, run them on closed bars, keep what is
actionable now (triggered on one of the last ``within`` bars) or worth watching (armed).

The detectors are the same functions a backtest runs over the whole history; the scan only
looks at the newest bars of their output. So that it sees what a backtest saw, it reads
``WARMUP_BARS`` more closed bars before its ``scan.bars`` window (and fetches them with it) and
reports only setups on the window's bars: indicators that start from a seed (EMA, MACD and
Wilder's RSI/ATR/ADX) have forgotten where the read began by then, and swings and breaks have
re-synchronised, so a bar's setups do not change from one scan to the next.

What a trader should know about a scan that is not a setup (nothing found, a timeframe with
no stored candles, stored candles that stop well before the scan's clock) comes back as
``ScanResult.notes``, one line each.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cryptobot.analysis.strength import relative_strength, universe_percentiles
from cryptobot.core.errors import CryptobotError, DataError
from cryptobot.core.settings import Settings
from cryptobot.core.setup import Setup
from cryptobot.core.timeframes import bar_open, last_closed_open, timeframe_ms
from cryptobot.core.timeutil import DAY_MS, iso
from cryptobot.data.fetcher import Fetcher, FetchPlan
from cryptobot.data.lake import Lake
from cryptobot.exchange.base import Exchange
from cryptobot.strategies.base import SymbolData
from cryptobot.strategies.registry import resolve
from cryptobot.strategies.spec import Strategy

log = logging.getLogger(__name__)

WARMUP_BARS = 1000
"""Extra bars read before the reported window. The slowest default smoothing (ATR/ADX(14),
Wilder: 13/14 per bar) shrinks a seed's trace to 0.93^1000 < 1e-31 of its size, far below a
price tick; tests check scans at T and T + k agree exactly on real data."""


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
    notes: list[str] = field(default_factory=list)


async def scan(exchange: Exchange, lake: Lake, settings: Settings, req: ScanRequest) -> ScanResult:
    chosen = resolve(req.strategies, settings)
    timeframes = timeframes_of(chosen)
    markets = await exchange.load_markets()
    if req.offline and req.symbols:
        _require_stored(req.symbols, markets, exchange.id)
    fetcher = Fetcher(exchange, lake, settings.universe, concurrency=settings.fetch.concurrency)
    symbols = await fetcher.select(FetchPlan(symbols=req.symbols, top=req.top), markets)
    benchmark = settings.scan.benchmark
    wanted = symbols + ([benchmark] if benchmark in markets and benchmark not in symbols else [])
    depth = req.bars + WARMUP_BARS
    errors = []
    if not req.offline:
        plan = FetchPlan(symbols=wanted, timeframes=timeframes, bars=depth)
        errors = [f"{r.symbol} {r.dataset}: {r.error}" for r in await fetcher.run(plan) if r.error]
    now = await exchange.now()
    frames = {
        s: load_frames(lake, exchange.id, s, timeframes=timeframes, now=now, bars=depth)
        for s in wanted
    }
    contexts = load_contexts(lake=lake, settings=settings, exchange=exchange.id, symbols=symbols,
                             chosen=chosen, frames=frames, end=now)  # fmt: skip
    setups = detect_all(exchange.id, symbols, frames, chosen, benchmark=settings.scan.benchmark,
                        contexts=contexts)  # fmt: skip
    kept = _keep(setups, chosen, req, now)
    notes = data_notes(frames={s: frames[s] for s in symbols}, now=now)
    notes += context_notes(contexts=contexts, frames=frames, chosen=chosen, window=1)
    if not kept:
        names = ", ".join(s.name for s, _ in chosen)
        notes.append(f"0 setups at {iso(now)} ({names}; symbols scanned: {len(symbols)})")
    return ScanResult(now, symbols, kept, errors, notes)


def _require_stored(symbols: list[str], markets: dict, exchange_id: str) -> None:
    """Offline, a symbol the lake has no candles for is a missing download, not a bad name."""
    missing = [s for s in symbols if s not in markets]
    if missing:
        raise DataError(
            f"no candles stored for {', '.join(missing)} on {exchange_id}; run "
            f"`cryptobot fetch --symbols {','.join(missing)}` first"
        )


def data_notes(*, frames: dict[str, dict[str, pd.DataFrame]], now: int) -> list[str]:
    """One line per symbol and timeframe whose stored candles cannot give a current setup:
    none loaded, or the newest one closed before the scan's last closed bar (offline, a lake
    fetched days ago looks like a quiet market otherwise)."""
    notes = []
    for symbol, per_tf in frames.items():
        for tf, frame in per_tf.items():
            tf_ms = timeframe_ms(tf)
            if frame.empty:
                notes.append(f"{symbol}: no {tf} candles stored; its strategies saw nothing")
                continue
            newest = int(frame["timestamp"].iat[-1])
            if newest < last_closed_open(now, tf_ms):
                age = _age(now - newest - tf_ms)
                notes.append(
                    f"{symbol}: newest stored {tf} bar closed {age} before the scan's clock "
                    f"({iso(newest + tf_ms)}); its setups are not current"
                )
    return notes


def _age(ms: int) -> str:
    for unit, size in (("days", DAY_MS), ("hours", 3_600_000)):
        if ms >= size:
            return f"{ms / size:.1f} {unit}"
    return f"{ms / 60_000:.0f} minutes"


def timeframes_of(chosen: list[tuple[Strategy, Any]]) -> list[str]:
    """Every timeframe the strategies read, shortest first."""
    return sorted({tf for s, p in chosen for tf in s.timeframes(p)}, key=timeframe_ms)


def detect_all(
    exchange_id: str,
    symbols: list[str],
    frames: dict[str, dict[str, pd.DataFrame]],
    chosen: list[tuple[Strategy, Any]],
    *,
    benchmark: str,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Setup]:
    """Every strategy on every symbol (a detector returns nothing when it has too few bars);
    ``benchmark``: the symbol relative strength is measured against; ``contexts``: per
    symbol, what :func:`load_contexts` loaded. It reads no clock: the frames already end at
    the caller's (:func:`load_frames`)."""
    bench = frames.get(benchmark, {})
    ranks = _rs_percentiles(symbols, frames, bench, chosen)
    out = []
    for symbol in symbols:
        extra = (contexts or {}).get(symbol, {})
        data = SymbolData(exchange_id, symbol, frames[symbol], ranks.get(symbol), bench, extra)
        for strategy, params in chosen:
            out += strategy.detect(data, params)
    return out


def load_contexts(
    *,
    lake: Lake,
    settings: Settings,
    exchange: str,
    symbols: list[str],
    chosen: list[tuple[Strategy, Any]],
    frames: Mapping[str, Mapping[str, pd.DataFrame]],
    end: int,
) -> dict[str, dict[str, Any]]:
    """Per symbol and strategy, what a strategy with a ``context`` loader reads besides
    candles (known by ``end``), from its trigger timeframe's first loaded bar on."""
    out: dict[str, dict[str, Any]] = {s: {} for s in symbols}
    for strategy, params in chosen:
        if strategy.context is None:
            continue
        for symbol in symbols:
            frame = frames[symbol][min(strategy.timeframes(params), key=timeframe_ms)]
            start = int(frame["timestamp"].iat[0]) if len(frame) else end
            out[symbol][strategy.name] = strategy.context(
                lake=lake, settings=settings, exchange=exchange, symbol=symbol, params=params,
                start=start, end=end,
            )  # fmt: skip
    return out


def context_notes(
    *,
    contexts: Mapping[str, Mapping[str, Any]],
    frames: Mapping[str, Mapping[str, pd.DataFrame]],
    chosen: list[tuple[Strategy, Any]],
    window: int | None = None,
    start: int | None = None,
) -> list[str]:
    """What a context could not say at the bars looked at (the last ``window`` bars, or
    those from ``start``): e.g. crowd indicators with no data, which count as not firing."""
    notes = []
    for strategy, params in chosen:
        for symbol, per_strategy in contexts.items():
            ctx = per_strategy.get(strategy.name)
            if ctx is None:
                continue
            tf = min(strategy.timeframes(params), key=timeframe_ms)
            stamps = frames[symbol][tf]["timestamp"].to_numpy(dtype="int64")
            stamps = stamps[-window:] if window else stamps[stamps >= (start or 0)]
            if note := ctx.missing_note(symbol, stamps + timeframe_ms(tf), params):
                notes.append(note)
    return notes


def load_frames(
    lake: Lake, exchange_id: str, symbol: str, *, timeframes: list[str], now: int, bars: int
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
        recent = setup.ts >= last_closed_open(now, tf_ms) - (min(req.within, req.bars) - 1) * tf_ms
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
    return (bar_open(now_ms, tf_ms) + tf_ms - now_ms) / 1000 + grace_s
