"""Numba's cache filled before the test workers start (``conftest.pytest_configure`` runs this
module once, in a child process, when the suite runs on several workers).

A kernel compiled by one process is saved for every later one, but processes that start
together each compile it: three workers and the command processes their first tests start
each spent ~25 s of CPU compiling the backtest's kernels on a fresh cache, which is what every
CI run has (a fresh machine; the cache folder is named after the sources' folder). One process
compiling them first (~30 s) and the rest loading them is cheaper. A failure here fails
nothing: the tests that use a kernel compile it themselves and say what is wrong.

vectorbt's cached kernels (``tests/test_backtest_libraries.py``: its trades' records and
metrics, ~3 s of CPU on a fresh cache) are compiled beside ours, in a second process: the other
CPU sits idle while this one runs. Its simulation is not among them: vectorbt does not cache it
(``cache=False``), so the worker that runs the comparison compiles it (~6 s, once: both of its
runs call it with the same argument types).

Usage: python -m tests.warm_kernels [--libraries]   (--libraries: vectorbt's only)
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from cryptobot.cli.app import app
from cryptobot.data.lake import Lake

SYMBOL = "BTC/USDT:USDT"
#: every path that compiles kernels: units and risk sizing, each detector, the stepwise engine
RUNS = (
    ("--strategy", "ema_cross", "--timeframe", "5m"),
    ("--strategy", "ema_cross", "--timeframe", "5m", "--risk-usd", "10", "--stop-atr", "2"),
    ("--strategy", "bos_fvg_fib", "--risk-usd", "10"),
    ("--strategy", "momentum", "--risk-usd", "10"),
    ("--strategy", "breakout", "--risk-usd", "10"),
    ("--strategy", "ema_cross", "--timeframe", "5m", "--risk-usd", "10", "--stop-atr", "2",
     "--stepwise"),
    ("--strategy", "bos_fvg_fib", "--risk-usd", "10", "--stepwise"),
)  # fmt: skip
OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
TIMEFRAMES = {"1m": None, "5m": "5min", "15m": "15min", "1h": "1h", "1d": "1D"}


def market(root: Path, *, days: int = 30) -> None:
    """A seeded random walk in 1m bars, stored with the longer timeframes built from it."""
    n = 1440 * days
    rng = np.random.default_rng(11)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0015, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.0008, (2, n))) * close
    bars = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + wick[0],
                         "low": np.minimum(open_, close) - wick[1], "close": close,
                         "volume": rng.uniform(50, 150, n)},
                        index=pd.date_range("2024-01-01", periods=n, freq="1min"))  # fmt: skip
    lake = Lake(root)
    for timeframe, rule in TIMEFRAMES.items():
        frame = bars if rule is None else bars.resample(rule).agg(OHLCV)
        frame = frame.dropna().rename_axis("ts").reset_index()
        frame.insert(0, "timestamp", frame.pop("ts").dt.as_unit("ms").astype("int64"))
        lake.write_candles("binanceusdm", SYMBOL, timeframe, frame)


def libraries() -> int:
    """vectorbt's cached kernels compiled by the reference comparison's own call, on a few
    days of real bars (one run: with or without the stop, the same kernels)."""
    from tests.conftest import BINANCE
    from tests.test_backtest_libraries import vectorbt_run

    frame = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1m.parquet").iloc[:5_000]
    vectorbt_run(frame, 1.5)
    return 0


def main() -> int:
    beside = subprocess.Popen([sys.executable, "-m", "tests.warm_kernels", "--libraries"])
    try:
        return max(ours(), beside.wait())
    finally:
        beside.kill()


def ours() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        market(Path(tmp))
        runner, failed = CliRunner(), 0
        for args in RUNS:
            done = runner.invoke(
                app,
                ["backtest", "--symbols", SYMBOL, "--no-journal", "-f", "json", *args],
                env={"CRYPTOBOT_DATA_DIR": tmp},
            )
            if done.exit_code:
                failed += 1
                print(f"warm_kernels: {' '.join(args)}: {done.output.strip()[-300:]}",
                      file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(libraries() if sys.argv[1:] == ["--libraries"] else main())
