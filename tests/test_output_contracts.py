"""Output contracts of every command: strict JSON, full records on a pipe, Parquet from every
row's keys, CSV nested values as JSON text, ``-o`` checked before any work.

The commands run on the demo's synthetic lake (the replay exchange, fetched once per module),
with typer's CliRunner, whose stdout is not a terminal: exactly what a shell pipe sees.
"""

import csv
import io
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.cli.output import Format, dumps, write_records
from cryptobot.cli.scan import _render
from cryptobot.core.errors import CryptobotError
from cryptobot.core.numbers import plain
from cryptobot.core.setup import Setup
from cryptobot.data.catalog import DB_NAME
from tests.conftest import Cli, sample_market_config

SYMBOLS = "BTC/USDT:USDT,ETH/USDT:USDT,TIA/USDT:USDT"


def _refuse(constant: str):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_loads(text: str):
    """What JavaScript's JSON.parse or Go's encoding/json accept: no NaN, no Infinity."""
    return json.loads(text, parse_constant=_refuse)


def strict_lines(text: str) -> list[dict]:
    return [strict_loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, Path]:
    """The demo config over a fresh synthetic market, with three symbols fetched."""
    tmp = tmp_path_factory.mktemp("demo")
    config = sample_market_config(tmp, days=3)
    cli = Cli()

    def run(*args: str, **kw):
        return cli("--config", str(config), *args, **kw)

    run("fetch", "--symbols", SYMBOLS, "--timeframes", "5m,15m,1h,4h", "--days", "3")
    return run, tmp / "demo"


def _json_outputs(run, args: tuple[str, ...], stdin: str | None = None) -> list[dict]:
    """The command's records as JSON, JSON Lines and the default on a pipe, parsed strictly;
    all three carry the same records."""
    as_json = strict_loads(run(*args, "--format", "json", input=stdin).stdout)
    as_jsonl = strict_lines(run(*args, "--format", "jsonl", input=stdin).stdout)
    piped = strict_lines(run(*args, input=stdin).stdout)
    assert as_json == as_jsonl == piped
    return as_json


def test_every_command_prints_strict_json(demo, tmp_path: Path):
    run, _ = demo
    status = _json_outputs(run, ("fetch", "--status"))
    assert {r["symbol"] for r in status} == set(SYMBOLS.split(","))
    setups = _json_outputs(run, ("scan", "--symbols", SYMBOLS, "--within", "288", "--offline"))
    stdin = "".join(json.dumps(s) + "\n" for s in setups)
    _json_outputs(run, ("signal", "-", "--all"), stdin)
    _json_outputs(run, ("signal", "-"), stdin)
    _json_outputs(run, ("size", "-", "--risk-usd", "1", "--equity", "1000"), stdin)
    manual = ("size", "--symbol", "TIA/USDT:USDT", "--side", "long", "--entry", "4")
    (order,) = _json_outputs(run, (*manual, "--stop", "3.9", "--risk-usd", "1"))
    assert order["status"] == "sized" and order["exchange"] == "synthetic"
    # no stop: the $ risk is unknown (None), never NaN
    (margin,) = _json_outputs(run, (*manual, "--margin-pct", "10", "--equity", "100"))
    assert margin["risk_usd"] is None
    for sub in (("risk", "status"), ("risk", "equity", "1000"), ("risk", "reset")):
        _json_outputs(run, sub)
    shown = strict_loads(run("config", "show", "--format", "json").stdout)
    assert shown["exchange"] == "replay"
    copy = tmp_path / "shown.yaml"  # JSON is YAML: the output is itself a config file
    copy.write_text(json.dumps(shown))
    assert run("config", "check", str(copy)).exit_code == 0


def test_backtest_summaries_and_sweeps_are_strict_json(demo):
    """A run without trades has no Sharpe or profit factor: null, not NaN or Infinity."""
    run, _ = demo
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--no-journal")
    rows = _json_outputs(run, (*args, "--timeframe", "4h"))
    assert rows[0]["scope"] == "portfolio" and rows[0]["trades"] == 0
    assert rows[0]["sharpe"] is None and rows[0]["profit_factor"] is None
    sweep = _json_outputs(run, (*args, "--timeframe", "1h", "--sweep", "fast=3,5"))
    assert len(sweep) == 2


def test_scan_on_a_pipe_gives_full_setup_records_that_signal_and_size_read(demo):
    run, _ = demo
    piped = run("scan", "--symbols", SYMBOLS, "--within", "288", "--offline").stdout
    records = strict_lines(piped)
    assert records, "the synthetic market has setups in its last day"
    for r in records:
        assert Setup.from_record(r).to_json() == r  # every field, full precision
    signal = run("signal", "-", "--all", input=piped)
    assert len(strict_lines(signal.stdout)) == len(records)
    sized = strict_lines(run("size", "-", "--risk-usd", "1", input=piped).stdout)
    assert [o["signal_id"] for o in sized] == [r["id"] for r in records]


def test_a_low_priced_setup_keeps_its_prices_on_a_pipe(capsys):
    """The table rounds for reading; the records carry the price as found."""
    setup = Setup(
        "synthetic", "PEPE/USDT:USDT", "momentum", "1h", "long", "triggered",
        1_767_222_000_000, 1_767_222_000_000, 0.00001234, 0.00001198, [0.00001306], 4,
    )  # fmt: skip
    _render([setup], None, None, "setups")
    (record,) = strict_lines(capsys.readouterr().out)
    assert record["schema"] == "setup/1"
    assert (record["entry"], record["stop"], record["targets"]) == (
        0.00001234,
        0.00001198,
        [0.00001306],
    )


def test_a_low_priced_setup_reads_in_the_table_too(capsys):
    setup = Setup(
        "synthetic", "PEPE/USDT:USDT", "momentum", "1h", "long", "triggered",
        1_767_222_000_000, 1_767_222_000_000, 0.00001234, 0.00001198, [0.00001306], 4,
    )  # fmt: skip
    _render([setup], Format.table, None, "setups")
    table = capsys.readouterr().out
    assert "0.00001234" in table and "0.00001198" in table and "0.00001306" in table


def test_a_scan_without_setups_says_so_on_stderr(demo):
    run, _ = demo
    args = ("scan", "--symbols", "BTC/USDT:USDT", "--strategy", "breakout", "--offline")
    result = run(*args)
    assert result.stdout == "" and "no setups at" in result.stderr


@given(
    st.recursive(
        st.floats() | st.integers() | st.text(max_size=5) | st.none() | st.booleans(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_strict_json_never_fails_and_keeps_every_finite_value(value):
    text = dumps([{"v": value}], Format.jsonl)
    back = strict_loads(text)["v"]

    def same(a, b) -> bool:
        if isinstance(a, float) and not math.isfinite(a):
            return b is None
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list | tuple):
            return len(a) == len(b) and all(map(same, a, b))
        return a == b

    assert same(value, back)


def test_numpy_values_and_infinities_become_plain_json():
    row = {
        "a": np.float64("nan"),
        "b": np.int64(3),
        "c": [np.inf, -np.inf, 1.5],
        "d": {"e": np.nan},
    }
    assert plain(row) == {"a": None, "b": 3, "c": [None, None, 1.5], "d": {"e": None}}
    assert strict_loads(dumps([row], Format.json)) == [plain(row)]
    assert next(csv.DictReader(io.StringIO(dumps([row], Format.csv))))["a"] == ""


def test_parquet_has_a_column_for_every_key_of_every_row(tmp_path: Path):
    """`signal --all`'s context differs per decision: later rows' keys are not dropped; a key
    holding a number in one row and text in another is stored as JSON text."""
    rows = [
        {"symbol": "A", "accepted": True},
        {"symbol": "B", "accepted": False, "funding_rate": 0.001, "mixed": 1.5},
        {"symbol": "C", "accepted": False, "regime": "ranging", "mixed": "high"},
    ]
    path = tmp_path / "decisions.parquet"
    write_records(rows, path)
    back = pq.read_table(path).to_pylist()
    assert list(back[0]) == ["symbol", "accepted", "funding_rate", "mixed", "regime"]
    assert [r["funding_rate"] for r in back] == [None, 0.001, None]
    assert [r["regime"] for r in back] == [None, None, "ranging"]
    assert [r["mixed"] for r in back] == [None, "1.5", '"high"']


def test_csv_writes_nested_values_as_json_text_and_reads_them_back(demo, tmp_path: Path):
    run, _ = demo
    out = tmp_path / "setups.csv"
    run("scan", "--symbols", SYMBOLS, "--within", "288", "--offline", "-o", str(out))
    rows = list(csv.DictReader(out.open()))
    assert rows and all(isinstance(json.loads(r["targets"]), list) for r in rows)
    assert all(isinstance(json.loads(r["reasons"]), dict) for r in rows)
    assert "'" not in "".join(r["reasons"] for r in rows)  # no Python repr
    sized = strict_lines(run("size", str(out), "--risk-usd", "1").stdout)
    assert len(sized) == len(rows) and all(len(o["targets"]) > 0 for o in sized)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("risk", "equity", "900"), "directory"),
        (("risk", "status"), "directory"),
        (("scan", "--symbols", "BTC/USDT:USDT", "--offline"), "directory"),
        (("size", "--symbol", "TIA/USDT:USDT", "--side", "long", "--entry", "4"), "directory"),
        (("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT"), "directory"),
    ],
)
def test_output_into_a_missing_directory_is_an_error_before_any_work(demo, args, message):
    run, root = demo
    target = root.parent / "nowhere" / "out.jsonl"
    before = (root / DB_NAME).stat().st_mtime_ns
    result = run(*args, "-o", str(target), ok=False)
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not target.parent.exists()  # no silent mkdir
    assert (root / DB_NAME).stat().st_mtime_ns == before  # nothing recorded, nothing changed


def test_output_extensions_are_checked_before_the_work(demo, tmp_path: Path):
    run, root = demo
    before = (root / DB_NAME).stat().st_mtime_ns
    bad = run("risk", "equity", "900", "-o", str(tmp_path / "state.txt"), ok=False)
    assert bad.exit_code == 1 and "use a .parquet, .csv, .jsonl or .json" in bad.stderr
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT")
    csv_run = run(*args, "--timeframe", "1h", "-o", str(tmp_path / "trades.csv"), ok=False)
    assert csv_run.exit_code == 1 and "a backtest writes .parquet" in csv_run.stderr
    assert csv_run.stdout == ""  # refused before the run: no summary printed
    assert (root / DB_NAME).stat().st_mtime_ns == before
    with pytest.raises(CryptobotError, match="is a directory"):
        write_records([], tmp_path)


def test_risk_writes_its_state_to_a_file(demo, tmp_path: Path):
    run, _ = demo
    out = tmp_path / "breaker.json"
    run("risk", "status", "-o", str(out))
    (state,) = strict_loads(out.read_text())
    assert "mode" in state and "entries_allowed" in state


def test_the_demo_config_sizes_and_backtests_its_own_markets(demo):
    """`exchange: replay` stores the replayed venue's markets under its own id (synthetic):
    `size` and `backtest` read them there, as `scan` does."""
    run, _ = demo
    flags = ("--side", "long", "--entry", "4", "--stop", "3.9", "--risk-usd", "1")
    (order,) = strict_lines(run("size", "--symbol", "TIA/USDT:USDT", *flags).stdout)
    assert order["status"] == "sized" and order["exchange"] == "synthetic"
    assert order["qty"] > 0 and "not among" not in order["reason"]
    args = ("backtest", "--strategy", "ema_cross", "--timeframe", "1h", "--no-journal")
    rows = strict_lines(run(*args, "--symbols", "TIA/USDT:USDT").stdout)
    assert [r["scope"] for r in rows] == ["portfolio", "TIA/USDT:USDT"]


def test_one_flag_family_with_its_aliases_across_commands(demo):
    """--symbols/--symbol, --timeframe(s), --taker-fee/--fee, --from/--since name the same
    thing in every command (README: Output and input conventions)."""
    run, _ = demo
    scan = ("scan", "--within", "288", "--offline", "--strategy", "bos_fvg_fib")
    assert (
        run(*scan, "--symbol", "ETH/USDT:USDT").stdout
        == run(*scan, "--symbols", "ETH/USDT:USDT").stdout
    )
    base = ("backtest", "--strategy", "ema_cross", "--no-journal", "--from", "2025-12-30")
    one = run(*base, "--symbols", "BTC/USDT:USDT", "--timeframe", "1h", "--taker-fee", "0.001")
    two = run(*base, "--symbol", "BTC/USDT:USDT", "--timeframes", "1h", "--fee", "0.001")
    assert strict_lines(one.stdout) == strict_lines(two.stdout)
    since = run(*base[:-2], "--since", "2025-12-30", "--symbol", "BTC/USDT:USDT",
                "--timeframe", "1h", "--fee", "0.001")  # fmt: skip
    assert strict_lines(since.stdout) == strict_lines(one.stdout)
    fetched = strict_lines(
        run(
            "fetch", "--symbol", "BTC/USDT:USDT", "--timeframe", "1h", "--from", "2025-12-30"
        ).stdout
    )
    assert [r["dataset"] for r in fetched] == ["1h"] and fetched[0]["error"] is None


KILLED_WRITER = """
import os, sys
import pyarrow.parquet as pq
import cryptobot.cli.output as output

def half_then_die(table, tmp):
    with open(tmp, "wb") as fh:
        fh.write(b"PAR1 half a file")
    os.kill(os.getpid(), 9)

pq.write_table = half_then_die  # the writer imports pyarrow.parquet when it writes
output.write_records([{"symbol": "NEW", "qty": 2.0}], output.Path(sys.argv[1]))
"""


def test_an_export_killed_mid_write_leaves_the_previous_file(tmp_path: Path):
    out = tmp_path / "orders.parquet"
    write_records([{"symbol": "OLD", "qty": 1.0}], out)
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], check=False)
    assert done.returncode == -signal.SIGKILL
    assert pq.read_table(out).to_pylist() == [{"symbol": "OLD", "qty": 1.0}]


def test_two_processes_writing_the_same_file_leave_one_whole_result(demo, tmp_path: Path):
    """Two cron jobs overlapping: the file is one run's complete output, never a mix."""
    _, root = demo
    config = root.parent / "demo.yaml"
    out = tmp_path / "orders.jsonl"
    size = [sys.executable, "-m", "cryptobot", "--config", str(config), "size", "-o", str(out)]
    trade = ["--symbol", "TIA/USDT:USDT", "--side", "long", "--stop", "3", "--risk-usd", "1"]
    runs = [
        subprocess.Popen([*size, *trade, "--entry", entry], stderr=subprocess.PIPE)
        for entry in ("4", "5")
    ]
    assert [p.wait() for p in runs] == [0, 0], [p.stderr.read() for p in runs]
    (order,) = strict_lines(out.read_text())
    assert order["entry"] in (4.0, 5.0) and order["schema"] == "sized_order/2"
