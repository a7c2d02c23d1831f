"""A backtest loads the benchmark's candles for a strategy that measures against it because
the strategy says so (``Strategy.reads_benchmark``, breakout's relative strength), not because
of its name; the others load none. Real Bybit ETH and BTC candles from ../shared/data."""

import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.strategies import NAMES, lookup
from tests.conftest import SHARED

EX, ETH, BTC = "bybit", "ETH/USDT:USDT", "BTC/USDT:USDT"
TIMEFRAMES = ("5m", "1h", "4h", "1d")


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    source = SHARED / "candles" / EX
    if not source.is_dir():
        pytest.skip("../shared/data is not present (real market data for fidelity tests)")
    lake = Lake(tmp_path_factory.mktemp("lake"))
    for symbol in (ETH, BTC):
        for tf in TIMEFRAMES:
            bars = pd.read_parquet(source / symbol.replace("/", "_").replace(":", "_") /
                                   f"{tf}.parquet").iloc[-300:]  # fmt: skip
            lake.write_candles(EX, symbol, tf, bars)
    return lake


def test_only_breakout_says_it_reads_the_benchmark():
    assert [n for n in NAMES if lookup(n).reads_benchmark] == ["breakout"]


@pytest.mark.parametrize("name", ["breakout", "momentum"])
def test_the_benchmark_is_loaded_when_the_strategy_reads_it(lake: Lake, name: str):
    settings = load_settings(None, {"strategies.breakout.timeframe": "5m",
                                    "strategies.breakout.confirm_timeframe": "1h",
                                    "scan.benchmark": BTC}, env={})  # fmt: skip
    req = runner.Request(name, [ETH], EX, risk_usd=1.0)
    data = runner.load(lake, req, settings)
    if not lookup(name).reads_benchmark:
        assert data.benchmark == {}
        return
    assert set(data.benchmark) == {"5m", "1h", "1d"}
    for tf, frame in data.benchmark.items():
        stored = lake.read_candles(EX, BTC, tf)
        assert len(frame) == len(stored) > 0 and frame.close.equals(stored.close)
