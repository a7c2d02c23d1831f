"""The time stop defaults to bars of the strategy's own timeframe (30 minutes of 1m scalping
is not 30 minutes of 1h momentum); minutes in the config or on the command line override."""

import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.data.lake import Lake
from cryptobot.data.resample import resample
from cryptobot.manage.policy import TIME_STOP_BARS, Policy
from tests.conftest import BINANCE

HOUR = 3_600_000


@pytest.mark.parametrize(
    ("minutes", "bar_minutes", "bars"),
    [(None, 1, TIME_STOP_BARS), (None, 60, TIME_STOP_BARS), (None, 5, TIME_STOP_BARS),
     (30, 1, 30), (30, 60, 1), (90, 60, 2), (0, 1, 0), (0, 60, 0)],
)  # fmt: skip
def test_policy_time_stop_bars(settings, minutes, bar_minutes, bars):
    manage = settings.manage.model_copy(update={"time_stop_minutes": minutes})
    assert Policy.from_settings(manage, bar_minutes).time_stop_bars == bars


def test_each_strategy_has_its_plans_time_stop(settings):
    """Issue 15: one time stop for all strategies gave way to each plan's (its manage profile):
    30 minutes for breakout scalps, 72 h for 1h momentum (spared once 2R was reached), none for
    bos_fvg_fib; a strategy without a profile keeps 30 bars of its own timeframe."""
    assert settings.manage.time_stop_minutes is None
    expected = {"momentum": ("1h", 72, 2.0), "breakout": ("1m", 30, 1.0),
                "bos_fvg_fib": ("5m", 0, 1.0)}  # fmt: skip
    for strategy, (tf, bars, until_r) in expected.items():
        req = runner.Request(strategy=strategy, symbols=[], exchange="binanceusdm")
        assert runner.trigger_timeframe(req, settings) == tf
        policy = runner.policy_for(req, settings, tf)
        assert (policy.time_stop_bars, policy.time_stop_until_r) == (bars, until_r)
    sized = runner.Request(strategy="ema_cross", symbols=[], exchange="x", risk_usd=1.0)
    assert runner.policy_for(sized, settings, "15m").time_stop_bars == TIME_STOP_BARS


def _time_stopped_holds(lake: Lake, settings, minutes: float | None) -> list[float]:
    if minutes is not None:  # as `backtest --time-stop` does: for every strategy
        manage = settings.manage.overriding(time_stop_minutes=minutes)
        settings = settings.model_copy(update={"manage": manage})
    req = runner.Request(
        strategy="momentum", symbols=["BTC/USDT:USDT", "ETH/USDT:USDT"], exchange="binanceusdm"
    )
    trades = runner.run(req, runner.load(lake, req, settings), settings).trades
    stopped = trades[trades.reason == "time_stop"]
    return ((stopped.exit_time - stopped.entry_time) / HOUR).tolist()


def test_momentum_on_1h_is_not_cut_after_30_minutes(shared, settings, tmp_path):
    lake = Lake(tmp_path / "data")
    for sym in ("BTC", "ETH"):
        hourly = pd.read_parquet(BINANCE / f"{sym}_USDT_USDT" / "1h.parquet")
        hourly = hourly[hourly.timestamp >= 1_704_067_200_000]
        lake.write_candles("binanceusdm", f"{sym}/USDT:USDT", "1h", hourly)
        lake.write_candles("binanceusdm", f"{sym}/USDT:USDT", "4h", resample(hourly, "1h", "4h"))
    thirty_minutes = _time_stopped_holds(lake, settings, 30)
    assert len(thirty_minutes) > 5 and max(thirty_minutes) <= 1  # the old default: one 1h bar
    default = _time_stopped_holds(lake, settings, None)
    assert len(default) < len(thirty_minutes)
    assert all(hours >= 72 for hours in default)  # the momentum profile: 72 h
    assert _time_stopped_holds(lake, settings, 0) == []
