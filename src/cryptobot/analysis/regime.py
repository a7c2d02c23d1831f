"""Market regime: trending, ranging or volatile, and the Hurst exponent.

Label per bar, first match wins:
- ``volatile`` when realised volatility (std of log returns over ``vol_period`` bars) is above
  its own ``vol_percentile`` percentile over the last ``vol_lookback`` bars;
- ``trending`` when ADX(``adx_period``) >= ``adx_trend``;
- ``ranging`` otherwise; ``unknown`` during warm-up.

The Hurst exponent of log prices over a rolling ``window`` is the slope of log(std of k-bar
differences) against log(k): about 0.5 for a random walk, above for persistent (trending)
series, below for mean-reverting ones.
"""

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from cryptobot.analysis.indicators import adx

LABELS = ("unknown", "ranging", "trending", "volatile")


def realised_volatility(frame: pd.DataFrame, period: int = 20) -> pd.Series:
    returns = np.log(frame["close"].astype("float64")).diff()
    return returns.rolling(period).std().rename(f"rv_{period}")


def regime(
    frame: pd.DataFrame,
    *,
    adx_period: int = 14,
    adx_trend: float = 25.0,
    vol_period: int = 20,
    vol_lookback: int = 200,
    vol_percentile: float = 80.0,
) -> pd.Series:
    strength = adx(frame, adx_period)[f"adx_{adx_period}"]
    vol = realised_volatility(frame, vol_period)
    threshold = vol.rolling(vol_lookback, min_periods=vol_period).quantile(vol_percentile / 100)
    label = np.where(
        vol.isna() | strength.isna(),
        "unknown",
        np.where(
            vol > threshold, "volatile", np.where(strength >= adx_trend, "trending", "ranging")
        ),
    )
    return pd.Series(label, index=frame.index, name="regime")


def hurst(frame: pd.DataFrame, window: int = 100, max_lag: int = 20) -> pd.Series:
    logp = np.log(frame["close"].to_numpy(dtype="float64"))
    out = np.full(len(logp), np.nan)
    if len(logp) >= window and window > max_lag + 1:
        windows = sliding_window_view(logp, window)
        lags = np.arange(2, max_lag + 1)
        spread = np.stack([np.std(windows[:, k:] - windows[:, :-k], axis=1) for k in lags], axis=1)
        with np.errstate(divide="ignore"):
            y = np.log(spread)
        x = np.log(lags)
        xc = x - x.mean()
        slope = ((y - y.mean(axis=1, keepdims=True)) * xc).sum(axis=1) / (xc**2).sum()
        out[window - 1 :] = slope
    return pd.Series(out, index=frame.index, name="hurst")
