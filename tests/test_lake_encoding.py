"""How the lake encodes its Parquet columns (data/lake.py ``encodings``): floats split into
byte streams, times as deltas, text by dictionary; every value reads back as written, through
the lake, pandas and DuckDB, and a partition written before (dictionary-encoded) reads beside
new ones."""

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.data.lake import OHLCV, Lake
from tests.conftest import walk_bars

SYMBOL = "BTC/USDT:USDT"
JAN_2025 = 1_735_689_600_000
NOW = 1_767_225_600_000  # 2026-01-01


def _encodings(path: Path) -> dict[str, set[str]]:
    meta = pq.ParquetFile(path).metadata.row_group(0)
    return {meta.column(i).path_in_schema: set(meta.column(i).encodings)
            for i in range(meta.num_columns)}  # fmt: skip


def test_candles_are_split_floats_and_delta_times_and_read_back_exactly(tmp_path: Path):
    bars = walk_bars(JAN_2025, 20_000)
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", bars, now_ms=NOW)
    files = sorted(tmp_path.rglob("*.parquet"))
    found = _encodings(files[0])
    assert "DELTA_BINARY_PACKED" in found["timestamp"]
    assert all("BYTE_STREAM_SPLIT" in found[c] for c in OHLCV[1:])
    assert not any("RLE_DICTIONARY" in e for e in found.values())
    back = lake.read_candles("binanceusdm", SYMBOL, "5m")
    pd.testing.assert_frame_equal(back, bars[OHLCV].reset_index(drop=True))
    rows = pq.ParquetFile(files[0]).metadata.num_rows
    pd.testing.assert_frame_equal(pd.read_parquet(files[0]).reset_index(drop=True),
                                  back.iloc[:rows])  # fmt: skip
    glob = (tmp_path / "candles/*/*/*/*.parquet").as_posix()
    sql = f"SELECT timestamp, open, high, low, close, volume FROM '{glob}' ORDER BY timestamp"
    read = duckdb.connect().execute(sql).fetchnumpy()
    assert all(np.array_equal(read[c], back[c].to_numpy()) for c in OHLCV)


def test_a_partition_written_before_reads_beside_new_ones(tmp_path: Path):
    bars = walk_bars(JAN_2025, 20_000)
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", bars, now_ms=NOW)
    first = sorted(tmp_path.rglob("*.parquet"))[0]
    pq.write_table(pq.read_table(first), first, compression="zstd")  # the old default encoding
    assert any("RLE_DICTIONARY" in e for e in _encodings(first).values())
    back = lake.read_candles("binanceusdm", SYMBOL, "5m")
    pd.testing.assert_frame_equal(back, bars[OHLCV].reset_index(drop=True))


@settings(max_examples=40, deadline=None)
@given(rates=st.lists(st.one_of(st.floats(-0.01, 0.01), st.just(np.nan), st.just(-0.0)),
                      min_size=1, max_size=60))  # fmt: skip
def test_any_float_reads_back_bit_for_bit(tmp_path_factory, rates):
    """Funding with missing mark prices (NaN), negative zero, tiny rates: the split streams
    are the same bytes."""
    root = tmp_path_factory.mktemp("lake")
    stamps = JAN_2025 + 8 * 3_600_000 * np.arange(len(rates), dtype=np.int64)
    frame = pd.DataFrame({"timestamp": stamps, "funding_rate": np.nan_to_num(rates),
                          "mark_price": np.array(rates) * 1e6 + 50_000})  # fmt: skip
    lake = Lake(root)
    lake.write_funding("binanceusdm", SYMBOL, frame)
    back = pd.read_parquet(lake.funding_path("binanceusdm", SYMBOL))
    for column in ("funding_rate", "mark_price"):
        assert back[column].to_numpy().tobytes() == frame[column].to_numpy().tobytes()
