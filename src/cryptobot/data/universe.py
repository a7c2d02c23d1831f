"""Which symbols ``--top N`` means: linear perpetuals settled in the configured quote asset,
stablecoin bases excluded, ranked by 24h quote volume."""

from cryptobot.core.market import Market
from cryptobot.core.settings import UniverseSettings
from cryptobot.exchange.base import Ticker


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
        and tickers[s].quote_volume >= rules.min_quote_volume_24h
    ]
    eligible.sort(key=lambda s: (-tickers[s].quote_volume, s))
    return eligible[:n]
