"""Plan 2: 15m break of structure -> impulse leg -> FVG in the Fibonacci zone -> 5m trigger.

Context (15m, closed bars): after a break of structure the impulse leg is known (see
``analysis.structure.breaks``). Its point of interest (POI) is the retracement zone between the
shallowest and deepest Fib level (0.5..0.786 by default); when an unfilled 15m fair value gap
created inside the leg overlaps that zone, the POI narrows to the overlap. The POI lives until
price closes beyond the leg's start, a break in either direction replaces the leg, or it is
``poi_max_age_bars`` 15m bars old.

Entry (5m): once a 5m low has traded into the POI, the first 5m bar that closes up and either
breaks 5m structure upwards or mitigates a bullish 5m FVG (trades into it and closes above
it) triggers. Entry is that close, the stop the lowest low since price entered the POI, the
targets ``targets_r`` multiples of that risk. The close must still be nearer the POI than the
leg's end (a later entry chases the move). Each POI triggers at most once. Shorts are the same
rules on mirrored prices.

Confidence, one point each: the 15m break closed at least ``clear_break_atr`` ATR(14) beyond
its level; an FVG lies in the POI; the POI holds the middle Fib level (0.618 by default); price
retested the broken level (within ``retest_tolerance_pct``) after the break; the 5m trigger was
a structure shift (not only a gap mitigation).

A valid POI that has not triggered by the last bar is reported ``armed``: entry at the POI's
near edge, stop beyond the leg's start.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptobot.analysis import fib
from cryptobot.analysis.fvg import fair_value_gaps
from cryptobot.analysis.indicators import atr
from cryptobot.analysis.structure import breaks, swings
from cryptobot.core.settings import BosFvgFibSettings
from cryptobot.core.setup import Setup
from cryptobot.strategies.base import Strategy, SymbolData, closed_at, make_setup, mirrored

NAME = "bos_fvg_fib"


@dataclass(frozen=True)
class Poi:
    """A bullish point of interest as of one 15m bar (mirrored prices for shorts)."""

    anchor: int  # 15m row of the break
    bottom: float
    top: float
    leg_start: float
    leg_end: float
    level: float
    fib: dict[float, float]
    fvg: tuple[float, float] | None
    clear_break: bool
    confluence: bool
    retest: bool


def detect(data: SymbolData, p: BosFvgFibSettings) -> list[Setup]:
    ctx = data.frame(p.context_timeframe)
    entry = data.frame(p.entry_timeframe)
    if len(ctx) < p.swing_left + p.swing_right + 2 or len(entry) < 3:
        return []
    rows = closed_at(entry, p.entry_timeframe, ctx, p.context_timeframe)
    setups = []
    for side, sign in (("long", 1.0), ("short", -1.0)):
        c, e = (ctx, entry) if sign > 0 else (mirrored(ctx), mirrored(entry))
        pois = points_of_interest(c, p, from_row=int(rows[rows >= 0].min(initial=len(ctx))))
        for found in _entries(e, pois, rows, p):
            setups.append(_setup(data, p, side, sign, ctx, entry, found))
    return sorted(setups, key=lambda s: (s.ts, s.side))


def points_of_interest(
    ctx: pd.DataFrame, p: BosFvgFibSettings, from_row: int = 0
) -> list[Poi | None]:
    """The bullish POI in force at each 15m bar (None when there is none); rows before
    ``from_row`` are left None (their state is still tracked) when only later ones matter."""
    brk = breaks(ctx, swings(ctx, p.swing_left, p.swing_right), p.bos_confirm_closes)
    gaps = fair_value_gaps(ctx, p.fvg_min_size_pct / 100)
    gaps = gaps[gaps.side == 1]
    gap_cols = tuple(gaps[k].to_numpy() for k in ("pos", "bottom", "top", "fill_pos"))
    atr14 = atr(ctx, 14).to_numpy().tolist()  # plain floats: this loop runs per bar
    low, close = ctx["low"].to_numpy().tolist(), ctx["close"].to_numpy().tolist()
    names = ("trend", "leg_break_pos", "leg_start", "leg_end", "leg_start_pos", "leg_level")
    legs = {k: brk[k].to_numpy(dtype="float64").tolist() for k in names}
    gap_event = np.zeros(len(ctx), dtype=bool)  # a gap appears or fills: the POI may change
    gap_event[gap_cols[0]] = True
    gap_event[gap_cols[3][gap_cols[3] >= 0]] = True
    out: list[Poi | None] = [None] * len(ctx)
    lowest = worst_close = math.inf
    previous: tuple | None = None
    for t in range(len(ctx)):
        if legs["trend"][t] != 1 or math.isnan(legs["leg_break_pos"][t]):
            continue
        b = int(legs["leg_break_pos"][t])
        if b == t:
            lowest = worst_close = math.inf
        else:
            lowest, worst_close = min(lowest, low[t]), min(worst_close, close[t])
        if t < from_row or t - b > p.poi_max_age_bars or worst_close < legs["leg_start"][t]:
            continue
        level = legs["leg_level"][t]
        retest = bool(lowest <= level + abs(level) * p.retest_tolerance_pct / 100)
        key = (b, legs["leg_end"][t], retest)
        if previous is not None and previous[0] == key and not gap_event[t]:
            out[t] = previous[1]  # nothing the POI depends on changed since the last bar
            continue
        leg = {k: v[t] for k, v in legs.items()}
        clear = bool(close[b] - level >= p.clear_break_atr * atr14[b])
        out[t] = _poi(leg, b, t, gap_cols, p, retest, clear)
        previous = (key, out[t])
    return out


def _poi(leg: dict, b: int, t: int, gaps: tuple, p: BosFvgFibSettings, retest, clear) -> Poi:
    start, end, level = leg["leg_start"], leg["leg_end"], leg["leg_level"]
    fibs = fib.retracements(start, end, p.fib_levels)
    zone = fib.zone(start, end, p.fib_levels)
    pos, bottom, top, fill = gaps
    live = (pos - 2 >= leg["leg_start_pos"]) & (pos <= t) & ((fill < 0) | (fill > t))
    best, band = None, zone
    for g in np.flatnonzero(live & (bottom <= zone[1]) & (top >= zone[0])):
        common = fib.overlap((bottom[g], top[g]), zone)
        if common and (best is None or common[1] - common[0] > band[1] - band[0]):
            best, band = (float(bottom[g]), float(top[g])), common
    middle = sorted(p.fib_levels)[len(p.fib_levels) // 2]
    return Poi(
        anchor=b,
        bottom=band[0],
        top=band[1],
        leg_start=start,
        leg_end=end,
        level=level,
        fib=fibs,
        fvg=best,
        clear_break=clear,
        confluence=bool(band[0] <= fibs[middle] <= band[1]),
        retest=retest,
    )


def _entries(e: pd.DataFrame, pois: list[Poi | None], rows: np.ndarray, p: BosFvgFibSettings):
    """Yield (poi, entry row, lowest low since touch, shift) for triggers, then the armed POI."""
    swing = swings(e, p.swing_left, p.swing_right)
    shift = breaks(e, swing, 1)["trend"].to_numpy()
    shifted = np.concatenate(([False], (shift[1:] == 1) & (shift[:-1] != 1)))
    gaps = fair_value_gaps(e)
    gaps = gaps[gaps.side == 1]
    mitigated = np.zeros(len(e), dtype=bool)
    held = gaps[gaps.touch_pos >= 0]
    closes = e["close"].to_numpy()
    ok = closes[held.touch_pos.to_numpy()] > held.bottom.to_numpy()
    mitigated[held.touch_pos.to_numpy()[ok]] = True
    low, close, open_ = e["low"].to_numpy(), closes, e["open"].to_numpy()
    done: set[int] = set()
    touch: dict[int, float] = {}
    for j in range(len(e)):
        poi = pois[rows[j]] if rows[j] >= 0 else None
        if poi is None or poi.anchor in done:
            continue
        if poi.anchor not in touch and low[j] <= poi.top:
            touch[poi.anchor] = low[j]
        if poi.anchor not in touch:
            continue
        touch[poi.anchor] = lowest = min(touch[poi.anchor], low[j])
        trigger = shifted[j] or mitigated[j]
        near = (poi.top + poi.leg_end) / 2  # entries in the leg's upper half chase the move
        if trigger and close[j] > open_[j] and lowest < close[j] < near:
            done.add(poi.anchor)
            yield poi, j, lowest, bool(shifted[j])
    last = pois[rows[-1]] if len(e) and rows[-1] >= 0 else None
    if last is not None and last.anchor not in done and close[-1] > last.leg_start:
        yield last, None, None, False


def _setup(data, p, side, sign, ctx, entry, found) -> Setup:
    poi, j, lowest, shift = found
    triggered = j is not None
    row = j if triggered else len(entry) - 1
    price = entry["close"].iloc[j] if triggered else sign * poi.top
    stop = sign * (lowest if triggered else poi.leg_start)
    points = {
        "clear_bos": poi.clear_break,
        "fvg_in_poi": poi.fvg is not None,
        "fib_confluence": poi.confluence,
        "retest": poi.retest,
        "structure_shift_5m": shift,
    }
    reasons = {
        "bos_level": sign * poi.level,
        "leg_start": sign * poi.leg_start,
        "leg_end": sign * poi.leg_end,
        "poi": sorted([sign * poi.bottom, sign * poi.top]),
        "fib": {str(k): sign * v for k, v in poi.fib.items()},
        "fvg": None if poi.fvg is None else sorted(sign * x for x in poi.fvg),
        "trigger": ("structure_shift" if shift else "fvg_mitigation") if triggered else None,
        "points": [k for k, v in points.items() if v],
    }
    return make_setup(
        data,
        NAME,
        p.entry_timeframe,
        side,
        triggered,
        (entry["timestamp"].iloc[row], ctx["timestamp"].iloc[poi.anchor]),
        (price, stop),
        p.targets_r,
        sum(points.values()),
        reasons,
    )


STRATEGY = Strategy(
    name=NAME,
    timeframes=lambda p: [p.context_timeframe, p.entry_timeframe],
    detect=detect,
)
