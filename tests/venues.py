"""Builders for the venue tests: a lake of hand-made or real bars, with a stored market, and the
replay exchange trading on it."""

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cryptobot.core.market import Market
from cryptobot.data.lake import Lake
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs

T = TypeVar("T")
HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC, a funding time
SYMBOL = "X/USDT:USDT"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def market(symbol: str = SYMBOL, **overrides: Any) -> Market:
    base, rest = symbol.split("/")
    fields = dict(
        symbol=symbol, id=symbol.replace("/", "").split(":")[0], base=base,
        quote=rest.split(":")[0], settle="USDT", type="swap", linear=True, active=True,
        contract_size=1.0, tick_size=0.1, step_size=0.001, min_qty=0.001, min_notional=5.0,
        max_leverage=50.0, maker=0.0002, taker=0.0005,
    )  # fmt: skip
    fields.update(overrides)
    return Market(**fields)


def hourly(rows: list[tuple[float, float, float, float]], start: int = T0) -> pd.DataFrame:
    o, h, lo, c = zip(*rows, strict=True)
    return pd.DataFrame(
        {"timestamp": start + HOUR * np.arange(len(rows)), "open": o, "high": h, "low": lo,
         "close": c, "volume": 1000.0}
    )  # fmt: skip


def lake_of(
    root: Path,
    candles: pd.DataFrame,
    *,
    markets: list[Market] | None = None,
    funding: pd.DataFrame | None = None,
    symbol: str = SYMBOL,
    timeframe: str = "1h",
) -> Lake:
    lake = Lake(root)
    lake.write_candles("sim", symbol, timeframe, candles)
    lake.write_markets("sim", markets if markets is not None else [market(symbol)])
    if funding is not None:
        lake.write_funding("sim", symbol, funding)
    return lake


def replay(lake: Lake, start: int = T0, **setup: Any) -> ReplayExchange:
    """The replay exchange on ``lake``; without ``costs`` it charges the hand-made market's own
    maker/taker fees (``market()``) and no slippage, so expected prices stay easy to read."""
    setup.setdefault("costs", Costs())
    return ReplayExchange(lake, "sim", ReplayClock(start), setup=SimSetup(**setup))
