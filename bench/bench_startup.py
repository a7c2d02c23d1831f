"""Start-up cost of whole ``cryptobot`` processes, as ratios to ``python -c 'import pandas'``
measured in the same run (so a busy or slow machine moves both sides).

Cases: ``--version``, ``--help``, ``size`` with flags (no lake), and a ``backtest`` of
1,000,000 stored synthetic 1m bars (ema_cross, the reference strategy; import, lake read, run,
summary, journal record), with and without ``-o FILE.parquet``. The lake is built once in a temp
dir; one warm-up run per case compiles/loads the numba cache, so cached runs are measured.
Each figure is the median wall time of N runs (default 5) and the peak RSS of the child.
Targets (the hardening issue): --version and --help <= 1.0x, size <= 2.5x, backtest <= 1.0 s.
``cpu s`` (user + system of the child, median) moves less than wall time on a shared machine.
Usage: python bench/bench_startup.py [--runs N] [--bars N]

Measured on 2 cores shared with four other engineers' test runs (load average 4-9, so
``import pandas`` took 0.5-1.7 s): read the ratios and CPU, not the wall times. Medians of 5
runs, the version before the start-up work and after it back to back:

    case                            before                       after
    backtest 1,000,000 bars         5.2-5.7x pandas, cpu 2.6 s    3.4-3.5x pandas, cpu 1.9-2.2 s
    ... -o                          7.4-7.7x pandas, cpu 3.1 s    3.8-4.2x pandas, cpu 2.5 s

The 1.0 s target is not met. CPU seconds of one backtest process after the work, by phase (in
process timers, minimum of 5 runs at load 7; an idle machine runs them ~1.3-1.5x faster):
python + imports 0.91 (pandas/numpy ~0.35, numba and its array lowering ~0.2, pydantic
settings ~0.1, pyarrow/duckdb/typer/rich/talib ~0.15, cryptobot ~0.1); lake read of 24
monthly files 0.18; ATR and bar arrays 0.05; numba's first cache load 0.22 (numba rebuilds
its whole typing/lowering registry before it loads any cached kernel: ~0.19 of it); the run
itself 0.17 (kernel 0.02, trade/fill frames 0.06, metrics 0.03, equity 0.01); journal record
0.12 (DuckDB connect, 46k trades, commit, checkpoint on close); summary 0.01.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "BTC/USDT:USDT"
SIZE = ["size", "--symbol", SYMBOL, "--side", "long", "--entry", "95000", "--stop", "94200",
        "--risk-usd", "1", "--step", "0.001", "-f", "json"]  # fmt: skip
BACKTEST = ["backtest", "--strategy", "ema_cross", "--symbols", SYMBOL, "--timeframe", "1m",
            "-f", "json"]  # fmt: skip


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds: user + system of all its threads) of one
    child process; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed ({proc.returncode}): {err.strip()}")
    return elapsed, usage.ru_maxrss // 1024, usage.ru_utime + usage.ru_stime


def measure(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> tuple[float, int, float]:
    run_once(argv, env, cwd)  # warm-up: OS file cache, numba cache
    samples = [run_once(argv, env, cwd) for _ in range(runs)]
    wall, cpu = (statistics.median(s[i] for s in samples) for i in (0, 2))
    return wall, max(s[1] for s in samples), cpu


def synthetic(n: int):
    """A seeded random walk of 1m bars that passes the lake's validation."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.0005, (2, n))) * close
    start = 1_700_006_400_000  # a whole day, so 1m bars sit on the grid
    return pd.DataFrame(
        {"timestamp": start + 60_000 * np.arange(n), "open": open_,
         "high": np.maximum(open_, close) + wick[0], "low": np.minimum(open_, close) - wick[1],
         "close": close, "volume": 1.0}
    )  # fmt: skip


def build_lake(root: Path, bars: int) -> None:
    """In a child process: Linux keeps a process's peak RSS across exec, so the children
    measured later must not be forked from a parent that held a million bars."""
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT / 'src')!r}, {str(ROOT / 'bench')!r}];"
        "from pathlib import Path; from bench_startup import synthetic, SYMBOL;"
        "from cryptobot.data.lake import Lake;"
        f"Lake(Path({str(root)!r})).write_candles('binanceusdm', SYMBOL, '1m', synthetic({bars}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bars", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lake = work / "lake"
        build_lake(lake, args.bars)
        env = os.environ | {
            "PYTHONPATH": str(ROOT / "src"),
            "CRYPTOBOT_DATA_DIR": str(lake),
            "PYTHONDONTWRITEBYTECODE": "0",
        }
        py = [sys.executable]
        cli = [sys.executable, "-m", "cryptobot"]
        cases = [
            ("python -c 'import pandas'", [*py, "-c", "import pandas"], None),
            ("cryptobot --version", [*cli, "--version"], 1.0),
            ("cryptobot --help", [*cli, "--help"], 1.0),
            ("cryptobot size (flags)", [*cli, *SIZE], 2.5),
            (f"cryptobot backtest {args.bars:,} bars", [*cli, *BACKTEST], None),
            (
                f"  ... -o {args.bars:,} bars",
                [*cli, *BACKTEST, "-o", str(work / "run.parquet")],
                None,
            ),
        ]
        results = [(name, *measure(argv, env, work, args.runs), target)
                   for name, argv, target in cases]  # fmt: skip
    base = results[0][1]
    print(f"{'case':<34} {'median s':>9} {'x pandas':>9} {'cpu s':>7} {'peak MiB':>9}  target")
    for name, seconds, rss, cpu, target in results:
        goal = f"<= {target:g}x" if target else ("<= 1.0 s" if "backtest" in name else "")
        print(f"{name:<34} {seconds:>9.3f} {seconds / base:>9.2f} {cpu:>7.3f} {rss:>9}  {goal}")


if __name__ == "__main__":
    main()
