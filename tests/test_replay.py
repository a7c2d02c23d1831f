"""The replay exchange serves a lake through the exchange interface, cut at its clock."""

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from cryptobot.core.errors import UnknownSymbolError
from cryptobot.data.fetcher import Fetcher, FetchPlan
from cryptobot.data.importer import read_candle_file
from cryptobot.data.lake import Lake
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs
from tests.conftest import BINANCE

NOW = 1_744_027_200_000  # 2025-04-07T12:00Z
PRICES_ONLY = SimSetup(costs=Costs())  # these tests read candles; nothing trades


@pytest.fixture
def source(shared: Path, tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "source")
    for base in ("BTC", "ETH", "SOL"):
        for tf in ("5m", "15m"):
            path = BINANCE / f"{base}_USDT_USDT" / f"{tf}.parquet"
            lake.write_candles("binance", f"{base}/USDT:USDT", tf, read_candle_file(path))
    return lake


def test_serves_only_closed_bars_up_to_the_clock(source: Lake):
    replay = ReplayExchange(source, "binance", ReplayClock(NOW), setup=PRICES_ONLY)
    rows = asyncio.run(replay.fetch_ohlcv("BTC/USDT:USDT", "5m", NOW - 3_600_000, 1000))
    assert len(rows) == 12 and rows[-1][0] == NOW - 300_000
    replay.clock.advance(300_000)
    rows = asyncio.run(replay.fetch_ohlcv("BTC/USDT:USDT", "5m", NOW - 3_600_000, 1000))
    assert rows[-1][0] == NOW
    with pytest.raises(UnknownSymbolError):
        asyncio.run(replay.fetch_ohlcv("DOGE/USDT:USDT", "5m", NOW, 10))


def test_tickers_come_from_the_last_24h_of_candles(source: Lake):
    """The volume is the closed bars' of the last 24 hours; the last price is the open of the
    bar trading at the clock (the first trade after the close, which a market order sent then
    meets), through the bar; past the stored bars, the last close."""
    replay = ReplayExchange(source, "binance", ReplayClock(NOW), setup=PRICES_ONLY)
    tickers = asyncio.run(replay.fetch_tickers())
    bars = source.read_candles("binance", "ETH/USDT:USDT", "5m", NOW - 86_400_000, NOW - 300_000)
    trading = source.read_candles("binance", "ETH/USDT:USDT", "5m", NOW, NOW)
    assert tickers["ETH/USDT:USDT"].last == trading.open.iloc[0]
    assert tickers["ETH/USDT:USDT"].quote_volume == pytest.approx((bars.close * bars.volume).sum())
    replay.clock.advance(299_999)  # inside the same bar
    assert asyncio.run(replay.fetch_tickers())["ETH/USDT:USDT"].last == trading.open.iloc[0]
    stored = source.read_candles("binance", "ETH/USDT:USDT", "5m")
    after = ReplayExchange(source, "binance", ReplayClock(int(stored.timestamp.iloc[-1]) + 300_000),
                           setup=PRICES_ONLY)  # fmt: skip
    assert asyncio.run(after.fetch_tickers())["ETH/USDT:USDT"].last == stored.close.iloc[-1]


def test_fetching_from_replay_reproduces_the_source(source: Lake, tmp_path: Path):
    """The fetcher cannot tell replay from live: it pages through it like any venue."""
    replay = ReplayExchange(source, "binance", ReplayClock(NOW), setup=PRICES_ONLY)
    target = Lake(tmp_path / "target")
    plan = FetchPlan(top=2, timeframes=["5m", "15m"], days=20)
    from cryptobot.core.config import load_settings

    fetcher = Fetcher(replay, target, load_settings(env={}).universe)
    results = asyncio.run(fetcher.run(plan))
    assert {r.symbol for r in results} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    for r in results:
        start = NOW - 20 * 86_400_000
        expected = source.read_candles("binance", r.symbol, r.dataset, start, NOW - 1)
        expected = expected[expected.timestamp + (300_000 if r.dataset == "5m" else 900_000) <= NOW]
        got = target.read_candles("binance", r.symbol, r.dataset)
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
