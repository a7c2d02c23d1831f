"""The lake's observation series (funding, open interest, long/short, taker volume, Fear & Greed,
mark-price candles): refused values, rows not known yet, idempotent merges, revisions, status."""

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.data.lake import Lake
from cryptobot.data.status import lake_status
from tests.conftest import walk_bars

SYMBOL = "BTC/USDT:USDT"
HOUR = 3_600_000
JAN_2025 = 1_735_689_600_000
NOW = 1_767_225_600_000  # 2026-01-01


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def ratios(n: int, start: int = JAN_2025, step: int = HOUR) -> pd.DataFrame:
    longs = np.linspace(0.4, 0.7, n)
    return pd.DataFrame(
        {
            "timestamp": start + step * np.arange(n, dtype="int64"),
            "long_short_ratio": longs / (1 - longs),
            "long_account": longs,
            "short_account": 1 - longs,
        }
    )


BAD_VALUES = [
    ("funding", "funding_rate", np.nan, "funding_rate NaN, infinite or outside -0.05..0.05"),
    ("funding", "funding_rate", np.inf, "funding_rate NaN"),
    ("funding", "funding_rate", 1.5, "funding_rate NaN"),
    ("funding", "mark_price", -np.inf, "mark_price infinite or not above 0"),
    ("open_interest", "open_interest", -1.0, "open_interest NaN, infinite or below 0"),
    ("long_short", "long_account", 1.2, "long_account infinite or outside 0..1"),
    ("taker_volume", "sell_volume", np.nan, "sell_volume NaN, infinite or below 0"),
    ("fear_greed", "value", 101.0, "value NaN, infinite or outside 0..100"),
]


def _frame(kind: str, n: int = 6) -> pd.DataFrame:
    ts = JAN_2025 + HOUR * np.arange(n, dtype="int64")
    columns = {
        "funding": {"funding_rate": 1e-4, "mark_price": 95_000.0},
        "open_interest": {"open_interest": 1e4, "open_interest_value": 9.5e8},
        "long_short": {"long_short_ratio": 1.5, "long_account": 0.6, "short_account": 0.4},
        "taker_volume": {"buy_volume": 10.0, "sell_volume": 12.0},
        "fear_greed": {"value": 55.0},
    }[kind]
    if kind == "fear_greed":
        ts = JAN_2025 + 86_400_000 * np.arange(n, dtype="int64")
    return pd.DataFrame({"timestamp": ts} | {c: np.full(n, v) for c, v in columns.items()})


def _write(lake: Lake, kind: str, frame: pd.DataFrame, **kwargs):
    source = "alternative_me" if kind == "fear_greed" else "x"
    symbol = None if kind == "fear_greed" else SYMBOL
    period = None if kind in ("funding", "fear_greed") else "1h"
    return lake.write_series(kind, source, symbol, period, frame, **kwargs)


@pytest.mark.parametrize(("kind", "column", "value", "message"), BAD_VALUES)
def test_one_bad_value_among_good_rows_refuses_the_write_and_changes_nothing(
    tmp_path: Path, kind: str, column: str, value: float, message: str
):
    lake = Lake(tmp_path)
    _write(lake, kind, _frame(kind, 3))
    before = _snapshot(tmp_path)
    frame = _frame(kind)
    frame.loc[4, column] = value
    with pytest.raises(DataError, match=message) as err:
        _write(lake, kind, frame)
    assert f"the first bad row is at {pd.Timestamp(frame.timestamp[4], unit='ms'):%Y-%m-%d}" in str(
        err.value
    )
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["funding", "open_interest", "long_short", "fear_greed"])
def test_a_row_from_the_future_is_refused(tmp_path: Path, kind: str):
    frame = _frame(kind)
    now = int(frame.timestamp.iloc[-2])  # the last row lies after the writer's clock
    with pytest.raises(DataError, match="1 rows not known yet at"):
        _write(Lake(tmp_path), kind, frame, now_ms=now)
    assert not list(tmp_path.rglob("*.parquet"))
    _write(Lake(tmp_path), kind, frame.iloc[:-1], now_ms=now)  # the rest is known: stored


def test_a_taker_period_is_known_only_when_it_closes(tmp_path: Path):
    frame = _frame("taker_volume", 3)
    last = int(frame.timestamp.iloc[-1])
    with pytest.raises(DataError, match="a 1h period known when it closes"):
        _write(Lake(tmp_path), "taker_volume", frame, now_ms=last + HOUR - 1)
    assert _write(Lake(tmp_path), "taker_volume", frame, now_ms=last + HOUR).new_rows == 3


def test_rows_off_the_period_grid_and_a_coarser_file_are_refused(tmp_path: Path):
    lake = Lake(tmp_path)
    off = ratios(4)
    off.loc[2, "timestamp"] += 60_000
    with pytest.raises(DataError, match="1 timestamps off the 1h grid"):
        lake.write_series("long_short", "x", SYMBOL, "1h", off)
    daily = ratios(4, step=86_400_000)
    with pytest.raises(DataError, match=r"no two rows are 1h apart \(closest: 1d\)"):
        lake.write_series("long_short", "x", SYMBOL, "1h", daily, check_spacing=True)
    assert not list(tmp_path.rglob("*.parquet"))


def test_funding_jitter_is_folded_to_the_second_either_way(tmp_path: Path):
    """Binance stamps some settlements a few ms late; early stamps are folded too."""
    lake = Lake(tmp_path)
    stamps = [JAN_2025 + 8, JAN_2025 + 8 * HOUR - 3, JAN_2025 + 16 * HOUR]
    lake.write_funding("x", SYMBOL, pd.DataFrame({"timestamp": stamps, "funding_rate": 1e-4}))
    stored = lake.read_funding("x", SYMBOL)
    assert stored.timestamp.tolist() == [JAN_2025, JAN_2025 + 8 * HOUR, JAN_2025 + 16 * HOUR]
    again = [JAN_2025, JAN_2025 + 8 * HOUR + 2, JAN_2025 + 16 * HOUR]  # the same events
    result = lake.write_funding(
        "x", SYMBOL, pd.DataFrame({"timestamp": again, "funding_rate": 1e-4})
    )
    assert (result.new_rows, result.changed_rows, result.total_rows) == (0, 0, 3)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=47), max_size=4, unique=True))
def test_writing_a_series_in_any_pieces_stores_it_once(tmp_path_factory, cuts: list[int]):
    lake = Lake(tmp_path_factory.mktemp("lake"))
    whole = ratios(48)
    bounds = [0, *sorted(cuts), 48]
    for lo, hi in itertools.pairwise(bounds):
        lake.write_series("long_short", "x", SYMBOL, "1h", whole.iloc[max(0, lo - 2) : hi])
    pd.testing.assert_frame_equal(lake.read_series("long_short", "x", SYMBOL, "1h"), whole)
    assert lake.series_revisions("long_short", "x", SYMBOL, "1h") == []


def test_a_write_that_changes_values_says_how_many_and_is_recorded(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write_series("long_short", "x", SYMBOL, "1h", ratios(10), now_ms=NOW)
    revised = ratios(10)
    revised.loc[[3, 7], "long_short_ratio"] += 0.1
    result = lake.write_series("long_short", "x", SYMBOL, "1h", revised, now_ms=NOW, origin="t")
    assert (result.new_rows, result.changed_rows) == (0, 2)
    assert result.changed_first == JAN_2025 + 3 * HOUR
    (record,) = lake.series_revisions("long_short", "x", SYMBOL, "1h")
    assert (record["changed"], record["source"]) == (2, "t")
    (row,) = lake_status(lake)
    assert (row["kind"], row["timeframe"], row["bars"], row["revised_bars"]) == (
        "long_short",
        "1h",
        10,
        2,
    )


def test_status_lists_every_kind_and_names_a_damaged_file(tmp_path: Path):
    lake = Lake(tmp_path)
    for kind in ("funding", "open_interest", "long_short", "taker_volume", "fear_greed"):
        _write(lake, kind, _frame(kind))
    gappy = _frame("open_interest").drop(index=[2, 3])
    lake.write_open_interest("x", "ETH/USDT:USDT", "1h", gappy)
    settled = _frame("funding", 4).assign(timestamp=JAN_2025 + HOUR * np.array([0, 8, 16, 32]))
    lake.write_series("funding", "x", "ETH/USDT:USDT", None, settled, now_ms=NOW)
    marks = walk_bars(JAN_2025, 24, step=HOUR).assign(volume=0.0)
    lake.mark_prices().write_candles("x", SYMBOL, "1h", marks, now_ms=NOW)
    lake.write_candles("x", SYMBOL, "1h", walk_bars(JAN_2025, 24, step=HOUR), now_ms=NOW)
    damaged = lake.series_path("taker_volume", "x", SYMBOL, "1h")
    damaged.write_bytes(b"PAR1 not really")
    rows = {(r["kind"], r["symbol"]): r for r in lake_status(lake)}
    assert set(rows) == {
        ("candles", SYMBOL),
        ("mark", SYMBOL),
        ("funding", SYMBOL),
        ("funding", "ETH/USDT:USDT"),
        ("open_interest", SYMBOL),
        ("open_interest", "ETH/USDT:USDT"),
        ("long_short", SYMBOL),
        ("taker_volume", SYMBOL),
        ("fear_greed", None),
    }
    assert rows[("open_interest", "ETH/USDT:USDT")]["gaps"] == 1
    assert rows[("open_interest", "ETH/USDT:USDT")]["missing_bars"] == 2
    assert rows[("funding", SYMBOL)]["gaps"] == 0  # hourly settlements
    # 8-hourly, one settlement lost between 16h and 32h; how many rows: the venue's to say
    assert (rows[("funding", "ETH/USDT:USDT")]["gaps"], rows[("funding", "ETH/USDT:USDT")]
            ["missing_bars"]) == (1, None)  # fmt: skip
    assert rows[("mark", SYMBOL)]["zero_volume_bars"] is None
    assert rows[("fear_greed", None)]["exchange"] == "alternative_me"
    assert "cannot read" in rows[("taker_volume", SYMBOL)]["problems"]
    assert all(r["problems"] is None for k, r in rows.items() if k != ("taker_volume", SYMBOL))


def test_status_names_values_a_foreign_tool_wrote_into_the_lake(tmp_path: Path):
    """The lake refuses an infinite rate, but a file written by another tool may hold one."""
    lake = Lake(tmp_path)
    path = lake.funding_path("x", SYMBOL)
    path.parent.mkdir(parents=True)
    frame = _frame("funding")
    frame.loc[2, "funding_rate"] = np.inf
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    (row,) = lake_status(lake)
    assert "1 rows with funding_rate NaN, infinite" in row["problems"]


def test_a_damaged_revision_log_refuses_writes_to_its_series(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write_series("long_short", "x", SYMBOL, "1h", ratios(3))
    path = lake.series_path("long_short", "x", SYMBOL, "1h")
    log = path.with_name("1h.revisions.jsonl")
    log.write_text('{"changed": 1}\nnot json\n')
    with pytest.raises(DataError, match="line 2 is not a revision record"):
        lake.write_series("long_short", "x", SYMBOL, "1h", ratios(4))
    (row,) = lake_status(lake)
    assert "line 2 is not a revision record" in row["problems"]
    assert json.loads(log.read_text().splitlines()[0]) == {"changed": 1}


def test_funding_is_read_with_the_mark_price_of_stored_mark_candles(tmp_path: Path):
    lake = Lake(tmp_path)
    marks = walk_bars(JAN_2025, 48, step=HOUR).assign(volume=0.0)
    lake.mark_prices().write_candles("x", SYMBOL, "1h", marks, now_ms=NOW)
    stamps = [JAN_2025 + 8 * HOUR, JAN_2025 + 48 * HOUR, JAN_2025 + 72 * HOUR]
    lake.write_funding("x", SYMBOL, pd.DataFrame({"timestamp": stamps, "funding_rate": 1e-4}))
    read = lake.read_funding("x", SYMBOL)
    # at 08:00 the bar opening then; at +48h the last bar closes then; +72h: no mark price
    assert read.mark_price.iloc[0] == marks.open.iloc[8]
    assert read.mark_price.iloc[1] == marks.close.iloc[47]
    assert np.isnan(read.mark_price.iloc[2])
    assert (tmp_path / "candles").exists() is False  # mark candles are not trade candles
