"""Real ``cryptobot trade`` processes: ``kill -9`` mid-batch, then a re-run: no order is placed
twice and no position is left without a stop covering it. On paper (the paper broker on the
emulator's prices, its account in the journal) and live (the ccxt adapter against the emulator's
Binance account, which counts every placement by client id). Two processes at once on one
account, with the journal read all along."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cryptobot.journal.trading import TradeJournal
from tests.conftest import emulator_env
from tests.emulator import BinanceEmulator
from tests.test_ccxt_trading import KEY, SECRET
from tests.trading import sized

# real processes killed and re-run: started first, given time on a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[1]
COINS = {"BTC": 0.004, "ETH": 0.2, "LTC": 4.0}  # ~ $300 each: inside every gate of $1000
KILLS = 4


def orders(emu: BinanceEmulator, coins: dict[str, float] = COINS) -> str:
    lines = []
    for n, (base, qty) in enumerate(coins.items(), start=1):
        price = float(emu.closed(base, "5m")[-1][4])
        rung = round(qty * 0.25, 3)
        record = sized(entry=price, symbol=f"{base}/USDT:USDT", qty=qty, stop_pct=1.5,
                       cid=f"cb-kill{n:020d}", exchange="binanceusdm",
                       target_qty=[rung] * 3)  # fmt: skip
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def env_for(emu: BinanceEmulator, data_dir: Path, venue: str) -> dict[str, str]:
    env = os.environ | emulator_env(emu, data_dir) | {
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "CRYPTOBOT__PAPER__TIMEFRAME": "5m",  # the shared data's 1m bars are from another month
    }  # fmt: skip
    if venue == "live":
        env |= {"CRYPTOBOT__MODE": "live", "CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET}
    return env


def trade(env: dict[str, str], source: Path, venue: str) -> subprocess.Popen:
    # --taker: the market entry (the executor's own kill test is test_trade_execution_kill)
    args = [sys.executable, "-m", "cryptobot", "trade", str(source), "-f", "jsonl", "--taker"]
    if venue == "live":
        args.append("--live")
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=source.parent)  # fmt: skip


def kill_after(proc: subprocess.Popen, emu: BinanceEmulator, *, hits: int) -> None:
    """``kill -9`` once the emulator has answered ``hits`` requests (a run makes about 50: the
    kill lands somewhere in the batch, between any two requests, or in the middle of one)."""
    deadline = time.monotonic() + 120
    while len(emu.hits) < hits and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


def finish(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("venue", ["paper", "live"])
def test_kill_9_mid_batch_then_rerun_places_nothing_twice_and_leaves_no_position_unstopped(
    shared, tmp_path: Path, venue: str
):
    rng = random.Random(13)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with BinanceEmulator(shared) as emu:
        source = tmp_path / "orders.jsonl"
        source.write_text(orders(emu))
        env = env_for(emu, data_dir, venue)
        for _ in range(KILLS):
            proc = trade(env, source, venue)
            kill_after(proc, emu, hits=len(emu.hits) + rng.randint(6, 45))
        emu.now_ms += 11_000  # a request a killed process had in flight cannot land any more
        done = finish(trade(env, source, venue))
        assert {o["status"] for o in done} <= {"placed", "already_placed"}, done
        emu.now_ms += 15 * 60_000  # paper: the entries fill at the next 5m bars
        again = finish(trade(env, source, venue))
        assert [o["status"] for o in again] == ["already_placed"] * len(COINS), again
        status = finish(_status(env, venue))
        unjournaled = _journal(data_dir, "SELECT client_order_id, status FROM orders "
                                         "WHERE status IN ('sending', 'unknown')")  # fmt: skip
        assert unjournaled == []
        if venue == "live":
            placements = emu.engine.book.placements
            assert placements and all(count <= 1 for count in placements.values()), placements
    assert len(status) == len(COINS)
    for row in status:
        qty = COINS[row["symbol"].split("/")[0]]
        assert row["contracts"] == pytest.approx(qty)  # one entry each, never two
        assert row["stops"] and max(s["amount"] for s in row["stops"]) >= qty - 1e-9, row
        assert all(s["reduce_only"] for s in row["stops"])


def _status(env: dict[str, str], venue: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "cryptobot", "trade", "--status", "-f", "jsonl"]
    if venue == "live":
        args.append("--live")
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _journal(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "cryptobot.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_two_processes_at_once_place_each_order_once_and_the_journal_stays_readable(
    shared, tmp_path: Path
):
    coins = {"ETH": 0.2, "LTC": 4.0}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with BinanceEmulator(shared) as emu:
        source = tmp_path / "orders.jsonl"
        source.write_text(orders(emu, coins))
        env = env_for(emu, data_dir, "paper")
        both = [trade(env, source, "paper"), trade(env, source, "paper")]
        reads = 0
        while any(p.poll() is None for p in both):  # a reader beside two writers: never fails
            TradeJournal(data_dir, "paper:paper").sent_ids()
            reads += 1
            time.sleep(0.05)
        outcomes = [o["status"] for p in both for o in finish(p)]
    assert reads > 0
    assert sorted(outcomes) == ["already_placed"] * 2 + ["placed"] * 2
    entries = _journal(data_dir, "SELECT client_order_id, status FROM paper_orders "
                                 "WHERE client_order_id NOT LIKE '%-%-%'")  # fmt: skip
    assert sorted(c for c, _ in entries) == ["cb-kill00000000000000000001",
                                             "cb-kill00000000000000000002"]  # fmt: skip
