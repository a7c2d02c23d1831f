"""The lake's writers that tests/test_lake_hardening.py starts in processes of their own
(``spawn``): a module that imports only what they use, so each child starts in a fraction of
the time the test module and its conftest take (pytest, hypothesis, the emulator, the CLI)."""

import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cryptobot.data import locks
from cryptobot.data.atomic import atomic_write
from cryptobot.data.lake import Lake
from tests.bars import walk_bars

SYMBOL = "BTC/USDT:USDT"
JAN_2025 = 1_735_689_600_000
NOW = 1_767_225_600_000  # 2026-01-01, the clock the lake tests pass in
DAYS = 3  # of 5m bars that concurrent writers share out, one hour per write


def write_share(root: str, share: int, writers: int, start) -> None:
    """One writer: every ``writers``-th hour of the month, one hour per write, plus its funding
    rows and the markets file, so the writers interleave as much as they can."""
    lake = Lake(root)
    bars = walk_bars(JAN_2025, DAYS * 288, seed=7)
    hours = (bars.timestamp - JAN_2025) // 3_600_000
    start.wait()
    for hour in range(share, DAYS * 24, writers):
        lake.write_candles("x", SYMBOL, "5m", bars[hours == hour], now_ms=NOW, source="test")
        if hour % (writers * 8) == share:
            funding = pd.DataFrame(
                {"timestamp": [JAN_2025 + hour * 3_600_000], "funding_rate": [1e-4]}
            )
            lake.write_funding("x", SYMBOL, funding)
    lake.write_markets("x", [])


def hold_lock_then_write(root: str, ready, go) -> None:
    """A writer that holds the series lock with its temp file on disk until told to finish."""
    directory = Lake(root).candle_dir("x", SYMBOL, "5m")
    bars = walk_bars(JAN_2025, 12)

    def slow(tmp: Path) -> None:
        ready.set()
        go.wait()
        bars.to_parquet(tmp, index=False)

    with locks.exclusive(directory / ".lock"):
        atomic_write(directory / "2025-01.parquet", slow)


def write_later_bars(root: str, started) -> None:
    started.set()
    Lake(root).write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025 + 12 * 300_000, 12), now_ms=NOW)


def stall_mid_write(root: str, ready) -> None:
    def half(table, where, **kwargs) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        ready.set()
        time.sleep(600)

    pq.write_table = half  # this process only: it is killed before it could finish
    Lake(root).write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025, 100), now_ms=NOW)
