"""Indicators equal TA-Lib and, independently, plain-loop definitions of the same formulas."""

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import talib

from cryptobot.analysis import indicators as ind
from tests.conftest import BINANCE


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present")
    return pq.read_table(path).to_pandas().iloc[-3000:].reset_index(drop=True)


def loop_ema(x: list[float], p: int) -> list[float]:
    """TA-Lib EMA: the first value (index p-1) is the mean of the first p; k = 2 / (p + 1)."""
    out = [math.nan] * len(x)
    out[p - 1] = sum(x[:p]) / p
    k = 2 / (p + 1)
    for i in range(p, len(x)):
        out[i] = out[i - 1] + k * (x[i] - out[i - 1])
    return out


def loop_atr(h: list[float], lo: list[float], c: list[float], p: int) -> list[float]:
    """Wilder ATR: first value (index p) is the mean of the first p true ranges (from bar 1)."""
    tr = [math.nan] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))
    ]
    out = [math.nan] * len(c)
    out[p] = sum(tr[1 : p + 1]) / p
    for i in range(p + 1, len(c)):
        out[i] = (out[i - 1] * (p - 1) + tr[i]) / p
    return out


def loop_rsi(c: list[float], p: int) -> list[float]:
    """Wilder RSI: average gain/loss seeded with the simple mean of the first p changes."""
    out = [math.nan] * len(c)
    changes = [c[i] - c[i - 1] for i in range(1, len(c))]
    gain = sum(max(d, 0) for d in changes[:p]) / p
    loss = sum(max(-d, 0) for d in changes[:p]) / p
    out[p] = 100 * gain / (gain + loss)
    for i in range(p + 1, len(c)):
        d = changes[i - 1]
        gain = (gain * (p - 1) + max(d, 0)) / p
        loss = (loss * (p - 1) + max(-d, 0)) / p
        out[i] = 100 * gain / (gain + loss)
    return out


def close_to(a, b, tol=1e-9):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    mask = ~np.isnan(a)
    np.testing.assert_allclose(a[mask], b[mask], rtol=tol, atol=tol)


@pytest.mark.parametrize("period", [9, 21, 50])
def test_ema_matches_talib_and_its_definition(candles, period):
    got = ind.ema(candles, period)
    assert got.name == f"ema_{period}"
    close_to(got, talib.EMA(candles.close.to_numpy(), period), 0)
    close_to(got, loop_ema(candles.close.tolist(), period))


def test_atr_and_rsi_match_wilders_definitions(candles):
    h, lo, c = candles.high.tolist(), candles.low.tolist(), candles.close.tolist()
    close_to(ind.atr(candles, 14), loop_atr(h, lo, c, 14))
    close_to(ind.rsi(candles, 14), loop_rsi(c, 14))


def test_other_wrappers_are_talibs_values_aligned_to_the_frame(candles):
    frame = candles.set_index(candles.timestamp)  # a non-default index must be kept
    h, lo, c = (frame[k].to_numpy() for k in ("high", "low", "close"))
    out = ind.adx(frame, 14)
    assert out.index.equals(frame.index)
    close_to(out["adx_14"], talib.ADX(h, lo, c, 14), 0)
    close_to(out["minus_di_14"], talib.MINUS_DI(h, lo, c, 14), 0)
    close_to(ind.macd(frame)["macd_hist"], talib.MACD(c, 12, 26, 9)[2], 0)
    close_to(ind.bollinger(frame)["bb_lower"], talib.BBANDS(c, 20, 2, 2)[2], 0)
    close_to(ind.sma(frame, 20), talib.SMA(c, 20), 0)


def test_volume_ratio_uses_only_earlier_bars(candles):
    ratio = ind.volume_ratio(candles, 20)
    v = candles.volume.to_numpy()
    assert math.isnan(ratio.iloc[19]) and not math.isnan(ratio.iloc[20])
    assert ratio.iloc[100] == pytest.approx(v[100] / v[80:100].mean(), rel=1e-12)


@pytest.mark.parametrize(
    "fn",
    [
        lambda f: ind.ema(f, 21),
        lambda f: ind.atr(f, 14),
        lambda f: ind.rsi(f, 14),
        lambda f: ind.adx(f, 14),
        lambda f: ind.macd(f),
        lambda f: ind.volume_ratio(f, 20),
    ],
)
def test_no_look_ahead(candles, fn):
    full = fn(candles)
    cut = fn(candles.iloc[:2000])
    pd.testing.assert_frame_equal(pd.DataFrame(full).iloc[:2000], pd.DataFrame(cut))
