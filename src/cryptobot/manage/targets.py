"""The take-profit targets of a sized order: what ``manage`` will do for its strategy.

The backtest (and later ``manage``/``daemon``) closes a position by its strategy's management
profile (``ManageSettings.for_strategy``): ``pct`` % of the original quantity at each ``r``
multiple of the distance from the entry to the initial stop. A sized order carries exactly
those rungs (``trade`` places them as reduce-only take-profit orders), priced here from the
order's entry and stop, each rung's quantity in whole steps by the kernel's own rule
(``manage.policy.ladder_lots``); the strategy's own targets (``setup.targets``) are kept apart as
``setup_targets``: they are what the detector saw, not what is done. A profile with no ladder
gives no targets; an order without a stop has no R, so none either.
"""

import math
from dataclasses import dataclass

import numpy as np

from cryptobot.core.settings import ManageRules


@dataclass(frozen=True)
class Rung:
    price: float
    fraction: float  # of the original quantity


def ladder_targets(
    *, rules: ManageRules, side: str, entry: float, stop: float | None
) -> tuple[Rung, ...]:
    """The profile's ladder priced from ``entry`` and ``stop`` (R = their distance), nearest
    first."""
    if stop is None or not rules.take_profit_ladder:
        return ()
    sign = 1.0 if side == "long" else -1.0
    risk = abs(entry - stop)
    steps = sorted(rules.take_profit_ladder, key=lambda s: s.r)
    return tuple(Rung(entry + sign * s.r * risk, s.pct / 100.0) for s in steps)


def rung_quantities(*, qty: float, rungs: tuple[Rung, ...], step: float | None) -> list[float]:
    """Each rung's quantity of an order of ``qty``, by the kernel's own rule."""
    fracs = np.array([r.fraction for r in rungs], dtype=np.float64)
    out = np.zeros(len(rungs))
    ladder_lots_into(out, float(qty), fracs, float(step or 0.0))
    return [float(q) for q in out]


def ladder_lots_into(out: np.ndarray, qty: float, fracs: np.ndarray, step: float) -> None:
    """The quantity of each take-profit rung (``fracs`` of ``qty``, nearest first) written into
    ``out``: whole ``step``s (0: exact fractions), at least one step for a rung with a share,
    never more than is left, and a ladder of 100 % closes what rounding left on its last rung.
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
    for j in range(fracs.shape[0]):
        want = math.floor(fracs[j] * steps + 1e-9)
        if want < 1 and fracs[j] > 0.0:
            want = 1
        want = min(want, left)
        out[j] = want * step
        left -= want
    if fracs.shape[0] > 0 and fracs.sum() >= 1.0 - 1e-9:
        out[-1] += left * step
