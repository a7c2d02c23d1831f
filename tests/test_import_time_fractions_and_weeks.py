"""Two defects a hostile tester found in the import path (2026-12-01), with their neighbours:

- a time with a fraction of a millisecond (epoch seconds ``1748735100.5``, ms ``…000.9``, a
  date with microseconds) was cut onto the grid before the grid check, so it was stored at the
  whole minute where a time half a bar off is refused; ``Lake.write_candles`` did the same with
  float milliseconds, and a NaN time failed there with pandas' error, not a ``DataError``;
- weekly bars as venues serve them (opening Monday 00:00 UTC) were refused as off the grid:
  the grid was counted from the epoch, a Thursday.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.core.errors import DataError
from cryptobot.core.timeframes import bar_open, last_closed_open, off_grid, timeframe_ms
from cryptobot.data.lake import Lake
from cryptobot.data.resample import resample
from tests.conftest import Cli, walk_bars

SYMBOL = "BTC/USDT:USDT"
EX = "binanceusdm"
DAY = 86_400_000
WEEK = timeframe_ms("1w")
MONDAY = 1_736_121_600_000  # 2025-01-06T00:00Z, a Binance 1w open time
MINUTE_2025 = 1_748_735_100_000  # 2025-05-31T23:45Z


def _csv(path: Path, stamps: list) -> Path:
    rows = "".join(f"{t},100,101,99,100,1\n" for t in stamps)
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    return path


def _import(cli: Cli, path: Path, timeframe: str, ok: bool = True):
    result = cli("fetch", "--import", str(path), "--symbol", SYMBOL, "--timeframe", timeframe,
                 "-f", "json", ok=ok)  # fmt: skip
    return json.loads(result.stdout)[0] if ok else result


@pytest.mark.parametrize(
    ("stamps", "shown"),
    [
        ([1_748_735_100.5, 1_748_735_160.5], "1748735100.5"),  # seconds, half a second late
        ([MINUTE_2025 + 0.9, MINUTE_2025 + 60_000.9], "1748735100000.9"),  # ms with a fraction
        (["2025-05-31T23:45:00.000500", "2025-05-31T23:46:00.000500"], "2025-05-31T23:45:00.0005"),
    ],
)
def test_a_time_with_a_fraction_of_a_millisecond_is_refused_not_moved_onto_the_grid(
    cli: Cli, data_dir: Path, tmp_path: Path, stamps: list, shown: str
):
    result = _import(cli, _csv(tmp_path / "bars.csv", stamps), "1m", ok=False)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    if "not a whole millisecond" in line:
        assert "bars.csv line 2" in line and shown in line, line
    else:  # half a second late is a whole millisecond: off the 1m grid
        assert "off the timeframe grid" in line and "23:45:00.500Z" in line, line
    assert not list(data_dir.rglob("*.parquet"))


@pytest.mark.parametrize(
    "stamps",
    [
        [1_748_735_100.0, 1_748_735_160.0],  # float seconds, whole
        [1_748_735_100.000, 1_748_735_160.000],
        [float(MINUTE_2025), float(MINUTE_2025 + 60_000)],  # float ms, whole
        ["2025-05-31T23:45:00.000", "2025-05-31T23:46:00.000"],
        ["2025-05-31 23:45:00", "2025-05-31 23:46:00"],
    ],
)
def test_whole_times_of_every_form_store_at_their_minute(
    cli: Cli, data_dir: Path, tmp_path: Path, stamps: list
):
    out = _import(cli, _csv(tmp_path / "bars.csv", stamps), "1m")
    assert out["new"] == 2
    stored = Lake(data_dir).read_candles(EX, SYMBOL, "1m")
    assert stored["timestamp"].tolist() == [MINUTE_2025, MINUTE_2025 + 60_000]


def test_seconds_with_three_decimals_on_a_whole_millisecond_are_exact(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    """Float error (1756108800.123 has no exact binary value) is no fraction of a millisecond:
    such a time is read as its millisecond, here refused only for being off the 1m grid."""
    result = _import(cli, _csv(tmp_path / "bars.csv", [1_748_735_100.123]), "1m", ok=False)
    assert "off the timeframe grid" in result.stderr and "23:45:00.123Z" in result.stderr


def test_the_lake_refuses_float_times_with_a_fraction_a_nan_or_an_infinity(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    for bad in (0.5, np.nan, np.inf):
        bars = walk_bars(MINUTE_2025, 5, step=60_000)
        bars["timestamp"] = bars["timestamp"].astype("float64")
        bars.loc[2, "timestamp"] += bad
        with pytest.raises(DataError, match="whole epoch milliseconds"):
            lake.write_candles(EX, SYMBOL, "1m", bars)
    assert not list((tmp_path / "lake").rglob("*.parquet"))
    bars = walk_bars(MINUTE_2025, 5, step=60_000)
    bars["timestamp"] = bars["timestamp"].astype("float64")  # whole: stored
    assert lake.write_candles(EX, SYMBOL, "1m", bars).new_rows == 5


def test_a_negative_zero_volume_is_stored_as_zero(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    bars = walk_bars(MINUTE_2025, 3, step=60_000)
    bars["volume"] = -0.0
    lake.write_candles(EX, SYMBOL, "1m", bars)
    volume = lake.read_candles(EX, SYMBOL, "1m")["volume"].to_numpy()
    assert (volume == 0).all() and not np.signbit(volume).any()


# ---- weeks open on Mondays ---------------------------------------------------------------
def test_the_weekly_grid_is_mondays_and_every_other_grid_counts_from_the_epoch():
    assert pd.Timestamp(MONDAY, unit="ms").day_name() == "Monday"
    thursday = MONDAY + 3 * DAY
    assert not off_grid(MONDAY, WEEK) and off_grid(thursday, WEEK)
    assert bar_open(thursday, WEEK) == MONDAY and bar_open(MONDAY + WEEK - 1, WEEK) == MONDAY
    assert last_closed_open(MONDAY + WEEK + 5, WEEK) == MONDAY
    stamps = MONDAY + DAY * np.arange(-10, 30, dtype="int64")
    assert (pd.to_datetime(bar_open(stamps, WEEK), unit="ms").day_name() == "Monday").all()
    for tf in ("1m", "5m", "1h", "4h", "1d", "3d"):  # unchanged: multiples from the epoch
        ms = timeframe_ms(tf)
        assert bar_open(stamps + 12_345, ms).tolist() == ((stamps + 12_345) // ms * ms).tolist()
        assert off_grid(stamps + 1, ms).all() and not off_grid(stamps // ms * ms, ms).any()


def test_weekly_bars_opening_on_monday_are_stored_and_thursdays_refused(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    mondays = [MONDAY + i * WEEK for i in range(33)]
    out = _import(cli, _csv(tmp_path / "weeks.csv", mondays), "1w")
    assert out["new"] == 33
    assert Lake(data_dir).read_candles(EX, SYMBOL, "1w")["timestamp"].tolist() == mondays
    thursdays = [t + 3 * DAY for t in mondays[:3]]
    result = _import(cli, _csv(tmp_path / "thu.csv", thursdays), "1w", ok=False)
    assert "off the timeframe grid" in result.stderr


def test_weeks_built_from_days_open_on_monday_and_hold_monday_to_sunday():
    days = walk_bars(MONDAY - 3 * DAY, 20, step=DAY)  # Friday, then 2 weeks and 3 days
    weeks = resample(days, "1d", "1w")
    assert weeks["timestamp"].tolist() == [MONDAY, MONDAY + WEEK]  # the partial ones dropped
    first = days[(days.timestamp >= MONDAY) & (days.timestamp < MONDAY + WEEK)]
    assert weeks.loc[0, "open"] == first["open"].iloc[0]
    assert weeks.loc[0, "close"] == first["close"].iloc[-1]
    assert weeks.loc[0, "high"] == first["high"].max()
