"""Plan 5: trend momentum on 1h with 4h confirmation.

A long triggers on the first 1h bar, within ``cross_within_bars`` bars of EMA(9) crossing above
EMA(21) and with EMA(9) still above, where all of these hold: RSI(14) > ``rsi_long_min``;
volume >= ``volume_mult`` x its 20-bar average; ADX(14) >= ``adx_min``; the MACD histogram rose
on the bar; on the newest closed 4h bar EMA(9) > EMA(21). Entry is the close, the stop
``stop_atr_mult`` x ATR(14) below it, targets ``targets_r`` multiples of that risk. One setup
per cross. Shorts mirror every rule (RSI < ``rsi_short_max``, histogram falling, 4h EMAs below).

Confidence of a triggered setup: 3, +1 when ADX >= ``adx_min`` + 10, +1 when volume >= 2 x
``volume_mult`` x average. A fresh cross whose other rules are not all met yet is reported
``armed`` at the last bar (entry = last close, ``waiting_for`` lists the missing rules) with
confidence = rules met - 2 (so it never outranks a triggered setup).

The plan's exits of an open trade (``manage.profiles.momentum.exit_on``), from the same EMAs
and RSI: ``opposite_cross`` and ``rsi_divergence``.
"""

import numpy as np
import pandas as pd

from cryptobot.analysis.indicators import adx, atr, ema, macd, rsi, volume_ratio
from cryptobot.analysis.structure import swings
from cryptobot.core.settings import MomentumSettings
from cryptobot.core.setup import Setup
from cryptobot.manage.exits import EXIT_LONGS, EXIT_SHORTS
from cryptobot.strategies.base import SymbolData, closed_at, make_setup, mirrored
from cryptobot.strategies.spec import Strategy

NAME = "momentum"
RULES = ("rsi", "volume", "adx", "macd_rising", "htf_trend")


def detect(data: SymbolData, p: MomentumSettings) -> list[Setup]:
    frame, confirm = data.frame(p.timeframe), data.frame(p.confirm_timeframe)
    if len(frame) < p.ema_slow + 2 or len(confirm) < p.ema_slow:
        return []
    rows = closed_at(frame, p.timeframe, confirm, p.confirm_timeframe)
    setups = []
    for side, sign in (("long", 1.0), ("short", -1.0)):
        f, c = (frame, confirm) if sign > 0 else (mirrored(frame), mirrored(confirm))
        rsi_min = p.rsi_long_min if sign > 0 else 100.0 - p.rsi_short_max
        table = _rules(f, c, rows, p, rsi_min)
        setups += [
            _setup(data, p, side, sign, frame, table, t, cross) for t, cross in _hits(table, p)
        ]
    return sorted(setups, key=lambda s: (s.ts, s.side))


def _rules(f: pd.DataFrame, c: pd.DataFrame, rows: np.ndarray, p, rsi_min: float) -> pd.DataFrame:
    """Bullish rule columns per bar (on mirrored prices for shorts)."""
    fast, slow = ema(f, p.ema_fast).to_numpy(), ema(f, p.ema_slow).to_numpy()
    above = fast > slow
    hist = macd(f)["macd_hist"].to_numpy()
    htf = (ema(c, p.ema_fast) > ema(c, p.ema_slow)).to_numpy()
    strength = adx(f, p.adx_period)[f"adx_{p.adx_period}"].to_numpy()
    vol = volume_ratio(f, p.volume_period).to_numpy()
    return pd.DataFrame(
        {
            "above": above,
            "cross": np.concatenate(([False], above[1:] & ~above[:-1])),
            "rsi": rsi(f, p.rsi_period).to_numpy() > rsi_min,
            "volume": vol >= p.volume_mult,
            "adx": strength >= p.adx_min,
            "macd_rising": np.concatenate(([False], hist[1:] > hist[:-1])),
            "htf_trend": np.where(rows >= 0, htf[np.maximum(rows, 0)], False),
            "adx_value": strength,
            "volume_ratio": vol,
            "atr": atr(f, p.atr_period).to_numpy(),
        }
    )


def _hits(table: pd.DataFrame, p: MomentumSettings):
    """(bar, cross bar) of each trigger, then (last bar, cross bar) if a fresh cross is armed."""
    above, sized = table["above"].to_numpy(), np.isfinite(table["atr"].to_numpy())
    ok = np.logical_and.reduce([table[rule].to_numpy() for rule in RULES]) & above & sized
    cross = table["cross"].to_numpy().tolist()  # plain values: this loop runs per bar
    ok = ok.tolist()
    last_cross, fired = -1, False
    for t in range(len(table)):
        if cross[t]:
            last_cross, fired = t, False
        if ok[t] and not fired and last_cross >= 0 and t - last_cross < p.cross_within_bars:
            fired = True
            yield t, last_cross
    t = len(table) - 1
    fresh = last_cross >= 0 and t - last_cross < p.cross_within_bars and above[t]
    if fresh and not fired and sized[t]:
        yield None, last_cross


def _setup(data, p, side, sign, frame, table, t, cross) -> Setup:
    triggered = t is not None
    row = t if triggered else len(frame) - 1
    met = {rule: bool(table[rule].iat[row]) for rule in RULES}
    close = float(frame["close"].iat[row])
    stop = close - sign * p.stop_atr_mult * float(table["atr"].iat[row])
    adx_value, vol = float(table["adx_value"].iat[row]), float(table["volume_ratio"].iat[row])
    if triggered:
        confidence = 3 + (adx_value >= p.adx_min + 10) + (vol >= 2 * p.volume_mult)
    else:
        confidence = max(sum(met.values()) - 2, 0)
    reasons = {
        "ema_cross_ts": int(frame["timestamp"].iat[cross]),
        "adx": adx_value,
        "volume_ratio": vol,
        "atr": float(table["atr"].iat[row]),
        "rules_met": [k for k, v in met.items() if v],
    }
    if not triggered:
        reasons["waiting_for"] = [k for k, v in met.items() if not v]
    return make_setup(
        data,
        strategy=NAME,
        timeframe=p.timeframe,
        side=side,
        triggered=triggered,
        times=(frame["timestamp"].iat[row], frame["timestamp"].iat[cross]),
        levels=(close, stop),
        targets_r=p.targets_r,
        confidence=confidence,
        reasons=reasons,
    )


STRATEGY = Strategy(
    name=NAME,
    timeframes=lambda p: [p.timeframe, p.confirm_timeframe],
    detect=detect,
)


def opposite_cross(frame: pd.DataFrame, p: MomentumSettings) -> np.ndarray:
    """Exit events (``manage.exits`` bit masks) on the close where EMA(``ema_fast``) crosses
    EMA(``ema_slow``) against a position: below closes longs, above closes shorts. The EMAs are
    the ones the entry reads; a cross needs both EMAs known on the bar before."""
    fast, slow = ema(frame, p.ema_fast).to_numpy(), ema(frame, p.ema_slow).to_numpy()
    known = np.concatenate(([False], np.isfinite(fast[:-1] - slow[:-1])))
    above = fast > slow
    below = fast < slow
    was_above = np.concatenate(([False], above[:-1]))
    was_below = np.concatenate(([False], below[:-1]))
    down = known & below & ~was_below
    up = known & above & ~was_above
    return (np.where(down, EXIT_LONGS, 0) | np.where(up, EXIT_SHORTS, 0)).astype(np.uint8)


def rsi_divergence(frame: pd.DataFrame, p: MomentumSettings, *, swing_bars: int) -> np.ndarray:
    """Exit events on the close that confirms an RSI divergence against a position.

    Swings are ``analysis.structure.swings`` with ``swing_bars`` bars each side. Bearish (closes
    longs): a swing high above the previous swing high whose RSI(``rsi_period``, the entry's)
    at the pivot is below the RSI at the previous pivot. Bullish (closes shorts) mirrors it on
    swing lows: a lower low with a higher RSI. The event is on the bar that confirms the second
    swing (``swing_bars`` after its pivot), never earlier: no look-ahead."""
    strength = rsi(frame, p.rsi_period).to_numpy()
    found = swings(frame, swing_bars, swing_bars)
    out = np.zeros(len(frame), np.uint8)
    for kind, sign, bit in (("high", 1.0, EXIT_LONGS), ("low", -1.0, EXIT_SHORTS)):
        confirmed = np.flatnonzero(np.isfinite(found[f"swing_{kind}"].to_numpy()))
        pivots = found[f"swing_{kind}_pos"].to_numpy()[confirmed].astype(np.int64)
        price = sign * frame[kind].to_numpy(dtype="float64")[pivots]
        level = sign * strength[pivots]
        diverges = (price[1:] > price[:-1]) & (level[1:] < level[:-1])
        out[confirmed[1:][diverges]] |= bit
    return out
