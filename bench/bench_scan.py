"""Scan speed: 30 symbols, all three strategies, 1,500 closed bars of every timeframe they read
(15m + 5m for bos_fvg_fib, 1h + 4h for momentum, 1m + 5m + 1d for breakout), candles already
in the lake (the deterministic synthetic sample market, 63 days).

Reports wall seconds (median of several runs, one core) for the offline scan (read the lake,
rank relative strength, run every detector) and for the detectors alone, beside the baseline:
smartmoneyconcepts computing swings + FVG + BOS/CHoCH on the same 15m and 5m frames.
"""

import asyncio
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.exchange.factory import sim_setup
from cryptobot.exchange.replay import ReplayExchange
from cryptobot.strategies.registry import resolve
from cryptobot.strategies.scanner import ScanRequest, detect_all, load_frames, scan, timeframes_of

ROOT = Path(__file__).resolve().parents[1]
BARS = 1500
RUNS = 5
NAMES = ["bos_fvg_fib", "momentum", "breakout"]


def median_seconds(fn) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # its import prints a banner
        from smartmoneyconcepts import smc
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, str(ROOT / "examples/make_sample_market.py"), tmp, "--days", "63"],
            check=True,
            capture_output=True,
        )
        lake = Lake(tmp)
        chosen = resolve(NAMES, settings)
        request = ScanRequest(NAMES, top=30, within=1, offline=True, bars=BARS)

        def offline_scan():
            return asyncio.run(
                scan(
                    ReplayExchange(lake, "synthetic", setup=sim_setup(settings)),
                    lake,
                    settings,
                    request,
                )
            )

        result = offline_scan()
        now, symbols = result.as_of, result.symbols
        frames = {
            s: load_frames(
                lake, "synthetic", s, timeframes=timeframes_of(chosen), now=now, bars=BARS
            )
            for s in symbols
        }

        def detectors():
            detect_all("synthetic", symbols, frames, chosen, benchmark="BTC/USDT:USDT")

        def baseline():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for s in symbols:
                    for tf in ("15m", "5m"):
                        frame = frames[s][tf]
                        swings = smc.swing_highs_lows(frame, swing_length=4)
                        smc.fvg(frame)
                        smc.bos_choch(frame, swings)

        base = median_seconds(baseline)
        rows = [
            ("baseline: smartmoneyconcepts swings+FVG+BOS, 15m+5m", base),
            ("cryptobot detectors only (3 strategies, all timeframes)", median_seconds(detectors)),
            (
                "cryptobot offline scan (lake read + RS ranks + detectors)",
                median_seconds(offline_scan),
            ),
        ]
    bars = sum(len(f) for per in frames.values() for f in per.values())
    print(f"\n{len(symbols)} symbols, {bars:,} bars in all, median of {RUNS} runs\n")
    print(f"| {'step':<58} | {'seconds':>8} | {'vs baseline':>11} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 13}|")
    for name, secs in rows:
        print(f"| {name:<58} | {secs:8.3f} | {secs / base:10.2f}x |")
    print(f"\nsetups at the last bar: {len(result.setups)}; target: the scan under 1 s")


if __name__ == "__main__":
    main()
