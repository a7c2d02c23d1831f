"""Readers of the DuckDB journal open it read-only and are not locked out (issue item 14).

Real processes: DuckDB's locks are per process, so threads would prove nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptobot.data import catalog
from cryptobot.journal import breakers as journal

SRC = Path(__file__).resolve().parents[1] / "src"
ACCOUNT = "paper:paper"  # the configured account (mode paper, paper.account: paper)
ROOT = SRC.parent

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
sys.stdin.readline()  # hold the connection until the test says so (or closes the pipe)
time.sleep(float(sys.argv[3]))
con.close()
"""

# a writer committing in a loop: the lock held 200 ms, free for 40 ms, again and again
BUSY = """
import sys, time, duckdb
print("busy", flush=True)
while True:
    try:
        con = duckdb.connect(sys.argv[1])
    except duckdb.IOException:  # the reader is in: try again at once
        continue
    time.sleep(0.2)
    con.close()
    time.sleep(0.04)
"""


def _env(data_dir: Path) -> dict[str, str]:
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"PYTHONPATH": path, "CRYPTOBOT_DATA_DIR": str(data_dir)}


def _cryptobot(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cryptobot", *args],
        env=_env(data_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _all_succeed(commands: list[list[str]], data_dir: Path) -> None:
    """Start every command at once (real processes on one journal), then wait for each."""
    procs = [
        subprocess.Popen(cmd, env=_env(data_dir), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err


def _holder(data_dir: Path, mode: str, linger_s: float = 0.0) -> subprocess.Popen:
    """Another process with a connection open on the journal (a daemon, a report, the duckdb
    CLI); returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data_dir / catalog.DB_NAME), mode, str(linger_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.fixture
def journaled(data_dir: Path) -> Path:
    done = _cryptobot(data_dir, "risk", "equity", "1000", "-f", "json")
    assert done.returncode == 0, done.stderr
    return data_dir


SIZE = ("size", "--symbol", "BTC/USDT:USDT", "--side", "long", "--entry", "95000",
        "--stop", "94200", "--risk-usd", "1", "--step", "0.001", "-f", "json")  # fmt: skip


def test_readers_work_while_another_process_reads(journaled: Path):
    """A read-write open fails while any other process has the file open, even read-only:
    ``risk status`` and ``size`` used to wait 10 s and fail ("journal database is busy")."""
    holder = _holder(journaled, "ro")
    try:
        status = _cryptobot(journaled, "risk", "status", "-f", "json")
        sized = _cryptobot(journaled, *SIZE)
        assert holder.poll() is None  # still holding: the readers did not wait it out
    finally:
        holder.communicate("\n", timeout=30)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[0]["last_equity"] == 1000.0
    assert sized.returncode == 0, sized.stderr
    assert json.loads(sized.stdout)[0]["gates"]["circuit_breaker"].startswith("pass")


def test_readers_wait_for_a_writer_that_holds_its_connection_briefly(journaled: Path):
    holder = _holder(journaled, "rw", linger_s=0.5)
    reader = subprocess.Popen(
        [sys.executable, "-m", "cryptobot", "risk", "status", "-f", "json"],
        env=_env(journaled),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder.communicate("\n", timeout=30)  # the writer lets go half a second from now
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert json.loads(out)[0]["mode"] == "active"


def test_a_reader_gets_in_between_the_transactions_of_a_busy_writer(journaled: Path):
    """The lock is free for 40 ms of every 240: a reader trying every 5-50 ms lands in a gap;
    one backing off to a try a second (as it did) missed them all within its wait, at times,
    on a loaded machine."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY, str(journaled / catalog.DB_NAME)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert busy.stdout.readline().strip() == "busy"
        for _ in range(5):
            with catalog.reader(journaled, wait_s=3.0) as con:
                assert con is not None and "breaker_state" in catalog.tables(con)
            assert busy.poll() is None
    finally:
        busy.kill()
        busy.wait(timeout=30)


def test_writers_in_two_processes_at_once_both_land(journaled: Path):
    risk_equity = [sys.executable, "-m", "cryptobot", "risk", "equity"]
    _all_succeed([[*risk_equity, str(amount), "-f", "json"] for amount in (990, 995)], journaled)
    assert journal.load_state(journaled, account=ACCOUNT)["last_equity"] in (990.0, 995.0)


def test_a_reader_never_creates_the_journal(data_dir: Path):
    status = _cryptobot(data_dir, "risk", "status", "-f", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[0]["mode"] == "active"
    assert not (data_dir / catalog.DB_NAME).exists()
    assert (
        journal.load_state(data_dir, account=ACCOUNT) is None
        and journal.events(data_dir, account=ACCOUNT) == []
    )


def test_readers_open_read_only(journaled: Path):
    """In-process check of the mode: a read-only connection refuses writes."""
    with catalog.reader(journaled) as con:
        assert con is not None and "breaker_state" in catalog.tables(con)
        with pytest.raises(Exception, match="read-only"):
            con.execute("CREATE TABLE scratch (a INT)")


FEED = """
import sys
from pathlib import Path
from cryptobot.core.config import load_settings
from cryptobot.risk.breakers import Equity
from cryptobot.risk.context import apply_event

root, first = Path(sys.argv[1]), int(sys.argv[2])
risk = load_settings(env={}).risk
for i in range(15):
    amount = 1000.0 + first + 2 * i
    event = Equity(1_740_960_000_000 + i, amount)
    apply_event(root, event, risk, f"equity {amount}", account="paper:paper")
"""


def test_two_processes_feeding_the_breaker_lose_no_update(data_dir: Path):
    """Read, step and store happen in one transaction: with a read outside it, a peak (or a
    trip) computed by one process could be overwritten by the other's older state."""
    _all_succeed(
        [[sys.executable, "-c", FEED, str(data_dir), str(first)] for first in (0, 1)], data_dir
    )
    state = journal.load_state(data_dir, account=ACCOUNT)
    assert state["peak_equity"] == 1000.0 + 1 + 2 * 14  # the highest of all 30 observations


def test_a_refused_event_stores_nothing(data_dir: Path):
    first = _cryptobot(data_dir, "risk", "equity", "1000", "-f", "json")
    assert first.returncode == 0, first.stderr
    before = journal.load_state(data_dir, account=ACCOUNT)
    refused = _cryptobot(data_dir, "risk", "equity", "inf", "-f", "json")
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1
    assert (
        journal.load_state(data_dir, account=ACCOUNT) == before
        and journal.events(data_dir, account=ACCOUNT) == []
    )


@pytest.mark.parametrize("rows", [0, 1, 3, 251, 600])
def test_rows_go_in_a_few_statements_as_row_by_row_inserts_would_leave_them(tmp_path, rows):
    """``catalog.insert_rows`` (one statement per few hundred rows, not one per row): a key met
    twice keeps its last row, as ``executemany`` leaves it; a conflict clause still applies."""
    batch = [(f"id{i % 250}", i, "x" * (i % 3)) for i in range(rows)]
    with catalog.connect(tmp_path) as con:
        con.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY, n BIGINT, s VARCHAR)")
        con.execute("CREATE TABLE u (id VARCHAR PRIMARY KEY, n BIGINT, s VARCHAR)")
        catalog.insert_rows(con, "INSERT OR REPLACE INTO t VALUES {values}", batch, key=(0,))
        if batch:  # executemany refuses an empty list; insert_rows does nothing
            con.executemany("INSERT OR REPLACE INTO u VALUES (?, ?, ?)", batch)
        assert (
            con.execute("SELECT * FROM t ORDER BY id").fetchall()
            == con.execute("SELECT * FROM u ORDER BY id").fetchall()
        )
        catalog.insert_rows(con, "INSERT INTO t VALUES {values} ON CONFLICT (id) DO UPDATE SET "
                            "n = excluded.n + 1000", batch[:2], key=(0,))  # fmt: skip
        updated = dict(con.execute("SELECT id, n FROM t WHERE n >= 1000").fetchall())
        assert updated == {key: 1000 + n for key, n, _ in batch[:2]}
