"""Return correlations between symbols, from the candles in the lake, for the correlated-exposure
gate. Hourly log returns over the last ``days`` (the shortest stored timeframe of 1h/15m/5m when
hourly bars are missing), aligned on their timestamps; a pair with fewer than 30 common returns
is left out (treated as uncorrelated)."""

from collections.abc import Iterable
from itertools import combinations

import numpy as np

from cryptobot.core.timeutil import DAY_MS
from cryptobot.data.lake import Lake

TIMEFRAMES = ("1h", "15m", "5m")
MIN_RETURNS = 30

#: a symbol's log returns: the open time of each return's later bar, and the return
Returns = tuple[np.ndarray, np.ndarray]


def return_correlations(
    lake: Lake, exchange: str, symbols: Iterable[str], days: int
) -> dict[frozenset[str], float]:
    """Each pair uses the first timeframe both symbols have stored. NumPy only: ``trade`` and
    ``risk`` ask for this on every start, and pandas would add a third of a second to each."""
    cache: dict[tuple[str, str], Returns | None] = {}

    def returns(symbol: str, tf: str) -> Returns | None:
        if (symbol, tf) not in cache:
            cache[symbol, tf] = _returns(lake, exchange, symbol, tf, days)
        return cache[symbol, tf]

    out: dict[frozenset[str], float] = {}
    for a, b in combinations(sorted(set(symbols)), 2):
        for tf in TIMEFRAMES:
            ra, rb = returns(a, tf), returns(b, tf)
            if ra is None or rb is None:
                continue
            _, ia, ib = np.intersect1d(ra[0], rb[0], assume_unique=True, return_indices=True)
            if len(ia) >= MIN_RETURNS:
                with np.errstate(invalid="ignore", divide="ignore"):  # a flat series: NaN
                    out[frozenset((a, b))] = float(np.corrcoef(ra[1][ia], rb[1][ib])[0, 1])
            break
    return out


def _returns(lake: Lake, exchange: str, symbol: str, tf: str, days: int) -> Returns | None:
    last = lake.last_candle_time(exchange, symbol, tf)
    if last is None:
        return None
    bars = lake.read_candle_columns(exchange, symbol, tf, start=last - days * DAY_MS,
                                    prices=("close",))  # fmt: skip
    returns = np.diff(np.log(bars["close"]))
    finite = np.isfinite(returns)
    return bars["timestamp"][1:][finite], returns[finite]
