"""The collector's schedule in a cryptobot process (core/gc_policy.py): quiet through start-up
and while a command loads its libraries, on for the command's own work, which no pass spends
walking start-up objects, and everything frozen as the process ends."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.data.lake import Lake

SRC = Path(__file__).resolve().parents[1] / "src"

# records every collection (what was loaded when it started, and how many objects it walks:
# those of its generation and the younger ones), runs the CLI as the `cryptobot` script does,
# then reports the collector's state after main() returned
PROBE = """
import gc, json, sys
passes = []
gc.callbacks.append(
    lambda phase, info: phase == "start"
    and passes.append([info["generation"], "cryptobot.backtest.runner" in sys.modules,
                       "cryptobot.journal.backtests" in sys.modules,
                       sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1))])
)
from cryptobot.cli.app import main
sys.argv = ["cryptobot", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
garbage = [[]]
garbage[0].append(garbage)  # a cycle made after main(): the collector must still see it
del garbage
state = {"code": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
         "collected_after": gc.collect(), "passes": passes}
print("STATE", json.dumps(state), file=sys.stderr)
"""


def _run(tmp_path: Path, *args: str) -> dict:
    env = os.environ | {"PYTHONPATH": str(SRC), "CRYPTOBOT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    line = next((x for x in done.stderr.splitlines() if x.startswith("STATE ")), None)
    assert line is not None, done.stderr
    return json.loads(line.removeprefix("STATE "))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    n = 3_000
    close = 100 + np.sin(np.arange(n) / 40) * 5
    stamps = 1_704_067_200_000 + 60_000 * np.arange(n)
    frame = pd.DataFrame({"timestamp": stamps, "open": close, "high": close + 1,
                          "low": close - 1, "close": close, "volume": 1.0})  # fmt: skip
    Lake(tmp_path).write_candles("binanceusdm", "BTC/USDT:USDT", "1m", frame)
    return tmp_path


def test_a_backtest_loads_its_engine_without_a_collection_and_ends_frozen(lake: Path):
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT",
            "--timeframe", "1m", "-f", "json")  # fmt: skip
    _run(lake, *args)  # compiles the kernels if the cache lacks them (a compile makes objects)
    state = _run(lake, *args)
    assert state["code"] == 0
    # the engine and the journal load inside one quiet stretch: no pass of any generation
    # starts while one of them is loaded and the other is not yet
    halfway = [p for p in state["passes"] if p[1] != p[2]]
    assert halfway == [], halfway
    assert any(p[1] for p in state["passes"]), "no collection ran during the command's work"
    # and none of them walks the start-up's objects: typer's, the libraries', the engine's
    # (one pass over them all took 0.05-0.1 s), they were frozen as each quiet stretch ended
    walked = max(p[3] for p in state["passes"])
    assert walked < 20_000, state["passes"]
    # main() froze what was alive (the libraries: hundreds of thousands of objects) and left
    # the collector on: garbage made afterwards is still collected
    assert state["enabled"] and state["frozen"] > 100_000
    assert state["collected_after"] >= 2


def test_even_a_failing_command_leaves_the_collector_on(tmp_path: Path):
    state = _run(tmp_path, "backtest", "--strategy", "nope", "--symbols", "BTC/USDT:USDT")
    assert state["code"] == 1 and state["enabled"] and state["frozen"] > 0


def test_loading_pauses_the_collector_and_restores_it_as_it_was():
    code = (
        "import gc\n"
        "from cryptobot.core import gc_policy\n"
        "seen = []\n"
        "with gc_policy.loading():\n"
        "    seen.append(gc.isenabled())\n"
        "seen.append(gc.isenabled())\n"
        "try:\n"
        "    with gc_policy.loading():\n"
        "        raise ValueError\n"
        "except ValueError:\n"
        "    seen.append(gc.isenabled())\n"
        "gc.disable()\n"
        "with gc_policy.loading():\n"
        "    pass\n"
        "seen.append(gc.isenabled())\n"
        "print(seen, gc.get_freeze_count())\n"
    )
    env = os.environ | {"PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout  # fmt: skip
    assert out.split() == ["[False,", "True,", "True,", "False]", "0"]  # loading freezes nothing
