"""No look-ahead, enforced on real data for every detector and strategy: what they say at bar t
is identical whether the data ends at t or continues (and whatever the future holds)."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.analysis.flow import order_flow
from cryptobot.analysis.fvg import fair_value_gaps, gaps_as_of
from cryptobot.analysis.regime import hurst, realised_volatility, regime
from cryptobot.analysis.strength import relative_strength
from cryptobot.analysis.structure import breaks, swings
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data.resample import resample
from cryptobot.strategies import bos_fvg_fib, breakout, ema_cross, momentum
from cryptobot.strategies.base import SymbolData
from tests.conftest import BINANCE

ENDS = (700, 1333, 2222)


def _read(symbol: str, tf: str) -> pd.DataFrame:
    return pq.read_table(BINANCE / f"{symbol}_USDT_USDT/{tf}.parquet").to_pandas()


@pytest.fixture
def eth15(shared) -> pd.DataFrame:
    return _read("ETH", "15m").iloc[-2500:].reset_index(drop=True)


def _scrambled(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """Every bar from ``start`` on replaced by another future bar: a different future."""
    out = frame.copy()
    rng = np.random.default_rng(7)
    cols = ["open", "high", "low", "close", "volume"]
    out.loc[start:, cols] = out.loc[start:, cols].to_numpy()[rng.permutation(len(out) - start)]
    return out


def _check_frame(fn, frame: pd.DataFrame) -> None:
    full = fn(frame)
    for end in ENDS:
        head = fn(frame.iloc[:end])
        pd.testing.assert_frame_equal(head, full.iloc[:end], check_dtype=False)
        pd.testing.assert_frame_equal(
            fn(_scrambled(frame, end)).iloc[:end], head, check_dtype=False
        )


@pytest.mark.parametrize(
    "detector",
    [
        lambda f: swings(f, 3, 3),
        lambda f: breaks(f, swings(f, 3, 3), 1),
        lambda f: breaks(f, swings(f, 2, 5), 2),
        lambda f: order_flow(f, 20),
        lambda f: regime(f).to_frame(),
        lambda f: hurst(f, 100, 20).to_frame(),
        lambda f: realised_volatility(f, 20).to_frame(),
    ],
    ids=["swings", "breaks", "breaks_confirmed", "order_flow", "regime", "hurst", "rv"],
)
def test_per_bar_detectors(eth15, detector):
    _check_frame(detector, eth15)


def test_fair_value_gaps(eth15):
    full = fair_value_gaps(eth15)
    for end in ENDS:
        for frame in (eth15.iloc[:end], _scrambled(eth15, end)):
            seen = gaps_as_of(fair_value_gaps(frame), end - 1).reset_index(drop=True)
            expected = gaps_as_of(full, end - 1).reset_index(drop=True)
            pd.testing.assert_frame_equal(seen, expected)


def test_relative_strength(shared, eth15):
    btc = _read("BTC", "15m").iloc[-2500:].reset_index(drop=True)
    full = relative_strength(eth15, btc, 48)
    for end in ENDS:
        head = relative_strength(eth15.iloc[:end], btc.iloc[:end], 48)
        pd.testing.assert_series_equal(head, full.iloc[:end])


def test_points_of_interest(eth15, settings):
    params = settings.strategies.bos_fvg_fib
    full = bos_fvg_fib.points_of_interest(eth15, params)
    for end in ENDS:
        assert bos_fvg_fib.points_of_interest(eth15.iloc[:end], params) == full[:end]
        assert bos_fvg_fib.points_of_interest(_scrambled(eth15, end), params)[:end] == full[:end]


def _since(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    return frame[frame.timestamp >= start].reset_index(drop=True)


def _triggered_by(setups, end_ms: int) -> list:
    return [
        s.to_json()
        for s in setups
        if s.status == "triggered" and s.ts + timeframe_ms(s.timeframe) <= end_ms
    ]


def _scrambled_after(data: SymbolData, end_ms: int) -> SymbolData:
    """Every frame's bars that close after ``end_ms`` shuffled among themselves."""

    def scramble(frames):
        out = {}
        for tf, f in frames.items():
            f = f.reset_index(drop=True)
            later = np.flatnonzero(f.timestamp.to_numpy() + timeframe_ms(tf) > end_ms)
            out[tf] = _scrambled(f, int(later[0])) if len(later) else f
        return out

    return SymbolData(data.exchange, data.symbol, scramble(data.frames), None,
                      scramble(data.benchmark))  # fmt: skip


def _check_strategy(detect, data: SymbolData, params, step_tf: str) -> None:
    """Truncated at five points, and with the future scrambled there: the triggers closed by
    then are the same as over the whole data."""
    full = detect(data, params)
    stamps = data.frame(step_tf)["timestamp"].to_numpy()
    checked = 0
    for end in np.linspace(len(stamps) // 3, len(stamps) - 1, 5).astype(int):
        end_ms = int(stamps[end]) + timeframe_ms(step_tf)
        seen = _triggered_by(detect(data.truncated(end_ms), params), end_ms)
        assert seen == _triggered_by(full, end_ms)
        assert _triggered_by(detect(_scrambled_after(data, end_ms), params), end_ms) == seen
        checked += len(seen)
    assert checked > 0, "the window should hold triggered setups to compare"


@pytest.mark.parametrize(
    "update", [{}, {"htf_timeframe": "1h", "allow_choch": False}], ids=["default", "htf"]
)
def test_bos_fvg_fib_strategy(shared, settings, update):
    p = settings.strategies.bos_fvg_fib.model_copy(update=update)
    ctx = _read("ETH", "15m").iloc[-1500:].reset_index(drop=True)
    entry = _read("ETH", "5m")
    entry = entry[(entry.timestamp >= ctx.timestamp.iloc[500])]
    entry = entry[entry.timestamp < ctx.timestamp.iloc[-1] + 900_000].reset_index(drop=True)
    frames = {"15m": ctx, "5m": entry}
    if p.htf_timeframe:
        hourly = _read("ETH", "1h")
        frames["1h"] = hourly[hourly.timestamp.between(ctx.timestamp.iloc[0] - 30 * 86_400_000,
                                                       ctx.timestamp.iloc[-1])]  # fmt: skip
    data = SymbolData("binance", "ETH/USDT:USDT", frames)
    _check_strategy(bos_fvg_fib.detect, data, p, "5m")


def test_momentum_strategy(shared, settings):
    p = settings.strategies.momentum
    hourly = _read("BTC", "1h").iloc[-3000:].reset_index(drop=True)
    data = SymbolData(
        "binance", "BTC/USDT:USDT", {"1h": hourly, "4h": resample(hourly, "1h", "4h")}
    )
    _check_strategy(momentum.detect, data, p, "1h")


def test_ema_cross_strategy(shared, settings):
    p = settings.strategies.ema_cross.model_copy(update={"stop_atr": 2.0})
    hourly = _read("BTC", "1h").iloc[-3000:].reset_index(drop=True)
    _check_strategy(ema_cross.detect, SymbolData("binance", "BTC/USDT:USDT", {"1h": hourly}),
                    p, "1h")  # fmt: skip


def test_breakout_strategy(shared, settings):
    p = settings.strategies.breakout
    minute = _read("SOL", "1m").iloc[-6000:].reset_index(drop=True)
    first = minute.timestamp.iloc[0] - 30 * 86_400_000
    frames = {
        "1m": minute,
        "5m": _since(_read("SOL", "5m"), first),
        "1d": _read("SOL", "1d"),
    }
    bench = {"5m": _since(_read("BTC", "5m"), first)}
    data = SymbolData("binance", "SOL/USDT:USDT", frames, benchmark=bench)
    _check_strategy(breakout.detect, data, p, "1m")


def test_breakout_on_a_newly_listed_symbol(shared, settings):
    """A listing with fewer than ``daily_ema`` daily bars at first: the 20th daily close (inside
    the window) must not change what earlier bars reported."""
    p = settings.strategies.breakout
    minute = _read("SOL", "1m").iloc[-6000:].reset_index(drop=True)
    first = minute.timestamp.iloc[0]
    listed = first - (p.daily_ema - 2) * 86_400_000  # the 20th daily bar closes on day two
    frames = {
        "1m": minute,
        "5m": _since(_read("SOL", "5m"), listed),
        "1d": _since(_read("SOL", "1d"), listed),
    }
    daily_closes = frames["1d"].timestamp + 86_400_000
    crossing = int(daily_closes.iloc[p.daily_ema - 1])
    assert first < crossing < minute.timestamp.iloc[-1], "the 20th daily close is in the window"
    bench = {"5m": _since(_read("BTC", "5m"), listed)}
    data = SymbolData("binance", "SOL/USDT:USDT", frames, benchmark=bench)
    full = breakout.detect(data, p)
    assert any(s.ts < crossing for s in full if s.status == "triggered")
    _check_strategy(breakout.detect, data, p, "1m")
    before = crossing - 60_000  # the scanner standing just before the 20th daily close
    assert _triggered_by(breakout.detect(data.truncated(before), p), before) == _triggered_by(
        full, before
    )
