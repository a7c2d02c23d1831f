"""Order-flow proxy: signed volume per bar and how unusual it is.

When the candles carry the taker-buy volume (Binance klines do, as ``taker_buy_volume``), the
delta is exact: buys minus sells = ``2 * taker_buy_volume - volume``. Otherwise it is
approximated from where the bar closed in its range (the close-location value used by
Chaikin's money flow): ``volume * ((close - low) - (high - close)) / (high - low)``, i.e. a bar
closing on its high counts as all buying, on its low as all selling, mid-range as balanced.

``flow_ratio`` compares |delta| with its mean over the ``period`` bars before (a surge does
not dilute its own baseline); 3.0 means three times the usual one-sided pressure.
"""

import numpy as np
import pandas as pd


def order_flow(frame: pd.DataFrame, period: int = 20) -> pd.DataFrame:
    vol = frame["volume"].to_numpy(dtype="float64")
    if "taker_buy_volume" in frame:
        delta = 2.0 * frame["taker_buy_volume"].to_numpy(dtype="float64") - vol
    else:
        h, lo, c = (frame[k].to_numpy(dtype="float64") for k in ("high", "low", "close"))
        span = h - lo
        clv = np.where(span > 0, ((c - lo) - (h - c)) / np.where(span > 0, span, 1.0), 0.0)
        delta = vol * clv
    baseline = pd.Series(np.abs(delta)).rolling(period).mean().shift(1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(baseline > 0, np.abs(delta) / baseline, np.nan)
    return pd.DataFrame({"delta": delta, "flow_ratio": ratio}, index=frame.index)
