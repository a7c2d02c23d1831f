"""``ema_cross`` as a strategy like the others (strategies/ema_cross.py): its settings section,
its scan setups (the same crosses a backtest enters on) through ``signal`` and ``size``, and
the runner reading its attributes, not its name."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.backtest.bars import symbol_bars
from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.core.setup import Setup
from cryptobot.data.lake import Lake
from cryptobot.strategies.ema_cross import STRATEGY, ema_cross_signals
from cryptobot.strategies.registry import lookup
from tests.conftest import Cli, emulator_env, walk_bars

SYMBOL = "ETH/USDT:USDT"
STOP = {"CRYPTOBOT__STRATEGIES__EMA_CROSS__STOP_ATR": "2",
        "CRYPTOBOT__STRATEGIES__EMA_CROSS__TIMEFRAME": "5m"}  # fmt: skip


def _setups(stdout: str) -> list[Setup]:
    return [Setup.from_record(json.loads(line)) for line in stdout.splitlines()]


def test_scan_gives_each_cross_with_its_stop_at_the_bars_a_backtest_enters_on(
    emulator, data_dir: Path
):
    """The real ccxt client against the emulator: every ema_cross setup of the scanned window
    is a cross of ``ema_cross_signals`` on the stored candles (one rule, two shapes), entry at
    that close, stop 2 x ATR(14) of that bar beyond it, confidence 3, targets at 1/2/3 R."""
    cli = Cli(emulator_env(emulator, data_dir) | STOP)
    args = ("scan", "--symbols", SYMBOL, "--strategy", "ema_cross", "--within", "300",
            "--min-confidence", "0", "--format", "jsonl")  # fmt: skip
    setups = _setups(cli(*args).stdout)
    candles = Lake(data_dir).read_candles("binanceusdm", SYMBOL, "5m")
    sb = symbol_bars(SYMBOL, "5m", candles)
    cross = ema_cross_signals(sb.bars[:, 3])
    window = sb.timestamps >= emulator.now_ms - 300 * 300_000
    hits = np.flatnonzero((cross != 0) & window)
    assert len(hits) >= 3, "300 five-minute bars of a random walk cross a few times"
    by_ts = {s.ts: s for s in setups}
    assert sorted(by_ts) == sorted(int(sb.timestamps[t]) for t in hits)
    for t in hits:
        s = by_ts[int(sb.timestamps[t])]
        sign = 1 if s.side == "long" else -1
        assert sign == cross[t] and s.status == "triggered" and s.confidence == 3
        assert s.entry == sb.bars[t, 3]
        assert s.stop == pytest.approx(sb.bars[t, 3] - sign * 2 * sb.bars[t, 5], rel=1e-12)
        assert s.r_targets == [1.0, 2.0, 3.0] and s.timeframe == "5m"


def test_scan_signal_size_pipe_sizes_an_ema_cross(emulator, data_dir: Path):
    """scan | signal | size: the newest cross becomes a signal and a sized order with its
    stop (the setup is allowed to be a few hundred bars old here: the walk crosses when it
    likes). Strict JSON on every hop."""
    env = emulator_env(emulator, data_dir) | STOP
    env["CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS"] = "400"
    cli = Cli(env)
    scan = cli("scan", "--symbols", SYMBOL, "--strategy", "ema_cross", "--within", "300",
               "--min-confidence", "0", "--format", "jsonl").stdout  # fmt: skip
    newest = scan.splitlines()[0]  # newest first
    signal = cli("signal", "-", "--format", "jsonl", input=newest + "\n")
    records = [json.loads(line) for line in signal.stdout.splitlines()]
    assert len(records) == 1 and records[0]["strategy"] == "ema_cross", signal.stderr
    sized = cli("size", "--risk-usd", "5", "-", "--format", "jsonl", input=signal.stdout)
    (order,) = [json.loads(line) for line in sized.stdout.splitlines()]
    setup = Setup.from_record(json.loads(newest))
    assert order["schema"].startswith("sized_order/") and order["strategy"] == "ema_cross"
    assert order["stop"] == pytest.approx(setup.stop) and order["qty"] > 0
    assert order["risk_usd"] <= 5.0 + 1e-9
    for line in (newest, signal.stdout, sized.stdout):
        assert "NaN" not in line and "Infinity" not in line


def test_scan_without_a_configured_stop_is_one_clear_line(emulator, data_dir: Path):
    cli = Cli(emulator_env(emulator, data_dir))
    result = cli("scan", "--symbols", SYMBOL, "--strategy", "ema_cross", ok=None)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: ema_cross setups need a stop: set strategies.ema_cross.stop_atr (e.g. 2.0)"
    ]


def test_the_strategy_says_what_sets_it_apart():
    assert lookup("ema_cross") is STRATEGY
    assert STRATEGY.exits_on_signal and STRATEGY.any_timeframe
    assert STRATEGY.bar_entries is not None and STRATEGY.reference is not None
    plain = [lookup(n) for n in ("momentum", "bos_fvg_fib", "breakout", "cot_crowd")]
    assert not any(s.exits_on_signal or s.any_timeframe or s.reference for s in plain)
    assert not any(s.bar_entries for s in plain)
    with pytest.raises(ConfigError, match=r"unknown strategy nope; choose from .*ema_cross"):
        lookup("nope")
    with pytest.raises(ConfigError, match=r"unknown strategy \(none given\)"):
        lookup("")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"fast": 0}, "fast"), ({"slow": 2.5}, "slow"), ({"stop_atr": -1.0}, "stop_atr"),
     ({"stop_atr": float("nan")}, "stop_atr"), ({"fast": True}, "fast"),
     ({"stop_atr": 1e300}, "stop_atr"), ({"fast": 100_000}, "fast"),
     ({"targets_r": [3.0, 1.0, 3.0]}, "targets_r")],
)  # fmt: skip
def test_parameters_are_validated_like_the_other_strategies(params, field):
    settings = load_settings(None, {})
    req = runner.Request("ema_cross", [SYMBOL], "binanceusdm", timeframe="1h", params=params)
    with pytest.raises(Exception, match=field):
        runner.strategy_params(req, settings)
    with pytest.raises(ConfigError, match="ema_cross has no parameter lookback"):
        runner.strategy_params(replace(req, params={"lookback": 3}), settings)


def test_config_sets_its_parameters_and_the_run_its_timeframe(tmp_path: Path):
    """``strategies.ema_cross`` in a config file reaches the run; ``--timeframe`` replaces its
    own timeframe (it runs on any), and without one the configured timeframe is used."""
    config = tmp_path / "c.yaml"
    config.write_text("strategies:\n  ema_cross:\n    fast: 5\n    slow: 13\n    stop_atr: 1.5\n")
    settings = load_settings(config, {})
    req = runner.Request("ema_cross", [SYMBOL], "binanceusdm", timeframe="15m")
    p = runner.strategy_params(req, settings)
    assert (p.fast, p.slow, p.stop_atr, p.timeframe) == (5, 13, 1.5, "15m")
    bare = replace(req, timeframe=None)
    assert runner.trigger_timeframe(bare, settings) == "1h"
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies:\n  ema_cross:\n    stop_atr: .nan\n")
    with pytest.raises(ConfigError, match="stop_atr"):
        load_settings(bad, {})


def test_a_backtest_without_timeframe_runs_on_the_configured_one(tmp_path: Path):
    """No --timeframe: the 1h of ``strategies.ema_cross.timeframe``, the reference definition
    (1 unit, its costs) and the same trades as with ``--timeframe 1h``."""
    Lake(tmp_path).write_candles(
        "binanceusdm", SYMBOL, "1h", walk_bars(1_704_067_200_000, 2_000, step=3_600_000)
    )
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(tmp_path)})
    base = ("backtest", "--strategy", "ema_cross", "--symbols", SYMBOL, "--no-journal")
    out = tmp_path / "a.parquet"
    cli(*base, "-o", str(out))
    again = tmp_path / "b.parquet"
    cli(*base, "--timeframe", "1h", "-o", str(again))
    a, b = pd.read_parquet(out), pd.read_parquet(again)
    assert len(a) > 20 and a.equals(b)
    assert (a.qty == 1.0).all() and set(a.reason) <= {"signal", "open"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [("slow=0", "slow=0"), ("fast=2.5", "fast=2.5"), ("stop_atr=0", "stop_atr=0")],
)
def test_a_bad_sweep_point_is_a_usage_error(tmp_path: Path, spec: str, message: str):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(tmp_path)})
    result = cli("backtest", "--strategy", "ema_cross", "--symbols", SYMBOL, "--timeframe",
                 "1h", "--sweep", spec, ok=None)  # fmt: skip
    assert result.exit_code == 2 and message in result.stderr
    assert not list(tmp_path.iterdir())  # nothing stored


def test_the_cot_filter_leaves_a_strategy_whose_signals_are_its_exits_alone(tmp_path: Path):
    """``cot.signal_filter`` would drop entries against the weekly bias; for ema_cross an
    entry is also the exit of the position before, so the filter is not applied (and no COT
    data is read): the trades equal those without the filter."""
    Lake(tmp_path).write_candles(
        "binanceusdm", "BTC/USDT:USDT", "1h", walk_bars(1_704_067_200_000, 800, step=3_600_000)
    )
    on = load_settings(None, {}).model_copy(deep=True)
    cot = on.cot.model_copy(update={"signal_filter": True})
    on = on.model_copy(update={"cot": cot})
    req = runner.with_defaults(
        runner.Request("ema_cross", ["BTC/USDT:USDT"], "binanceusdm", timeframe="1h")
    )
    data = runner.load(Lake(tmp_path), req, on)
    assert data.filters is None and not any("COT" in w for w in data.warnings)
    off = load_settings(None, {})
    plain = runner.run(req, runner.load(Lake(tmp_path), req, off), off).trades
    assert runner.run(req, data, on).trades.equals(plain)
