"""Real processes of ``trade``'s desk entering maker-first on a paper account, ``kill -9`` at
random moments mid-execution, then re-runs: the entry's orders are adopted by their ids (each
accepted by the venue once, in sequence, none missing), the position is exactly the sized
quantity and an open stop covers it."""

import json
import signal
import subprocess
import sys
import time
from collections import Counter

import duckdb
import numpy as np
import pytest

from cryptobot.engine.execution_plan import entry_order_id
from tests.test_execution import ENV, MIN, ROOT, minutely
from tests.trading import sized
from tests.venues import SYMBOL, T0, lake_of

# real processes killed and re-run: started first, given time on a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CID = "cb-killtrade"
QTY = 3.0


def test_kill_9_mid_execution_then_re_runs_adopt_the_orders_and_the_stop_covers_all(tmp_path):
    rng = np.random.default_rng(11)
    closes = np.round(100 + np.cumsum(rng.integers(-2, 3, 400)) * 0.1, 1)
    rows = [(c, round(c + 0.2, 1), round(c - 0.2, 1), c) for c in closes]
    lake = lake_of(tmp_path / "lake", minutely(rows, volume=20.0), timeframe="1m")
    clock = tmp_path / "clock"
    clock.write_text(str(T0 + MIN))
    data = tmp_path / "data"
    data.mkdir()
    order = sized(entry=100.0, qty=QTY, stop_pct=3.0, cid=CID, exchange="sim", symbol=SYMBOL,
                  target_qty=[0.75] * 3)  # fmt: skip
    command = [sys.executable, str(ROOT / "tests" / "trade_execution_worker.py"),
               str(lake.root), str(data), str(clock), json.dumps(order)]  # fmt: skip
    midway = 0  # kills that left an execution under way
    for waits in rng.integers(1, 12, 3):  # each wait moves the clock file 20 s
        start = int(clock.read_text())
        proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if int(clock.read_text()) >= start + waits * 20_000:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        midway += _executing(data)
    assert midway >= 1
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (out,) = json.loads(done.stdout.splitlines()[-1])
    assert out["status"] in ("placed", "already_placed"), out
    with duckdb.connect(str(data / "cryptobot.duckdb"), read_only=True) as con:
        venue = con.execute("SELECT client_order_id, type, status, amount, filled "
                            "FROM paper_orders").fetchall()  # fmt: skip
        accepted = con.execute(
            "SELECT client_order_id FROM order_requests WHERE action = "
            "'create' AND outcome IN ('open', 'closed', 'canceled')"
        ).fetchall()
        (held,) = con.execute(
            "SELECT sum(amount) FROM paper_fills WHERE client_order_id "
            "NOT LIKE '%-sl%' AND client_order_id NOT LIKE '%-tp%'"
        ).fetchone()
        executions = con.execute("SELECT status FROM executions").fetchall()
    entries = sorted(cid for cid, *_ in venue if cid == CID or cid.startswith(f"{CID}-e"))
    assert entries == sorted(entry_order_id(CID, n) for n in range(1, len(entries) + 1))
    assert max(Counter(c for (c,) in accepted).values()) == 1  # no id accepted twice
    assert held == QTY and executions == [("filled",)]
    stops = [amount for cid, kind, status, amount, _ in venue
             if kind == "stop_market" and status == "open"]  # fmt: skip
    assert stops == [QTY]


def _executing(data) -> bool:
    """Whether the entry has orders at the venue but no execution ended."""
    path = data / "cryptobot.duckdb"
    if not path.exists():
        return False
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {
            t for (t,) in con.sql("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if not {"paper_orders", "executions"} <= tables:
            return False
        placed = con.execute("SELECT count(*) FROM paper_orders").fetchone()[0]
        ended = con.execute("SELECT count(*) FROM executions").fetchone()[0]
    return placed > 0 and ended == 0
