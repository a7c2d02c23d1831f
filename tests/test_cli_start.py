"""A CLI that starts fast and has global manners: lazy sub-commands, global options after the
sub-command, ``-q``, usage errors in one line."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptobot.cli.app import COMMANDS, load_command
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("pandas", "ccxt", "numba", "pyarrow", "duckdb", "talib", "cryptobot.backtest")

PROBE = """
import sys
from cryptobot.cli.app import main
sys.argv = ["cryptobot", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("LOADED", " ".join(sorted(m for m in sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def _loaded(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, set[str], str]:
    """Run the CLI in a fresh interpreter; return its exit code, every module it imported and
    its stdout."""
    env = os.environ | {"PYTHONPATH": str(SRC), "CRYPTOBOT_DATA_DIR": str(tmp_path)} | (env or {})
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    return done.returncode, set(line.split()[1:]), done.stdout


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules for h in HEAVY if m == h or m.startswith(h + ".")}


@pytest.mark.parametrize("args", [("--version",), ("--help",), ()], ids=str)
def test_version_and_help_import_no_heavy_library(tmp_path: Path, args):
    code, modules, out = _loaded(tmp_path, *args)
    assert code in (0, 2) and "cryptobot" in out
    assert not _heavy(modules), sorted(_heavy(modules))
    assert not {m for m in modules if m.startswith("cryptobot.cli.") and m not in (
        "cryptobot.cli.app", "cryptobot.cli.context")}  # fmt: skip


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_sub_command_help_imports_no_heavy_library(tmp_path: Path, name: str):
    """``cryptobot NAME --help`` builds the command from its signature only: the library it
    runs (pandas, numba, the engine) loads when the command runs."""
    code, modules, out = _loaded(tmp_path, name, "--help")
    assert code == 0 and "Usage" in out
    assert not _heavy(modules), sorted(_heavy(modules))


def test_top_level_help_lists_every_command_from_the_table(tmp_path: Path):
    _, _, out = _loaded(tmp_path, "--help")
    for name in COMMANDS:
        assert f" {name} " in out


def test_size_imports_neither_ccxt_nor_numba_nor_the_backtest(tmp_path: Path):
    args = ("size", "--symbol", "BTC/USDT:USDT", "--side", "long", "--entry", "95000",
            "--stop", "94200", "--risk-usd", "1", "--step", "0.001", "-f", "json")  # fmt: skip
    code, modules, out = _loaded(tmp_path, *args)
    assert code == 0 and json.loads(out)[0]["status"] == "sized"
    assert not {m for m in _heavy(modules) if not m.startswith(("pandas", "pyarrow", "duckdb"))}


def test_trade_on_paper_and_risk_load_neither_pandas_nor_numba(
    tmp_path: Path, emulator: BinanceEmulator
):
    """``trade`` on the paper venue and ``risk`` work on NumPy arrays (the correlated-exposure
    gate's returns, the paper broker's funding): pandas (~0.35 s) stays unloaded, for each of
    the cron and pipe starts; only the replay and stored exchanges read their candles with it.
    The paper broker runs the matching model's rules as plain Python (``core.rules``): no
    numba either (~0.35 s more)."""
    env = emulator_env(emulator, tmp_path)
    for args in (("trade", "--status", "-f", "json"), ("risk", "equity", "1000"),
                 ("risk", "status", "-f", "json")):  # fmt: skip
        code, modules, out = _loaded(tmp_path, *args, env=env)
        assert code == 0 and json.loads(out) is not None, args
        assert not {m for m in modules if m.startswith(("pandas", "numba"))}, args


@pytest.mark.parametrize("name", list(COMMANDS))
def test_short_help_table_matches_each_command(name: str):
    """The table ``--help`` shows without importing the commands cannot drift from them."""
    command = load_command(name)
    first = (command.help or "").split("\n\n")[0]
    assert " ".join(first.split()) == COMMANDS[name].short_help
    assert command.rich_help_panel == COMMANDS[name].panel
    module = __import__(COMMANDS[name].module, fromlist=["_"])
    target = getattr(module, COMMANDS[name].attr)
    assert COMMANDS[name].group or inspect.isfunction(target)


def test_every_leaf_command_accepts_the_global_options():
    for name in COMMANDS:
        command = load_command(name)
        leaves = getattr(command, "commands", {name: command}).values()
        for leaf in leaves:
            opts = {o for p in leaf.params for o in p.opts}
            assert {"--config", "--data-dir", "--exchange", "-q", "-v"} <= opts, leaf.name


def test_global_options_after_the_sub_command(tmp_path: Path):
    lake = tmp_path / "lake"
    lake.mkdir()
    cli = Cli()
    shown = cli("config", "show", "--exchange", "bybit", "--data-dir", str(lake)).stdout
    assert "exchange: bybit" in shown and f"data_dir: {lake}" in shown
    config = tmp_path / "mine.yaml"
    config.write_text("risk:\n  max_leverage: 7\n")
    assert "max_leverage: 7" in cli("config", "show", "-c", str(config)).stdout
    status = cli("risk", "status", "-f", "json", "--data-dir", str(lake)).stdout
    assert json.loads(status)[0]["mode"] == "active"


def test_quiet_after_the_sub_command_silences_warnings():
    cli = Cli({"CRYPTOBOT_RISK__MAX_LEVERAGE": "5"})  # an old-style name: a warning
    loud = cli("config", "show").stderr
    assert "CRYPTOBOT__RISK__MAX_LEVERAGE" in loud
    assert loud.startswith("warning: ") and len(loud.strip().splitlines()) == 1  # not rich-wrapped
    quiet = cli("config", "show", "-q")
    assert quiet.stderr == "" and "mode: paper" in quiet.stdout
    assert cli("-q", "config", "show").stderr == ""


def test_verbose_after_the_sub_command_shows_the_traceback(tmp_path: Path):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(tmp_path / "missing" / "lake")})
    plain = cli("risk", "status", ok=None)
    assert plain.exit_code == 1 and len(plain.stderr.strip().splitlines()) == 1
    verbose = cli("risk", "status", "-v", ok=None)
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("size", "--bogus"), "error: No such option: --bogus"),
        (("sizee",), "error: No such command 'sizee'. Did you mean 'size'?"),
        (("risk", "equity"), "error: Missing argument 'AMOUNT' (see cryptobot risk equity --help)"),
        (("risk", "equity", "lots"), "error: Invalid value for 'AMOUNT': must be a number"),
        (("config", "show", "--data-dir"), "error: Option '--data-dir' requires an argument"),
        (
            ("risk", "status", "--format"),  # inside a group: the leaf command's help
            "error: Option '--format' requires an argument (see cryptobot risk status --help)",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args, expected):
    result = Cli()(*args, ok=None)
    assert result.exit_code == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--help" in result.stderr and result.stdout == ""


def test_offline_scan_does_not_import_ccxt(tmp_path: Path):
    """ccxt loads only when a live venue is opened (exchange/factory.py)."""
    args = ("scan", "--offline", "--symbols", "BTC/USDT:USDT", "-f", "json")
    code, modules, _ = _loaded(tmp_path, *args)
    assert code == 1  # an empty lake: the one-line error, not a crash
    assert not {m for m in modules if m == "ccxt" or m.startswith("ccxt.")}


def test_an_ema_cross_backtest_loads_only_what_it_runs(tmp_path: Path):
    """No other detector, scanner, COT report or sweep pool for the reference strategy (the
    registry imports ema_cross's module alone), and numba without scipy's linear algebra
    (core/jit.py): together 0.3-0.5 s of its start."""
    import numpy as np
    import pandas as pd

    from cryptobot.data.lake import Lake

    n = 3_000
    close = 100 + np.sin(np.arange(n) / 40) * 5
    stamps = 1_704_067_200_000 + 60_000 * np.arange(n)
    frame = pd.DataFrame({"timestamp": stamps, "open": close, "high": close + 1,
                          "low": close - 1, "close": close, "volume": 1.0})  # fmt: skip
    Lake(tmp_path).write_candles("binanceusdm", "BTC/USDT:USDT", "1m", frame)
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT",
            "--timeframe", "1m", "-f", "json")  # fmt: skip
    code, modules, out = _loaded(tmp_path, *args)
    assert code == 0 and json.loads(out)[0]["trades"] > 10
    unneeded = ("cryptobot.cot", "cryptobot.backtest.sweep", "scipy.linalg", "asyncio", "ccxt")
    assert not {m for m in modules if m.startswith(unneeded)}
    light = {"cryptobot.strategies", "cryptobot.strategies.registry", "cryptobot.strategies.spec",
             "cryptobot.strategies.ema_cross"}  # fmt: skip
    assert {m for m in modules if m.startswith("cryptobot.strategies")} == light


def test_a_reference_backtest_loads_neither_pandas_nor_the_risk_stack(tmp_path: Path):
    """ema_cross in units reads its candles as arrays, runs, prints, writes -o and records the
    run through Arrow buffers (``data/arrow.py``): no pandas, no portfolio driver, no risk
    engine, no exchange factory, no Arrow compute functions (0.3 s of its start), no rich for
    its notes on a pipe (``cli.output.Notes``) and no DuckDB (the run's row is a file,
    ``journal.run_rows``); the -o files are still read back by pandas as the same frames, and
    ``journal backtests`` lists the run."""
    import numpy as np
    import pandas as pd

    from cryptobot.data.lake import Lake

    close = 100 + np.sin(np.arange(2_000) / 30) * 5
    frame = pd.DataFrame({"timestamp": 1_704_067_200_000 + 60_000 * np.arange(2_000),
                          "open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": 1.0})  # fmt: skip
    Lake(tmp_path).write_candles("binanceusdm", "BTC/USDT:USDT", "1m", frame)
    out = tmp_path / "run.parquet"
    code, modules, stdout = _loaded(
        tmp_path, "backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT",
        "--timeframe", "1m", "--stop-atr", "1.5", "-f", "json", "-o", str(out),
    )  # fmt: skip
    assert code == 0 and json.loads(stdout)[0]["trades"] > 10
    loaded = {"pandas", "pyarrow.compute", "cryptobot.backtest.portfolio", "cryptobot.risk",
              "cryptobot.exchange", "rich", "duckdb", "cryptobot.data.catalog"}  # fmt: skip
    # the kernel compiles the one cooldown rule and the one first-stop rule (plain Python in
    # risk/cooldown.py and risk/stops.py, behind the package's lazy surface): not the risk stack
    allowed = {"cryptobot.risk", "cryptobot.risk.cooldown", "cryptobot.risk.stops"}
    found = {m for m in modules for h in loaded if m == h or m.startswith(h + ".")}
    assert not found - allowed
    trades = pd.read_parquet(out)
    assert len(trades) == json.loads(stdout)[0]["trades"] and trades.stop.notna().all()
    assert trades.side.isin(["long", "short"]).all() and trades.reason.iat[0] == "signal"
    code, _, listed = _loaded(tmp_path, "journal", "backtests", "-f", "json")
    (run,) = json.loads(listed)
    assert code == 0 and run["summary"]["trades"] == len(trades)


def test_a_dotenv_file_is_read_and_without_one_python_dotenv_is_not_loaded(tmp_path: Path):
    """``.env`` in the working directory sets what the environment would (not overriding it);
    with none, its reader is not even imported (0.005 s of every command's start)."""
    args = ("config", "show", "-f", "json")
    code, modules, out = _loaded(tmp_path, *args)
    assert code == 0 and json.loads(out)["backtest"]["initial_equity"] != 12345
    assert "dotenv" not in modules
    (tmp_path / ".env").write_text("CRYPTOBOT__BACKTEST__INITIAL_EQUITY=12345\n")
    code, modules, out = _loaded(tmp_path, *args)
    assert code == 0 and json.loads(out)["backtest"]["initial_equity"] == 12345
    assert "dotenv" in modules
