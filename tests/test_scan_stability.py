"""A scan's setups do not depend on when it ran: scanning at T and at T + k bars reports the
same setups (ids, entry, stop, targets, to the last bit) for bars <= T, and those are what a
backtest over the whole stored history sees. Real candles in a real lake, the offline scan."""

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cryptobot.core.errors import DataError
from cryptobot.core.timeframes import last_closed_open, timeframe_ms
from cryptobot.core.timeutil import parse_time
from cryptobot.data.lake import Lake
from cryptobot.data.resample import resample
from cryptobot.exchange.factory import sim_setup
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.strategies import scanner
from cryptobot.strategies.registry import resolve
from tests.conftest import BINANCE

WITHIN = 300  # bars of the trigger timeframe compared
LATER = (1, 37, 199)  # k: the second scan stands this many trigger bars later (<= bars - WITHIN)

# strategy, symbols, the first scan's clock, the stored span: (symbol, timeframe, from, to)
CASES = {
    "bos_fvg_fib": (
        ["ETH/USDT:USDT", "BTC/USDT:USDT"],
        "2025-03-07T12:00:00Z",
        [(s, tf, "2025-01-20", "2025-03-25") for s in ("ETH", "BTC") for tf in ("15m", "5m")],
    ),
    "momentum": (
        ["BTC/USDT:USDT", "ETH/USDT:USDT"],
        "2025-03-01T00:00:00Z",
        [(s, "1h", "2024-01-01", "2025-03-10") for s in ("ETH", "BTC")],
    ),
    "breakout": (
        ["SOL/USDT:USDT"],
        "2025-05-18T16:00:00Z",
        [
            ("SOL", "1m", "2025-05-05", "2025-05-19"),
            ("SOL", "5m", "2025-05-01", "2025-05-19"),
            ("SOL", "1d", "2025-01-01", "2025-05-19"),
            ("BTC", "5m", "2025-05-01", "2025-05-19"),
        ],
    ),
}


def _store(lake: Lake, spans) -> None:
    for base, tf, start, end in spans:
        frame = pq.read_table(BINANCE / f"{base}_USDT_USDT/{tf}.parquet").to_pandas()
        frame = frame[frame.timestamp.between(parse_time(start), parse_time(end))]
        lake.write_candles("binance", f"{base}/USDT:USDT", tf, frame)
        if tf == "1h":  # the lake holds no 4h for these: the scan reads a stored one
            lake.write_candles("binance", f"{base}/USDT:USDT", "4h", resample(frame, "1h", "4h"))


def _scan(lake: Lake, settings, strategy: str, symbols: list[str], now: int, within: int):
    req = scanner.ScanRequest(
        strategies=[strategy],
        symbols=symbols,
        within=within,
        min_confidence=0,
        offline=True,
        bars=settings.scan.bars,
    )
    exchange = ReplayExchange(lake, "binance", ReplayClock(now), setup=sim_setup(settings))
    return asyncio.run(scanner.scan(exchange, lake, settings, req))


def _triggered(setups, last_bar: int, first_bar: int) -> list[dict]:
    """The triggered setups on bars first..last, as records, in one order."""
    kept = [s for s in setups if s.status == "triggered" and first_bar <= s.ts <= last_bar]
    return [s.to_json() for s in sorted(kept, key=lambda s: s.id)]


@pytest.mark.parametrize("strategy", list(CASES))
def test_scan_at_t_and_later_agree_on_earlier_bars(shared, settings, tmp_path: Path, strategy):
    """Any k: the window moves by k bars, and so does the warm-up before it."""
    symbols, clock, spans = CASES[strategy]
    lake = Lake(tmp_path / "lake")
    _store(lake, spans)
    chosen = resolve([strategy], settings)
    tf_ms = timeframe_ms(min(chosen[0][0].timeframes(chosen[0][1]), key=timeframe_ms))
    now = parse_time(clock)
    last = last_closed_open(now, tf_ms)
    first = last - (WITHIN - 1) * tf_ms
    early = _scan(lake, settings, strategy, symbols, now, WITHIN)
    seen = _triggered(early.setups, last, first)
    assert seen, "the compared bars should hold triggered setups"
    for k in LATER:
        later = _scan(lake, settings, strategy, symbols, now + k * tf_ms, WITHIN + k)
        assert _triggered(later.setups, last, first) == seen, f"k = {k}"
    # ...and what a backtest sees: the same detectors over everything stored up to T
    frames = {
        s: scanner.load_frames(
            lake, "binance", s, timeframes=scanner.timeframes_of(chosen), now=now, bars=10**6
        )
        for s in [*symbols, settings.scan.benchmark]
    }
    everything = scanner.detect_all("binance", symbols, frames, chosen, benchmark="BTC/USDT:USDT")
    assert _triggered(everything, last, first) == seen


def test_scan_window_is_not_its_warm_up(shared, settings, tmp_path: Path):
    """A wide --within reports the window's bars only, never the warm-up read before it."""
    symbols, clock, spans = CASES["momentum"]
    lake = Lake(tmp_path / "lake")
    _store(lake, spans)
    now = parse_time(clock)
    result = _scan(lake, settings, "momentum", symbols, now, 10_000)
    oldest = last_closed_open(now, 3_600_000) - (settings.scan.bars - 1) * 3_600_000
    assert result.setups and min(s.ts for s in result.setups) >= oldest


def test_notes_say_why_a_scan_is_empty(shared, settings, tmp_path: Path):
    """Stale and missing timeframes are notes of the result (the CLI prints them)."""
    lake = Lake(tmp_path / "lake")
    _store(lake, [("ETH", "15m", "2025-03-01", "2025-03-10")])
    now = parse_time("2025-03-14T00:00:00Z")
    result = _scan(lake, settings, "bos_fvg_fib", ["ETH/USDT:USDT"], now, 1)
    assert result.setups == []
    assert result.notes == [
        "ETH/USDT:USDT: no 5m candles stored; its strategies saw nothing",
        "ETH/USDT:USDT: newest stored 15m bar closed 4.0 days before the scan's clock "
        "(2025-03-10T00:15:00Z); its setups are not current",
        "0 setups at 2025-03-14T00:00:00Z (bos_fvg_fib; symbols scanned: 1)",
    ]
    current = _scan(
        lake, settings, "bos_fvg_fib", ["ETH/USDT:USDT"], parse_time("2025-03-10T00:15:00Z"), 1
    )
    assert not any("not current" in n for n in current.notes)


def test_offline_scan_of_an_unstored_symbol(shared, settings, tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    _store(lake, [("ETH", "15m", "2025-03-01", "2025-03-10")])
    with pytest.raises(DataError, match="no candles stored for SOL/USDT:USDT on binance"):
        _scan(lake, settings, "bos_fvg_fib", ["SOL/USDT:USDT"], parse_time("2025-03-10"), 1)
