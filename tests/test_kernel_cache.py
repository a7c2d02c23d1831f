"""Every compiled kernel a backtest runs is loaded from numba's cache by the next process: no
process after the first compiles anything (a compile costs seconds; a cached load, ~0.1 s of
numba's registries for all of them). A kernel made uncacheable, a cache folder chosen after
numba has read its settings, or a signature that changes from run to run fails here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.data.lake import Lake

pytestmark = pytest.mark.slow  # fresh processes, each a whole backtest: started first

SRC = Path(__file__).resolve().parents[1] / "src"
SYMBOL = "BTC/USDT:USDT"

# runs the CLI, then reports each compiled function of cryptobot that has machine code in the
# process: how many of its signatures came from the cache, and how many were compiled
PROBE = """
import json, sys
from cryptobot.cli.app import main
sys.argv = ["cryptobot", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
from numba.core.registry import CPUDispatcher
kernels = {}
for name, module in list(sys.modules.items()):
    if name.startswith("cryptobot."):
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == name and value.overloads:
                loaded = sum(value.stats.cache_hits.values())
                kernels[f"{name}.{attr}"] = [loaded, len(value.overloads) - loaded]
print("KERNELS", json.dumps({"code": code, "kernels": kernels}), file=sys.stderr)
"""


def _kernels(lake: Path, *args: str) -> dict[str, list[int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_DISABLE")}
    env |= {"PYTHONPATH": str(SRC), "CRYPTOBOT_DATA_DIR": str(lake)}
    done = subprocess.run([sys.executable, "-c", PROBE, "backtest", "--symbols", SYMBOL,
                           "--no-journal", "-f", "json", *args], env=env, cwd=lake,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    line = next((x for x in done.stderr.splitlines() if x.startswith("KERNELS ")), None)
    assert line is not None, done.stderr
    report = json.loads(line.removeprefix("KERNELS "))
    assert report["code"] == 0, done.stderr
    return report["kernels"]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten days of a seeded random walk in 5m bars (the scan strategies' entry timeframe; their
    15m and longer bars are built from it)."""
    root = tmp_path_factory.mktemp("lake")
    n = 2_880
    rng = np.random.default_rng(11)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.002, (2, n))) * close
    frame = pd.DataFrame({"timestamp": 1_704_067_200_000 + 300_000 * np.arange(n),
                          "open": open_, "high": np.maximum(open_, close) + wick[0],
                          "low": np.minimum(open_, close) - wick[1], "close": close,
                          "volume": rng.uniform(50, 150, n)})  # fmt: skip
    Lake(root).write_candles("binanceusdm", SYMBOL, "5m", frame)
    return root


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        (("--strategy", "ema_cross", "--timeframe", "5m"),
         {"cryptobot.strategies.ema_cross._crosses", "cryptobot.backtest.kernel.run_signals"}),
        (("--strategy", "ema_cross", "--timeframe", "5m", "--risk-usd", "10", "--stop-atr", "2"),
         {"cryptobot.backtest.kernel.open_trade", "cryptobot.backtest.kernel.advance"}),
        (("--strategy", "bos_fvg_fib", "--risk-usd", "10"),
         {"cryptobot.analysis.structure._break_kernel"}),
    ],
    ids=["units", "risk", "detector"],
)  # fmt: skip
def test_the_second_process_compiles_nothing(lake: Path, args: tuple[str, ...], ran: set[str]):
    _kernels(lake, *args)  # the first may compile (a fresh cache, or sources changed)
    kernels = _kernels(lake, *args)
    assert ran <= set(kernels), sorted(kernels)  # the run did call compiled code
    compiled = {name: n for name, (_, n) in kernels.items() if n}
    assert compiled == {}
