"""Build a higher timeframe from stored lower-timeframe candles (e.g. 4h from 1h).

Bars are grouped by the opening time of the higher bar they fall in (UTC-aligned, as exchanges
align them); only complete groups are kept, so a bar that is still forming, or one with a hole
inside, is never presented as closed.
"""

import pandas as pd

from cryptobot.core.timeframes import bar_open, timeframe_ms


def resample(frame: pd.DataFrame, source: str, target: str) -> pd.DataFrame:
    step, size = timeframe_ms(target), timeframe_ms(source)
    if step % size:
        raise ValueError(f"{target} is not a whole multiple of {source}")
    key = bar_open(frame["timestamp"], step)
    grouped = frame.groupby(key, sort=True)
    out = pd.DataFrame(
        {
            "timestamp": grouped["timestamp"].first().index.astype("int64"),
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
            "volume": grouped["volume"].sum().to_numpy(),
        }
    )
    complete = grouped["timestamp"].count().to_numpy() == step // size
    return out[complete].reset_index(drop=True)
