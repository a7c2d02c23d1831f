"""Numbers in, records in: NaN and infinities refused at every flag and every record field,
a bad record named (where, id, why), ``--skip-bad``, empty input, negative numbers that still
parse, and one flag name for one thing across commands."""

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.core.numbers import finite
from cryptobot.core.order import Intent
from cryptobot.data.lake import Lake
from tests.conftest import Cli
from tests.test_risk_sizing import market
from tests.test_size_cli import BTC_FLAGS, _signal, _tiers, records


@pytest.fixture
def cli(data_dir: Path) -> Cli:
    """Binance's BTCUSDT rules and brackets stored, as in test_size_cli."""
    Lake(data_dir).write_markets("binanceusdm", [market(min_notional=100.0, tiers=_tiers())])
    return Cli({"CRYPTOBOT_DATA_DIR": str(data_dir)})


NON_FINITE = ("nan", "NaN", "inf", "-inf", "Infinity", "1e309")
RISK = ("--stop", "94200", "--risk-usd", "10")
BACKTEST = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT")


def _usage_error(result, flag: str, words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert flag in result.stderr and words in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("size", *BTC_FLAGS[:4], "--stop", "94200", "--risk-usd", "1", "--entry"), "--entry"),
        (("size", *BTC_FLAGS, "--risk-usd", "1", "--stop"), "--stop"),
        (("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd"), "--risk-usd"),
        (("size", *BTC_FLAGS, "--stop", "94200", "--risk-pct", "1", "--equity"), "--equity"),
        (("size", *BTC_FLAGS, *RISK, "--target"), "--target"),
        (("size", *BTC_FLAGS, *RISK, "--taker-fee"), "--taker-fee"),
        (("size", *BTC_FLAGS, *RISK, "--leverage"), "--leverage"),
        (("size", *BTC_FLAGS, *RISK, "--step"), "--step"),
        ((*BACKTEST, "--risk-usd"), "--risk-usd"),
        ((*BACKTEST, "--fee"), "--fee"),
        ((*BACKTEST, "--units"), "--units"),
        (("fetch", "--symbols", "BTC/USDT:USDT", "--days"), "--days"),
        (("risk", "equity"), "AMOUNT"),
    ],
)
def test_non_finite_numbers_are_refused_at_every_flag(cli: Cli, args, flag, value):
    _usage_error(cli(*args, value, ok=False), flag, "must be a finite number")


@pytest.mark.parametrize("value", ("0", "-1", "-0.5"))
@pytest.mark.parametrize(
    "args",
    [
        ("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd"),
        ("size", *BTC_FLAGS, "--stop", "94200", "--risk-pct"),
        ("size", *BTC_FLAGS, "--margin-pct"),
        ("size", *BTC_FLAGS, "--stop", "94200", "--risk-pct", "1", "--equity"),
        ("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT", "--risk-usd"),
        ("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT", "--risk-pct"),
    ],
)
def test_risk_amounts_must_be_positive_as_the_help_says(cli: Cli, args, value):
    """Zero and negative amounts are refused the same way everywhere, and the help says so."""
    _usage_error(cli(*args, value, ok=False), args[-1], "must be positive")
    assert "(> 0)" in cli(args[0], "--help").stdout


def test_negative_equity_parses_as_a_number_and_is_refused(cli: Cli, data_dir: Path):
    result = cli("risk", "equity", "-5", ok=False)
    _usage_error(result, "AMOUNT", "must be zero or more, got -5")
    assert "No such option" not in result.stderr
    assert not (data_dir / "cryptobot.duckdb").exists()  # nothing was recorded


def test_nan_equity_cannot_disable_the_breaker(cli: Cli):
    """The issue's sequence: `risk equity nan; risk equity 1000; risk equity 100`."""
    for bad in ("nan", "inf", "-inf"):
        assert cli("risk", "equity", bad, ok=False).exit_code == 2
    cli("risk", "equity", "1000")
    (state,) = records(cli("risk", "equity", "100"))
    assert state["mode"] != "active" and not state["entries_allowed"]
    assert state["day_start_equity"] == 1000.0
    (order,) = records(cli("size", *BTC_FLAGS, *RISK))
    assert order["status"] == "refused" and order["reason"].startswith("circuit_breaker")


def _batch(bad: dict, position: int = 4) -> list[dict]:
    """Ten signals on ten markets given by flags; one of them spoiled."""
    lines = [_signal(f"C{i}/USDT:USDT", 10.0 + i, 9.5 + i, i) for i in range(10)]
    lines[position] = {**lines[position], **bad}
    return lines


def _jsonl(lines: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in lines)  # json.dumps writes NaN as NaN


FLAGS = ("--risk-usd", "1", "--step", "0.1", "--min-notional", "5")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"entry": float("nan")}, "entry must be a finite number, got nan"),
        ({"stop": float("inf")}, "stop must be a finite number, got inf"),
        ({"targets": [float("-inf")]}, "target must be a finite number"),
        ({"confidence": float("nan")}, "confidence must be a finite number"),
        ({"confidence": 99}, "confidence must be at most 5, got 99"),
        ({"entry": 10**400}, "entry must be a finite number, got 1000000"),
        ({"confidence": 1e308}, "confidence must be at most 5, got 1e+308"),
        ({"confidence": 2.5}, "confidence must be a whole number, got 2.5"),
        ({"entry": "12,5"}, "entry must be a number, got '12,5'"),
        ({"entry": 14.0, "stop": 14.0}, "the stop equals the entry (14); no risk to size"),
        ({"stop": 15.0}, "long: the stop must be below the entry (15 vs 14)"),
        ({"entry": -1.0}, "entry must be positive, got -1"),
        ({"ts": float("nan")}, "ts must be a finite number"),
        ({"reasons": {"atr": "wide"}}, "reasons.atr must be a number, got 'wide'"),
        ({"entry": None}, "entry is missing"),
    ],
)
def test_one_bad_record_is_named_with_its_real_reason(cli: Cli, bad, reason):
    lines = _batch(bad)
    result = cli("size", "-", *FLAGS, input=_jsonl(lines), ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert f"stdin line 5 (id {lines[4]['id']})" in line and reason in line
    assert "--skip-bad" in line


def test_skip_bad_sizes_the_good_records_and_names_the_bad_ones(cli: Cli):
    lines = _batch({"entry": float("nan")}, 4)
    lines[7] = {**lines[7], "stop": lines[7]["entry"]}
    result = cli("size", "-", *FLAGS, "--skip-bad", input=_jsonl(lines))
    orders = records(result)
    assert len(orders) == 8
    good = [r["id"] for i, r in enumerate(lines) if i not in (4, 7)]
    assert [o["signal_id"] for o in orders] == good
    # warnings go through logging (rich may wrap them): one "skipped" per bad record, in order
    warnings = " ".join(result.stderr.split()).split("skipped ")[1:]
    assert len(warnings) == 2
    assert "stdin line 5" in warnings[0] and "finite" in warnings[0]
    assert "stdin line 8" in warnings[1] and "equals the entry" in warnings[1]


def test_skip_bad_leaves_out_a_record_whose_market_is_unknown(cli: Cli):
    btc = _signal("BTC/USDT:USDT", 95_000.0, 94_200.0, 0)
    nope = _signal("NOPE/USDT:USDT", 1.0, 0.9, 1)
    stdin = _jsonl([nope, btc])
    refused = cli("size", "-", "--risk-usd", "10", input=stdin, ok=False)
    assert refused.exit_code == 1 and "NOPE/USDT:USDT is not among" in refused.stderr
    result = cli("size", "-", "--risk-usd", "10", "--skip-bad", input=stdin)
    assert [o["symbol"] for o in records(result)] == ["BTC/USDT:USDT"]
    assert "skipped NOPE/USDT:USDT" in result.stderr


def test_bad_rows_of_parquet_and_csv_files_are_named_by_row(cli: Cli, tmp_path: Path):
    lines = _batch({"entry": float("nan")}, 2)
    parquet = tmp_path / "signals.parquet"
    pq.write_table(pa.Table.from_pylist(lines), parquet)  # the NaN stored as NaN
    result = cli("size", str(parquet), *FLAGS, ok=False)
    assert f"{parquet} row 3" in result.stderr and "entry must be a finite number" in result.stderr
    frame = pd.DataFrame(lines)
    frame["context"] = frame["context"].map(json.dumps)  # as JSON text, as `-o` writes it
    frame.to_parquet(parquet)  # pandas stores the NaN as null
    result = cli("size", str(parquet), *FLAGS, ok=False)
    assert f"{parquet} row 3" in result.stderr and "entry is missing" in result.stderr
    flat = tmp_path / "signals.csv"
    nested = {c: frame[c].map(json.dumps) for c in ("targets", "reasons")}
    frame.assign(**nested).to_csv(flat, index=False, na_rep="nan")
    result = cli("size", str(flat), *FLAGS, ok=False)
    assert f"{flat} row 3" in result.stderr and "entry must be a finite number" in result.stderr
    assert len(records(cli("size", str(flat), *FLAGS, "--skip-bad"))) == 9


def test_signal_names_a_bad_record_too(cli: Cli):
    setup = {**_signal("BTC/USDT:USDT", 95_000.0, 94_200.0, 0), "schema": "setup/1"}
    stdin = _jsonl([setup, {**setup, "stop": float("nan")}])
    result = cli("signal", "-", input=stdin, ok=False)
    assert result.exit_code == 1 and "stdin line 2" in result.stderr
    assert "stop must be a finite number" in result.stderr


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".csv"])
def test_empty_input_is_empty_output_and_replaces_a_stale_file(cli: Cli, tmp_path: Path, suffix):
    """A cron pipe with no signal this time: exit 0, and yesterday's orders do not linger."""
    out = tmp_path / f"orders{suffix}"
    stale = [_signal("BTC/USDT:USDT", 95_000.0, 94_200.0, 0)]
    cli("size", "-", "--risk-usd", "10", "-o", str(out), input=_jsonl(stale))
    assert out.stat().st_size > 0
    result = cli("size", "-", "--risk-usd", "10", "-o", str(out), input="")
    assert result.stdout == ""
    if suffix == ".parquet":
        assert pq.read_table(out).num_rows == 0
    elif suffix == ".json":
        assert json.loads(out.read_text()) == []
    else:
        assert out.read_text().strip() == ""
    assert cli("size", "-", "--risk-usd", "10", input="\n\n").stdout == ""
    assert cli("signal", "-", input="").stdout == ""


def test_an_empty_file_of_signals_is_empty_too(cli: Cli, tmp_path: Path):
    for name in ("none.jsonl", "none.json"):
        (tmp_path / name).write_text("")
        assert cli("size", str(tmp_path / name), "--risk-usd", "1").stdout == ""


def test_size_accepts_either_spelling_of_a_flag(cli: Cli):
    one = records(cli("size", *BTC_FLAGS, *RISK, "--taker-fee", "0.0004"))
    two = records(cli("size", "--symbols", *BTC_FLAGS[1:], *RISK, "--fee", "0.0004"))
    default = records(cli("size", *BTC_FLAGS, *RISK))
    assert one == two and one[0]["fees_usd"] != default[0]["fees_usd"]


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6) | st.none())
def test_finite_accepts_exactly_the_finite_numbers(value):
    try:
        number = finite(value, name="x")
    except ValueError as exc:
        assert str(exc).startswith(("x must be", "x is missing"))
        return
    assert number == number and abs(number) != float("inf")


@settings(max_examples=40, deadline=None)
@given(
    entry=st.floats(allow_nan=True, allow_infinity=True),
    stop=st.floats(allow_nan=True, allow_infinity=True),
)
def test_a_parsed_intent_always_has_a_finite_risk_on_the_right_side(entry, stop):
    record = {**_signal("BTC/USDT:USDT", 95_000.0, 94_200.0, 0), "entry": entry, "stop": stop}
    try:
        intent = Intent.from_record(record)
    except DataError:
        return
    assert 0 < intent.stop < intent.entry < float("inf")


@pytest.mark.parametrize("window", ["nand", "infd", "-infd", "0d", "1e309d"])
def test_walk_forward_windows_must_be_finite_durations(cli: Cli, window):
    result = cli(*BACKTEST, "--walk-forward", "--train", window, ok=False)
    assert result.exit_code == 1 and "bad duration" in result.stderr
    assert "unexpected" not in result.stderr


@pytest.mark.parametrize(
    "text",
    ["null\n", "42", '"x"\n', "Error: boom\n", "true", "Error: refused, retrying\n",
     "null,null\n", "ERROR,connection_refused\n"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["size", "signal"])
def test_one_line_that_is_no_records_is_an_error_on_stdin_as_in_a_file(
    cli: Cli, tmp_path, command, text
):
    piped = cli(command, "-", input=text, ok=False)
    assert piped.exit_code == 1 and piped.stdout == ""
    assert "stdin: " in piped.stderr and "is not records" in piped.stderr
    path = tmp_path / "in.csv"
    path.write_text(text)
    assert "is not records" in cli(command, str(path), ok=False).stderr
    for header in ("symbol,side\n", "\ufeffsymbol,side\n"):  # a header (a BOM too), no rows
        assert cli(command, "-", input=header).stdout.strip() in ("", "[]")


def test_a_csv_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    """Spreadsheets save CSV with a BOM: its first column is ``symbol``, not ``\\ufeffsymbol``."""
    from cryptobot.cli.inputs import read_records

    path = tmp_path / "orders.csv"
    path.write_text("\ufeffsymbol,side\nBTC/USDT:USDT,long\n", encoding="utf-8")
    assert read_records(str(path)) == [
        (f"{path} row 1", {"symbol": "BTC/USDT:USDT", "side": "long"})
    ]
