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

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import pandas as pd

from cryptobot.analysis import fib
from cryptobot.analysis.fvg import fair_value_gaps
from cryptobot.analysis.indicators import atr
from cryptobot.analysis.structure import breaks, swings
from cryptobot.core.jit import njit
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
    gap_rows = _bullish_gaps(ctx, p.fvg_min_size_pct / 100)
    leg_cols = np.column_stack([brk[k].to_numpy(dtype="float64") for k in _LEG_KEY])
    low, close = (ctx[k].to_numpy(dtype="float64") for k in ("low", "close"))
    live, retest = _poi_bars(
        brk["trend"].to_numpy(np.int64), leg_cols, low, close, p.poi_max_age_bars,
        p.retest_tolerance_pct / 100, from_row,
    )  # fmt: skip
    rows = np.flatnonzero(live)
    new_leg, changed = _changes(rows, leg_cols, retest)
    atr14 = atr(ctx, 14).to_numpy()
    out: list[Poi | None] = [None] * len(ctx)
    leg: _Leg | None = None
    poi: Poi | None = None
    for t, fresh, moved in zip(rows.tolist(), new_leg.tolist(), changed.tolist(), strict=True):
        if fresh:
            key = tuple(leg_cols[t].tolist())
            b = int(key[0])
            clear = bool(close[b] - key[-1] >= p.clear_break_atr * atr14[b])
            leg = _Leg.of(key, gap_rows, clear, p)
        if moved or t in leg.events:
            poi = leg.poi(t, bool(retest[t]))
        out[t] = poi
    return out


_LEG_KEY = ("leg_break_pos", "leg_start", "leg_end", "leg_start_pos", "leg_level")


def _bullish_gaps(ctx: pd.DataFrame, min_size: float) -> list[tuple[int, int, float, float]]:
    """(pos, fill_pos, bottom, top) of each bullish 15m gap, in order of pos."""
    gaps = fair_value_gaps(ctx, min_size)
    up = gaps["side"].to_numpy() == 1
    columns = (gaps[k].to_numpy()[up].tolist() for k in ("pos", "fill_pos", "bottom", "top"))
    return list(zip(*columns, strict=True))


def _changes(rows: np.ndarray, legs: np.ndarray, retest: np.ndarray):
    """For the live bars ``rows``: which start a new leg, and which need a new POI (a new leg
    or a change of retest) compared with the bar before."""
    new_leg = np.ones(len(rows), dtype=bool)
    new_leg[1:] = (np.diff(rows) > 1) | np.any(legs[rows[1:]] != legs[rows[:-1]], axis=1)
    changed = new_leg.copy()
    changed[1:] |= retest[rows[1:]] != retest[rows[:-1]]
    return new_leg, changed


@njit(cache=True)
def _poi_bars(trend, legs, low, close, max_age, tolerance, from_row):  # pragma: no cover
    """Per 15m bar (compiled): whether a bullish POI is in force, and whether price has come
    back to the broken level since the break. ``legs`` columns are ``_LEG_KEY``."""
    n = len(trend)
    live = np.zeros(n, dtype=np.bool_)
    retest = np.zeros(n, dtype=np.bool_)
    lowest = worst_close = np.inf
    for t in range(n):
        if trend[t] != 1 or np.isnan(legs[t, 0]):
            continue
        b = int(legs[t, 0])
        if b == t:
            lowest = worst_close = np.inf
        else:
            lowest, worst_close = min(lowest, low[t]), min(worst_close, close[t])
        if t < from_row or t - b > max_age or worst_close < legs[t, 1]:
            continue
        live[t] = True
        level = legs[t, 4]
        retest[t] = lowest <= level + abs(level) * tolerance
    return live, retest


@dataclass(frozen=True)
class _Leg:
    """What a POI takes from its impulse leg, worked out once per leg: the Fib levels and zone,
    the 15m gaps inside the leg that meet the zone (with their overlap), and the bars where one
    of them appears or fills (the only bars besides a retest where the POI can change)."""

    key: tuple
    fib: dict[float, float]
    middle: float  # price of the middle Fib level
    zone: tuple[float, float]
    gaps: list[tuple[int, int, tuple[float, float], tuple[float, float]]]  # pos, fill, gap, common
    events: set[int]
    clear: bool

    @classmethod
    def of(cls, key: tuple, gap_rows: list, clear: bool, p: BosFvgFibSettings) -> "_Leg":
        b, start, end, start_pos, _ = key
        zone = fib.zone(start, end, p.fib_levels)
        first = bisect_left(gap_rows, start_pos + 2, key=itemgetter(0))
        last = bisect_right(gap_rows, b + p.poi_max_age_bars, key=itemgetter(0))  # POI's life
        gaps = [
            (pos, fill, (bottom, top), fib.overlap((bottom, top), zone))
            for pos, fill, bottom, top in gap_rows[first:last]
            if bottom <= zone[1] and top >= zone[0]  # they meet
        ]
        events = {x for g in gaps for x in g[:2] if x >= 0}
        fibs = fib.retracements(start, end, p.fib_levels)
        middle = fibs[sorted(p.fib_levels)[len(p.fib_levels) // 2]]
        return cls(key, fibs, middle, zone, gaps, events, clear)

    def poi(self, t: int, retest: bool) -> Poi:
        """The POI at bar t: the zone, narrowed to the widest overlap of a gap live at t."""
        best, band = None, self.zone
        for pos, fill, gap, common in self.gaps:
            if pos > t or 0 <= fill <= t:
                continue
            if best is None or common[1] - common[0] > band[1] - band[0]:
                best, band = gap, common
        b, start, end, _, level = self.key
        return Poi(
            anchor=int(b),
            bottom=band[0],
            top=band[1],
            leg_start=start,
            leg_end=end,
            level=level,
            fib=self.fib,
            fvg=best,
            clear_break=self.clear,
            confluence=band[0] <= self.middle <= band[1],
            retest=retest,
        )


def _entries(e: pd.DataFrame, pois: list[Poi | None], rows: np.ndarray, p: BosFvgFibSettings):
    """Yield (poi, entry row, lowest low since touch, shift) for triggers, then the armed POI."""
    swing = swings(e, p.swing_left, p.swing_right)
    shift = breaks(e, swing, 1)["trend"].to_numpy()
    shifted = np.concatenate(([False], (shift[1:] == 1) & (shift[:-1] != 1)))
    gaps = fair_value_gaps(e)
    touch, bottom = gaps["touch_pos"].to_numpy(), gaps["bottom"].to_numpy()
    held = (gaps["side"].to_numpy() == 1) & (touch >= 0)
    closes = e["close"].to_numpy(dtype="float64")
    mitigated = np.zeros(len(e), dtype=bool)  # a bullish gap touched by a bar closing above it
    mitigated[touch[held][closes[touch[held]] > bottom[held]]] = True
    anchor, top, leg_end = _per_bar(pois, rows)
    hits, lows = _triggers(
        anchor, top, leg_end, e["low"].to_numpy(dtype="float64"), closes,
        e["open"].to_numpy(dtype="float64"), shifted | mitigated,
    )  # fmt: skip
    for j, lowest in zip(hits.tolist(), lows.tolist(), strict=True):
        yield pois[rows[j]], j, lowest, bool(shifted[j])
    last = pois[rows[-1]] if len(e) and rows[-1] >= 0 else None
    done = {int(anchor[j]) for j in hits.tolist()}
    if last is not None and last.anchor not in done and closes[-1] > last.leg_start:
        yield last, None, None, False


def _per_bar(pois: list[Poi | None], rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """The POI in force at each entry bar as arrays: anchor (-1: none), top and leg end."""
    anchor = np.array([-1 if q is None else q.anchor for q in pois] + [-1], dtype=np.int64)
    top = np.array([np.nan if q is None else q.top for q in pois] + [np.nan])
    end = np.array([np.nan if q is None else q.leg_end for q in pois] + [np.nan])
    at = np.where(rows >= 0, rows, len(pois))  # row -1 reads the sentinel
    return anchor[at], top[at], end[at]


@njit(cache=True)
def _triggers(anchor, top, leg_end, low, close, open_, trigger):  # pragma: no cover
    """Entry bars (compiled) where the POI in force triggers, with the lowest low since price
    first reached it. A POI triggers once; anchors only grow (a POI belongs to the newest
    break), so the state of the current one is all there is to keep."""
    hits = np.empty(len(anchor), dtype=np.int64)
    lows = np.empty(len(anchor))
    k, current, done, lowest = 0, -1, False, np.nan
    for j in range(len(anchor)):
        if anchor[j] < 0:
            continue
        if anchor[j] != current:
            current, done, lowest = anchor[j], False, np.nan
        if done or (np.isnan(lowest) and not low[j] <= top[j]):
            continue
        lowest = low[j] if np.isnan(lowest) else min(lowest, low[j])
        near = (top[j] + leg_end[j]) / 2  # entries in the leg's upper half chase the move
        if trigger[j] and close[j] > open_[j] and lowest < close[j] < near:
            hits[k], lows[k], k, done = j, lowest, k + 1, True
    return hits[:k], lows[:k]


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
