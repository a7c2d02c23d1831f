"""``kill -9`` of real ``cryptobot trade`` and ``trade --reconcile`` processes (live: the ccxt
adapter against the emulator's Binance account, which counts every placement by client id) at
random points, then a re-run and a reconcile: the account ends as one uninterrupted run leaves
it (each position held once, its stop and targets working), nothing placed twice, the journal
without a request left unanswered, and a further reconcile reports nothing.

The acceptance's 20 kills (about 30 s here; ``CRYPTOBOT_KILLS=N`` runs another count): a third
of them hit a ``trade --reconcile``, the rest a batch, each after 3 to 40 answered requests."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator import BinanceEmulator
from tests.test_trade_kill import COINS, _journal, env_for, finish, kill_after, orders

KILLS = int(os.environ.get("CRYPTOBOT_KILLS", "20"))


def cryptobot(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cryptobot", *args, "--live", "-f", "jsonl"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)  # fmt: skip


def account(emu: BinanceEmulator) -> dict[str, tuple]:
    """Per symbol: the position, its stops' (trigger, qty) and its targets' (trigger, qty)."""
    book, out = emu.engine.book, {}
    for symbol in sorted(book.prices):
        qty = emu.account.position(symbol).qty
        working = book.open_conditionals(symbol)
        stops = sorted((c.trigger, c.qty) for c in working if c.type == "STOP_MARKET")
        targets = sorted((c.trigger, c.qty) for c in working if c.type != "STOP_MARKET")
        if qty or working:
            out[symbol] = (round(qty, 9), stops, targets)
    return out


def settle(env: dict[str, str], source: Path, emu: BinanceEmulator) -> list[dict]:
    """A re-run of the batch, then a reconcile: what a trader does after a crash."""
    emu.now_ms += 11_000  # what a killed process had in flight cannot land any more
    done = finish(cryptobot(env, "trade", str(source), "--taker", cwd=source.parent))
    assert {o["status"] for o in done} <= {"placed", "already_placed"}, done
    return finish(cryptobot(env, "trade", "--reconcile", cwd=source.parent))


@pytest.mark.slow
@pytest.mark.timeout(900)  # 23 processes of 1-3 s each; more on a busy machine
def test_kill_9_at_random_points_then_rerun_and_reconcile_end_as_one_clean_run(
    shared, tmp_path: Path
):
    rng = random.Random(1313)
    clean = tmp_path / "clean"
    killed = tmp_path / "killed"
    for path in (clean, killed):
        (path / "data").mkdir(parents=True)
    with BinanceEmulator(shared) as emu:  # the reference: one run, never interrupted
        source = clean / "orders.jsonl"
        source.write_text(orders(emu))
        settle(env_for(emu, clean / "data", "live"), source, emu)
        reference = account(emu)
    with BinanceEmulator(shared) as emu:
        source = killed / "orders.jsonl"
        source.write_text(orders(emu))
        env = env_for(emu, killed / "data", "live")
        for n in range(KILLS):
            args = ("trade", str(source), "--taker") if n % 3 != 2 else ("trade", "--reconcile")
            proc = cryptobot(env, *args, cwd=killed)
            kill_after(proc, emu, hits=len(emu.hits) + rng.randint(3, 40))
        settle(env, source, emu)
        assert account(emu) == reference
        placements = emu.engine.book.placements
        assert placements and max(placements.values()) == 1, placements
        again = finish(cryptobot(env, "trade", "--reconcile", cwd=killed))
        assert again == [], again  # reconciled: nothing new
        unanswered = _journal(
            killed / "data",
            "SELECT client_order_id FROM orders WHERE status IN ('sending', 'unknown')",
        )
        assert unanswered == []
        (held,) = _journal(killed / "data", "SELECT count(DISTINCT symbol) FROM positions")
        assert held[0] == len(COINS)
    assert json.dumps(reference)  # the reference holds the three positions with protection
    assert len(reference) == len(COINS) and all(v[0] and v[1] for v in reference.values())
