"""Build a deterministic SYNTHETIC sample market for offline demos: 30 USDT perpetuals.

The prices are generated (geometric random walks with volatility regimes and volume surges),
not real. They are stored as a lake under exchange name ``synthetic`` so nothing can mistake
them for a venue's data; `cryptobot --exchange replay` serves them through the same interface
as a live exchange. Real data is one `cryptobot fetch` away on a machine that is online.

    python examples/make_sample_market.py demo-data/sample-market [--days 30]

1m bars are generated for the whole period and resampled into 5m, 15m, 1h, 4h and 1d; only the
last ``--minute-days`` of 1m bars are stored (enough for the scalping detectors).
"""

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cryptobot.core.market import Market
from cryptobot.data.lake import Lake
from cryptobot.data.resample import resample

EXCHANGE = "synthetic"
END_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: the replay clock starts here by default
ONE_MIN = 60_000
TIMEFRAMES = ["5m", "15m", "1h", "4h", "1d"]  # resampled from 1m
BASES = {  # base: starting price (rough orders of magnitude, so sizes and ticks look familiar)
    "BTC": 90_000,
    "ETH": 3_200,
    "SOL": 140,
    "XRP": 2.1,
    "BNB": 650,
    "DOGE": 0.18,
    "ADA": 0.6,
    "AVAX": 24,
    "LINK": 15,
    "DOT": 4.5,
    "LTC": 90,
    "BCH": 480,
    "TRX": 0.25,
    "NEAR": 3.2,
    "APT": 6.5,
    "ARB": 0.55,
    "OP": 0.9,
    "SUI": 2.4,
    "TON": 3.1,
    "ATOM": 5.2,
    "FIL": 3.0,
    "INJ": 14,
    "SEI": 0.3,
    "TIA": 3.8,
    "WLD": 1.2,
    "PEPE": 0.00001,
    "WIF": 1.1,
    "AAVE": 210,
    "UNI": 8.5,
    "ETC": 19,
}


def bars_for(base: str, start_price: float, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regime = np.repeat(rng.choice([0.6, 1.0, 2.2], size=n // 480 + 1, p=[0.4, 0.45, 0.15]), 480)
    regime = regime[:n]
    drift = np.repeat(rng.normal(0, 0.00008, size=n // 1440 + 1), 1440)[:n]
    returns = drift + rng.standard_t(4, size=n) * 0.0008 * regime
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([start_price], close[:-1]))
    wick = np.abs(rng.normal(0, 0.0005, size=(2, n))) * regime
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    surge = np.where(rng.random(n) < 0.005, rng.uniform(3, 8, n), 1.0)
    notional = 4e5 * (1 + 10 * (base in ("BTC", "ETH"))) * rng.lognormal(0, 0.5, n) * surge
    tick = _tick(start_price)
    frame = pd.DataFrame(
        {
            "timestamp": END_MS - ONE_MIN * np.arange(n, 0, -1, dtype="int64"),
            "open": _round(open_, tick),
            "high": _round(high, tick),
            "low": _round(low, tick),
            "close": _round(close, tick),
            "volume": notional * regime / close,
        }
    )
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    return frame


def market(base: str, price: float) -> Market:
    tick = _tick(price)
    step = 10 ** math.floor(math.log10(max(10 / price, 1e-3)))
    return Market(
        symbol=f"{base}/USDT:USDT",
        id=f"{base}USDT",
        base=base,
        quote="USDT",
        settle="USDT",
        type="swap",
        linear=True,
        active=True,
        contract_size=1.0,
        tick_size=tick,
        step_size=float(step),
        min_qty=float(step),
        min_notional=5.0,
        max_leverage=50.0,
        maker=0.0002,
        taker=0.0005,
        maint_margin_rate=0.004,
    )


def _tick(price: float) -> float:
    return 10.0 ** (math.floor(math.log10(price)) - 4)


def _round(values: np.ndarray, tick: float) -> np.ndarray:
    return np.round(np.round(values / tick) * tick, 12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="lake folder to create or refresh")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--minute-days", type=int, default=2, help="days of 1m bars kept")
    args = parser.parse_args()
    lake = Lake(args.out)
    for seed, (base, price) in enumerate(BASES.items()):
        symbol = f"{base}/USDT:USDT"
        minute = bars_for(base, price, args.days * 1440, seed)
        keep = minute.timestamp >= END_MS - args.minute_days * 86_400_000
        lake.write_candles(EXCHANGE, symbol, "1m", minute[keep])
        for timeframe in TIMEFRAMES:
            lake.write_candles(EXCHANGE, symbol, timeframe, resample(minute, "1m", timeframe))
        stamps = np.arange(END_MS - args.days * 86_400_000, END_MS, 8 * 3_600_000)
        rates = np.random.default_rng(1000 + seed).normal(0.0001, 0.0002, len(stamps))
        lake.write_funding(
            EXCHANGE, symbol, pd.DataFrame({"timestamp": stamps, "funding_rate": rates})
        )
    lake.write_markets(EXCHANGE, [market(b, p) for b, p in BASES.items()])
    print(f"synthetic sample market: {len(BASES)} symbols x {args.days} days -> {args.out}")


if __name__ == "__main__":
    main()
