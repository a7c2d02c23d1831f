"""Return correlations between symbols, from the candles in the lake, for the correlated-exposure
gate. Hourly log returns over the last ``days`` (the shortest stored timeframe of 1h/15m/5m when
hourly bars are missing), aligned on their timestamps; a pair with fewer than 30 common returns
is left out (treated as uncorrelated)."""

from collections.abc import Iterable
from itertools import combinations

import numpy as np
import pandas as pd

from cryptobot.core.timeutil import DAY_MS
from cryptobot.data.lake import Lake

TIMEFRAMES = ("1h", "15m", "5m")
MIN_RETURNS = 30


def return_correlations(
    lake: Lake, exchange: str, symbols: Iterable[str], days: int
) -> dict[frozenset[str], float]:
    """Each pair uses the first timeframe both symbols have stored."""
    cache: dict[tuple[str, str], pd.Series | None] = {}

    def returns(symbol: str, tf: str) -> pd.Series | None:
        if (symbol, tf) not in cache:
            cache[symbol, tf] = _returns(lake, exchange, symbol, tf, days)
        return cache[symbol, tf]

    out: dict[frozenset[str], float] = {}
    for a, b in combinations(sorted(set(symbols)), 2):
        for tf in TIMEFRAMES:
            ra, rb = returns(a, tf), returns(b, tf)
            if ra is None or rb is None:
                continue
            joined = pd.concat([ra, rb], axis=1, join="inner").dropna()
            if len(joined) >= MIN_RETURNS:
                out[frozenset((a, b))] = float(joined.corr().iat[0, 1])
            break
    return out


def _returns(lake: Lake, exchange: str, symbol: str, tf: str, days: int) -> pd.Series | None:
    last = lake.last_candle_time(exchange, symbol, tf)
    if last is None:
        return None
    frame = lake.read_candles(exchange, symbol, tf, start=last - days * DAY_MS)
    return np.log(frame.set_index("timestamp")["close"]).diff().dropna()
