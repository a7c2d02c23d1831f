"""Plan 1: scalping breakout on 1m with 5m confirmation and daily context.

Resistance is the highest high of the ``sr_lookback`` 5m bars that had closed before the 1m
bar opened. A long *break* is the first 1m close above it where, on that bar: volume >=
``volume_mult`` x its 20-bar average; the order-flow proxy (``analysis.flow``) is buying and
>= ``orderflow_mult`` x its average; EMA(9) > EMA(21) on 1m and on the newest closed 5m bar;
the relative-strength percentile (``rs_period`` 5m bars vs BTC, ranked in the scanned
universe) is >= ``rs_percentile_min`` (a lone symbol needs only to beat BTC); the last closed
daily close is above its EMA(``daily_ema``).

The daily rule is decided per 1m bar from the daily bars closed by then, so a decision never
changes when later days arrive. While fewer than ``daily_ema`` daily bars had closed (a newly
listed symbol, or no daily candles loaded) the trend is unknown and the rule abstains (passes):
the other rules still filter, and new listings stay scannable. Once ``daily_ema`` daily bars
exist the rule applies from that bar on; a daily bar missing from the data (a hole) fails it.

Entry comes after a micro-pullback: within ``pullback_bars`` bars of the break a low dips
below the break close, and the first later bar that closes above the previous bar's high
triggers. A close more than ``pullback_max_pct`` % back below resistance cancels the break.
Entry is that close, the stop the lowest low since the break (structural; turning it into a
0.5%-of-equity position is sizing's job), targets ``targets_r`` multiples of that risk.
Shorts mirror every rule on support (percentile <= 100 - ``rs_percentile_min``).

Confidence of a triggered setup: 3, +1 when volume >= 2 x ``volume_mult`` x average, +1 when
the percentile is >= (100 + ``rs_percentile_min``) / 2. A break still waiting for its pullback
entry at the last bar is ``armed``: entry = that bar's high, confidence 2.
"""

import numpy as np
import pandas as pd

from cryptobot.analysis.flow import order_flow
from cryptobot.analysis.indicators import ema, volume_ratio
from cryptobot.analysis.strength import relative_strength
from cryptobot.core.settings import BreakoutSettings
from cryptobot.core.setup import Setup
from cryptobot.strategies.base import SymbolData, closed_at, closed_count, make_setup, mirrored
from cryptobot.strategies.spec import Strategy

NAME = "breakout"


def detect(data: SymbolData, p: BreakoutSettings) -> list[Setup]:
    fast, confirm = data.frame(p.timeframe), data.frame(p.confirm_timeframe)
    if len(fast) < p.volume_period + 2 or len(confirm) < p.sr_lookback + 1:
        return []
    rows = closed_at(fast, p.timeframe, confirm, p.confirm_timeframe)
    before = np.concatenate(([-1], rows[:-1]))  # 5m bars closed when each 1m bar opened
    daily = data.frames.get(p.context_timeframe)
    percentile = _percentile(data, p, confirm)
    setups = []
    for side, sign in (("long", 1.0), ("short", -1.0)):
        f, c = (fast, confirm) if sign > 0 else (mirrored(fast), mirrored(confirm))
        d = None if daily is None else (daily if sign > 0 else mirrored(daily))
        strong = percentile if sign > 0 else 100.0 - percentile
        table = _rules(f, c, d, rows, before, strong, p)
        for hit in _entries(f, table, p):
            setups.append(_setup(data, p, side, sign, fast, table, hit))
    return sorted(setups, key=lambda s: (s.ts, s.side))


def _percentile(data: SymbolData, p: BreakoutSettings, confirm: pd.DataFrame) -> np.ndarray:
    """Per 5m bar: the universe percentile, or 100/0 for beating/trailing BTC when alone."""
    stamps = confirm["timestamp"].to_numpy()
    if data.rs_percentile is not None:
        return data.rs_percentile.reindex(stamps).to_numpy(dtype="float64")
    bench = data.benchmark.get(p.confirm_timeframe)
    if bench is None:
        return np.full(len(stamps), np.nan)
    rs = relative_strength(confirm, bench, p.rs_period).reindex(stamps).to_numpy()
    return np.where(np.isnan(rs), np.nan, np.where(rs > 0, 100.0, 0.0))


def _rules(f, c, daily, rows, before, strong, p: BreakoutSettings) -> pd.DataFrame:
    """Bullish rule columns per 1m bar (mirrored prices for shorts)."""
    level = c["high"].rolling(p.sr_lookback).max().to_numpy()
    resistance = np.where(before >= 0, level[np.maximum(before, 0)], np.nan)
    close = f["close"].to_numpy()
    prev_close = np.concatenate(([np.nan], close[:-1]))
    flow = order_flow(f, p.volume_period)
    up5 = (ema(c, 9) > ema(c, 21)).to_numpy()
    pct = np.where(rows >= 0, strong[np.maximum(rows, 0)], np.nan)
    cols = {
        "resistance": resistance,
        "cross": (close > resistance) & ~(prev_close > resistance),
        "volume_ratio": volume_ratio(f, p.volume_period).to_numpy(),
        "flow_ratio": flow["flow_ratio"].to_numpy(),
        "buying": flow["delta"].to_numpy() > 0,
        "momentum_1m": (ema(f, 9) > ema(f, 21)).to_numpy(),
        "momentum_5m": np.where(rows >= 0, up5[np.maximum(rows, 0)], False),
        "rs_percentile": pct,
        "daily_trend": _daily_trend(f, daily, p),
    }
    cols["break"] = (
        cols["cross"]
        & (cols["volume_ratio"] >= p.volume_mult)
        & (cols["flow_ratio"] >= p.orderflow_mult)
        & cols["buying"]
        & cols["momentum_1m"]
        & cols["momentum_5m"]
        & (cols["rs_percentile"] >= p.rs_percentile_min)
        & cols["daily_trend"]
    )
    return pd.DataFrame(cols)


def _daily_trend(f: pd.DataFrame, daily: pd.DataFrame | None, p: BreakoutSettings) -> np.ndarray:
    """Per 1m bar: True (abstain) while fewer than ``daily_ema`` daily bars had closed, then
    whether the newest closed daily close is above its EMA (False on a stale daily bar)."""
    if daily is None or len(daily) == 0:
        return np.ones(len(f), dtype=bool)
    closed = closed_count(f, p.timeframe, daily, p.context_timeframe)
    rows = closed_at(f, p.timeframe, daily, p.context_timeframe)
    above = (daily["close"] > ema(daily, p.daily_ema)).to_numpy()
    known = np.where(rows >= 0, above[np.maximum(rows, 0)], False)
    return np.where(closed < p.daily_ema, True, known)


def _entries(f: pd.DataFrame, table: pd.DataFrame, p: BreakoutSettings):
    """(break bar, entry bar or None for armed, lowest low since the break)."""
    high, low, close = (f[k].to_numpy() for k in ("high", "low", "close"))
    level = table["resistance"].to_numpy()
    n = len(f)
    for b in np.flatnonzero(table["break"].to_numpy()):
        floor = level[b] * (1 - np.sign(level[b]) * p.pullback_max_pct / 100)
        lowest, dipped = low[b], False
        for j in range(b + 1, min(b + p.pullback_bars, n - 1) + 1):
            lowest = min(lowest, low[j])
            if close[j] < floor:
                break
            if dipped and close[j] > high[j - 1] and lowest < close[j]:
                yield b, j, lowest
                break
            dipped = dipped or low[j] < close[b]
        else:
            if n - 1 - b < p.pullback_bars and close[-1] >= floor and lowest < high[-1]:
                yield b, None, lowest


def _setup(data, p, side, sign, fast, table, hit) -> Setup:
    b, j, lowest = hit
    triggered = j is not None
    row = j if triggered else len(fast) - 1
    entry = (
        float(fast["close"].iat[j]) if triggered else sign * float(_mirror_high(fast, sign, row))
    )
    stop = sign * float(lowest)
    vol, pct = float(table["volume_ratio"].iat[b]), float(table["rs_percentile"].iat[b])
    if triggered:
        confidence = 3 + (vol >= 2 * p.volume_mult) + (pct >= (100 + p.rs_percentile_min) / 2)
    else:
        confidence = 2
    reasons = {
        "level": sign * float(table["resistance"].iat[b]),
        "break_ts": int(fast["timestamp"].iat[b]),
        "volume_ratio": vol,
        "flow_ratio": float(table["flow_ratio"].iat[b]),
        "rs_percentile": pct if sign > 0 else 100.0 - pct,
    }
    return make_setup(
        data,
        strategy=NAME,
        timeframe=p.timeframe,
        side=side,
        triggered=triggered,
        times=(fast["timestamp"].iat[row], fast["timestamp"].iat[b]),
        levels=(entry, stop),
        targets_r=p.targets_r,
        confidence=confidence,
        reasons=reasons,
    )


def _mirror_high(fast: pd.DataFrame, sign: float, row: int) -> float:
    """The bar's high on the (possibly mirrored) side's prices."""
    return fast["high"].iat[row] if sign > 0 else -fast["low"].iat[row]


STRATEGY = Strategy(
    name=NAME,
    timeframes=lambda p: [p.timeframe, p.confirm_timeframe, p.context_timeframe],
    detect=detect,
    reads_benchmark=True,
)
