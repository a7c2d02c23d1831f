"""Which symbols ``--top N`` means: linear perpetuals settled in the configured quote asset,
stablecoin bases excluded, ranked by 24h quote volume."""

import math

from cryptobot.core.market import Market
from cryptobot.core.settings import UniverseSettings
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data.lake import Lake
from cryptobot.data.source import Ticker

DAY_MS = 86_400_000


def top_symbols(
    markets: dict[str, Market], tickers: dict[str, Ticker], n: int, rules: UniverseSettings
) -> list[str]:
    excluded = {b.upper() for b in rules.exclude_bases}
    eligible = [
        s
        for s, m in markets.items()
        if m.type == "swap"
        and m.linear
        and m.active
        and m.settle == rules.quote
        and m.quote == rules.quote
        and m.base.upper() not in excluded
        and s in tickers
        and math.isfinite(tickers[s].quote_volume)  # an "inf" answered is no volume
        and tickers[s].quote_volume >= rules.min_quote_volume_24h
    ]
    eligible.sort(key=lambda s: (-tickers[s].quote_volume, s))
    return eligible[:n]


def top_stored(lake: Lake, exchange: str, timeframe: str, n: int) -> list[str]:
    """Offline ``--top N``: stored symbols ranked by the quote volume (close x volume) of their
    last day of ``timeframe`` candles."""
    volumes = {}
    for venue, symbol, tf in lake.candle_sets(exchange):
        if tf == timeframe:
            last = lake.last_candle_time(venue, symbol, tf)
            bars = lake.read_candles(venue, symbol, tf, last - DAY_MS + timeframe_ms(tf), last)
            volumes[symbol] = float((bars["close"] * bars["volume"]).sum())
    return sorted(volumes, key=lambda s: (-volumes[s], s))[:n]
