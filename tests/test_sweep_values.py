"""Bad --sweep values are usage errors (one line, exit 2), refused before any data loads."""

import pytest

from cryptobot.backtest import sweep
from cryptobot.core.errors import ConfigError
from tests.conftest import Cli

BAD = [
    ("ema_fast=nan", "must be a finite number"),
    ("ema_fast=1e309", "must be a finite number"),
    ("ema_fast=5:inf:1", "must be a finite number"),
    ("ema_fast=5.5", "--sweep ema_fast=5.5"),
    ("ema_fast=-5", "--sweep ema_fast=-5"),
    ("ema_fast=0:1e12:1", "at most 10000"),
    ("ema_fast=5:3", "bad --sweep"),
    ("x", "bad --sweep"),
    ("nope=1,2", "has no parameter nope"),
]


@pytest.fixture
def broken_lake(tmp_path):
    """A lake whose candles cannot be read: any error but a usage error means data was read."""
    series = tmp_path / "candles" / "binanceusdm" / "BTC_USDT_USDT" / "1h"
    series.mkdir(parents=True)
    (series / "2025.parquet").write_bytes(b"not parquet")
    return tmp_path


@pytest.mark.parametrize(("spec", "message"), BAD)
def test_a_bad_sweep_value_is_one_usage_line_before_any_data_loads(broken_lake, spec, message):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(broken_lake)})
    args = ("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT", "--sweep", spec)
    res = cli(*args, ok=None)
    assert res.exit_code == 2, res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert message in line and line.endswith("(see cryptobot backtest --help)")


def test_a_good_sweep_gets_past_the_check_to_the_data(broken_lake):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(broken_lake)})
    args = ("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT")
    res = cli(*args, "--sweep", "ema_fast=5:9:2", ok=None)
    assert res.exit_code == 1 and "--sweep" not in res.stderr  # it reached the broken candles


@pytest.mark.parametrize("timeframe", ["1h", "1m"])
def test_ema_cross_takes_its_timeframe_from_the_run_never_from_a_sweep(broken_lake, timeframe):
    """A swept timeframe was dropped for the run's silently; for a while it was refused only
    when --timeframe equalled the section's (1h)."""
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(broken_lake)})
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe")
    res = cli(*args, timeframe, "--units", "1", "--sweep", "timeframe=5", ok=None)
    assert res.exit_code == 2 and "runs on the run's --timeframe" in res.stderr, res.stderr


@pytest.mark.parametrize("spec", ["fast=2.5", "fast=0", "slow=-1", "stop_atr=0"])
def test_the_ema_cross_reference_takes_whole_periods_and_a_positive_stop(broken_lake, spec):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(broken_lake)})
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe")
    res = cli(*args, "1h", "--sweep", spec, ok=None)
    assert res.exit_code == 2 and f"--sweep {spec.split('=')[0]}" in res.stderr


def test_ranges_and_lists_parse_to_their_points():
    assert sweep.parse_spec("ema_fast=5:15:2") == ("ema_fast", [5, 7, 9, 11, 13, 15])
    assert sweep.parse_spec("x=1,2.5") == ("x", [1, 2.5])
    with pytest.raises(ConfigError, match="more than 10000 points"):
        sweep.grid(["a=1:200", "b=1:200"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--strategy", "ema_cross", "--timeframe", "1h", "--stop-atr", "101"),
         "ema_cross.stop_atr: Input should be less than or equal to 100"),
        (("--strategy", "momentum", "--stop-atr", "1"), "momentum has no parameter stop_atr"),
        (("--strategy", "ema_cross", "--symbols", ","), "',' names no symbol"),
        (("--strategy", "ema_cross", "--units", "1e308"), "must be at most 1e+12, got 1e+308"),
        (("--strategy", "ema_cross", "--units", "1.0000001e12"), "got 1000000100000.0"),
        (("--strategy", "ema_cross", "--slippage-bps", "1e308"), "must be at most 1000"),
    ],
)  # fmt: skip
def test_a_flag_its_strategy_refuses_is_one_usage_line_before_any_data_loads(
    broken_lake, flags, message
):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(broken_lake)})
    symbols = () if "--symbols" in flags else ("--symbols", "BTC/USDT:USDT")
    res = cli("backtest", *symbols, *flags, ok=None)
    assert res.exit_code in (1, 2) and res.stdout == "", res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert message in line and "unexpected" not in line
