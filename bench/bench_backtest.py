"""Backtest speed: ``ema_cross`` with the 1.5 x ATR stop (the reference strategy), ours beside
backtesting.py's and vectorbt's ``Portfolio.from_signals`` on the same bars, in this process.

Cases: (a) the real BTC/USDT:USDT 1m series of ../shared/data; (b) 1,000,000 synthetic 1m bars
(a seeded random walk); (c) a 100-pair EMA sweep (fast 5..14 x slow 22..40) on (a): ours in 2
forked processes, vectorbt as 100 columns in one call. Times are the median of 3 runs after one
warm-up (numba compilation excluded, as vectorbt's is; backtesting.py's progress bars off).
Peak traced Python/NumPy memory of our run is reported for (b).
Usage: python bench/bench_backtest.py [--quick]   (--quick: skip backtesting.py on (b), ~30 s)

Why (b) moved (0.067 s when filed, 0.090-0.095 s, then 0.116 s; sixth session, at load 7-12,
so CPU seconds): not a commit on the fast path. ``ours`` on (b) was built and timed at ten
commits from d6a6587 (the filing) to 439d226, each in its own tree and numba cache: alone in a
fresh process it took 0.056-0.071 s of CPU at every one, no trend. Timed as this script times
it, after backtesting.py and vectorbt ran on (a) in the same process, it took 0.069-0.103 s
(d6a6587) and 0.087-0.091 s (439d226), and each call faulted in 4,600-6,900 fresh pages, none
alone: what (b) costs here depends on how much of its ~130 MB of temporaries the allocator
hands back fresh, and a fresh page is dear on this VM (the kernel zeroing 2 MB pages). So (b)
now makes fewer and cheaper temporaries: the bar block column-major (filled column by column,
the close read by TA-Lib without a strided copy) and the EMA difference in place. In this
script's order, interleaved, 7 runs each, min / median CPU: 0.080 / 0.083 and 0.082 / 0.088 s
before, 0.062 / 0.071 and 0.061 / 0.068 s after (results identical).

2026-12-01 14:27-14:29 UTC, idle (load 0.9-1.0), two runs of this script: (b) 0.1107 and
0.0879 s (125x and 143x backtesting.py, 11.2x and 14.6x vectorbt), (c) 0.268 / 0.269 s vs
vectorbt 1.012 / 1.085 s. The first run's (b) is over the 0.10 s line; backtesting.py's own
(b) took 13.8 and 12.6 s (10.9 s the day before): the machine ran slower this afternoon, and
no commit since touched the fast path.

2026-12-01 18:53 and 19:17 UTC, idle (load ~1), two runs of this script on the same code: (b)
**0.0650** and **0.1075** s (153x and 106x backtesting.py, 11.5x and 9.2x vectorbt; backtesting.py
itself 9.9 and 11.4 s), (c) 0.208 / 0.177 s vs vectorbt 1.28 / 1.07 s. The kernels now compile
once per argument type (core/jit.py), which changed nothing here: ``ours`` on (b) alone in a
fresh process, interleaved with the version before, 0.047-0.057 s of CPU both. Glibc's
allocator told to keep freed memory (``MALLOC_MMAP_THRESHOLD_``/``TRIM``/``TOP_PAD``) gave
0.1063 s at 19:19: not the allocator, the machine's speed that minute.
"""

import os
import statistics
import sys
import time
import tracemalloc
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars, before its import

from cryptobot.backtest.bars import symbol_bars  # noqa: E402
from cryptobot.backtest.engine import Costs, Signals, run_units  # noqa: E402
from cryptobot.manage.policy import Policy  # noqa: E402
from cryptobot.strategies.ema_cross import ema_cross_signals  # noqa: E402
from tests.test_backtest_libraries import backtesting_py_run, vectorbt_run  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "candles" / "binance" / "BTC_USDT_USDT" / "1m.parquet"
POLICY = Policy.none(exit_on_signal=True, stop_delay_bars=1)
COSTS = Costs(taker=0.0004)
PAIRS = [(f, s) for f in range(5, 15) for s in range(22, 42, 2)]


def median_time(fn, runs: int = 3) -> float:
    fn()  # warm-up: compilation and caches
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ours(frame: pd.DataFrame, fast: int = 9, slow: int = 21):
    sb = symbol_bars("X", "1m", frame)
    sig = ema_cross_signals(sb.bars[:, 3], fast, slow)
    return run_units(
        sb, Signals.of(sig, stop_distance=1.5 * sb.bars[:, 5]), qty=1.0, policy=POLICY, costs=COSTS
    )


def synthetic(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.0005, (2, n))) * close
    return pd.DataFrame(
        {"timestamp": 1_700_000_000_000 + 60_000 * np.arange(n), "open": open_,
         "high": np.maximum(open_, close) + wick[0], "low": np.minimum(open_, close) - wick[1],
         "close": close, "volume": 1.0}
    )  # fmt: skip


_FRAME: pd.DataFrame | None = None


def _pair(pair: tuple[int, int]) -> float:
    return float(ours(_FRAME, *pair).pnl.sum())


def ours_sweep(frame: pd.DataFrame) -> list[float]:
    global _FRAME
    _FRAME = frame
    with ProcessPoolExecutor(2, mp_context=get_context("fork")) as pool:
        return list(pool.map(_pair, PAIRS, chunksize=25))


def vectorbt_sweep(frame: pd.DataFrame) -> None:
    import talib
    import vectorbt as vbt

    close = frame.close.to_numpy()
    atr = talib.ATR(frame.high.to_numpy(), frame.low.to_numpy(), close, 14)
    n, cols = len(close), len(PAIRS)
    long_in, short_in, sl = (
        np.zeros((n, cols), bool),
        np.zeros((n, cols), bool),
        np.full((n, cols), np.nan),
    )
    for j, (f, s) in enumerate(PAIRS):
        cross = ema_cross_signals(close, f, s)
        long_in[1:, j], short_in[1:, j] = cross[:-1] > 0, cross[:-1] < 0
        sl[1:, j] = 1.5 * atr[:-1] / frame.open.to_numpy()[1:]
    sl[~(long_in | short_in)] = np.nan
    col = {k: frame[k].to_numpy()[:, None] for k in ("open", "high", "low", "close")}
    vbt.Portfolio.from_signals(
        col["close"], entries=long_in, short_entries=short_in, price=col["open"], size=1.0,
        size_type="amount", fees=0.0004, upon_opposite_entry="reverse", init_cash=1e9,
        sl_stop=sl, open=col["open"], high=col["high"], low=col["low"],
        stop_entry_price="fillprice",
    )  # fmt: skip


def main() -> None:
    quick = "--quick" in sys.argv
    real = pd.read_parquet(SHARED)
    big = synthetic(1_000_000)
    rows = []
    for name, frame in (("(a) real BTC 1m", real), ("(b) 1,000,000 bars", big)):
        t_ours = median_time(lambda f=frame: ours(f))
        t_vbt = median_time(lambda f=frame: vectorbt_run(f, 1.5))
        if name.startswith("(b)") and quick:
            t_bt = float("nan")
        else:
            t_bt = median_time(lambda f=frame: backtesting_py_run(f, 1.5))
        rows.append((name, len(frame), t_ours, t_bt, t_vbt))
    t_sweep = median_time(lambda: ours_sweep(real))
    t_vsweep = median_time(lambda: vectorbt_sweep(real))
    tracemalloc.start()
    ours(big)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    head = ("case", "bars", "ours s", "bt.py s", "vbt s", "x bt.py", "x vbt")
    print(f"{head[0]:<22}" + "".join(f"{h:>10}" for h in head[1:]))
    for name, n, a, b, c in rows:
        print(f"{name:<22}{n:>10,}{a:>10.4f}{b:>10.3f}{c:>10.3f}{b / a:>10.0f}{c / a:>10.1f}")
    ratio = t_vsweep / t_sweep
    print(f"{'(c) 100-pair sweep':<22}{len(real):>10,}{t_sweep:>10.3f}{'':>10}{t_vsweep:>10.3f}"
          f"{'':>10}{ratio:>10.1f}")  # fmt: skip
    print(f"peak traced memory of our run on (b): {peak:,.0f} MiB (its bars alone: ~46 MiB)")


if __name__ == "__main__":
    main()
