"""An independent, plain-Python ``ema_cross`` (the issue's definition, line by line) and a
helper to run the engine's version on the same candles. Shared by the reference tests and the
benchmark; deliberately written without the engine's code."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units
from cryptobot.manage.policy import Policy
from cryptobot.strategies.ema_cross import ema_cross_signals

FEE = 0.0004


@dataclass
class Trade:
    side: int
    entry_bar: int
    entry: float
    exit_bar: int | None = None
    exit: float | None = None


def plain_ema(close: list[float], p: int) -> list[float]:
    out = [math.nan] * len(close)
    if len(close) < p:
        return out
    out[p - 1] = sum(close[:p]) / p
    alpha = 2.0 / (p + 1)
    for i in range(p, len(close)):
        out[i] = out[i - 1] + alpha * (close[i] - out[i - 1])
    return out


def plain_atr(high: list[float], low: list[float], close: list[float], p: int = 14) -> list[float]:
    """Wilder's ATR as TA-Lib computes it: TR from bar 1, first ATR = mean of TR[1..p]."""
    n = len(close)
    tr = [math.nan] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, n)
    ]
    out = [math.nan] * n
    if n <= p:
        return out
    out[p] = sum(tr[1 : p + 1]) / p
    for i in range(p + 1, n):
        out[i] = (out[i - 1] * (p - 1) + tr[i]) / p
    return out


def plain_ema_cross(
    frame: pd.DataFrame, stop_atr: float | None = None, fast: int = 9, slow: int = 21
) -> tuple[list[Trade], float, float]:
    """Trades, total fees and PnL (realised + unrealised - fees)."""
    o, h, lo, c = (frame[k].tolist() for k in ("open", "high", "low", "close"))
    f, s = plain_ema(c, fast), plain_ema(c, slow)
    atr = plain_atr(h, lo, c)
    state, cross = 0, [0] * len(c)
    for t in range(len(c)):
        prev = state
        if math.isnan(s[t]):
            state = 0
        elif f[t] - s[t] > 0:
            state = 1
        elif f[t] - s[t] < 0:
            state = -1
        if prev == -1 and state == 1:
            cross[t] = 1
        elif prev == 1 and state == -1:
            cross[t] = -1
    trades: list[Trade] = []
    pos: Trade | None = None
    stop = math.nan
    fees = 0.0
    for i in range(1, len(c)):
        if cross[i - 1] != 0:  # reversal at this open, before the stop check
            if pos is not None:
                pos.exit_bar, pos.exit = i, o[i]
                fees += FEE * o[i]
            pos = Trade(cross[i - 1], i, o[i])
            trades.append(pos)
            fees += FEE * o[i]
            stop = o[i] - pos.side * stop_atr * atr[i - 1] if stop_atr else math.nan
            continue  # never on the entry bar
        if pos is not None and not math.isnan(stop):
            hit = None
            if (pos.side == 1 and o[i] <= stop) or (pos.side == -1 and o[i] >= stop):
                hit = o[i]
            elif (pos.side == 1 and lo[i] <= stop) or (pos.side == -1 and h[i] >= stop):
                hit = stop
            if hit is not None:
                pos.exit_bar, pos.exit = i, hit
                fees += FEE * hit
                pos, stop = None, math.nan
    pnl = sum(t.side * ((t.exit if t.exit is not None else c[-1]) - t.entry) for t in trades)
    return trades, fees, pnl - fees


def engine_ema_cross(frame: pd.DataFrame, stop_atr: float | None = None):
    sb = symbol_bars("BTC/USDT:USDT", "1m", frame)
    sig = ema_cross_signals(sb.bars[:, 3])
    dist = stop_atr * sb.bars[:, 5] if stop_atr else None
    return run_units(
        sb,
        Signals.of(sig, stop_distance=dist),
        qty=1.0,
        policy=Policy.none(exit_on_signal=True, stop_delay_bars=1),
        costs=Costs(taker=FEE),
    )


def signal_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Crosses (+1/-1) and ATR(14) as arrays (for the other libraries' runs)."""
    sb = symbol_bars("X", "1m", frame)
    return ema_cross_signals(sb.bars[:, 3]), sb.bars[:, 5]
