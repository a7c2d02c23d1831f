"""Backtest runs in the journal: the row, the trades and the hourly equity as files beside the
DuckDB journal. Real processes: two recorders at once, and a recorder killed (-9) while it
writes the Parquet files, before its row and while it writes its row. Journals written
before this layout (rows in DuckDB's ``backtest_runs``) still list theirs."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.data import atomic, catalog
from cryptobot.journal import backtests as journal
from cryptobot.journal import run_rows
from cryptobot.journal.query import Filters, select

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
        assert trades.num_rows == run["summary"]["trades"]
    return listed


def test_a_run_keeps_its_trades_and_hourly_equity_exactly(tmp_path: Path):
    summary, trades, equity = _run(40, seed=1)
    request = {"strategy": "x", "symbols": ["BTC/USDT:USDT"]}
    run_id = journal.save_run(tmp_path, request=request, timeframe="1m", summary=summary,
                              benchmarks={}, trades=trades, equity=equity,
                              now_ms=START)  # fmt: skip
    (run,) = journal.runs(tmp_path)
    assert run["run_id"] == run_id and run["created_at"] == START
    assert run["summary"]["sharpe"] is None  # strict JSON: NaN stored as null
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
    of the id keeps their files apart."""
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
    assert not (tmp_path / catalog.DB_NAME).exists()  # a backtest never opens DuckDB


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


def _killed_before_the_row(root: str, ready) -> None:
    def stalled(*args, **kwargs):
        _stall(ready)

    run_rows.write = stalled  # the Parquet files are written; the row is not
    _record(Path(root), seed=7)


def _killed_writing_the_row(root: str, ready) -> None:
    replace = os.replace

    def stalling(src, dst):
        if str(dst).endswith(run_rows.SUFFIX):
            Path(src).write_text('{"run_id": "half')  # a torn temp file, never renamed
            _stall(ready)
        replace(src, dst)

    atomic.os.replace = stalling  # this process only
    _record(Path(root), seed=7)


@pytest.mark.parametrize(
    "victim", [_killed_writing_files, _killed_before_the_row, _killed_writing_the_row]
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

    after = _record(tmp_path, seed=2)

    assert [r["run_id"] for r in _complete(tmp_path)] == [kept, after]


def test_runs_in_a_journal_written_before_the_row_files_are_listed_with_the_new_ones(
    tmp_path: Path,
):
    """An older cryptobot kept each run's row in DuckDB's ``backtest_runs`` (JSON as text):
    ``journal backtests`` lists those and the file rows together, in time order, filters
    applying to both; a run's JSON reads back as objects either way."""
    with catalog.connect(tmp_path) as con:
        con.execute(
            "CREATE TABLE backtest_runs (run_id VARCHAR PRIMARY KEY, created_at BIGINT, "
            "strategy VARCHAR, symbols VARCHAR, timeframe VARCHAR, start_ts BIGINT, "
            "end_ts BIGINT, request VARCHAR, summary VARCHAR, benchmarks VARCHAR)"
        )
        con.execute(
            "INSERT INTO backtest_runs VALUES ('old1', ?, 'momentum', 'ETH/USDT:USDT', '1h', "
            "NULL, NULL, '{\"strategy\": \"momentum\"}', '{\"trades\": 3}', '{}')",
            [START + 50],
        )
    new = _record(tmp_path, seed=1)
    listed = journal.runs(tmp_path)
    assert [r["run_id"] for r in listed] == [new, "old1"]  # created_at: START + 1, + 50
    assert listed[1]["summary"] == {"trades": 3} and listed[0]["summary"]["trades"] == 50
    eth = select(tmp_path, "backtests", Filters(symbol="ETH/USDT:USDT")).records
    assert [r["run_id"] for r in eth] == ["old1"]


def test_a_data_dir_with_runs_and_no_duckdb_journal_lists_them_and_creates_nothing(
    tmp_path: Path,
):
    assert select(tmp_path, "backtests", Filters()).absent  # nothing at all yet
    run_id = _record(tmp_path, seed=3)
    assert [r["run_id"] for r in journal.runs(tmp_path)] == [run_id]
    assert not (tmp_path / catalog.DB_NAME).exists()


def test_a_summary_holding_nan_is_stored_as_strict_json(tmp_path: Path):
    run_id = _record(tmp_path, seed=4)  # its summary's sharpe is NaN
    text = run_rows.path(tmp_path, run_id).read_text()
    assert "NaN" not in text and '"sharpe": null' in text


def test_a_damaged_row_file_is_not_listed_and_the_others_are(tmp_path: Path):
    """Files a writer never leaves (it renames a whole, fsync'd file last), made by hand: torn,
    empty, not an object, not UTF-8, NaN in it, a copy under another name, a row without its
    Parquet files. A damaged one is not a run (as a killed one is not); the whole ones are
    listed, and a value of the wrong kind in a whole run reads as null (a time past the years
    a date holds made every listing fail: a review's find)."""
    kept = [_record(tmp_path, seed=s) for s in (1, 2)]
    folder = tmp_path / journal.FOLDER
    whole = run_rows.path(tmp_path, kept[0]).read_text()
    for name, text in (("torn", '{"run_id": "torn", "created_'), ("empty", ""),
                       ("list", "[1, 2]"), ("nan", '{"run_id": "nan", "x": NaN}'),
                       ("copy", whole)):  # fmt: skip
        (folder / f"{name}{run_rows.SUFFIX}").write_text(text)
    (folder / f"bytes{run_rows.SUFFIX}").write_bytes(b'{"run_id": "bytes\xff"}')
    run_rows.path(tmp_path, kept[1]).with_name(f"lone{run_rows.SUFFIX}").write_text(
        whole.replace(kept[0], "lone")  # its row, without its trades and equity files
    )
    assert [r["run_id"] for r in journal.runs(tmp_path)] == kept
    odd = json.loads(whole) | {"created_at": "soon", "start_ts": 10**17, "strategy": 7}
    run_rows.path(tmp_path, kept[0]).write_text(json.dumps(odd))
    (first,) = [r for r in journal.runs(tmp_path) if r["run_id"] == kept[0]]
    assert first["created_at"] is None and first["start_ts"] is None and first["strategy"] is None


def test_runs_are_listed_from_a_data_dir_whose_name_looks_like_a_pattern(tmp_path: Path):
    root = tmp_path / "runs[1]*?"
    run_id = _record(root, seed=5)
    assert [r["run_id"] for r in journal.runs(root)] == [run_id]
