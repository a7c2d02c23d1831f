"""The per-bar inputs of trade management built from a strategy's own bars: momentum's opposite
EMA cross and RSI divergence, the regime-change exit and the trend-strength flags; each known
on the close that makes it known and never earlier (truncating the future changes nothing)."""

import numpy as np
import pandas as pd
import pytest
import talib

from cryptobot.analysis.regime import regime
from cryptobot.core.config import load_settings
from cryptobot.manage.exits import BOTH, EXIT_LONGS, EXIT_SHORTS, regime_exits, weakening
from cryptobot.strategies.momentum import opposite_cross, rsi_divergence
from tests.backtest_reference import plain_ema
from tests.conftest import BINANCE

MOMENTUM = load_settings(None, {}, env={}).strategies.momentum
WARM_UP = [100 + 0.5 * (i % 2) for i in range(20)]
TO_A = [102.5, 104.5, 106.5, 108.5, 110.5, 112.5]  # a steep rise to swing high A (bar 25)
BACK = [111.5, 110.5, 109.5, 108.5]  # pullback to the swing low at bar 29
SLOW = [109, 109.5, 110, 110.5, 111, 111.5, 112]  # a slow climb to swing high B (bar 37)
AFTER = [111.9, 110.9, 109.9, 108.9, 107.9]


def frame_of(close: list[float]) -> pd.DataFrame:
    c = np.asarray(close, dtype=float)
    return pd.DataFrame({"timestamp": np.arange(len(c)) * 3_600_000, "open": c, "high": c + 0.1,
                         "low": c - 0.1, "close": c, "volume": 1.0})  # fmt: skip


def mirror(frame: pd.DataFrame) -> pd.DataFrame:
    """Prices turned upside down: highs become lows, a bearish pattern a bullish one."""
    return frame.assign(open=300 - frame.open, high=300 - frame.low, low=300 - frame.high,
                        close=300 - frame.close)  # fmt: skip


def divergent(peak_b: float) -> pd.DataFrame:
    return frame_of(WARM_UP + TO_A + BACK + SLOW + [peak_b] + AFTER)


def test_bearish_divergence_is_known_when_the_higher_high_is_confirmed():
    """B (112.9, bar 37) is above A (112.5, bar 25) while RSI(14) at B is lower (about 75 vs
    85): the event closes longs on bar 40, when three lower highs confirm B; not one bar
    earlier, and a truncated history says the same up to its end."""
    frame = divergent(112.9)
    rsi = talib.RSI(frame.close.to_numpy(), 14)
    assert rsi[37] < rsi[25] - 5
    events = rsi_divergence(frame, MOMENTUM, swing_bars=3)
    assert np.flatnonzero(events).tolist() == [40] and events[40] == EXIT_LONGS
    assert not rsi_divergence(frame.iloc[:40], MOMENTUM, swing_bars=3).any()
    for m in range(41, len(frame)):
        np.testing.assert_array_equal(
            rsi_divergence(frame.iloc[:m], MOMENTUM, swing_bars=3), events[:m]
        )


def test_bullish_divergence_mirrors_it_on_swing_lows():
    events = rsi_divergence(mirror(divergent(112.9)), MOMENTUM, swing_bars=3)
    assert np.flatnonzero(events).tolist() == [40] and events[40] == EXIT_SHORTS


def test_a_lower_high_is_no_divergence():
    """B at 112.3, below A: price and RSI agree, nothing closes."""
    assert not rsi_divergence(divergent(112.3), MOMENTUM, swing_bars=3).any()


def test_the_opposite_cross_is_marked_on_the_close_where_the_emas_cross():
    """EMA(9) and EMA(21), computed here by hand, cross down then up: longs are closed on the
    first close below, shorts on the first close above."""
    close = [100 + i for i in range(40)] + [139 - 1.5 * i for i in range(40)]
    close += [close[-1] + 2 * i for i in range(40)]
    fast, slow = np.array(plain_ema(close, 9)), np.array(plain_ema(close, 21))
    above = fast > slow
    down = [i for i in range(21, len(close)) if not above[i] and above[i - 1]]
    up = [i for i in range(21, len(close)) if above[i] and not above[i - 1]]
    assert len(down) == 1 and len(up) == 1
    events = opposite_cross(frame_of(close), MOMENTUM)
    assert np.flatnonzero(events).tolist() == [down[0], up[0]]
    assert (events[down[0]], events[up[0]]) == (EXIT_LONGS, EXIT_SHORTS)


@pytest.fixture(scope="module")
def sol_1m() -> pd.DataFrame:
    path = BINANCE / "SOL_USDT_USDT" / "1m.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real market data)")
    return pd.read_parquet(path).iloc[:4000].reset_index(drop=True)


def test_regime_exits_fire_where_the_regime_turns_into_a_blocked_one(sol_1m):
    labels = regime(sol_1m).to_numpy()
    events = regime_exits(sol_1m, blocked=["ranging"])
    fired = np.flatnonzero(events)
    assert len(fired) > 10 and (events[fired] == BOTH).all()
    assert (labels[fired] == "ranging").all() and (labels[fired - 1] != "ranging").all()
    turns = np.flatnonzero((labels[1:] == "ranging") & (labels[:-1] != "ranging")) + 1
    np.testing.assert_array_equal(fired, turns)
    assert not regime_exits(sol_1m, blocked=[]).any()


def test_a_strong_trend_is_a_high_and_rising_adx(sol_1m):
    adx = talib.ADX(*(sol_1m[k].to_numpy() for k in ("high", "low", "close")), 14)
    weak = weakening(sol_1m, strong_adx=25.0)
    strong = ~weak
    assert strong.any() and weak[30:].any()
    assert (adx[strong] >= 25).all() and (adx[1:][strong[1:]] > adx[:-1][strong[1:]]).all()
    assert weak[:27].all()  # ADX unknown during its warm-up: weak, the tighter trail
    rising_high = np.flatnonzero((adx[1:] >= 25) & (adx[1:] > adx[:-1])) + 1
    np.testing.assert_array_equal(np.flatnonzero(strong), rising_high)


@pytest.mark.parametrize("cut", [500, 1777, 3999])
def test_the_management_inputs_do_not_look_ahead(sol_1m, cut):
    """Built on the bars up to ``cut`` they equal the ones built on all bars, up to ``cut``."""
    part = sol_1m.iloc[:cut]
    for build in (
        lambda f: regime_exits(f, blocked=["ranging"]),
        lambda f: weakening(f, strong_adx=25.0),
        lambda f: opposite_cross(f, MOMENTUM),
        lambda f: rsi_divergence(f, MOMENTUM, swing_bars=3),
    ):
        np.testing.assert_array_equal(build(part), build(sol_1m)[:cut])
