"""`fetch --import --kind ...` against the defects a hostile tester found: times that are no epoch
ms (negative, microseconds) poisoning the lake and `fetch --status`; funding stamps seconds off
the settlement stored as extra settlements; two different rows for one time; a funding file in
percent; a re-import killed mid-write that the revision log never recorded."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.data.lake import OHLCV, Lake
from cryptobot.data.validate import FIRST_PLAUSIBLE_MS, LAST_PLAUSIBLE_MS
from tests.conftest import BINANCE, Cli, walk_bars

SYMBOL = "BTC/USDT:USDT"
EX = "binanceusdm"
HOUR = 3_600_000
AUG_2025 = 1_756_108_800_000  # 2025-08-25T08:00Z, a Binance settlement
ROOT = Path(__file__).resolve().parents[1]


def _import(cli: Cli, path: Path, kind: str, *flags: str, ok: bool = True):
    result = cli("fetch", "--import", str(path), "--kind", kind, *flags, "-f", "json", ok=ok)
    return json.loads(result.stdout)[0] if ok else result


def _refused(result, *messages: str) -> str:
    """The one stderr line of a refused import (exit 1, nothing on stdout)."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert not result.stdout
    for message in messages:
        assert message in lines[0], lines[0]
    return lines[0]


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _funding_csv(path: Path, stamps, rates=None) -> Path:
    rates = [1e-4] * len(stamps) if rates is None else rates
    pd.DataFrame({"timestamp": stamps, "funding_rate": rates}).to_csv(path, index=False)
    return path


def _settlements(n: int) -> np.ndarray:
    return AUG_2025 + 8 * HOUR * np.arange(n, dtype="int64")


# ---- 1. times that are no epoch milliseconds -----------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [-1_756_108_800_000, -1, 1_756_108_800_000_000, FIRST_PLAUSIBLE_MS - HOUR, LAST_PLAUSIBLE_MS],
    ids=["negative ms", "minus one", "microseconds", "2008", "2100"],
)
def test_a_funding_time_that_is_no_epoch_ms_is_refused_naming_its_line(
    cli: Cli, data_dir: Path, tmp_path: Path, bad: int
):
    stamps = list(_settlements(20))
    _import(cli, _funding_csv(tmp_path / "good.csv", stamps[:10]), "funding", "--symbol", SYMBOL)
    before = _snapshot(data_dir)
    stamps[12] = bad  # one bad record among good ones, after the stored ones
    path = _funding_csv(tmp_path / "bad.csv", stamps)
    result = _import(cli, path, "funding", "--symbol", SYMBOL, ok=False)
    _refused(result, f"bad.csv line 14: time value {bad} is before 2009 or after 2099")
    assert _snapshot(data_dir) == before
    assert cli("fetch", "--status", "-f", "json").exit_code == 0


def test_a_file_of_negative_times_stores_nothing_and_later_imports_still_work(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    """The tester's file: every time negative (-1756108800000 ...)."""
    negative = _funding_csv(tmp_path / "neg.csv", -_settlements(20))
    _refused(_import(cli, negative, "funding", "--symbol", SYMBOL, ok=False), "neg.csv line 2")
    assert not list(data_dir.rglob("*.parquet"))
    good = _funding_csv(tmp_path / "good.csv", _settlements(20))
    assert _import(cli, good, "funding", "--symbol", SYMBOL)["new"] == 20
    (row,) = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    assert (row["bars"], row["problems"]) == (20, None)


@pytest.mark.parametrize(
    ("kind", "flags"),
    [
        ("candles", ("--symbol", SYMBOL, "--timeframe", "5m")),
        ("mark", ("--symbol", SYMBOL, "--timeframe", "5m")),
    ],
)
def test_candles_with_a_negative_open_time_are_refused_naming_the_line(
    cli: Cli, data_dir: Path, tmp_path: Path, kind: str, flags
):
    bars = walk_bars(AUG_2025, 50)
    bars.loc[30, "timestamp"] = -int(bars.loc[30, "timestamp"])
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    result = _import(cli, path, kind, *flags, ok=False)
    _refused(result, f"bars.csv line 32: time value {bars.loc[30, 'timestamp']} is before 2009")
    assert not list(data_dir.rglob("*.parquet"))


def test_open_interest_in_microseconds_is_refused(cli: Cli, data_dir: Path, tmp_path: Path):
    stamps = (AUG_2025 + HOUR * np.arange(24, dtype="int64")) * 1000
    path = tmp_path / "oi.parquet"
    pd.DataFrame({"timestamp": stamps, "open_interest": 1e4}).to_parquet(path)
    flags = ("--symbol", SYMBOL, "--timeframe", "1h")
    result = _import(cli, path, "open_interest", *flags, ok=False)
    _refused(result, f"oi.parquet row 1: time value {stamps[0]} is before 2009 or after 2099")
    assert not list(data_dir.rglob("*.parquet"))


@settings(max_examples=60, deadline=None)
@given(
    bad=st.one_of(
        st.integers(min_value=-(2**62), max_value=FIRST_PLAUSIBLE_MS - 1000),  # not jitter
        st.integers(min_value=LAST_PLAUSIBLE_MS, max_value=2**62),
    ),
    at=st.integers(min_value=0, max_value=9),
)
def test_the_lake_itself_refuses_any_implausible_time(tmp_path_factory, bad: int, at: int):
    """Writers other than the importer (the fetcher, a script) meet the same refusal."""
    root = tmp_path_factory.mktemp("lake")
    lake = Lake(root)
    funding = pd.DataFrame({"timestamp": _settlements(10), "funding_rate": 1e-4})
    funding.loc[at, "timestamp"] = bad
    with pytest.raises(DataError, match="before 2009 or after 2099"):
        lake.write_funding(EX, SYMBOL, funding)
    bars = walk_bars(AUG_2025, 10)
    bars.loc[at, "timestamp"] = bad
    with pytest.raises(DataError, match="before 2009 or after 2099"):
        lake.write_candles(EX, SYMBOL, "5m", bars)
    assert not list(root.rglob("*.parquet"))


def test_status_lists_a_series_it_cannot_summarise_under_problems(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    """A lake an older version poisoned (negative times stored): the series is listed with the
    reason, the others are summarised as before, and the command succeeds."""
    lake = Lake(data_dir)
    lake.write_candles(EX, SYMBOL, "5m", walk_bars(AUG_2025, 20))
    lake.write_funding(EX, "ETH/USDT:USDT", pd.DataFrame({"timestamp": _settlements(5),
                                                          "funding_rate": 1e-4}))  # fmt: skip
    poisoned = pd.DataFrame({"timestamp": -_settlements(5) * 1000, "funding_rate": 1e-4})
    poisoned.to_parquet(lake.funding_path(EX, SYMBOL), index=False)
    bad_bars = lake.candle_dir(EX, "ETH/USDT:USDT", "1h")
    bad_bars.mkdir(parents=True)
    walk_bars(-AUG_2025 * 1000, 5).to_parquet(bad_bars / "2025.parquet", index=False)

    rows = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    by = {(r["kind"], r["symbol"]): r for r in rows}
    assert set(by) == {
        ("candles", SYMBOL),
        ("candles", "ETH/USDT:USDT"),
        ("funding", SYMBOL),
        ("funding", "ETH/USDT:USDT"),
    }
    assert "cannot summarise" in by["funding", SYMBOL]["problems"]
    assert "cannot summarise" in by["candles", "ETH/USDT:USDT"]["problems"]
    assert (by["candles", SYMBOL]["bars"], by["candles", SYMBOL]["problems"]) == (20, None)
    assert (by["funding", "ETH/USDT:USDT"]["bars"], by["funding", "ETH/USDT:USDT"]["problems"]) == (
        5,
        None,
    )


# ---- 2. funding times off the hour ---------------------------------------------------------------


@pytest.mark.parametrize("offset_ms", [1_500, 1_234, 60_000, -1_000, 4 * HOUR // 3])
def test_funding_stamped_off_the_hour_is_refused_not_stored_as_extra_settlements(
    cli: Cli, data_dir: Path, tmp_path: Path, offset_ms: int
):
    """The tester's case: the real settlements stored, then the same ones +1.5 s: they were kept
    as 729 extra settlements (a backtest charged funding twice)."""
    _import(cli, _funding_csv(tmp_path / "ok.csv", _settlements(30)), "funding", "--symbol", SYMBOL)
    before = _snapshot(data_dir)
    path = _funding_csv(tmp_path / "late.csv", _settlements(30) + offset_ms)
    result = _import(cli, path, "funding", "--symbol", SYMBOL, ok=False)
    _refused(result, "30 timestamps off the 1h grid (every venue settles funding on the hour)")
    assert _snapshot(data_dir) == before


@settings(max_examples=80, deadline=None)
@given(offset=st.integers(min_value=-HOUR // 2, max_value=HOUR // 2 - 1))
def test_only_millisecond_jitter_is_folded_onto_the_hour(tmp_path_factory, offset: int):
    lake = Lake(tmp_path_factory.mktemp("lake"))
    rows = pd.DataFrame({"timestamp": _settlements(3) + offset, "funding_rate": 1e-4})
    if -500 <= offset < 500:  # Binance's few ms late: the same settlement, filed at its hour
        assert lake.write_funding(EX, SYMBOL, rows).new_rows == 3
        assert np.array_equal(lake.read_funding(EX, SYMBOL).timestamp, _settlements(3))
    else:
        with pytest.raises(DataError, match="off the 1h grid"):
            lake.write_funding(EX, SYMBOL, rows)


def test_real_funding_of_every_venue_sits_on_the_hour(shared: Path):
    """What the refusal rests on, checked on the shared histories (Binance, Bybit, OKX)."""
    files = sorted((shared / "funding").glob("*/*.parquet"))
    assert {f.parent.name for f in files} >= {"binance", "bybit", "okx"}
    for f in files:
        ts = pq.read_table(f).column("timestamp").to_numpy()
        assert ((ts + 500) // 1000 * 1000 % HOUR == 0).all(), f


# ---- 3. two rows for one time; a funding file in percent ----------------------------------------


def test_two_different_rows_for_one_time_are_refused_naming_both_lines(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    stamps = list(_settlements(20))
    rates = [1e-4] * 20
    stamps[15], rates[15] = stamps[4], 2e-4  # line 17 says otherwise than line 6
    path = _funding_csv(tmp_path / "dup.csv", stamps, rates)
    result = _import(cli, path, "funding", "--symbol", SYMBOL, ok=False)
    _refused(result, "dup.csv line 6 and ", "dup.csv line 17 hold different values", "2025-08-26")
    assert not list(data_dir.rglob("*.parquet"))


def test_a_settlement_repeated_with_its_ms_jitter_and_a_new_rate_is_a_conflict(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    stamps = [*_settlements(5), AUG_2025 + 8]  # 08:00:00.008 is the 08:00 settlement
    path = _funding_csv(tmp_path / "jit.csv", stamps, [1e-4] * 5 + [3e-4])
    _refused(_import(cli, path, "funding", "--symbol", SYMBOL, ok=False), "line 2 and ")


def test_identical_repeated_rows_are_stored_once(cli: Cli, data_dir: Path, tmp_path: Path):
    stamps = [*_settlements(10), *_settlements(3), AUG_2025 + 8]
    row = _import(cli, _funding_csv(tmp_path / "rep.csv", stamps), "funding", "--symbol", SYMBOL)
    assert (row["read"], row["new"], row["total"]) == (14, 10, 10)
    assert len(Lake(data_dir).read_funding(EX, SYMBOL)) == 10


def test_two_different_bars_for_one_open_time_are_refused(cli: Cli, data_dir: Path, tmp_path: Path):
    bars = walk_bars(AUG_2025, 30)
    twin = bars.iloc[[7]].assign(volume=bars.volume[7] + 1)
    path = tmp_path / "bars.parquet"
    pd.concat([bars, twin], ignore_index=True).to_parquet(path)
    flags = ("--symbol", SYMBOL, "--timeframe", "5m")
    _refused(_import(cli, path, "candles", *flags, ok=False), "row 8 and ", "row 31 hold")
    assert not list(data_dir.rglob("*.parquet"))


@pytest.mark.parametrize("rate", [1.0, 0.8344, -0.06, 0.0501])
def test_a_funding_rate_beyond_5_percent_is_refused_as_a_percent(
    cli: Cli, data_dir: Path, tmp_path: Path, rate: float
):
    rates = [1e-4] * 10
    rates[6] = rate
    path = _funding_csv(tmp_path / "pct.csv", _settlements(10), rates)
    result = _import(cli, path, "funding", "--symbol", SYMBOL, ok=False)
    _refused(result, "outside -0.05..0.05 (a fraction (0.0001 = 0.01 %), not a percent)")
    assert not list(data_dir.rglob("*.parquet"))


def test_a_capped_rate_of_5_percent_is_stored(cli: Cli, data_dir: Path, tmp_path: Path):
    path = _funding_csv(tmp_path / "cap.csv", _settlements(4), [0.05, -0.05, 0.03, -0.0075])
    assert _import(cli, path, "funding", "--symbol", SYMBOL)["new"] == 4


# ---- 4. the revision log under kill -9 -----------------------------------------------------------

_STALL = """
import sys, time
import pyarrow.parquet as pq
from cryptobot.data.importer import import_file
from cryptobot.data.lake import Lake

real, calls, stall_at = pq.write_table, [], int(sys.argv[3])
def stall(table, where, **kwargs):
    calls.append(where)
    if len(calls) == stall_at:  # this partition's new content is never renamed into place
        print("stalled", flush=True)
        time.sleep(600)
    real(table, where, **kwargs)

pq.write_table = stall
import_file(Lake(sys.argv[1]), "candles", "binanceusdm", sys.argv[2],
            symbol="BTC/USDT:USDT", period="5m", now_ms=int(time.time() * 1000))
"""


def _changed_bars(lake: Lake, original: pd.DataFrame) -> int:
    stored = lake.read_candles(EX, SYMBOL, "5m")
    assert np.array_equal(stored.timestamp, original.timestamp)
    return int((stored[OHLCV[1:]].to_numpy() != original[OHLCV[1:]].to_numpy()).any(axis=1).sum())


def _logged(lake: Lake) -> int:
    return sum(r["changed"] for r in lake.candle_revisions(EX, SYMBOL, "5m"))


@pytest.mark.parametrize("killed_in_write", [1, 2, 3])
def test_a_reimport_killed_mid_write_never_leaves_changes_the_log_misses(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path, killed_in_write: int
):
    """Three months of real 5m bars, re-imported with every volume changed; the writer is killed
    while writing partition 1, 2 or 3. The log may over-report that one interrupted write, never
    under-report: it counts at least every bar that really changed, before and after the re-run."""
    bars = pq.read_table(BINANCE / "BTC_USDT_USDT/5m.parquet").to_pandas()[OHLCV]
    lo, hi = (int(pd.Timestamp(t, tz="UTC").value // 1_000_000) for t in ("2024-01", "2024-04"))
    original = bars[(bars.timestamp >= lo) & (bars.timestamp < hi)].reset_index(drop=True)
    first, changed = tmp_path / "first.parquet", tmp_path / "changed.parquet"
    original.to_parquet(first)
    original.assign(volume=original.volume + 1).to_parquet(changed)
    flags = ("--symbol", SYMBOL, "--timeframe", "5m")
    _import(cli, first, "candles", *flags)
    lake = Lake(data_dir)
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    child = subprocess.Popen(
        [sys.executable, "-c", _STALL, str(data_dir), str(changed), str(killed_in_write)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "stalled"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    months = pd.to_datetime(original.timestamp, unit="ms").dt.month.to_numpy()
    really = _changed_bars(lake, original)
    assert really == int((months < killed_in_write).sum())  # the partitions renamed in place
    assert _logged(lake) == len(original)  # recorded before any file was replaced
    row = _import(cli, changed, "candles", *flags)  # the re-run completes the write
    assert row["changed"] == len(original) - really
    assert _changed_bars(lake, original) == len(original) <= _logged(lake)
    assert _logged(lake) == 2 * len(original) - really  # over by the interrupted write only
