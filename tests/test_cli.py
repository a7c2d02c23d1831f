"""Command-line manners: help, version, output formats, one-line errors, inputs."""

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from cryptobot import __version__
from cryptobot.cli.inputs import parse_records, read_records
from cryptobot.core.errors import DataError
from tests.conftest import BINANCE, Cli

COMMANDS = [(), ("fetch",), ("config",), ("config", "show"), ("config", "check")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "cryptobot")
def test_every_command_has_help_with_an_example(cli: Cli, command):
    result = cli(*command, "--help")
    assert "Usage" in result.stdout
    assert "cryptobot" in result.stdout and "xample" in result.stdout


def test_version(cli: Cli):
    assert cli("--version").stdout.strip() == f"cryptobot {__version__}"


@pytest.fixture
def imported(cli: Cli, shared: Path, data_dir: Path) -> Path:
    cli(
        "fetch",
        "--import",
        str(BINANCE / "SOL_USDT_USDT/15m.parquet"),
        "--symbol",
        "SOL/USDT:USDT",
        "--timeframe",
        "15m",
    )
    return data_dir


def test_status_in_every_format(cli: Cli, imported: Path, tmp_path: Path):
    rows = json.loads(cli("fetch", "--status", "--format", "json").stdout)
    assert rows[0]["symbol"] == "SOL/USDT:USDT" and rows[0]["bars"] == 3093
    lines = cli("fetch", "--status", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(x)["bars"] for x in lines] == [3093]
    table = list(csv.DictReader(io.StringIO(cli("fetch", "--status", "-f", "csv").stdout)))
    assert table[0]["timeframe"] == "15m" and table[0]["gaps"] == "0"
    # piped stdout (CliRunner is not a terminal) defaults to JSONL
    assert json.loads(cli("fetch", "--status").stdout.splitlines()[0])["bars"] == 3093
    assert "SOL/USDT:USDT" in cli("fetch", "--status", "-f", "table").stdout
    for name in ("s.parquet", "s.csv", "s.jsonl", "s.json"):
        out = tmp_path / name
        cli("fetch", "--status", "-o", str(out))
        assert out.stat().st_size > 0
    assert pq.read_table(tmp_path / "s.parquet").to_pylist()[0]["bars"] == 3093
    assert json.loads((tmp_path / "s.json").read_text())[0]["bars"] == 3093
    result = cli("fetch", "--status", "-o", str(tmp_path / "s.xlsx"), ok=False)
    assert result.exit_code == 1 and "use a .parquet" in result.stderr


def test_import_formats_and_idempotence(cli: Cli, shared: Path, tmp_path: Path, data_dir: Path):
    source = pq.read_table(BINANCE / "ETH_USDT_USDT/1d.parquet").to_pandas()
    as_csv = tmp_path / "eth.csv"
    seconds = source.assign(timestamp=source.timestamp // 1000)  # epoch seconds
    seconds.to_csv(as_csv, index=False)
    as_feather = tmp_path / "eth.feather"  # freqtrade's layout: a `date` datetime column
    freqtrade = source.assign(date=pd.to_datetime(source.timestamp, unit="ms", utc=True))
    feather.write_feather(freqtrade.drop(columns="timestamp"), as_feather)
    for path in (as_csv, as_feather, as_csv):
        row = json.loads(
            cli(
                "fetch",
                "--import",
                str(path),
                "--symbol",
                "ETH/USDT:USDT",
                "--timeframe",
                "1d",
                "-f",
                "json",
            ).stdout
        )[0]
        assert row["total"] == len(source)
    status = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    assert [(r["bars"], r["duplicates"]) for r in status] == [(len(source), 0)]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            lambda d: (d / "bad.parquet").write_bytes(b"PAR1 not really"),
            ("--import", "{d}/bad.parquet", "--symbol", "BTC/USDT:USDT", "--timeframe", "5m"),
            "cannot read",
        ),
        (
            lambda d: None,
            ("--import", "{d}/missing.csv", "--symbol", "BTC/USDT:USDT", "--timeframe", "5m"),
            "does not exist",
        ),
        (
            lambda d: (d / "nocol.csv").write_text("a,b\n1,2\n"),
            ("--import", "{d}/nocol.csv", "--symbol", "BTC/USDT:USDT", "--timeframe", "5m"),
            "no time column",
        ),
        (
            lambda d: (d / "x.csv").write_text("timestamp,open,high,low,close,volume\n"),
            ("--import", "{d}/x.csv", "--symbol", "BTC/USDT:USDT", "--timeframe", "2m"),
            "unknown timeframe",
        ),
    ],
)
def test_bad_import_is_one_line_exit_1_and_harmless(
    cli: Cli, imported: Path, tmp_path: Path, setup, args, message
):
    before = {p: p.read_bytes() for p in imported.rglob("*.parquet")}
    setup(tmp_path)
    result = cli("fetch", *(a.format(d=tmp_path) for a in args), ok=False)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in imported.rglob("*.parquet")} == before


def test_missing_data_dir_and_invalid_config(tmp_path: Path):
    missing = Cli({"CRYPTOBOT_DATA_DIR": str(tmp_path / "nowhere" / "lake")})
    result = missing("fetch", "--status", ok=False)
    assert (
        result.exit_code == 1 and "data dir" in result.stderr and "does not exist" in result.stderr
    )
    bad = Cli({"CRYPTOBOT__RISK__BREAKERS__WEEKLY_LOSS_PCT": "700"})
    result = bad("config", "show", ok=False)
    assert result.exit_code == 1
    assert "risk.breakers.weekly_loss_pct must be above 0 and at most 100, got 700" in result.stderr


def test_traceback_only_with_verbose(tmp_path: Path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"junk")
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(tmp_path)})
    args = ("fetch", "--import", str(path), "--symbol", "BTC/USDT:USDT", "--timeframe", "5m")
    assert "Traceback" not in cli(*args, ok=False).stderr
    assert "Traceback" in cli("-v", *args, ok=False).stderr


def test_read_records_from_files_and_stdin(tmp_path: Path):
    records = [
        {"symbol": "BTC/USDT:USDT", "entry": 95000.0},
        {"symbol": "ETH/USDT:USDT", "entry": 3500.0},
    ]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "r.json").write_text(json.dumps(records))
    pd.DataFrame(records).to_parquet(tmp_path / "r.parquet")
    for name, unit in (("r.jsonl", "line"), ("r.json", "row"), ("r.parquet", "row")):
        numbered = read_records(str(tmp_path / name))
        assert [r for _, r in numbered] == records
        assert [w for w, _ in numbered] == [f"{tmp_path / name} {unit} {n}" for n in (1, 2)]
    stdin = read_records("-", io.StringIO("\n" + (tmp_path / "r.jsonl").read_text()))
    assert stdin == [("stdin line 2", records[0]), ("stdin line 3", records[1])]  # blank skipped
    malformed = read_records("-", io.StringIO('{"a": 1}\n{oops\n[1]\n'))
    with pytest.raises(DataError, match="stdin line 2: not valid JSON"):
        parse_records(malformed, dict, skip_bad=False, warn=print)
    skipped: list[str] = []
    assert parse_records(malformed, dict, skip_bad=True, warn=skipped.append) == [{"a": 1}]
    assert [w.split(":")[0] for w in skipped] == ["skipped stdin line 2", "skipped stdin line 3"]
    assert "expected a JSON object" in skipped[1]


def test_status_reports_the_known_hole_in_a_real_file(cli: Cli, shared: Path):
    """XRP 1h holds two segments (Nov 2021, and 2025): one gap, the bars between missing."""
    cli(
        "fetch",
        "--import",
        str(BINANCE / "XRP_USDT_USDT/1h.parquet"),
        "--symbol",
        "XRP/USDT:USDT",
        "--timeframe",
        "1h",
    )
    (row,) = json.loads(cli("fetch", "--status", "-f", "json").stdout)
    first_segment_end = pd.Timestamp("2021-11-21 04:00", tz="UTC")
    second_start = pd.Timestamp("2024-12-31 00:00", tz="UTC")
    hole = int((second_start - first_segment_end) / pd.Timedelta(hours=1)) - 1
    assert (row["bars"], row["gaps"], row["missing_bars"]) == (5956, 1, hole)
    assert row["problems"] is None
