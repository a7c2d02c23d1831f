"""Import + validate + store one year of 5m bars (~105k) for one symbol.

Prints the median of several runs, each into a fresh lake, beside a baseline in the same
process: a bare `DataFrame.to_parquet` of the same bars (no validation, no partitioning, no
merge, no atomic rename). Real Binance BTC/USDT:USDT 5m candles from ../shared/data (2023).
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from cryptobot.data.importer import read_candle_file
from cryptobot.data.lake import Lake

SOURCE = (
    Path(__file__).resolve().parents[2] / "shared/data/candles/binance/BTC_USDT_USDT/5m.parquet"
)
YEAR = (1_672_531_200_000, 1_704_067_200_000)  # 2023-01-01 .. 2024-01-01
RUNS = 5


def median_seconds(fn) -> float:
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            fn(Path(tmp))
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    if not SOURCE.exists():
        sys.exit(f"skipped: {SOURCE} is not present")
    full = read_candle_file(SOURCE)
    year = full[(full.timestamp >= YEAR[0]) & (full.timestamp < YEAR[1])].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.parquet"
        year.to_parquet(path)

        def ours(root: Path) -> None:
            Lake(root).write_candles("binanceusdm", "BTC/USDT:USDT", "5m", read_candle_file(path))

        def again(root: Path) -> None:  # re-import over an existing lake: merge, nothing new
            lake = Lake(root)
            lake.write_candles("binanceusdm", "BTC/USDT:USDT", "5m", year)
            start = time.perf_counter()
            lake.write_candles("binanceusdm", "BTC/USDT:USDT", "5m", read_candle_file(path))
            again.seconds.append(time.perf_counter() - start)

        again.seconds = []

        def baseline(root: Path) -> None:
            pd.read_parquet(path).to_parquet(root / "plain.parquet")

        base = median_seconds(baseline)
        first = median_seconds(ours)
        median_seconds(again)
        repeat = statistics.median(again.seconds)
    rows = [
        ("baseline: read + DataFrame.to_parquet", base),
        ("cryptobot import (read, validate, partition, atomic write)", first),
        ("cryptobot re-import of the same year (merge, no change)", repeat),
    ]
    print(f"\n{len(year):,} bars of BTC/USDT:USDT 5m (2023), median of {RUNS} runs\n")
    print(f"| {'step':<58} | {'seconds':>8} | {'bars/s':>11} | {'vs baseline':>11} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 13}|{'-' * 13}|")
    for name, secs in rows:
        print(f"| {name:<58} | {secs:8.3f} | {len(year) / secs:11,.0f} | {secs / base:10.1f}x |")
    print("\ntarget: import well under 1 s")


if __name__ == "__main__":
    main()
