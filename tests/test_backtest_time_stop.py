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


def test_default_config_leaves_the_time_stop_to_the_timeframe(settings):
    assert settings.manage.time_stop_minutes is None
    for strategy, tf in (("momentum", "1h"), ("breakout", "1m"), ("bos_fvg_fib", "5m")):
        req = runner.Request(strategy=strategy, symbols=[], exchange="binanceusdm")
        assert runner.trigger_timeframe(req, settings) == tf
        assert runner.policy_for(req, settings, tf).time_stop_bars == TIME_STOP_BARS


def _time_stopped_holds(lake: Lake, settings, minutes: float | None) -> list[float]:
    manage = settings.manage.model_copy(update={"time_stop_minutes": minutes})
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
    assert all(hours >= TIME_STOP_BARS for hours in default)  # 30 bars of 1h
    assert _time_stopped_holds(lake, settings, 0) == []
