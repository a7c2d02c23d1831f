"""Holes a hostile tester found in the lake and in ``fetch --import``: infinite values, bars that
have not closed, a lone bar under the wrong timeframe, a bad row named wrongly, a folder given as
the file, a damaged revision log, and JSON arrays or CSV on stdin."""

import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.cli.inputs import read_records
from cryptobot.core.errors import DataError
from cryptobot.data.importer import import_candles, read_candle_file
from cryptobot.data.lake import OHLCV, REVISIONS, Lake
from tests.conftest import Cli, walk_bars

SYMBOL = "BTC/USDT:USDT"
EX = "binanceusdm"
HOUR, MINUTE, DAY = 3_600_000, 60_000, 86_400_000
JAN_2023 = 1_672_531_200_000
AT_16_48 = 1_767_225_600_000 + 16 * HOUR + 48 * MINUTE  # 2026-01-01T16:48Z


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _import(cli: Cli, path: Path, timeframe: str, symbol: str = SYMBOL, ok: bool = True):
    args = ("fetch", "--import", str(path), "--symbol", symbol, "--timeframe", timeframe)
    result = cli(*args, "-f", "json", ok=ok)
    return json.loads(result.stdout)[0] if ok else result


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not result.stdout


def _status(cli: Cli) -> dict[tuple[str, str], dict]:
    result = cli("fetch", "--status", "-f", "jsonl")
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # strict JSON per line
    return {(r["symbol"], r["timeframe"]): r for r in rows}


# ---- 1: infinite values ------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [["volume"], ["high", "close"]])
def test_a_csv_with_1e309_is_refused_naming_its_line(
    cli: Cli, data_dir: Path, tmp_path: Path, columns: list[str]
):
    path = tmp_path / "inf.csv"
    text = walk_bars(JAN_2023, 49, step=HOUR).to_csv(index=False).splitlines()
    header = text[0].split(",")
    cells = text[12].split(",")  # line 13 of the file
    for col in columns:
        cells[header.index(col)] = "1e309"
    text[12] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    _one_line_error(_import(cli, path, "1h", ok=False), f"line 13: {columns[0]} is inf")
    assert not list(data_dir.rglob("*.parquet"))


@settings(max_examples=40, deadline=None)
@given(
    row=st.integers(0, 19),
    col=st.sampled_from(OHLCV[1:]),
    value=st.sampled_from([math.inf, -math.inf, math.nan]),
)
def test_any_non_finite_value_refuses_the_write(tmp_path_factory, row, col, value):
    lake = Lake(tmp_path_factory.mktemp("lake"))
    bars = walk_bars(JAN_2023, 20)
    bars.loc[row, col] = value
    with pytest.raises(DataError, match="1 rows with NaN or infinite values; the first bad bar"):
        lake.write_candles(EX, SYMBOL, "5m", bars)
    assert not any(lake.root.iterdir())


def test_status_reports_infinite_values_already_stored(cli: Cli, data_dir: Path):
    """A Parquet file written around the lake (an older version, another tool) holding +inf."""
    lake = Lake(data_dir)
    lake.write_candles(EX, SYMBOL, "1h", walk_bars(JAN_2023, 49, step=HOUR))
    lake.write_candles(EX, "ETH/USDT:USDT", "1h", walk_bars(JAN_2023, 49, step=HOUR))
    (part,) = lake.candle_dir(EX, SYMBOL, "1h").glob("*.parquet")
    bars = pq.read_table(part).to_pandas()
    bars.loc[5, ["high", "close"]] = math.inf
    pq.write_table(pa.Table.from_pandas(bars, preserve_index=False), part)
    rows = _status(cli)
    assert rows[(SYMBOL, "1h")]["problems"] == (
        "1 rows with NaN or infinite values; the first bad bar opens at 2023-01-01T05:00:00Z"
    )
    assert rows[("ETH/USDT:USDT", "1h")]["problems"] is None


# ---- 2: only closed bars -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeframe", "last_open", "stored"),
    [
        ("1h", AT_16_48 - 48 * MINUTE - HOUR, True),  # the 15:00 bar closed at 16:00
        ("1h", AT_16_48 - 48 * MINUTE, False),  # the 16:00 bar closes at 17:00
        ("1h", AT_16_48 + 12 * MINUTE, False),  # the 17:00 bar
        ("1d", AT_16_48 - 16 * HOUR - 48 * MINUTE - DAY, True),  # yesterday's
        ("1d", AT_16_48 - 16 * HOUR - 48 * MINUTE, False),  # today's, still forming
        ("1d", AT_16_48 - 16 * HOUR - 48 * MINUTE + DAY, False),  # tomorrow's
    ],
)
def test_import_stores_only_bars_closed_at_the_callers_clock(
    tmp_path: Path, timeframe: str, last_open: int, stored: bool
):
    step = HOUR if timeframe == "1h" else DAY
    path = tmp_path / "bars.csv"
    walk_bars(last_open - 29 * step, 30, step=step).to_csv(path, index=False)
    lake = Lake(tmp_path / "lake")
    if stored:
        row = import_candles(lake, EX, SYMBOL, timeframe, path, now_ms=AT_16_48)
        assert row["new"] == 30
        return
    with pytest.raises(DataError, match=r"\d bar\(s\) not closed yet, the first opening at"):
        import_candles(lake, EX, SYMBOL, timeframe, path, now_ms=AT_16_48)
    assert not (tmp_path / "lake").exists()


def test_a_daily_bar_dated_tomorrow_is_refused_by_the_cli(cli: Cli, data_dir: Path, tmp_path):
    tomorrow = (pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1)).value // 1_000_000
    path = tmp_path / "ltc.csv"
    walk_bars(tomorrow - 9 * DAY, 10, step=DAY).to_csv(path, index=False)
    result = _import(cli, path, "1d", symbol="LTC/USDT:USDT", ok=False)
    _one_line_error(result, "not closed yet")
    assert not list(data_dir.rglob("*.parquet"))


# ---- 3: a lone bar under the wrong timeframe ---------------------------------------------------


def test_a_single_bar_with_no_stored_neighbour_is_refused(cli: Cli, data_dir: Path, tmp_path):
    """One 1h bar imported as 1m drove a 1m backtest's buy-and-hold from it."""
    path = tmp_path / "one.csv"
    walk_bars(JAN_2023, 1, step=HOUR).to_csv(path, index=False)
    result = _import(cli, path, "1m", ok=False)
    _one_line_error(result, "a single bar at 2023-01-01T00:00:00Z with no stored bar next to it")
    assert "one bar cannot show it is a 1m bar" in result.stderr
    Lake(data_dir).write_candles(EX, SYMBOL, "1m", walk_bars(JAN_2023 + DAY, 60, step=MINUTE))
    before = _snapshot(data_dir)
    _one_line_error(_import(cli, path, "1m", ok=False), "with no stored bar next to it")
    assert _snapshot(data_dir) == before


@pytest.mark.parametrize("offset", [-1, 0, 59, 60])
def test_a_single_bar_next_to_or_on_a_stored_bar_is_stored(tmp_path: Path, offset: int):
    lake = Lake(tmp_path)
    lake.write_candles(EX, SYMBOL, "1m", walk_bars(JAN_2023, 60, step=MINUTE))
    bar = walk_bars(JAN_2023 + offset * MINUTE, 1, step=MINUTE, seed=9)
    written = lake.write_candles(EX, SYMBOL, "1m", bar)
    assert written.new_rows == (0 if 0 <= offset < 60 else 1)
    assert written.changed_rows == (1 if 0 <= offset < 60 else 0)


def test_a_fetched_single_bar_page_is_stored_as_before(tmp_path: Path):
    """A page the exchange served for the timeframe asked for is not judged by its spacing."""
    lake = Lake(tmp_path)
    bar = walk_bars(JAN_2023, 1, step=HOUR)
    assert lake.write_candles(EX, SYMBOL, "1h", bar, check_spacing=False).new_rows == 1
    two_far = walk_bars(JAN_2023 + DAY, 2, step=DAY)
    assert lake.write_candles(EX, SYMBOL, "1h", two_far, check_spacing=False).new_rows == 2


# ---- 4 and 5: the bad row named, no pandas warning; a folder ------------------------------------


def _csv_lines(n: int = 30, iso_dates: bool = False) -> list[str]:
    bars = walk_bars(JAN_2023, n)
    if iso_dates:
        bars["timestamp"] = pd.to_datetime(bars["timestamp"], unit="ms").dt.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    return bars.to_csv(index=False).splitlines()


@pytest.mark.parametrize(
    ("line", "cells", "message"),
    [
        (20, "garbage,row", "line 20: time value is 'garbage', not a time"),
        (7, ",1,2,0.5,1,3", "line 7: time value is empty"),
        (9, "1672533600000,1,2,0.5,,3", "line 9: close is empty or NaN"),
        (11, "1672534200000,1,2,0.5,abc,3", "line 11: close is 'abc', not a finite number"),
        (30, "1672539600000,1,2,0.5,1,nan", "line 30: volume is empty or NaN"),
    ],
)
@pytest.mark.parametrize("iso_dates", [False, True])
def test_the_first_bad_row_is_named_by_its_line(
    tmp_path: Path, line: int, cells: str, message: str, iso_dates: bool
):
    lines = _csv_lines(iso_dates=iso_dates)
    if iso_dates and cells[0].isdigit():
        stamp = int(cells.split(",")[0])
        iso = pd.Timestamp(stamp, unit="ms").strftime("%Y-%m-%dT%H:%M:%SZ")
        cells = iso + cells[cells.index(",") :]
    lines[line - 1] = cells
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' "could not infer format" warning leaked
        with pytest.raises(DataError, match=f"^{path} {message}$"):
            read_candle_file(path)


def test_blank_lines_do_not_shift_the_line_numbers(tmp_path: Path):
    lines = _csv_lines()
    lines[4] = ""
    lines[15] = "1672535100000,1,2,0.5,-inf,3"
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 16: close is -inf"):
        read_candle_file(path)


def test_a_bad_row_of_a_parquet_file_is_named_by_its_row(tmp_path: Path):
    bars = walk_bars(JAN_2023, 10)
    bars.loc[6, "open"] = np.nan
    path = tmp_path / "bad.parquet"
    bars.to_parquet(path)
    with pytest.raises(DataError, match=r"bad\.parquet row 7: open is empty or NaN"):
        read_candle_file(path)


def test_the_cli_error_is_one_line_with_no_warning(cli: Cli, data_dir: Path, tmp_path: Path):
    lines = _csv_lines(iso_dates=True)
    lines[19] = "garbage,row"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    _one_line_error(_import(cli, path, "5m", ok=False), "line 20: time value is 'garbage'")
    folder = tmp_path / "somefolder"
    folder.mkdir()
    _one_line_error(_import(cli, folder, "5m", ok=False), f"{folder} is a directory")
    assert not list(data_dir.rglob("*.parquet"))


# ---- 6: a damaged revision log -----------------------------------------------------------------


def test_a_damaged_revision_log_is_reported_and_its_series_refuses_writes(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    lake = Lake(data_dir)
    for symbol in (SYMBOL, "ETH/USDT:USDT"):
        lake.write_candles(EX, symbol, "1h", walk_bars(JAN_2023, 48, step=HOUR))
    log = lake.candle_dir(EX, "ETH/USDT:USDT", "1h") / REVISIONS
    log.write_text('{"at": null, "source": "x", "changed": 2}\n{oops\n')
    (lake.candle_dir(EX, "ETH/USDT:USDT", "4h")).mkdir()
    (lake.candle_dir(EX, "ETH/USDT:USDT", "4h") / "2023.parquet").write_bytes(b"junk")

    rows = _status(cli)  # exit 0: the other series are still reported

    assert rows[(SYMBOL, "1h")]["problems"] is None
    damaged = rows[("ETH/USDT:USDT", "1h")]
    assert f"{REVISIONS} line 2 is not a revision record" in damaged["problems"]
    assert damaged["revised_bars"] is None and damaged["bars"] == 48
    unreadable = rows[("ETH/USDT:USDT", "4h")]
    assert "cannot read" in unreadable["problems"] and unreadable["bars"] is None

    path = tmp_path / "revised.csv"
    walk_bars(JAN_2023, 50, step=HOUR, seed=5).to_csv(path, index=False)
    before = _snapshot(data_dir)
    result = _import(cli, path, "1h", symbol="ETH/USDT:USDT", ok=False)
    _one_line_error(result, f"refusing to store ETH/USDT:USDT 1h: {log} line 2")
    assert _snapshot(data_dir) == before
    assert _import(cli, path, "1h")["changed"] == 48  # the healthy series takes it


# ---- 7: stdin holds whatever -f printed --------------------------------------------------------


RECORDS = [
    {"symbol": "BTC/USDT:USDT", "entry": 95000.0},
    {"symbol": "ETH/USDT:USDT", "entry": 3500.0},
]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("r.json", "\n  " + json.dumps(RECORDS, indent=2)),
        ("r.csv", "symbol,entry\nBTC/USDT:USDT,95000.0\nETH/USDT:USDT,3500.0\n"),
        ("r.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS)),
    ],
)
def test_stdin_reads_what_the_same_file_holds(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    from_file = read_records(str(path))
    from_stdin = read_records("-", io.StringIO(text))
    assert [r for _, r in from_stdin] == [r for _, r in from_file] == RECORDS
    assert [w.replace(str(path), "stdin") for w, _ in from_file] == [w for w, _ in from_stdin]
    assert read_records("-", io.StringIO(" \n")) == []


def test_a_folder_given_as_records_says_so(tmp_path: Path):
    with pytest.raises(DataError, match="is a directory"):
        read_records(str(tmp_path))


def test_scan_json_and_csv_pipe_into_size_and_signal(emu_cli: Cli, tmp_path: Path):
    scan = ("scan", "--top", "5", "--within", "300", "--min-confidence", "0")
    emu_cli.env["CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS"] = "400"  # let old setups through
    sized = ("--risk-usd", "1", "--equity", "1000", "-f", "jsonl")
    decisions = ("--all", "-f", "jsonl")
    for fmt, command, flags in (("json", "size", sized), ("csv", "signal", decisions)):
        printed = emu_cli(*scan, "-f", fmt).stdout
        assert printed.strip()
        path = tmp_path / f"setups.{fmt}"
        path.write_text(printed)
        from_file = emu_cli(command, str(path), *flags).stdout
        from_pipe = emu_cli(command, "-", *flags, input=printed).stdout
        assert from_pipe == from_file and from_pipe.strip(), (fmt, command)
