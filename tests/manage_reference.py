"""An independent, plain-Python account of how one managed position lives through its bars,
written from the rules as the README states them (not from the compiled loop), so the engine's
trades can be checked fill by fill against it.

Scope: no costs and no liquidation (the checks run in fixed units with zero fees and slippage),
stops live from the entry bar, limits fill on touch, the stop first when one bar holds both.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from cryptobot.core.settings import ManageRules

BITS = {1: 1, -1: 2}  # the exit-event bit that closes a long / a short


@dataclass
class Plan:
    """A strategy's management rules as plain numbers."""

    ladder: list[tuple[float, float]]  # (r, fraction), nearest first
    breakeven_r: float | None
    tiers: list[tuple[float, float]]  # (at_r, atr multiple)
    weak_mult: float | None
    time_bars: int  # 0: none
    until_r: float
    exit_names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, rules: ManageRules, bar_minutes: float) -> "Plan":
        minutes = rules.time_stop_minutes
        bars = 30 if minutes is None else math.ceil(minutes / bar_minutes) if minutes else 0
        tiers = sorted((t.at_r, t.atr_mult) for t in rules.trailing_atr_tiers)
        return cls(
            ladder=sorted((s.r, s.pct / 100) for s in rules.take_profit_ladder),
            breakeven_r=rules.breakeven_after_r or None,
            tiers=tiers if rules.trail_rest else [],
            weak_mult=rules.trail_weak_atr_mult if rules.trail_rest else None,
            time_bars=bars,
            until_r=rules.time_stop_until_r,
            exit_names=list(rules.exit_on),
        )


def whole_steps(qty: float, fractions: list[float], step: float) -> list[float]:
    """The README's ladder rule, in two passes: first one step to each slice with a share
    while steps remain (nearest target first), then each slice's steps beyond its first (its
    share rounded down to whole steps), nearest first, from what is left; a 100 % ladder's
    last slice takes what is left."""
    if step <= 0:
        return [f * qty for f in fractions]
    steps = math.floor(qty / step + 1e-9)
    out, left = [], steps
    for f in fractions:
        out.append(1 if f > 0 and left > 0 else 0)
        left -= out[-1]
    for j, f in enumerate(fractions):
        extra = min(max(math.floor(f * steps + 1e-9) - out[j], 0), left) if out[j] else 0
        out[j] += extra
        left -= extra
    if fractions and sum(fractions) >= 1 - 1e-9:
        out[-1] += left
    return [n * step for n in out]


def plain_trade(bars: np.ndarray, exits: np.ndarray, weak: np.ndarray, i0: int, side: int,
                qty: float, entry: float, stop: float, plan: Plan,
                step: float = 0.0) -> list[tuple[str, int, float, float]]:  # fmt: skip
    """Fills (kind, bar, price, qty) of a position entered at bar ``i0``'s open at ``entry``;
    ``bars`` columns open high low close volume atr."""
    o, h, lo, atr = bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 5]
    risk = abs(entry - stop)
    targets = [entry + side * r * risk for r, _ in plan.ladder]
    resting = whole_steps(qty, [f for _, f in plan.ladder], step)
    fills = [("entry", i0, entry, qty)]
    left, best, stop_kind, pending = qty, entry, "stop", None
    for i in range(i0, len(bars)):
        if i > i0 and pending:
            fills.append((pending, i, o[i], left))
            return fills
        adverse, favourable = (lo[i], h[i]) if side > 0 else (h[i], lo[i])
        if (o[i] - stop) * side <= 0:  # gapped through the stop
            fills.append((stop_kind, i, o[i], left))
            return fills
        for j, t in enumerate(targets):  # gapped beyond targets: filled at the open
            if resting[j] > 0 and (o[i] - t) * side >= 0:
                take = min(resting[j], left)
                fills.append(("target", i, o[i], take))
                left, resting[j] = left - take, resting[j] - take
        if left <= 1e-12:
            return fills
        if (adverse - stop) * side <= 0:  # the stop first
            fills.append((stop_kind, i, stop, left))
            return fills
        for j, t in enumerate(targets):
            if resting[j] > 0 and (favourable - t) * side >= 0:
                take = min(resting[j], left)
                fills.append(("target", i, t, take))
                left, resting[j] = left - take, resting[j] - take
        if left <= 1e-12:
            return fills
        best = max(best, favourable) if side > 0 else min(best, favourable)
        r_best = side * (best - entry) / risk
        beyond_stop = (entry - stop) * side > 0
        if plan.breakeven_r is not None and r_best >= plan.breakeven_r and beyond_stop:
            stop, stop_kind = entry, "breakeven"
        reached = [m for at_r, m in plan.tiers if r_best >= at_r]
        if reached and not math.isnan(atr[i]):
            mult = reached[-1]
            if weak[i] and plan.weak_mult is not None:
                mult = min(mult, plan.weak_mult)
            level = best - side * mult * atr[i]
            if (level - stop) * side > 0:
                stop, stop_kind = level, "trail"
        hits = [name for c, name in enumerate(plan.exit_names) if exits[i, c] & BITS[side]]
        held = i - i0 + 1
        if hits:
            pending = hits[0]
        elif plan.time_bars and held >= plan.time_bars and not r_best >= plan.until_r:
            pending = "time_stop"
    return fills
