"""commands/update-crowd.sh against the loopback exchange, index and liquidation stream: twice,
as cron would run it, the second run overlapping nothing new."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryptobot.data.lake import Lake
from cryptobot.data.liquidations import read_liquidations
from tests.conftest import emulator_env
from tests.emulator import BinanceEmulator
from tests.emulator.binance_ws import LiquidationStream, forceorder_messages

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_715_344_440_000  # 2024-05-10T12:34Z, inside the Fear & Greed file
HOUR = 3_600_000


def _run(emu: BinanceEmulator, ws: LiquidationStream, data_dir: Path) -> list[dict]:
    env = (
        os.environ
        | emulator_env(emu, data_dir)
        | {
            "CRYPTOBOT__EXCHANGES__BINANCEUSDM__WS_BASE": ws.url,
            "CRYPTOBOT__FETCH__FEAR_GREED_URL": f"{emu.url}/fng/",
            "CRYPTOBOT": str(Path(sys.executable).parent / "cryptobot"),
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
            "SYMBOLS": "BTC/USDT:USDT",
            "DAYS": "10",
            "LIQUIDATIONS_FOR": "9",  # a loaded machine takes seconds to start and connect
        }
    )
    done = subprocess.run(
        ["bash", str(ROOT / "commands/update-crowd.sh")],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
def test_update_crowd_recipe_accumulates_and_rotates_the_recorder(shared: Path, data_dir: Path):
    messages = forceorder_messages(12, int(time.time() * 1000) - 60_000)
    with BinanceEmulator(shared, now_ms=NOW) as emu:
        with LiquidationStream(messages) as ws:
            first = _run(emu, ws, data_dir)
        emu.now_ms = NOW + 2 * HOUR  # the next cron run, two hours later
        with LiquidationStream(messages) as ws:  # a stream that sends the same again
            second = _run(emu, ws, data_dir)
    datasets = {r["dataset"] for r in first}
    assert datasets == {
        "funding",
        "open_interest:1h",
        "long_short:1h",
        "top_long_short_accounts:1h",
        "top_long_short_positions:1h",
        "taker_volume:1h",
        "fear_greed:1d",
        "liquidations",
    }
    (recorded,) = [r for r in first if r["dataset"] == "liquidations"]
    assert (recorded["received"], recorded["new"]) == (12, 12)
    again = {r["dataset"]: r for r in second}
    assert again["liquidations"]["new"] == 0 and again["liquidations"]["duplicates"] == 12
    for kind in ("open_interest", "long_short", "taker_volume"):
        assert again[f"{kind}:1h"]["new"] == 2  # only the two new hours
    lake = Lake(data_dir)
    assert len(read_liquidations(lake, exchange="binanceusdm")) == 12
    ratios = lake.read_series("long_short", "binanceusdm", "BTC/USDT:USDT", "1h")
    assert ratios.timestamp.iloc[-1] == (NOW + 2 * HOUR) // HOUR * HOUR
