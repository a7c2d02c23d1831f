"""A lake whose first reads start early on a thread (data/prefetch.py): the read it hands over is
the plain lake's, its error is the plain lake's, raised where the plain read would have raised
it, and no other read is served from it; ``backtest`` with the series named on its command line
reads through it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cryptobot.core.errors import DataError
from cryptobot.data.lake import Lake
from cryptobot.data.prefetch import PrefetchLake
from tests.conftest import Cli, walk_bars

SYMBOL = "BTC/USDT:USDT"
START = 1_735_689_600_000  # 2025-01-01
SRC = Path(__file__).resolve().parents[1] / "src"

# runs the CLI as the `cryptobot` script does and reports the names of the threads it started
PROBE = """
import json, sys, threading
started, start = [], threading.Thread.start
threading.Thread.start = lambda self: (started.append(self.name), start(self))[1]
from cryptobot.cli.app import main
sys.argv = ["cryptobot", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    print("STARTED", json.dumps({"code": exc.code, "threads": started}), file=sys.stderr)
"""


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    Lake(tmp_path).write_candles("binanceusdm", SYMBOL, "5m", walk_bars(START, 40_000))
    assert len(list(tmp_path.rglob("*.parquet"))) >= 4  # a threaded read of several files
    return tmp_path


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(
        a[c].dtype == b[c].dtype and np.array_equal(a[c], b[c]) for c in a
    )


@pytest.mark.parametrize("window", [(None, None), (START + 86_400_000, START + 40 * 86_400_000)])
def test_the_early_read_is_the_plain_read(lake_root: Path, window):
    start, end = window
    lake = PrefetchLake(lake_root)
    lake.prefetch_candles(exchange="binanceusdm", symbol=SYMBOL, timeframe="5m", start=start,
                          end=end)  # fmt: skip
    early = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", start, end)
    plain = Lake(lake_root).read_candle_columns("binanceusdm", SYMBOL, "5m", start, end)
    assert _same(early, plain) and len(plain["timestamp"]) > 1_000
    assert all(v.flags.writeable for v in early.values())
    early["close"][:] = -1.0  # the caller owns it: the next read reads the files again
    assert _same(lake.read_candle_columns("binanceusdm", SYMBOL, "5m", start, end), plain)


def test_other_reads_are_not_served_from_it(lake_root: Path):
    lake = PrefetchLake(lake_root)
    lake.prefetch_candles(exchange="binanceusdm", symbol=SYMBOL, timeframe="5m")
    window = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", None, START + 86_400_000)
    assert window["timestamp"][-1] == START + 86_400_000
    closes = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", prices=("close",))
    assert list(closes) == ["timestamp", "close"]
    assert len(lake.read_candle_columns("binanceusdm", SYMBOL, "5m")["timestamp"]) == 40_000


def test_a_damaged_file_is_the_same_error_raised_at_the_read(lake_root: Path):
    files = sorted(lake_root.rglob("*.parquet"))
    files[2].write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError) as plain:
        Lake(lake_root).read_candle_columns("binanceusdm", SYMBOL, "5m")
    lake = PrefetchLake(lake_root)
    lake.prefetch_candles(exchange="binanceusdm", symbol=SYMBOL, timeframe="5m")  # no raise
    with pytest.raises(DataError) as early:
        lake.read_candle_columns("binanceusdm", SYMBOL, "5m")
    assert str(early.value) == str(plain.value) and files[2].name in str(early.value)


def test_a_backtest_naming_its_series_reads_early_with_the_same_results(lake_root: Path):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake_root)})
    args = ["backtest", "--strategy", "ema_cross", "--symbols", SYMBOL, "-f", "json",
            "--no-journal", "--stop-atr", "2"]  # fmt: skip
    named = cli(*args, "--timeframe", "5m")  # read early
    cli.env["CRYPTOBOT__STRATEGIES__EMA_CROSS__TIMEFRAME"] = "5m"
    default = cli(*args)  # the strategy's timeframe: not known before the engine loads
    assert json.loads(named.stdout) == json.loads(default.stdout)
    assert json.loads(named.stdout)[0]["trades"] > 50
    (lake_root / "candles/binanceusdm/BTC_USDT_USDT/5m/2025-02.parquet").write_bytes(b"PAR1 x")
    broken = cli(*args, "--timeframe", "5m", ok=False)
    assert broken.exit_code == 1
    assert broken.stderr.startswith("error: cannot read") and "2025-02.parquet" in broken.stderr


def _threads(root: Path, *args: str) -> list[str]:
    env = os.environ | {"PYTHONPATH": str(SRC), "CRYPTOBOT_DATA_DIR": str(root)}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    line = next((x for x in done.stderr.splitlines() if x.startswith("STARTED ")), None)
    assert line is not None, done.stderr
    report = json.loads(line.removeprefix("STARTED "))
    assert report["code"] == 0, done.stderr
    return report["threads"]


def test_only_a_backtest_naming_its_series_starts_the_early_read(lake_root: Path):
    args = ("backtest", "--strategy", "ema_cross", "--symbols", SYMBOL, "-f", "json",
            "--no-journal")  # fmt: skip
    assert "cryptobot-prefetch" in _threads(lake_root, *args, "--timeframe", "5m")
    unnamed = ("backtest", "--strategy", "ema_cross", "--top", "1", "--timeframe", "5m", "-f",
               "json", "--no-journal")  # fmt: skip
    assert "cryptobot-prefetch" not in _threads(lake_root, *unnamed)


def test_a_command_failing_before_its_read_waits_for_it_and_ends_cleanly(lake_root: Path):
    """The early read runs while the command fails (an unknown strategy is found after the read
    started): the process still ends with the one-line error and exit 1, the read finished
    before the interpreter tore Arrow down."""
    env = os.environ | {"PYTHONPATH": str(SRC), "CRYPTOBOT_DATA_DIR": str(lake_root)}
    args = ["backtest", "--strategy", "nope", "--symbols", SYMBOL, "--timeframe", "5m"]
    done = subprocess.run([sys.executable, "-m", "cryptobot", *args], env=env, cwd=lake_root,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: unknown strategy nope") and done.stdout == ""
