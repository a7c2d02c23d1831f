"""Thin frame-in / series-out wrappers over TA-Lib.

Values are TA-Lib's own (same warm-up: the first ``period - 1`` values are NaN, an EMA starts
from the simple mean of its first ``period`` inputs, RSI/ATR/ADX use Wilder smoothing). Each
function returns Series aligned with the frame's index, named after what they hold, so callers
can ``frame.assign(**...)`` or ``pd.concat`` them. Every value at bar t depends only on bars <= t.
"""

import numpy as np
import pandas as pd

from cryptobot.analysis.ta import talib


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype="float64")


def _series(values: np.ndarray, frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.Series(values, index=frame.index, name=name)


def sma(frame: pd.DataFrame, period: int, column: str = "close") -> pd.Series:
    return _series(talib.SMA(_col(frame, column), period), frame, f"sma_{period}")


def ema(frame: pd.DataFrame, period: int, column: str = "close") -> pd.Series:
    return _series(talib.EMA(_col(frame, column), period), frame, f"ema_{period}")


def rsi(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    return _series(talib.RSI(_col(frame, "close"), period), frame, f"rsi_{period}")


def atr(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    values = talib.ATR(_col(frame, "high"), _col(frame, "low"), _col(frame, "close"), period)
    return _series(values, frame, f"atr_{period}")


def adx(frame: pd.DataFrame, period: int = 14) -> pd.DataFrame:
    """ADX with the directional indicators +DI and -DI."""
    h, lo, c = _col(frame, "high"), _col(frame, "low"), _col(frame, "close")
    return pd.DataFrame(
        {
            f"adx_{period}": talib.ADX(h, lo, c, period),
            f"plus_di_{period}": talib.PLUS_DI(h, lo, c, period),
            f"minus_di_{period}": talib.MINUS_DI(h, lo, c, period),
        },
        index=frame.index,
    )


def macd(frame: pd.DataFrame, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    line, sig, hist = talib.MACD(_col(frame, "close"), fast, slow, signal)
    return pd.DataFrame({"macd": line, "macd_signal": sig, "macd_hist": hist}, index=frame.index)


def bollinger(frame: pd.DataFrame, period: int = 20, width: float = 2.0) -> pd.DataFrame:
    upper, middle, lower = talib.BBANDS(_col(frame, "close"), period, width, width)
    return pd.DataFrame(
        {"bb_upper": upper, "bb_middle": middle, "bb_lower": lower}, index=frame.index
    )


def volume_ratio(frame: pd.DataFrame, period: int = 20) -> pd.Series:
    """Volume over its average of the ``period`` bars *before* it (a surge does not dilute its
    own baseline): 2.0 means twice the recent average."""
    volume = _col(frame, "volume")
    average = np.concatenate(([np.nan], talib.SMA(volume, period)[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(average > 0, volume / average, np.nan)
    return _series(ratio, frame, f"volume_ratio_{period}")
