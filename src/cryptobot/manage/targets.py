"""The take-profit targets of a position and of a sized order: one pricing rule for both.

The backtest (and later ``manage``/``daemon``) closes a position by its strategy's management
profile (``ManageSettings.for_strategy``): ``pct`` % of the original quantity at each ``r``
multiple of the position's R. ``target_prices_into`` is the one rule that prices those rungs:
the compiled position (``manage.step.open_position``, through the compiled twin of this very
source) and a sized order (``ladder_targets``, for ``size`` and ``trade``'s
take-profit ladder) both call it, so a sized order's targets are exactly where the backtest's
position takes its profits. R is ``position_risk``'s: the distance from the entry to the stop
put on the tick; without a stop (a position opened by hand, an order sized by margin) the
configured ``manage.manual_risk_pct`` of the entry, else the distance to the liquidation price,
else there is no R and no target. Each rung is put on the price tick by ``manage.ticks``
(a long's targets round down), each rung's quantity is in whole steps by the kernel's own rule
(``ladder_lots_into``). The strategy's own targets (``setup.targets``) are kept apart as
``setup_targets``: they are what the detector saw, not what is done. A profile with no ladder
gives no targets.

The rules are ``core.rules.rule``s: ``size`` prices an order by them as plain Python, without
loading numba; the position's compiled step calls their compiled twins.
"""

import math
from dataclasses import dataclass

import numpy as np

from cryptobot.core.rules import rule
from cryptobot.core.settings import ManageRules
from cryptobot.manage.ticks import on_tick


@dataclass(frozen=True)
class Rung:
    price: float
    fraction: float  # of the original quantity


def ladder_targets(
    *,
    rules: ManageRules,
    side: str,
    entry: float,
    stop: float | None,
    liquidation: float | None = None,
    tick: float | None = None,
) -> tuple[Rung, ...]:
    """The profile's ladder priced by ``target_prices_into`` for a ``side`` order entered at
    ``entry`` with ``stop`` (None: none; R then from ``rules.manual_risk_pct`` or the
    ``liquidation`` price) on the market's ``tick``, nearest first; none without an R."""
    steps = sorted(rules.take_profit_ladder, key=lambda s: s.r)
    prices = np.zeros(len(steps))
    risk = target_prices_into(
        prices,
        1 if side == "long" else -1,
        float(entry),
        math.nan if stop is None else float(stop),
        math.nan if liquidation is None else float(liquidation),
        rules.manual_risk_pct or math.nan,
        np.array([s.r for s in steps], dtype=np.float64),
        float(tick or 0.0),
    )
    if not risk > 0.0:
        return ()
    return tuple(Rung(float(p), s.pct / 100.0) for p, s in zip(prices, steps, strict=True))


@rule(cache=True)
def position_risk(entry: float, stop: float, liquidation: float, manual_pct: float) -> float:
    """The price distance one R stands for: entry to the initial stop; without a stop (a
    position opened by hand), ``manual_pct`` % of the entry when set (NaN: not), else the
    distance to the liquidation price; NaN when there is neither (the R rules stay off)."""
    if not math.isnan(stop):
        return abs(entry - stop)
    if manual_pct > 0.0:
        return entry * manual_pct / 100.0
    if not math.isnan(liquidation):
        return abs(entry - liquidation)
    return math.nan


@rule(cache=True, _nrt=False)
def target_prices_into(
    out: np.ndarray,
    side: int,
    entry: float,
    stop: float,
    liquidation: float,
    manual_pct: float,
    tp_r: np.ndarray,
    tick: float,
) -> float:
    """The price of each rung ``tp_r`` (R multiples, nearest first) of a ``side`` position
    entered at ``entry`` written into ``out``, each on the ``tick`` (0: not rounded); returns
    the R (``position_risk`` of the stop put on the tick; NaN: none, and the prices are NaN).
    Positional, NaN for "none": compiled code calls it."""
    risk = position_risk(entry, on_tick(side, stop, tick, True), liquidation, manual_pct)
    for j in range(tp_r.shape[0]):
        out[j] = on_tick(side, entry + side * tp_r[j] * risk, tick, False)
    return risk


def rung_quantities(*, qty: float, rungs: tuple[Rung, ...], step: float | None) -> list[float]:
    """Each rung's quantity of an order of ``qty``, by the kernel's own rule."""
    fracs = np.array([r.fraction for r in rungs], dtype=np.float64)
    out = np.zeros(len(rungs))
    ladder_lots_into(out, float(qty), fracs, float(step or 0.0))
    return [float(q) for q in out]


@rule(cache=True, _nrt=False)
def ladder_lots_into(out: np.ndarray, qty: float, fracs: np.ndarray, step: float) -> None:
    """The quantity of each take-profit rung (``fracs`` of ``qty``, nearest first) written into
    ``out``: whole ``step``s (0: exact fractions), at least one step for a rung with a share
    while steps are left (nearest first: a larger rung's steps beyond its first never take the
    one step a later rung is owed), never more than is left, and a ladder of 100 % closes
    what rounding left on its last rung.
    The one source of the rule: ``manage.policy`` compiles it for the position's step."""
    out[:] = 0.0
    if not qty > 0.0:
        return
    if step <= 0.0:
        for j in range(fracs.shape[0]):
            out[j] = fracs[j] * qty
        return
    steps = math.floor(qty / step + 1e-9)
    left = steps
    owed = 0  # one step each for the rungs with a share, nearest first
    for j in range(fracs.shape[0]):
        if fracs[j] > 0.0:
            owed += 1
    for j in range(fracs.shape[0]):
        want = math.floor(fracs[j] * steps + 1e-9)
        if fracs[j] > 0.0:
            owed -= 1
            want = max(1, min(want, left - owed))  # more than one: not a later rung's step
        want = min(want, left)
        out[j] = want * step
        left -= want
    if fracs.shape[0] > 0 and fracs.sum() >= 1.0 - 1e-9:
        out[-1] += left * step
