"""Plan 2: 15m break of structure -> impulse leg -> FVG in the Fibonacci zone -> 5m trigger.

The rules, as the BOS/FVG/Fib plan states them (longs; shorts are the same rules on mirrored
prices, see ``strategies.base.mirrored``):

Structure (15m, closed bars). Swings are ``swing_left``/``swing_right`` fractals that also
stand ``swing_min_atr`` ATR clear of their window (``analysis.structure.swings``), so a wiggle
is no swing. A close above the newest unbroken swing high (``bos_confirm_closes`` in a row) is a
bullish break: a BOS when it continues a bullish trend (or starts the first one), a CHoCH when
it reverses a bearish one. ``allow_choch: false`` keeps only BOS; ``htf_timeframe`` (e.g. 1h)
makes that timeframe's structure trend (same swing rules) a condition at every bar.

POI. The impulse leg runs from the lowest low between the broken swing and the break to the
highest high since (``analysis.structure.breaks``). The POI is an unfilled bullish 15m FVG at
least ``fvg_min_size_pct`` % of price wide, whose displacement candle lies inside the leg
(first candle at or after the leg start, middle candle at or before the leg end), overlapping
the Fib zone 0.5..0.786 of the leg; the POI is that overlap (the widest one when several gaps
qualify). No such gap, no POI: a bare Fib zone is never one. The POI dies for good (for this
break) when any 15m or 5m low trades through its bottom or through the leg start; it expires
``poi_max_age_bars`` 15m bars after the break, and a newer break (either way) replaces it.

Trigger (5m). The POI in force at a 5m bar is the one of the newest 15m bar closed by then. The
first 5m low at or below the POI top is the first touch; from then on the POI extreme is the
lowest 5m low. A later 5m bar (never the touching bar itself) triggers when either
- structure shift: it closes above the newest confirmed 5m swing high (``entry_swing_left`` /
  ``entry_swing_right`` fractals), i.e. a bullish 5m BOS or CHoCH, or
- FVG mitigation: it is the first bar to trade into a bullish 5m FVG at least
  ``entry_fvg_min_atr`` 5m ATR wide that overlaps the POI, closes up and above the gap's bottom,
and it closes at most ``entry_tolerance_atr`` 5m ATR above the POI top (entries come from the
POI, not from halfway back to the leg end). The stop is the POI extreme minus
``stop_buffer_atr`` 5m ATR; a trigger whose stop is nearer than ``min_stop_atr`` 5m ATR is
skipped (the POI stays watched). When the POI changes (the leg extends, another gap becomes the
POI) the touch and the extreme start again. A break triggers at most once.

Confidence: one point each, every point recorded with its evidence:
- ``clear_bos``: the break closed ``clear_break_atr`` 15m ATR beyond the level and the first
  ``clear_break_closes`` closes from the break bar on all stayed beyond it;
- ``fvg_inside_zone``: the POI's FVG lies wholly inside the Fib zone (not just overlapping it);
- ``fib_confluence``: the FVG holds the middle Fib level (0.618);
- ``retest``: after the break and before the trigger a 15m low came within ``retest_atr`` ATR
  of the broken level and that bar closed back beyond it (it held);
- ``structure_shift_5m``: the trigger was a 5m structure shift (not only a gap mitigation).

A POI alive and untriggered at the last bar is reported ``armed``: entry at the POI top, stop
the leg start minus the buffer (its first touch and extreme so far are recorded when price has
reached it).

The setup's ``reasons`` (prices as traded, times UTC ISO-8601; every key always present, None
when it does not apply, e.g. on an armed setup):
- ``break``: ``kind`` ("bos" | "choch"), ``time`` (the 15m break bar's open), ``level``,
  ``close``, ``swing_time`` (the broken swing's pivot bar), ``atr``
- ``leg``: ``start``, ``start_time``, ``end``, ``end_time`` (as of the trigger / last bar)
- ``fib``: {"0.5": price, "0.618": price, "0.786": price} (keys = configured levels)
- ``fvg``: the 15m gap: ``bottom``, ``top``, ``start_time`` (its first candle), ``formed_time``
  (its third candle, the bar that made it known)
- ``poi``: ``bottom``, ``top``
- ``first_touch_time``; ``poi_extreme`` and ``poi_extreme_time`` (the extreme since the touch;
  None on an armed POI price has not reached yet)
- ``trigger``: ``kind`` ("structure_shift" | "fvg_mitigation"), ``time`` (the 5m trigger bar),
  ``level`` (the broken 5m swing, structure shift) or ``fvg`` {bottom, top, formed_time}
- ``stop``: ``basis`` ("poi_extreme" | "leg_start"), ``price`` (the basis price), ``buffer``
  (price distance), ``buffer_atr``, ``atr`` (5m ATR at the trigger / last bar)
- ``points``: {name: {"earned": bool, ...evidence}} for the five points above:
  ``clear_bos`` {margin_atr (break close beyond the level, in 15m ATR), closes_beyond (of the
  first ``clear_break_closes``)}; ``fvg_inside_zone`` {zone: {bottom, top}};
  ``fib_confluence`` {level (the middle Fib price)}; ``retest`` {time, low (the retest bar's
  low, its high for shorts; both None when not earned)}; ``structure_shift_5m`` {} (the
  trigger says where)
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryptobot.analysis import fib
from cryptobot.analysis.fvg import fair_value_gaps
from cryptobot.analysis.indicators import atr
from cryptobot.analysis.structure import breaks, swings
from cryptobot.core.jit import njit
from cryptobot.core.settings import BosFvgFibSettings
from cryptobot.core.setup import Setup
from cryptobot.core.timeutil import iso
from cryptobot.strategies.base import SymbolData, closed_at, make_setup, mirrored
from cryptobot.strategies.spec import Strategy

NAME = "bos_fvg_fib"


@dataclass(frozen=True)
class Poi:
    """A bullish point of interest as of one 15m bar (mirrored prices for shorts)."""

    anchor: int  # 15m row of the break
    bottom: float
    top: float
    leg_start: float
    leg_end: float
    leg_start_pos: int
    leg_end_pos: int
    level: float
    fib: dict[float, float]
    fvg: tuple[float, float]
    fvg_pos: int  # 15m row of the gap's third candle


@dataclass(frozen=True)
class PoiTable:
    """Per 15m bar: the break structure and the POI in force (``gap`` -1: none), as arrays."""

    brk: pd.DataFrame
    gaps: pd.DataFrame  # the bullish 15m gaps large enough to count
    gap: np.ndarray
    bottom: np.ndarray
    top: np.ndarray

    def poi(self, t: int, levels: list[float]) -> Poi | None:
        g = int(self.gap[t])
        if g < 0:
            return None
        row = self.brk.iloc[t]
        start, end = float(row.leg_start), float(row.leg_end)
        gap = self.gaps.iloc[g]
        return Poi(
            anchor=int(row.leg_break_pos),
            bottom=float(self.bottom[t]),
            top=float(self.top[t]),
            leg_start=start,
            leg_end=end,
            leg_start_pos=int(row.leg_start_pos),
            leg_end_pos=int(row.leg_end_pos),
            level=float(row.leg_level),
            fib=fib.retracements(start, end, levels),
            fvg=(float(gap.bottom), float(gap.top)),
            fvg_pos=int(gap.pos),
        )


def detect(data: SymbolData, p: BosFvgFibSettings) -> list[Setup]:
    ctx = data.frame(p.context_timeframe)
    entry = data.frame(p.entry_timeframe)
    if len(ctx) < p.swing_left + p.swing_right + 2 or len(entry) < 3:
        return []
    rows = closed_at(entry, p.entry_timeframe, ctx, p.context_timeframe)
    htf = data.frame(p.htf_timeframe) if p.htf_timeframe else None
    setups = []
    for side, sign in (("long", 1.0), ("short", -1.0)):
        c, e = (ctx, entry) if sign > 0 else (mirrored(ctx), mirrored(entry))
        agree = None
        if htf is not None:
            agree = _htf_agrees(c, htf if sign > 0 else mirrored(htf), p)
        table = poi_table(c, p, agree=agree)
        for found in _entries(e, table, rows, p):
            view = _View(data, p, side, sign, ctx, entry, c, e, table)
            setups.append(view.setup(found))
    return sorted(setups, key=lambda s: (s.ts, s.side))


def points_of_interest(ctx: pd.DataFrame, p: BosFvgFibSettings) -> list[Poi | None]:
    """The bullish POI in force at each 15m bar (None when there is none)."""
    table = poi_table(ctx, p)
    return [table.poi(t, p.fib_levels) for t in range(len(ctx))]


def structure(frame: pd.DataFrame, p: BosFvgFibSettings) -> pd.DataFrame:
    """The 15m (or higher-timeframe) breaks with the configured swing significance."""
    size = None
    if p.swing_min_atr > 0:
        size = p.swing_min_atr * atr(frame, p.atr_period).to_numpy()
    return breaks(
        frame, swings(frame, p.swing_left, p.swing_right, min_size=size), p.bos_confirm_closes
    )


def poi_table(ctx: pd.DataFrame, p: BosFvgFibSettings, *, agree=None) -> PoiTable:
    """The POI in force at every 15m bar (see the module docstring); ``agree`` (per bar) is the
    higher timeframe's consent, None when there is no such condition."""
    brk = structure(ctx, p)
    gaps = fair_value_gaps(ctx, p.fvg_min_size_pct / 100)
    gaps = gaps[gaps.side == 1].reset_index(drop=True)
    trend = brk["trend"].to_numpy(np.int64)
    if not p.allow_choch:
        trend = np.where(_choch_legs(brk), 0, trend)
    if agree is not None:
        trend = np.where(agree, trend, 0)
    cols = [brk[k].to_numpy(dtype="float64") for k in _LEG_KEY]
    gap, bottom, top = _poi_kernel(
        trend, *cols, ctx["low"].to_numpy(dtype="float64"),
        gaps["pos"].to_numpy(np.int64), gaps["bottom"].to_numpy(dtype="float64"),
        gaps["top"].to_numpy(dtype="float64"), min(p.fib_levels), max(p.fib_levels),
        p.poi_max_age_bars,
    )  # fmt: skip
    return PoiTable(brk, gaps, gap, bottom, top)


_LEG_KEY = ("leg_break_pos", "leg_start", "leg_start_pos", "leg_end", "leg_end_pos")


def _choch_legs(brk: pd.DataFrame) -> np.ndarray:
    """Per bar: whether the leg in force began with a change of character."""
    pos = brk["leg_break_pos"].to_numpy()
    known = ~np.isnan(pos)
    out = np.zeros(len(brk), dtype=bool)
    out[known] = brk["choch"].to_numpy()[pos[known].astype(np.int64)] != 0
    return out


def _htf_agrees(ctx: pd.DataFrame, htf: pd.DataFrame, p: BosFvgFibSettings) -> np.ndarray:
    """Per 15m bar: the newest closed higher-timeframe bar's structure trend is bullish."""
    trend = structure(htf, p)["trend"].to_numpy()
    at = closed_at(ctx, p.context_timeframe, htf, p.htf_timeframe)
    return (at >= 0) & (trend[np.maximum(at, 0)] == 1)


@njit(cache=True)
def _poi_kernel(trend, brk, start, start_pos, end, end_pos, low, g_pos, g_bottom, g_top,
                shallow, deep, max_age):  # fmt: skip  # pragma: no cover - compiled
    """Per 15m bar (compiled): the gap that makes the POI (-1: none) and the POI band. ``g_*``
    are the bullish gaps in order of ``g_pos`` (the bar that confirmed each)."""
    n, count = len(trend), len(g_pos)
    gap = np.full(n, -1, dtype=np.int64)
    bottom = np.full(n, np.nan)
    top = np.full(n, np.nan)
    g_low = np.full(count, np.inf)  # lowest low since each gap formed (current leg's gaps)
    current, dead, prev, first, seen = -1, False, np.nan, 0, 0
    for t in range(n):
        while seen < count and g_pos[seen] <= t:
            seen += 1
        for g in range(first, seen):
            if g_pos[g] < t:
                g_low[g] = min(g_low[g], low[t])
        if trend[t] != 1 or np.isnan(brk[t]):
            current = -1
            continue
        b = int(brk[t])
        if b != current:
            current, dead, prev = b, False, np.nan
            first = np.searchsorted(g_pos, int(start_pos[t]) + 2)
            for g in range(first, seen):
                g_low[g] = np.min(low[g_pos[g] + 1 : t + 1]) if g_pos[g] < t else np.inf
        if low[t] < start[t] or low[t] < prev:  # traded through the POI's gap or the leg start
            dead = True
        if dead or t - b > max_age:
            continue
        z_lo = end[t] - deep * (end[t] - start[t])
        z_hi = end[t] - shallow * (end[t] - start[t])
        best, lo_best, hi_best = -1, np.nan, np.nan
        for g in range(first, seen):
            if g_pos[g] - 1 > end_pos[t]:  # its displacement candle came after the leg ended
                continue
            lo, hi = max(g_bottom[g], z_lo), min(g_top[g], z_hi)
            if lo > hi or g_low[g] < g_bottom[g]:  # outside the zone, or already traded through
                continue
            if best < 0 or hi - lo >= hi_best - lo_best:
                best, lo_best, hi_best = g, lo, hi
        prev = g_bottom[best] if best >= 0 else np.nan
        if best >= 0:
            gap[t], bottom[t], top[t] = best, lo_best, hi_best
    return gap, bottom, top


@dataclass(frozen=True)
class _Hit:
    """A trigger (``row`` None: the armed POI at the last bar) and what led to it."""

    poi: Poi
    poi_row: int  # 15m row whose POI was in force
    row: int | None  # 5m trigger row
    touched: int | None
    extreme: float | None
    extreme_row: int | None
    kind: int  # 1 structure shift, 2 FVG mitigation, 0 armed
    gap: tuple[float, float, int] | None  # a mitigated 5m gap: bottom, top, its bar
    swing: float | None  # the 5m swing a structure shift broke
    atr: float  # 5m ATR at the trigger (the last bar when armed)


def _entries(e: pd.DataFrame, table: PoiTable, rows: np.ndarray, p: BosFvgFibSettings):
    """Yield a _Hit per trigger, then one for the POI still armed at the last bar."""
    shift, swing, gaps, atr5 = _entry_signals(e, p)
    at = np.where(rows >= 0, rows, 0)
    live = (rows >= 0) & (table.gap[at] >= 0)
    anchor = np.where(live, table.brk["leg_break_pos"].to_numpy()[at], -1).astype(np.int64)
    bottom, top = np.where(live, table.bottom[at], np.nan), np.where(live, table.top[at], np.nan)
    floor = np.append(table.gaps["bottom"].to_numpy(dtype="float64"), np.nan)[table.gap[at]]
    floor = np.where(live, floor, np.nan)  # gap -1 read the NaN sentinel
    prices = (e[k].to_numpy(dtype="float64") for k in ("low", "close", "open"))
    hits, state = _trigger_kernel(
        anchor, bottom, top, floor, *prices,
        atr5, shift, gaps["touch_pos"].to_numpy(np.int64),
        gaps["bottom"].to_numpy(dtype="float64"), gaps["top"].to_numpy(dtype="float64"),
        p.entry_tolerance_atr, p.stop_buffer_atr, p.min_stop_atr,
    )  # fmt: skip
    for j, touched, extreme, ext_j, kind, g in hits.tolist():
        r = int(rows[int(j)])
        j = int(j)
        gap = None if g < 0 else tuple(gaps.iloc[int(g)][["bottom", "top", "pos"]].tolist())
        level = float(swing[j]) if kind == 1 else None
        yield _Hit(table.poi(r, p.fib_levels), r, j, int(touched), extreme, int(ext_j),
                   int(kind), gap, level, float(atr5[j]))  # fmt: skip
    current, over, touched, extreme, ext_j = state
    if anchor[-1] >= 0 and current == anchor[-1] and not over:
        r = int(rows[-1])
        poi = table.poi(r, p.fib_levels)
        seen = (int(touched), extreme, int(ext_j)) if touched >= 0 else (None, None, None)
        yield _Hit(poi, r, None, *seen, 0, None, None, float(atr5[-1]))


def _entry_signals(e: pd.DataFrame, p: BosFvgFibSettings):
    """5m inputs of the trigger: bars that break the newest 5m swing high (and its level), the
    bullish 5m gaps wide enough to count (in order of the bar that first trades into them), ATR."""
    brk = breaks(e, swings(e, p.entry_swing_left, p.entry_swing_right), 1)
    shift = (brk["bos"].to_numpy() == 1) | (brk["choch"].to_numpy() == 1)
    atr5 = atr(e, p.atr_period).to_numpy()
    gaps = fair_value_gaps(e)
    pos = gaps["pos"].to_numpy()
    wide = (gaps["top"] - gaps["bottom"]).to_numpy() >= p.entry_fvg_min_atr * atr5[pos]
    gaps = gaps[(gaps.side == 1).to_numpy() & wide & (gaps.touch_pos >= 0).to_numpy()]
    gaps = gaps.sort_values("touch_pos", kind="stable")
    return shift, brk["break_level"].to_numpy(), gaps, atr5


@njit(cache=True)
def _trigger_kernel(anchor, bottom, top, floor, low, close, open_, atr5, shift, g_touch, g_bottom,
                    g_top, tolerance, buffer, min_stop):  # fmt: skip  # pragma: no cover
    """5m bar by bar (compiled): triggers as rows (bar, first touch, extreme, extreme bar, kind,
    5m gap), and the final state (anchor, done or dead, first touch, extreme, extreme bar).
    Anchors only grow: a POI belongs to the newest break, so the current one's state is all
    there is to keep."""
    n, count = len(anchor), len(g_touch)
    out = np.empty((n, 6))
    k, current, over, gi = 0, -1, False, 0
    kb = kt = kf = extreme = np.nan
    touched = ext_j = -1
    for j in range(n):
        while gi < count and g_touch[gi] < j:
            gi += 1
        if anchor[j] < 0:
            continue
        if anchor[j] != current:
            current, over, touched = anchor[j], False, -1
        if bottom[j] != kb or top[j] != kt or floor[j] != kf:  # a new POI: start again
            kb, kt, kf, touched = bottom[j], top[j], floor[j], -1
        if over:
            continue
        if low[j] < floor[j]:  # traded through the POI's gap: dead
            over = True
            continue
        if touched < 0:
            if low[j] <= kt:
                touched, extreme, ext_j = j, low[j], j
            continue
        if low[j] < extreme:
            extreme, ext_j = low[j], j
        kind, which = 0, -1
        if shift[j]:
            kind = 1
        else:
            g = gi
            while g < count and g_touch[g] == j and kind == 0:
                if g_bottom[g] <= kt and g_top[g] >= kb and close[j] > max(g_bottom[g], open_[j]):
                    kind, which = 2, g
                g += 1
        if kind == 0 or not close[j] <= kt + tolerance * atr5[j]:
            continue
        if close[j] - (extreme - buffer * atr5[j]) < min_stop * atr5[j]:
            continue  # too tight a stop: skipped, the POI stays watched
        out[k, 0], out[k, 1], out[k, 2] = j, touched, extreme
        out[k, 3], out[k, 4], out[k, 5] = ext_j, kind, which
        k, over = k + 1, True
    return out[:k], (current, over, touched, extreme, ext_j)


@dataclass(frozen=True)
class _View:
    """One side's frames (mirrored for shorts) and what the record needs from them."""

    data: SymbolData
    p: BosFvgFibSettings
    side: str
    sign: float
    ctx: pd.DataFrame  # as stored (times)
    entry: pd.DataFrame
    c: pd.DataFrame  # as the detector read them (mirrored for shorts)
    e: pd.DataFrame
    table: PoiTable

    def setup(self, hit: _Hit) -> Setup:
        p, sign, poi = self.p, self.sign, hit.poi
        row = hit.row if hit.row is not None else len(self.entry) - 1
        atr5 = hit.atr
        buffer = p.stop_buffer_atr * atr5
        if hit.row is None:
            price, basis, base = poi.top, "leg_start", poi.leg_start
        else:
            price, basis, base = float(self.e["close"].iloc[row]), "poi_extreme", hit.extreme
        points = self._points(hit)
        reasons = {
            "break": self._break(poi.anchor),
            "leg": {
                "start": sign * poi.leg_start,
                "start_time": self._t15(poi.leg_start_pos),
                "end": sign * poi.leg_end,
                "end_time": self._t15(poi.leg_end_pos),
            },
            "fib": {str(k): sign * v for k, v in poi.fib.items()},
            "fvg": {
                **self._band(poi.fvg),
                "start_time": self._t15(poi.fvg_pos - 2),
                "formed_time": self._t15(poi.fvg_pos),
            },
            "poi": self._band((poi.bottom, poi.top)),
            "first_touch_time": self._t5(hit.touched),
            "poi_extreme": None if hit.extreme is None else sign * hit.extreme,
            "poi_extreme_time": self._t5(hit.extreme_row),
            "trigger": self._trigger(hit),
            "stop": {
                "basis": basis,
                "price": sign * base,
                "buffer": buffer,
                "buffer_atr": p.stop_buffer_atr,
                "atr": atr5,
            },
            "points": points,
        }
        return make_setup(
            self.data,
            strategy=NAME,
            timeframe=p.entry_timeframe,
            side=self.side,
            triggered=hit.row is not None,
            times=(self.entry["timestamp"].iloc[row], self.ctx["timestamp"].iloc[poi.anchor]),
            levels=(sign * price, sign * (base - buffer)),
            targets_r=p.targets_r,
            confidence=sum(v["earned"] for v in points.values()),
            reasons=reasons,
        )

    def _t15(self, row: int | None) -> str | None:
        return None if row is None else iso(int(self.ctx["timestamp"].iloc[row]))

    def _t5(self, row: int | None) -> str | None:
        return None if row is None else iso(int(self.entry["timestamp"].iloc[row]))

    def _band(self, band: tuple[float, float]) -> dict[str, float]:
        low, high = sorted(self.sign * x for x in band)
        return {"bottom": low, "top": high}

    def _break(self, b: int) -> dict[str, Any]:
        brk = self.table.brk
        return {
            "kind": "choch" if brk["choch"].iloc[b] != 0 else "bos",
            "time": self._t15(b),
            "level": self.sign * float(brk["break_level"].iloc[b]),
            "close": float(self.ctx["close"].iloc[b]),
            "swing_time": self._t15(int(brk["break_swing_pos"].iloc[b])),
            "atr": float(atr(self.c, self.p.atr_period).iloc[b]),
        }

    def _trigger(self, hit: _Hit) -> dict[str, Any] | None:
        if hit.row is None:
            return None
        out: dict[str, Any] = {"time": self._t5(hit.row), "level": None, "fvg": None}
        if hit.kind == 1:
            out.update(kind="structure_shift", level=self.sign * hit.swing)
        else:
            bottom, top, pos = hit.gap
            band = self._band((bottom, top))
            out.update(kind="fvg_mitigation", fvg={**band, "formed_time": self._t5(int(pos))})
        return out

    def _points(self, hit: _Hit) -> dict[str, dict[str, Any]]:
        """Each confidence point with the evidence that earned (or did not earn) it."""
        p, poi = self.p, hit.poi
        zone = fib.zone(poi.leg_start, poi.leg_end, p.fib_levels)
        middle = poi.fib[sorted(p.fib_levels)[len(p.fib_levels) // 2]]
        inside = zone[0] <= poi.fvg[0] and poi.fvg[1] <= zone[1]
        return {
            "clear_bos": self._clear(poi, hit.poi_row),
            "fvg_inside_zone": {"earned": bool(inside), "zone": self._band(zone)},
            "fib_confluence": {
                "earned": bool(poi.fvg[0] <= middle <= poi.fvg[1]),
                "level": self.sign * middle,
            },
            "retest": self._retest(poi, hit.poi_row),
            "structure_shift_5m": {"earned": hit.kind == 1},
        }

    def _clear(self, poi: Poi, last: int) -> dict[str, Any]:
        """Closed ``clear_break_atr`` ATR beyond the level, and the first ``clear_break_closes``
        closes from the break bar (those closed by ``last``) all beyond it."""
        b, p = poi.anchor, self.p
        close = self.c["close"].to_numpy(dtype="float64")
        atr15 = float(atr(self.c, p.atr_period).iloc[b])
        margin = (close[b] - poi.level) / atr15 if atr15 > 0 else float("nan")
        run = close[b : min(b + p.clear_break_closes, last + 1)]
        held = len(run) == p.clear_break_closes and bool(np.all(run > poi.level))
        return {
            "earned": bool(margin >= p.clear_break_atr and held),
            "margin_atr": margin if np.isfinite(margin) else None,
            "closes_beyond": int(np.argmin(np.append(run > poi.level, False))),
        }

    def _retest(self, poi: Poi, last: int) -> dict[str, Any]:
        """The first 15m bar after the break (closed by ``last``) whose low came within
        ``retest_atr`` ATR of the broken level and whose close held beyond it."""
        b = poi.anchor
        bars = self.c.iloc[b + 1 : last + 1]
        atr15 = atr(self.c, self.p.atr_period).iloc[b + 1 : last + 1]
        near = (bars["low"] - poi.level).abs() <= self.p.retest_atr * atr15
        held = near & (bars["close"] > poi.level)
        if not held.any():
            return {"earned": False, "time": None, "low": None}
        first = int(np.argmax(held.to_numpy())) + b + 1
        return {
            "earned": True,
            "time": self._t15(first),
            "low": self.sign * float(self.c["low"].iloc[first]),
        }


STRATEGY = Strategy(
    name=NAME,
    timeframes=lambda p: (
        [p.context_timeframe, p.entry_timeframe] + ([p.htf_timeframe] if p.htf_timeframe else [])
    ),
    detect=detect,
)
