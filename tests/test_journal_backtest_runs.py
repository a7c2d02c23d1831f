"""Backtest runs in the journal: the row in DuckDB, the trades and hourly equity in Parquet
files beside it. Real processes: two recorders at once, and a recorder killed (-9) while it
writes the files, before its commit and inside its transaction."""

import json
import multiprocessing
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.data import catalog
from cryptobot.journal import backtests as journal

SPAWN = multiprocessing.get_context("spawn")
START = 1_704_067_200_000


def _run(n_trades: int, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A run's summary, trades and 1m equity curve, as ``runner.run`` leaves them."""
    rng = np.random.default_rng(seed)
    entry = START + 60_000 * np.sort(rng.integers(0, 5_000, n_trades))
    trades = pd.DataFrame(
        {"symbol": "BTC/USDT:USDT", "side": rng.choice(["long", "short"], n_trades),
         "entry_time": entry, "exit_time": entry + 60_000, "qty": 1.0,
         "entry_price": rng.uniform(90, 110, n_trades), "exit_price": 100.0,
         "net": rng.normal(0, 1, n_trades), "fees": 0.01, "funding": 0.0,
         "r": np.where(rng.random(n_trades) < 0.2, np.nan, 1.0), "reason": "signal",
         "open": False}
    )  # fmt: skip
    stamps = START + 60_000 * np.arange(6_000)
    equity = pd.DataFrame(
        {"timestamp": stamps, "equity": 1_000 + np.cumsum(rng.normal(0, 1, 6_000))}
    )
    return {"trades": n_trades, "sharpe": float("nan")}, trades, equity


def _record(root: Path, seed: int, n_trades: int = 50) -> str:
    summary, trades, equity = _run(n_trades, seed)
    request = {"strategy": "ema_cross", "symbols": ["BTC/USDT:USDT"], "seed": seed}
    return journal.save_run(root, request=request, timeframe="1m", summary=summary,
                            benchmarks={"hold BTC": 1.0}, trades=trades, equity=equity,
                            now_ms=START + seed)  # fmt: skip


def _complete(root: Path) -> list[dict]:
    """Every listed run, checked whole: both files there, its rows and only its rows."""
    listed = journal.runs(root)
    for run in listed:
        trades = journal.read_run(root, run["run_id"], "trades")
        equity = journal.read_run(root, run["run_id"], "equity")
        assert set(trades["run_id"].to_pylist()) <= {run["run_id"]}
        assert set(equity["run_id"].to_pylist()) == {run["run_id"]}
        assert trades.num_rows == json.loads(run["summary"])["trades"]
    return listed


def test_a_run_keeps_its_trades_and_hourly_equity_exactly(tmp_path: Path):
    summary, trades, equity = _run(40, seed=1)
    request = {"strategy": "x", "symbols": ["BTC/USDT:USDT"]}
    run_id = journal.save_run(tmp_path, request=request, timeframe="1m", summary=summary,
                              benchmarks={}, trades=trades, equity=equity,
                              now_ms=START)  # fmt: skip
    (run,) = journal.runs(tmp_path)
    assert run["run_id"] == run_id and run["created_at"] == START
    assert '"sharpe": null' in run["summary"]  # strict JSON
    stored = journal.read_run(tmp_path, run_id, "trades").to_pandas()
    pd.testing.assert_frame_equal(
        stored.drop(columns="run_id"), trades[list(journal.TRADE_COLUMNS)], check_dtype=False
    )
    hourly = journal.read_run(tmp_path, run_id, "equity").to_pandas()
    want = equity.groupby(equity.timestamp // journal.HOUR_MS).last().reset_index(drop=True)
    pd.testing.assert_frame_equal(hourly.drop(columns="run_id"), want)
    assert run["start_ts"] == START and run["end_ts"] == equity.timestamp.iat[-1]


def test_a_run_without_trades_is_recorded(tmp_path: Path):
    summary, trades, equity = _run(0, seed=2)
    request = {"strategy": "x", "symbols": ["A/USDT:USDT"]}
    run_id = journal.save_run(tmp_path, request=request, timeframe="1m", summary=summary,
                              benchmarks={}, trades=trades, equity=equity,
                              now_ms=START)  # fmt: skip
    assert journal.read_run(tmp_path, run_id, "trades").num_rows == 0
    assert [r["run_id"] for r in _complete(tmp_path)] == [run_id]


def _record_many(root: str, first_seed: int, count: int, start) -> None:
    start.wait()
    for seed in range(first_seed, first_seed + count):
        _record(Path(root), seed)


def test_two_processes_recording_at_once_lose_no_run(tmp_path: Path):
    """Same request, same clock in both (the seeds differ only in the trades): the random part
    of the id keeps them apart, DuckDB's lock takes their rows in turn."""
    start = SPAWN.Barrier(2)
    procs = [SPAWN.Process(target=_record_many, args=(str(tmp_path), 100 * i, 15, start))
             for i in range(2)]  # fmt: skip
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    assert [p.exitcode for p in procs] == [0, 0]
    listed = _complete(tmp_path)
    assert len(listed) == 30 and len({r["run_id"] for r in listed}) == 30
    assert len(list((tmp_path / journal.FOLDER).glob("*.parquet"))) == 60


# ---- killed mid-record ------------------------------------------------------------------------


def _stall(ready) -> None:
    ready.set()
    time.sleep(600)


def _killed_writing_files(root: str, ready) -> None:
    def half(table, where, **kwargs) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        _stall(ready)

    pq.write_table = half  # this process only
    _record(Path(root), seed=7)


def _killed_before_commit(root: str, ready) -> None:
    def stalled(root, *args, **kwargs):
        _stall(ready)

    catalog.connect = stalled  # the files are written; the row is not
    _record(Path(root), seed=7)


class _StallOnCommit:
    def __init__(self, con, ready) -> None:
        self.con, self.ready = con, ready

    def execute(self, sql, *args):
        if sql == "COMMIT":
            _stall(self.ready)
        return self.con.execute(sql, *args)


def _killed_in_transaction(root: str, ready) -> None:
    connect = catalog.connect

    @contextmanager
    def stalling(root, *args, **kwargs):
        with connect(root, *args, **kwargs) as con:
            yield _StallOnCommit(con, ready)

    catalog.connect = stalling  # the row is inserted, its transaction not committed
    _record(Path(root), seed=7)


@pytest.mark.parametrize(
    "victim", [_killed_writing_files, _killed_before_commit, _killed_in_transaction]
)
def test_kill_9_mid_record_leaves_only_whole_runs_and_the_next_record_works(tmp_path, victim):
    kept = _record(tmp_path, seed=1)
    ready = SPAWN.Event()
    child = SPAWN.Process(target=victim, args=(str(tmp_path), ready))
    child.start()
    try:
        assert ready.wait(60)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    assert [r["run_id"] for r in _complete(tmp_path)] == [kept]  # the killed run is not there

    after = _record(tmp_path, seed=2)  # the journal opens for writing again (lock released)

    assert [r["run_id"] for r in _complete(tmp_path)] == [kept, after]
