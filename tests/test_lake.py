"""The lake: bar-for-bar round trips of the real files, idempotent merges, atomicity, checks."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.data import catalog
from cryptobot.data.importer import read_candle_file
from cryptobot.data.lake import OHLCV, Lake
from tests.conftest import BINANCE, SHARED, walk_bars

PERP_FILES = sorted(BINANCE.glob("*_USDT_USDT/*.parquet")) if BINANCE.is_dir() else []


def _manifest() -> dict[str, dict[str, str]]:
    with (SHARED / "MANIFEST.csv").open() as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("path", PERP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_import_round_trips_bar_for_bar_and_reports_known_holes(path: Path, tmp_path: Path):
    source = pq.read_table(path).to_pandas()[OHLCV]
    lake = Lake(tmp_path)
    symbol = path.parent.name.replace("_USDT_USDT", "/USDT:USDT")
    tf = path.stem
    lake.write_candles("binanceusdm", symbol, tf, read_candle_file(path))
    stored = lake.read_candles("binanceusdm", symbol, tf)
    pd.testing.assert_frame_equal(stored, source.sort_values("timestamp").reset_index(drop=True))

    row = _manifest()[str(path.relative_to(SHARED))]
    report = lake.candle_report("binanceusdm", symbol, tf)
    segments = row["segments"].split(";")
    assert report.gaps == len(segments) - 1
    assert report.bars == int(row["rows"])
    assert report.zero_volume_bars == int(row["zero_volume_bars"])
    assert report.duplicates == int(row["dup_ts"]) == 0
    assert report.problems() == []


def test_reimport_and_overlapping_writes_never_duplicate(tmp_path: Path):
    lake = Lake(tmp_path)
    bars = walk_bars(1_735_689_600_000, 20_000)  # 2025-01-01, spans several monthly partitions
    assert lake.write_candles("x", "BTC/USDT:USDT", "5m", bars).new_rows == 20_000
    files = sorted((tmp_path / "candles/x/BTC_USDT_USDT/5m").glob("*.parquet"))
    assert [f.stem for f in files] == ["2025-01", "2025-02", "2025-03"]
    again = lake.write_candles("x", "BTC/USDT:USDT", "5m", bars.iloc[5_000:12_000])
    assert (again.new_rows, again.total_rows) == (0, 20_000)
    pd.testing.assert_frame_equal(lake.read_candles("x", "BTC/USDT:USDT", "5m"), bars)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 3_000), min_size=1, max_size=6))
def test_refetching_in_any_pieces_never_duplicates_rows(tmp_path_factory, cuts):
    lake = Lake(tmp_path_factory.mktemp("lake"))
    bars = walk_bars(1_700_000_000_000 - 1_700_000_000_000 % 300_000, 3_000)
    for cut in cuts:  # overlapping pieces in any order, some written twice
        lake.write_candles("x", "ETH/USDT:USDT", "5m", bars.iloc[cut // 2 : cut + 200])
    lake.write_candles("x", "ETH/USDT:USDT", "5m", bars)
    stored = lake.read_candles("x", "ETH/USDT:USDT", "5m")
    assert stored["timestamp"].is_unique
    pd.testing.assert_frame_equal(stored, bars)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda f: f.__setitem__("close", f["close"].where(f.index != 3)), "rows with NaN"),
        (lambda f: f.__setitem__("low", f["low"].where(f.index != 4, -1.0)), "price <= 0"),
        (
            lambda f: f.__setitem__("high", f["high"].where(f.index != 5, 1.0)),
            "high/low do not contain",
        ),
        (
            lambda f: f.__setitem__(
                "timestamp", f["timestamp"].where(f.index != 6, f["timestamp"] + 17)
            ),
            "off the timeframe grid",
        ),
        (
            lambda f: f.__setitem__("volume", f["volume"].where(f.index != 7, -5.0)),
            "negative volume",
        ),
    ],
)
def test_invalid_bars_are_refused_and_nothing_stored_changes(tmp_path: Path, mutate, problem):
    lake = Lake(tmp_path)
    good = walk_bars(1_735_689_600_000, 50)
    lake.write_candles("x", "BTC/USDT:USDT", "5m", good)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    bad = walk_bars(1_735_689_600_000 + 50 * 300_000, 50, seed=2)
    mutate(bad)
    with pytest.raises(DataError, match=problem):
        lake.write_candles("x", "BTC/USDT:USDT", "5m", bad)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")} == before


def test_a_crash_while_writing_leaves_the_previous_file(tmp_path: Path, monkeypatch):
    lake = Lake(tmp_path)
    bars = walk_bars(1_735_689_600_000, 100)
    lake.write_candles("x", "BTC/USDT:USDT", "5m", bars.iloc[:50])
    path = next(tmp_path.rglob("*.parquet"))
    before = path.read_bytes()

    def crash(table, where, **kwargs):
        Path(where).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        lake.write_candles("x", "BTC/USDT:USDT", "5m", bars)
    assert path.read_bytes() == before
    assert list(path.parent.glob("*.tmp")) == []  # no temp file left behind


def test_corrupt_partition_is_a_clear_error(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write_candles("x", "BTC/USDT:USDT", "5m", walk_bars(1_735_689_600_000, 10))
    next(tmp_path.rglob("*.parquet")).write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match="cannot read"):
        lake.read_candles("x", "BTC/USDT:USDT", "5m")


@pytest.mark.parametrize("months", [1, 5], ids=["one file", "threaded read of five"])
def test_read_frames_are_exact_and_writable(tmp_path: Path, months: int):
    """One partition comes back from Arrow read-only and several as one new array; either way
    the frame equals what was stored, window by window, and takes assignments."""
    lake = Lake(tmp_path)
    bars = walk_bars(1_735_689_600_000, months * 8_000)  # 5m bars: ~28 days a partition
    lake.write_candles("x", "BTC/USDT:USDT", "5m", bars)
    assert len(list(tmp_path.rglob("*.parquet"))) == months
    whole = lake.read_candles("x", "BTC/USDT:USDT", "5m")
    pd.testing.assert_frame_equal(whole, bars)
    start, end = (int(bars.timestamp.iloc[i]) for i in (1_234, len(bars) - 4_321))
    window = lake.read_candles("x", "BTC/USDT:USDT", "5m", start, end)
    expected = bars.iloc[1_234 : len(bars) - 4_320].reset_index(drop=True)
    pd.testing.assert_frame_equal(window, expected)
    window.loc[0, "close"] = -1.0
    whole["volume"] = 0.0
    again = lake.read_candles("x", "BTC/USDT:USDT", "5m")
    pd.testing.assert_frame_equal(again, bars)  # nothing written back into anything shared


def test_one_bad_partition_among_many_is_named(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write_candles("x", "BTC/USDT:USDT", "5m", walk_bars(1_735_689_600_000, 50_000))
    files = sorted(tmp_path.rglob("*.parquet"))
    assert len(files) >= 4  # the threaded read
    files[2].write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match=f"cannot read .*{files[2].name}"):
        lake.read_candles("x", "BTC/USDT:USDT", "5m")


def test_status_counts_gaps_duplicates_and_zero_volume_runs():
    from cryptobot.data.validate import check_candles

    ts = np.array([0, 300, 600, 600, 1500, 1800, 2100], dtype="int64") * 1000
    prices = dict.fromkeys(("open", "high", "low", "close"), np.full(len(ts), 10.0))
    v = np.array([1, 0, 0, 0, 5, 0, 3], dtype="float64")
    report = check_candles({"timestamp": ts, **prices, "volume": v}, tf_ms=300_000)
    assert (report.bars, report.duplicates, report.gaps, report.missing_bars) == (6, 1, 1, 2)
    assert (report.zero_volume_bars, report.zero_volume_runs) == (4, 2)


def test_duckdb_views_see_what_the_lake_holds(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", "BTC/USDT:USDT", "5m", walk_bars(1_735_689_600_000, 10_000))
    lake.write_funding(
        "binanceusdm",
        "BTC/USDT:USDT",
        pd.DataFrame(
            {"timestamp": [1_735_689_600_001, 1_735_718_400_000], "funding_rate": [0.0001, -0.0002]}
        ),
    )
    assert set(catalog.refresh_views(tmp_path)) == {"candles", "funding"}
    rows = catalog.query(
        tmp_path, "SELECT exchange, symbol_id, timeframe, count(*) FROM candles GROUP BY ALL"
    )
    assert rows == [("binanceusdm", "BTC_USDT_USDT", "5m", 10_000)]
    # settlement jitter (…00:00.001) is folded to the second
    assert catalog.query(tmp_path, "SELECT min(timestamp) FROM funding") == [(1_735_689_600_000,)]
