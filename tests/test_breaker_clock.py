"""``size`` and ``risk`` judge the circuit breaker at the venue's clock: under ``exchange:
replay`` that is the replay exchange's (``now()``), so a replayed day trips, blocks and
releases the breaker as it would have then, not at today's wall clock."""

import json
from pathlib import Path

import pytest

from cryptobot.core.timeutil import iso
from tests.conftest import Cli
from tests.trading import last_close, walk_lake
from tests.venues import HOUR, SYMBOL, T0

NOW = T0 + 48 * HOUR  # 2025-01-03 00:00 UTC: long before the wall clock


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    walk_lake(root)
    return root


def _replay_at(tmp_path: Path, lake_dir: Path, now: int) -> Cli:
    config = tmp_path / f"replay-{now}.yaml"
    config.write_text(
        f"exchange: replay\ndata_dir: {lake_dir}\n"
        f"replay:\n  source_exchange: sim\n  start: '{iso(now)}'\n"
    )
    return Cli({"CRYPTOBOT_CONFIG": str(config)})


def _json(result) -> dict:
    (row,) = json.loads(result.stdout)
    return row


def test_a_replayed_day_trips_and_releases_the_breaker(tmp_path: Path, lake_dir: Path):
    cli = _replay_at(tmp_path, lake_dir, NOW)
    cli("risk", "equity", "1000", "--format", "json")
    tripped = _json(cli("risk", "equity", "950", "--format", "json"))  # -5 % in the day
    assert tripped["mode"] == "blocked" and tripped["until"] == iso(NOW + 24 * HOUR)
    assert _json(cli("risk", "status", "--format", "json"))["mode"] == "blocked"
    entry = last_close(cli_lake(lake_dir), NOW)
    args = ("size", "--symbol", SYMBOL, "--side", "long", "--entry", str(entry), "--stop",
            str(round(entry * 0.98, 1)), "--risk-usd", "2", "--format", "jsonl")  # fmt: skip
    (order,) = [json.loads(line) for line in cli(*args).stdout.splitlines()]
    assert order["status"] == "refused" and "circuit_breaker" in order["reason"]
    # a day later on the replayed clock the block has run its course
    later = _replay_at(tmp_path, lake_dir, NOW + 25 * HOUR)
    assert _json(later("risk", "status", "--format", "json"))["mode"] != "blocked"
    (order,) = [json.loads(line) for line in later(*args).stdout.splitlines()]
    assert "circuit_breaker" not in order["reason"]


def cli_lake(lake_dir: Path):
    from cryptobot.data.lake import Lake

    return Lake(lake_dir)
