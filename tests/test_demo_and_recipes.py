"""The README's demo and the shell recipes in commands/ keep working."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptobot.data.lake import Lake
from tests.conftest import Cli, emulator_env, sample_market_config

ROOT = Path(__file__).resolve().parents[1]


def test_demo_fetches_the_synthetic_market_through_replay(tmp_path: Path):
    config = sample_market_config(tmp_path, days=3)
    cli = Cli()
    out = cli(
        "--config",
        str(config),
        "fetch",
        "--top",
        "10",
        "--timeframes",
        "5m,15m",
        "--days",
        "2",
        "--funding",
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert len({r["symbol"] for r in rows}) == 10
    assert all(r["error"] is None for r in rows)
    five = [r for r in rows if r["dataset"] == "5m"]
    assert all(r["new"] == 2 * 288 and r["gaps"] == 0 for r in five)
    assert {s[0] for s in Lake(tmp_path / "demo").candle_sets()} == {"synthetic"}


def test_update_lake_recipe_against_the_emulator(emulator, data_dir: Path):
    env = (
        os.environ
        | emulator_env(emulator, data_dir)
        | {
            "CRYPTOBOT": str(Path(sys.executable).parent / "cryptobot"),
            "TOP": "3",
            "DAYS": "2",
            "TIMEFRAMES": "15m",
        }
    )
    for _ in range(2):  # a second run (the next cron tick) adds nothing and still succeeds
        done = subprocess.run(
            ["bash", str(ROOT / "commands/update-lake.sh")],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 6 and all(r["new"] == 0 for r in rows)  # 3 x (15m + funding)
    assert len(list(Lake(data_dir).candle_sets())) == 3


def test_import_under_the_demo_config_files_bars_where_fetch_does(tmp_path: Path):
    """With ``exchange: replay`` the lake files bars under the replayed venue (``synthetic``);
    ``--import`` must too, or scan and backtest never see what was imported."""
    config = sample_market_config(tmp_path, days=2)
    source = tmp_path / "sample-market/candles/synthetic/BTC_USDT_USDT/5m/2025-12.parquet"
    args = ("--config", str(config), "fetch", "--import", str(source))
    out = Cli()(*args, "--symbol", "BTC/USDT:USDT", "--timeframe", "5m").stdout
    row = json.loads(out)
    assert (row["exchange"], row["new"], row["changed"]) == ("synthetic", 2 * 288, 0)
    assert set(Lake(tmp_path / "demo").candle_sets()) == {("synthetic", "BTC/USDT:USDT", "5m")}
