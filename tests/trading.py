"""Builders for the ``trade`` tests: sized-order records as ``size`` writes them, a lake of
hourly bars with a stored market, the replay exchange and the paper broker on it, the desk's
setup and what the journal holds."""

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd

from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.engine.trade import TradeSetup
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs
from tests.venues import HOUR, SYMBOL, T0, lake_of, market

T = TypeVar("T")
SIM = SimSetup(costs=Costs(taker=0.0005, maker=0.0002), timeframe="1h", leverage=5.0)
BARS = 72


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def walk_lake(root: Path, *, symbols: tuple[str, ...] = (SYMBOL,), seed: int = 7) -> Lake:
    """``BARS`` hourly bars per symbol: a deterministic walk around 100, tick 0.1."""
    rng = np.random.default_rng(seed)
    lake = None
    for symbol in symbols:
        close = np.round(100 * np.cumprod(1 + rng.normal(0, 0.003, BARS)), 1)
        open_ = np.round(np.r_[100.0, close[:-1]], 1)
        candles = pd.DataFrame(
            {"timestamp": T0 + HOUR * np.arange(BARS), "open": open_,
             "high": np.maximum(open_, close) + 0.2, "low": np.minimum(open_, close) - 0.2,
             "close": close, "volume": 5000.0}
        )  # fmt: skip
        lake = lake_of(root, candles, symbol=symbol, markets=[market(s) for s in symbols])
    assert lake is not None
    return lake


def last_close(lake: Lake, now: int, symbol: str = SYMBOL) -> float:
    bars = lake.read_candles("sim", symbol, "1h")
    closed = bars[bars.timestamp + HOUR <= now]
    return float(closed.close.iloc[-1])


def replay_venue(lake: Lake, now: int) -> ReplayExchange:
    return ReplayExchange(lake, "sim", ReplayClock(now), setup=SIM)


def paper_venue(lake: Lake, journal: Path, clock: ReplayClock) -> PaperBroker:
    """The paper broker on the lake's bars (its clock is the test's)."""
    prices = ReplayExchange(lake, "sim", clock, setup=SIM)
    return PaperBroker(prices, journal_dir=journal, setup=SIM, clock=prices)


def setup(root: Path, venue: str = "replay:sim", **kw: Any) -> TradeSetup:
    async def no_wait(seconds: float) -> None:
        return None

    kw.setdefault("sleep", no_wait)
    kw.setdefault("monotonic", time.monotonic)  # as the command gives it
    return TradeSetup(risk=load_settings(env={}).risk, root=root, venue=venue, prefix="cb", **kw)


def sized(
    *,
    entry: float,
    side: str = "long",
    qty: float = 2.0,
    stop_pct: float = 2.0,
    cid: str = "cb-000000000000000000000001",
    symbol: str = SYMBOL,
    schema: str = "sized_order/2",
    **fields: Any,
) -> dict[str, Any]:
    """A sized order as ``size`` writes it (the fields ``trade`` reads, figures consistent):
    targets at 1R/2R/3R with 25 % each (whole steps of 0.001)."""
    sign = 1 if side == "long" else -1
    stop = round(entry * (1 - sign * stop_pct / 100), 1)
    risk = abs(entry - stop)
    record = {
        "schema": schema, "client_order_id": cid, "status": "sized", "reason": "",
        "exchange": "sim", "symbol": symbol, "side": side, "entry": entry, "stop": stop,
        "targets": [round(entry + sign * r * risk, 1) for r in (1, 2, 3)],
        "strategy": "manual", "qty": qty, "notional": qty * entry, "leverage": 5.0,
        "margin": qty * entry / 5, "margin_mode": "isolated", "risk_usd": qty * risk,
    }  # fmt: skip
    if schema == "sized_order/2":
        record["target_qty"] = [round(qty * 0.25, 3)] * 3
    record.update(fields)
    return record


def table(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "cryptobot.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()
