"""The lake's writes under hostile use: a wrong timeframe, value revisions, concurrent writers,
bars from the future, a writer killed mid-write, and the umask of the files it leaves."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.data.lake import OHLCV, REVISIONS, Lake
from cryptobot.data.validate import check_candles
from tests import lake_writers
from tests.conftest import BINANCE, Cli, walk_bars
from tests.lake_writers import DAYS, JAN_2025, NOW, SYMBOL

ROOT = Path(__file__).resolve().parents[1]
SERIES = Path("candles/binanceusdm/BTC_USDT_USDT")
SPAWN = multiprocessing.get_context("spawn")


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _import(cli: Cli, path: Path, timeframe: str, ok: bool = True):
    args = ("fetch", "--import", str(path), "--symbol", SYMBOL, "--timeframe", timeframe)
    result = cli(*args, "-f", "json", ok=ok)
    return json.loads(result.stdout)[0] if ok else result


def _real(shared_tf: str, start: str, end: str) -> pd.DataFrame:
    bars = pq.read_table(BINANCE / f"BTC_USDT_USDT/{shared_tf}.parquet").to_pandas()[OHLCV]
    lo, hi = (int(pd.Timestamp(t, tz="UTC").value // 1_000_000) for t in (start, end))
    return bars[(bars.timestamp >= lo) & (bars.timestamp < hi)].reset_index(drop=True)


def _child_env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


# ---- item 2: a file under the wrong timeframe; revisions of stored values ---------------------


@pytest.mark.parametrize("source_tf", ["1h", "1d"])
def test_a_file_imported_under_a_shorter_timeframe_is_refused_and_nothing_changes(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path, source_tf: str
):
    five = tmp_path / "5m.parquet"
    _real("5m", "2025-03-01", "2025-04-01").to_parquet(five)
    _import(cli, five, "5m")
    wrong = tmp_path / f"{source_tf}.parquet"
    _real(source_tf, "2025-03-01", "2025-04-01").to_parquet(wrong)
    before = _snapshot(data_dir)

    result = _import(cli, wrong, "5m", ok=False)

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"no two bars are 5m apart (closest: {source_tf})" in result.stderr
    assert _snapshot(data_dir) == before
    (row,) = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    assert row["problems"] is None and row["revised_bars"] == 0


def test_a_series_with_holes_still_imports(cli: Cli, shared: Path, tmp_path: Path):
    bars = _real("5m", "2025-03-01", "2025-03-08")
    holed = bars[(bars.index // 7) % 3 != 1]  # every third run of 7 bars missing
    path = tmp_path / "holed.csv"
    holed.to_csv(path, index=False)
    row = _import(cli, path, "5m")
    assert (row["new"], row["changed"], row["gaps"]) == (len(holed), 0, len(bars) // 21)


@settings(max_examples=60, deadline=None)
@given(
    keep=st.lists(st.booleans(), min_size=2, max_size=200),
    factor=st.integers(2, 288),
)
def test_spacing_check_tells_a_holed_series_from_a_coarser_one(keep, factor):
    """Any aligned series with one adjacent pair passes; the same bars spaced ``factor`` times
    wider (all still on the grid) fail."""
    step = 300_000
    ts = JAN_2025 + step * np.flatnonzero(keep).astype("int64")
    adjacent = bool(len(ts) >= 2 and (np.diff(ts) == step).any())
    ones = dict.fromkeys(("open", "high", "low", "close", "volume"), np.ones(len(ts)))
    holed = check_candles({"timestamp": ts, **ones}, tf_ms=step)
    coarse = check_candles({"timestamp": ts * factor, **ones}, tf_ms=step)
    spacing = "apart (closest"
    assert any(spacing in p for p in holed.problems()) == (len(ts) >= 2 and not adjacent)
    assert any(spacing in p for p in coarse.problems()) == (len(ts) >= 2)


def test_a_fetched_page_across_a_venue_outage_is_stored(tmp_path: Path):
    """The exchange served the timeframe it was asked for: two bars either side of an outage
    have no neighbour one bar apart, yet they are real 5m bars (the fetcher skips the test)."""
    lake = Lake(tmp_path)
    page = pd.concat([walk_bars(JAN_2025, 1), walk_bars(JAN_2025 + 3 * 300_000, 1, seed=2)])
    with pytest.raises(DataError, match="no two bars are 5m apart"):
        lake.write_candles("binanceusdm", "BTC/USDT:USDT", "5m", page)
    written = lake.write_candles("binanceusdm", "BTC/USDT:USDT", "5m", page, check_spacing=False)
    assert written.new_rows == 2


def test_a_reimport_that_changes_values_says_how_many_and_status_keeps_it(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    bars = walk_bars(JAN_2025, 2_000)
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    assert _import(cli, path, "5m")["changed"] == 0
    stored = _snapshot(data_dir)
    again = _import(cli, path, "5m")  # identical: silent, nothing rewritten, nothing recorded
    assert (again["new"], again["changed"]) == (0, 0)
    assert _snapshot(data_dir) == stored
    assert not (data_dir / SERIES / "5m" / REVISIONS).exists()

    revised = bars.copy()
    rows = [10, 11, 1_500]  # two partitions (January and February)
    revised.loc[rows, "high"] += 7.0
    revised.loc[[10], "volume"] = 0.0
    revised = pd.concat([revised, walk_bars(JAN_2025 + 2_000 * 300_000, 5, seed=9)])
    revised.to_csv(path, index=False)
    row = _import(cli, path, "5m")
    assert (row["new"], row["changed"], row["total"]) == (5, 3, 2_005)
    pd.testing.assert_frame_equal(
        Lake(data_dir).read_candles("binanceusdm", SYMBOL, "5m"),
        revised.reset_index(drop=True),
    )
    (status,) = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    assert status["revised_bars"] == 3 and status["last_revision"].startswith("20")
    (record,) = Lake(data_dir).candle_revisions("binanceusdm", SYMBOL, "5m")
    ts = bars["timestamp"]
    assert record["changed"] == 3 and record["source"] == f"import {path}"
    assert (record["first"], record["last"]) == (
        pd.Timestamp(ts[10], unit="ms").strftime("%Y-%m-%dT%H:%M:%SZ"),
        pd.Timestamp(ts[1_500], unit="ms").strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert _import(cli, path, "5m")["changed"] == 0  # the same revision again changes nothing
    assert len(Lake(data_dir).candle_revisions("binanceusdm", SYMBOL, "5m")) == 1


@settings(max_examples=30, deadline=None)
@given(
    picks=st.lists(st.tuples(st.integers(0, 399), st.booleans()), min_size=1, max_size=60),
)
def test_changed_rows_counts_exactly_the_stored_bars_whose_values_differ(tmp_path_factory, picks):
    lake = Lake(tmp_path_factory.mktemp("lake"))
    base = walk_bars(JAN_2025, 300)  # the write below reaches 100 bars past it
    lake.write_candles("x", SYMBOL, "5m", base, now_ms=NOW)
    chosen = {i for i, _ in picks} | {398, 399}  # one adjacent pair: the write is 5m data
    update = walk_bars(JAN_2025, 400, seed=3).iloc[sorted(chosen)].copy()
    same = sorted({i for i, keep in picks if keep and i < 300})
    update.loc[same, OHLCV[1:]] = base.loc[same, OHLCV[1:]].to_numpy()  # resent unchanged
    result = lake.write_candles("x", SYMBOL, "5m", update, now_ms=NOW, source="test")
    revised = [i for i in update.index if i < 300 and i not in same]
    assert result.changed_rows == len(revised)
    assert result.new_rows == int((update.index >= 300).sum())
    records = lake.candle_revisions("x", SYMBOL, "5m")
    assert [r["changed"] for r in records] == ([len(revised)] if revised else [])


def test_an_empty_write_leaves_no_trace_and_a_damaged_revision_log_is_a_clear_error(
    tmp_path: Path,
):
    lake = Lake(tmp_path)
    empty = walk_bars(JAN_2025, 10).iloc[:0]
    assert lake.write_candles("x", SYMBOL, "5m", empty, now_ms=NOW).total_rows == 0
    assert not any(tmp_path.iterdir())
    lake.write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025, 10), now_ms=NOW)
    log = lake.candle_dir("x", SYMBOL, "5m") / REVISIONS
    log.write_text('{"at": null, "source": "x", "changed": 2}\n\n{"changed": "many"}\n')
    with pytest.raises(DataError, match=f"{REVISIONS} line 3 is not a revision record"):
        lake.candle_revisions("x", SYMBOL, "5m")


# ---- item 4: bars from the future, and bars not closed yet ---------------------------------------


def test_bars_that_have_not_closed_at_now_are_refused(tmp_path: Path):
    lake = Lake(tmp_path)
    bars = walk_bars(NOW - 10 * 300_000, 10)  # the last closes exactly at now: a closed bar
    assert lake.write_candles("x", SYMBOL, "5m", bars, now_ms=NOW).new_rows == 10
    before = _snapshot(tmp_path)
    forming = walk_bars(NOW - 300_000, 2)  # the second opens at now: still forming
    with pytest.raises(
        DataError, match=r"1 bar\(s\) not closed yet, the first opening at 2026-01-01T00:00:00Z"
    ):
        lake.write_candles("x", SYMBOL, "5m", forming, now_ms=NOW)
    daily = walk_bars(NOW - 86_400_000, 2, step=86_400_000)  # yesterday's (closed) and today's
    with pytest.raises(DataError, match="closing at 2026-01-02T00:00:00Z"):
        lake.write_candles("x", SYMBOL, "1d", daily, now_ms=NOW + 1)
    assert _snapshot(tmp_path) == before


def test_importing_a_bar_dated_2099_is_one_line_and_harmless(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    path = tmp_path / "future.csv"
    bars = walk_bars(JAN_2025, 100)
    last = pd.Timestamp("2099-12-31T23:55", tz="UTC")  # the last bar with a plausible time
    bars.loc[99, "timestamp"] = int(last.value // 1_000_000)
    bars.to_csv(path, index=False)
    result = _import(cli, path, "5m", ok=False)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "the first opening at 2099-12-31T23:55:00Z" in result.stderr
    assert not list(data_dir.rglob("*.parquet"))


# ---- item 3: concurrent writers ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("writers", [2, 2, 6])
def test_concurrent_writers_lose_no_bar(tmp_path: Path, writers: int):
    start = SPAWN.Barrier(writers)
    procs = [
        SPAWN.Process(target=lake_writers.write_share, args=(str(tmp_path), i, writers, start))
        for i in range(writers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    assert [p.exitcode for p in procs] == [0] * writers
    lake = Lake(tmp_path)
    pd.testing.assert_frame_equal(
        lake.read_candles("x", SYMBOL, "5m"), walk_bars(JAN_2025, DAYS * 288, seed=7)
    )
    expected_funding = sorted(
        JAN_2025 + h * 3_600_000 for h in range(DAYS * 24) if h % (writers * 8) == h % writers
    )
    assert lake.read_funding("x", SYMBOL)["timestamp"].tolist() == expected_funding
    assert lake.candle_revisions("x", SYMBOL, "5m") == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_cli_imports_at_once_keep_every_bar(tmp_path: Path):
    """The issue's reproduction through the CLI: odd and even hours of one month's 5m bars, two
    `fetch --import` at once (the test above races many more writes, in several rounds)."""
    bars = walk_bars(JAN_2025, 31 * 288, seed=5)
    hours = (bars.timestamp - JAN_2025) // 3_600_000
    data_dir = tmp_path / "lake"
    data_dir.mkdir()
    procs = []
    for parity in (0, 1):
        path = tmp_path / f"{parity}.parquet"
        bars[hours % 2 == parity].to_parquet(path)
        args = ["fetch", "--import", str(path), "--symbol", SYMBOL, "--timeframe", "5m"]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cryptobot", *args],
                env=_child_env() | {"CRYPTOBOT_DATA_DIR": str(data_dir)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stored = Lake(data_dir).read_candles("binanceusdm", SYMBOL, "5m")
    pd.testing.assert_frame_equal(stored, bars)


def test_a_second_writer_waits_and_never_removes_a_live_temp_file(tmp_path: Path):
    ready, go, started = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    holder = SPAWN.Process(
        target=lake_writers.hold_lock_then_write, args=(str(tmp_path), ready, go)
    )
    holder.start()
    assert ready.wait(60)
    second = SPAWN.Process(target=lake_writers.write_later_bars, args=(str(tmp_path), started))
    second.start()
    try:
        assert started.wait(60)
        time.sleep(0.5)  # room for the second writer to go wrong if it did not wait for the lock
        assert len(list(tmp_path.rglob("*.tmp"))) == 1
    finally:
        go.set()
        holder.join()
        second.join()
    assert (holder.exitcode, second.exitcode) == (0, 0)
    stored = Lake(tmp_path).read_candles("x", SYMBOL, "5m")
    pd.testing.assert_frame_equal(
        stored,
        pd.concat(
            [walk_bars(JAN_2025, 12), walk_bars(JAN_2025 + 12 * 300_000, 12)], ignore_index=True
        ),
    )


# ---- a writer killed mid-write -------------------------------------------------------------------


def test_kill_9_mid_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025, 50), now_ms=NOW)
    ready = SPAWN.Event()
    child = SPAWN.Process(target=lake_writers.stall_mid_write, args=(str(tmp_path), ready))
    child.start()
    try:
        assert ready.wait(60)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    (stale,) = tmp_path.rglob("*.tmp")
    pd.testing.assert_frame_equal(lake.read_candles("x", SYMBOL, "5m"), walk_bars(JAN_2025, 50))

    lake.write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025, 100), now_ms=NOW)  # lock is free

    assert not stale.exists() and not list(tmp_path.rglob("*.tmp"))
    pd.testing.assert_frame_equal(lake.read_candles("x", SYMBOL, "5m"), walk_bars(JAN_2025, 100))


def test_stale_temp_files_of_one_file_series_are_cleaned_by_its_next_write(tmp_path: Path):
    lake = Lake(tmp_path)
    path = lake.funding_path("x", SYMBOL)
    path.parent.mkdir(parents=True)
    stale = path.with_name(f".{path.name}.dead01.tmp")
    other = path.with_name(".ETH_USDT_USDT.parquet.dead02.tmp")  # another series' business
    stale.write_bytes(b"half")
    other.write_bytes(b"half")
    lake.write_funding("x", SYMBOL, pd.DataFrame({"timestamp": [JAN_2025], "funding_rate": [1e-4]}))
    assert not stale.exists() and other.exists()


# ---- item 12: the umask decides who may read the lake --------------------------------------------

_WRITE_EVERYTHING = """
import os, sys
import pandas as pd
from cryptobot.data.lake import Lake
from tests.lake_writers import JAN_2025, NOW, SYMBOL, walk_bars
os.umask(int(sys.argv[2], 8))
lake = Lake(sys.argv[1])
lake.write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025, 10), now_ms=NOW)
lake.write_candles("x", SYMBOL, "5m", walk_bars(JAN_2025, 10, seed=4), now_ms=NOW)  # a revision
lake.write_funding("x", SYMBOL, pd.DataFrame({"timestamp": [JAN_2025], "funding_rate": [1e-4]}))
lake.write_markets("x", [])
"""


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"),
    [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)],
)
def test_files_follow_the_umask(tmp_path: Path, umask: int, file_mode: int, dir_mode: int):
    root = tmp_path / "lake"
    subprocess.run(
        [sys.executable, "-c", _WRITE_EVERYTHING, str(root), f"{umask:o}"],
        env=_child_env(),
        check=True,
    )
    files = [p for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"2025-01.parquet", REVISIONS, ".lock", "x.parquet", "BTC_USDT_USDT.parquet"} <= names
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {
        p.name: oct(file_mode) for p in files
    }
    dirs = [p for p in root.rglob("*") if p.is_dir()]
    assert {oct(p.stat().st_mode & 0o777) for p in dirs} == {oct(dir_mode)}


def test_a_lock_that_cannot_be_taken_is_one_clear_error(tmp_path):
    """A data dir a writer cannot write (read-only, another user's, a file in the way) is a
    DataError naming the lock, not "unexpected OSError" (``trade --status`` on paper on a
    read-only mount said that: a hostile pass's find; root can write anywhere here, so a
    file stands where the lock's folder should be)."""
    from cryptobot.core.errors import DataError
    from cryptobot.data.locks import exclusive

    (tmp_path / "data").write_text("not a folder")
    lock = exclusive(tmp_path / "data" / "paper-paper.lock")
    with pytest.raises(DataError, match=r"cannot lock .*must be writable"), lock:
        pass
