"""`fetch --import --kind ...`: funding, mark prices and the crowd series from the real files in
../shared/data, as a hostile user would feed them: a wrong kind, NaN and inf, a row from the
future, an empty file, two imports at once, a writer killed mid-write. And the user story:
offline funding history makes a backtest book real funding."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from cryptobot.cli.fetch import IMPORT_KINDS
from cryptobot.data.importer import CANDLE_KINDS
from cryptobot.data.lake import Lake
from cryptobot.data.series import KINDS
from tests.conftest import SHARED, Cli

SYMBOL = "BTC/USDT:USDT"
EX = "binanceusdm"
HOUR = 3_600_000
ROOT = Path(__file__).resolve().parents[1]
FUNDING = SHARED / "funding/binance/BTC_USDT_USDT.parquet"
OKX = SHARED / "derivatives/okx/SOL_USDT_USDT"


def _import(cli: Cli, path: Path, kind: str, *flags: str, ok: bool = True):
    result = cli("fetch", "--import", str(path), "--kind", kind, *flags, "-f", "json", ok=ok)
    return json.loads(result.stdout)[0] if ok else result


def _one_line_error(result, message: str, code: int = 1) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not result.stdout


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _child_env(data_dir: Path) -> dict[str, str]:
    return os.environ | {
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "CRYPTOBOT_DATA_DIR": str(data_dir),
    }


def test_the_cli_lists_exactly_the_kinds_the_library_stores():
    assert (*CANDLE_KINDS, *KINDS) == IMPORT_KINDS


# ---- the real files ------------------------------------------------------------------------------

REAL = [
    (FUNDING, "funding", ("--symbol", SYMBOL), 2230),
    (SHARED / "funding/okx/SOL_USDT_USDT.parquet", "funding", ("--symbol", "SOL/USDT:USDT"), 37),
    (
        SHARED / "mark/binance/BTC_USDT_USDT/8h.parquet",
        "mark",
        ("--symbol", SYMBOL, "--timeframe", "8h"),
        1764,
    ),
    (
        OKX / "open_interest_1h.parquet",
        "open_interest",
        ("--symbol", "SOL/USDT:USDT", "--timeframe", "1h"),
        297,
    ),
    (
        OKX / "long_short_account_ratio_1h.parquet",
        "long_short",
        ("--symbol", "SOL/USDT:USDT", "--timeframe", "1h"),
        297,
    ),
    (
        OKX / "taker_volume_1h.parquet",
        "taker_volume",
        ("--symbol", "SOL/USDT:USDT", "--timeframe", "1h"),
        297,
    ),
    (SHARED / "sentiment/fear_greed_alternative_me_daily.parquet", "fear_greed", (), 2522),
]


@pytest.mark.parametrize(("path", "kind", "flags", "rows"), REAL, ids=[r[1] for r in REAL])
def test_each_real_file_imports_and_a_reimport_changes_nothing(
    cli: Cli, shared: Path, data_dir: Path, path: Path, kind: str, flags, rows: int
):
    first = _import(cli, path, kind, *flags)
    assert (first["kind"], first["read"], first["new"], first["total"]) == (kind, rows, rows, rows)
    again = _import(cli, path, kind, *flags)
    assert (again["new"], again["changed"], again["total"]) == (0, 0, rows)
    (status,) = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    assert (status["kind"], status["bars"], status["problems"]) == (kind, rows, None)
    source = pq.read_table(path).to_pandas()
    lake = Lake(data_dir)
    if kind == "mark":
        stored = lake.mark_prices().read_candles(EX, SYMBOL, "8h")
        assert (stored.volume == 0).all()
        assert np.array_equal(stored.close.to_numpy(), source.close.to_numpy())
    elif kind == "fear_greed":
        stored = lake.read_series(kind, "alternative_me")
        assert np.array_equal(stored.value.to_numpy(), source.value.to_numpy())
    elif kind == "open_interest":
        stored = lake.read_series(kind, EX, "SOL/USDT:USDT", "1h")
        assert np.array_equal(stored.open_interest.to_numpy(), source.open_interest.to_numpy())
    elif kind == "long_short":
        stored = lake.read_series(kind, EX, "SOL/USDT:USDT", "1h")
        expected = source.long_short_account_ratio.to_numpy()
        assert np.array_equal(stored.long_short_ratio.to_numpy(), expected)
    elif kind == "taker_volume":
        stored = lake.read_series(kind, EX, "SOL/USDT:USDT", "1h")
        assert np.array_equal(stored.buy_volume.to_numpy(), source.taker_buy_volume.to_numpy())


def test_freqtrade_funding_with_the_rate_in_open_and_ms_jitter_is_filed_at_its_second(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path
):
    """freqtrade stores funding as [date, rate, 0, 0, 0, 0]; a fifth of Binance's settlement
    stamps carry a few ms of jitter (kept in the shared file)."""
    source = pq.read_table(FUNDING).to_pandas()
    jittered = source.timestamp % 1000 != 0
    assert jittered.mean() > 0.15  # the quirk this test is about is really in the data
    ft = pd.DataFrame(
        {
            "date": pd.to_datetime(source.timestamp, unit="ms", utc=True),
            "open": source.funding_rate,
            "high": 0.0,
            "low": 0.0,
            "close": 0.0,
            "volume": 0.0,
        }
    )
    path = tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather"
    feather.write_feather(ft, path)
    row = _import(cli, path, "funding", "--symbol", SYMBOL)
    assert (row["new"], row["changed"]) == (2230, 0)
    stored = Lake(data_dir).read_funding(EX, SYMBOL)
    assert (stored.timestamp % 1000 == 0).all()
    assert np.array_equal(stored.timestamp, (source.timestamp + 500) // 1000 * 1000)
    assert np.array_equal(stored.funding_rate, source.funding_rate)
    # the same events with Binance's own stamps: nothing new, nothing changed
    again = _import(cli, FUNDING, "funding", "--symbol", SYMBOL)
    assert (again["new"], again["changed"], again["total"]) == (0, 0, 2230)


# ---- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "flags", "message"),
    [
        (FUNDING, "open_interest", ("--symbol", SYMBOL, "--timeframe", "8h"),
         "not open_interest data: missing column(s) open_interest; the file has timestamp,"
         " funding_rate"),
        (OKX / "taker_volume_1h.parquet", "long_short", ("--symbol", SYMBOL, "--timeframe", "1h"),
         "not long_short data: missing column(s) long_short_ratio"),
        (SHARED / "candles/binance/XRP_USDT_USDT/1h.parquet", "funding", ("--symbol", SYMBOL),
         "not funding data: no funding_rate column, and its open/high/low/close are prices"),
        (FUNDING, "mark", ("--symbol", SYMBOL, "--timeframe", "8h"),
         "missing column(s) open, high, low, close"),
        (OKX / "long_short_account_ratio_1h.parquet", "fear_greed", (),
         "not fear_greed data: missing column(s) value"),
        (OKX / "long_short_account_ratio_1h.parquet", "long_short",
         ("--symbol", SYMBOL, "--timeframe", "5m"),
         "no two rows are 5m apart (closest: 1h): these are not 5m rows"),
        (SHARED / "sentiment/fear_greed_coinmarketcap.parquet", "fear_greed", (),
         "timestamps off the 1d grid"),
    ],
)  # fmt: skip
def test_a_file_of_another_kind_is_one_line_naming_what_it_lacks(
    cli: Cli, shared: Path, data_dir: Path, path: Path, kind: str, flags, message: str
):
    _one_line_error(_import(cli, path, kind, *flags, ok=False), message)
    assert not list(data_dir.rglob("*.parquet"))


def _funding_csv(tmp_path: Path, rows: int = 30) -> tuple[Path, list[str]]:
    source = pq.read_table(FUNDING).to_pandas().head(rows)
    path = tmp_path / "funding.csv"
    source.to_csv(path, index=False)
    return path, path.read_text().splitlines()


@pytest.mark.parametrize(
    ("line", "cells", "message"),
    [
        (12, "1672790400000,nan", "line 12: funding_rate is empty or NaN"),
        (7, "1672646400000,inf", "line 7: funding_rate is inf, not a finite number"),
        (20, "1672963200000,1e309", "line 20: funding_rate is inf, not a finite number"),
        (5, "1672617600000,", "line 5: funding_rate is empty or NaN"),
        (9, "sometime,0.0001", "line 9: time value is 'sometime', not a time"),
        (30, "1672790400000,0.05x", "line 30: funding_rate is '0.05x', not a finite number"),
    ],
)
def test_one_bad_record_among_good_ones_is_named_by_its_line(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path, line: int, cells: str, message: str
):
    path, lines = _funding_csv(tmp_path)
    _import(cli, path, "funding", "--symbol", SYMBOL)  # stored before: must not change
    before = _snapshot(data_dir)
    lines[line - 1] = cells
    path.write_text("\n".join(lines) + "\n")
    _one_line_error(_import(cli, path, "funding", "--symbol", SYMBOL, ok=False), message)
    assert _snapshot(data_dir) == before


def test_an_out_of_range_value_is_refused_with_its_time(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path
):
    ratios = pq.read_table(OKX / "long_short_account_ratio_1h.parquet").to_pandas()
    ratios.loc[100, "long_short_account_ratio"] = -0.5
    path = tmp_path / "ratios.jsonl"
    ratios.to_json(path, orient="records", lines=True)
    flags = ("--symbol", "SOL/USDT:USDT", "--timeframe", "1h")
    result = _import(cli, path, "long_short", *flags, ok=False)
    _one_line_error(result, "1 rows with long_short_ratio NaN, infinite or below 0; the first")
    assert "2026-06-04T19:00:00Z" in result.stderr
    assert not list(data_dir.rglob("*.parquet"))


def test_a_row_from_the_future_is_refused_and_nothing_is_stored(
    cli: Cli, data_dir: Path, tmp_path: Path
):
    tomorrow = (pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1)).value // 10**6
    days = tomorrow - 86_400_000 * np.arange(10, dtype="int64")[::-1]
    path = tmp_path / "fng.csv"
    pd.DataFrame({"timestamp": days // 1000, "value": 50}).to_csv(path, index=False)  # seconds
    result = _import(cli, path, "fear_greed", ok=False)
    _one_line_error(result, "refusing to store alternative_me fear_greed: 1 rows not known yet")
    assert not list(data_dir.rglob("*.parquet"))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "", "is empty; nothing stored"),
        ("header.csv", "timestamp,funding_rate\n", "holds no rows; nothing stored"),
        ("empty.jsonl", "", "is empty; nothing stored"),
        ("blank.csv", "\n\n", "cannot read"),
    ],
)
def test_an_empty_file_is_refused(cli: Cli, data_dir: Path, tmp_path: Path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    _one_line_error(_import(cli, path, "funding", "--symbol", SYMBOL, ok=False), message)
    assert not list(data_dir.rglob("*.parquet"))


def test_a_kind_without_a_file_is_a_usage_error(cli: Cli, data_dir: Path):
    result = cli("fetch", "--kind", "funding", "--symbols", SYMBOL, ok=False)
    _one_line_error(result, "--kind funding says what --import holds; give --import", code=2)


@pytest.mark.parametrize(
    ("kind", "flags", "message"),
    [
        ("long_short", ("--symbol", SYMBOL), "--import --kind long_short needs --timeframe"),
        ("funding", (), "--import --kind funding needs --symbol"),
        ("funding", ("--symbol", SYMBOL, "--timeframe", "8h"), "drop --timeframe"),
        ("fear_greed", ("--symbol", SYMBOL), "drop --symbol"),
        ("mark", ("--symbol", SYMBOL), "needs --timeframe (the candles' timeframe)"),
        ("fundng", ("--symbol", SYMBOL), "'fundng' is not one of 'candles', 'mark', 'funding'"),
    ],
)
def test_flags_that_parse_but_do_not_fit_the_kind_are_usage_errors(
    cli: Cli, data_dir: Path, kind: str, flags, message: str
):
    result = cli("fetch", "--import", str(FUNDING), "--kind", kind, *flags, ok=False)
    _one_line_error(result, message, code=2)
    assert not list(data_dir.rglob("*.parquet"))


# ---- two writers, a writer killed ----------------------------------------------------------------


def test_two_processes_importing_funding_at_once_keep_every_row(shared: Path, tmp_path: Path):
    source = pq.read_table(FUNDING).to_pandas()
    data_dir = tmp_path / "lake"
    data_dir.mkdir()
    procs = []
    for parity in (0, 1):
        path = tmp_path / f"{parity}.parquet"
        source.iloc[parity::2].to_parquet(path)
        args = ["fetch", "--import", str(path), "--kind", "funding", "--symbol", SYMBOL]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cryptobot", *args],
                env=_child_env(data_dir),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stored = Lake(data_dir).read_funding(EX, SYMBOL)
    assert len(stored) == len(source) == 2230
    assert np.array_equal(stored.funding_rate, source.funding_rate)


_STALL = """
import sys, time
from pathlib import Path
import pyarrow.parquet as pq
from cryptobot.data.importer import import_file
from cryptobot.data.lake import Lake

def half(table, where, **kwargs):
    Path(where).write_bytes(b"PAR1 half a file")
    print("stalled", flush=True)
    time.sleep(600)

pq.write_table = half
import_file(Lake(sys.argv[1]), "funding", "binanceusdm", sys.argv[2],
            symbol="BTC/USDT:USDT", period=None, now_ms=int(time.time() * 1000))
"""


def test_kill_9_mid_import_leaves_the_previous_file_readable(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path
):
    source = pq.read_table(FUNDING).to_pandas()
    first = tmp_path / "first.parquet"
    source.head(1000).to_parquet(first)
    _import(cli, first, "funding", "--symbol", SYMBOL)
    before = Lake(data_dir).read_funding(EX, SYMBOL)
    child = subprocess.Popen(
        [sys.executable, "-c", _STALL, str(data_dir), str(FUNDING)],
        env=_child_env(data_dir),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "stalled"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert list(data_dir.rglob("*.tmp"))  # the killed writer's half file is left behind
    pd.testing.assert_frame_equal(Lake(data_dir).read_funding(EX, SYMBOL), before)
    row = _import(cli, FUNDING, "funding", "--symbol", SYMBOL)  # the lock died with the writer
    assert (row["new"], row["total"]) == (1230, 2230)
    assert not list(data_dir.rglob("*.tmp"))


# ---- the user story: offline funding history in a backtest ---------------------------------------


def _backtest(cli: Cli, out: Path) -> tuple[dict, pd.DataFrame, str]:
    args = ("--strategy", "ema_cross", "--symbols", SYMBOL, "--timeframe", "1h")
    window = ("--from", "2023-01-01", "--to", "2023-03-01", "--units", "0.01")
    result = cli("backtest", *args, *window, "-o", str(out), "-f", "json", "--no-journal")
    summary = json.loads(result.stdout)[0]
    return summary, pq.read_table(out).to_pandas(), result.stderr


def test_imported_binance_funding_is_booked_by_a_backtest_of_the_same_period(
    cli: Cli, shared: Path, data_dir: Path, tmp_path: Path
):
    candles = SHARED / "candles/binance/BTC_USDT_USDT/1h.parquet"
    cli("fetch", "--import", str(candles), "--symbol", SYMBOL, "--timeframe", "1h")
    without, _, warned = _backtest(cli, tmp_path / "none.parquet")
    assert "no stored funding for" in warned  # the constant fallback, said so

    _import(cli, FUNDING, "funding", "--symbol", SYMBOL)
    summary, trades, said = _backtest(cli, tmp_path / "real.parquet")
    assert "no stored funding" not in said
    assert (trades.funding != 0).mean() > 0.5  # most trades held across a settlement
    booked = trades.funding.sum()
    assert booked == pytest.approx(summary["funding_received_usd"] - summary["funding_paid_usd"])
    assert summary["funding_paid_usd"] != without["funding_paid_usd"]
    # a long held over a positive rate pays it: check one trade against the stored history
    rates = Lake(data_dir).read_funding(EX, SYMBOL).set_index("timestamp").funding_rate
    longs = trades[(trades.side == "long") & (trades.funding != 0)]
    trade = longs.iloc[0]
    held = rates[(rates.index > trade.entry_time) & (rates.index <= trade.exit_time)]
    assert np.sign(trade.funding) == -np.sign(held.sum())
    assert abs(trade.funding) == pytest.approx(
        abs(held.sum()) * trade.qty * trade.entry_price, rel=0.05
    )

    # mark-price candles land where the backtest reads them: funding is charged on the mark
    mark = SHARED / "mark/binance/BTC_USDT_USDT/8h.parquet"
    _import(cli, mark, "mark", "--symbol", SYMBOL, "--timeframe", "8h")
    _, on_mark, _ = _backtest(cli, tmp_path / "mark.parquet")
    assert (np.sign(on_mark.funding) == np.sign(trades.funding)).all()
    assert not np.array_equal(on_mark.funding, trades.funding)
    assert on_mark.funding.to_numpy() == pytest.approx(trades.funding.to_numpy(), rel=0.02)
