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

from dataclasses import dataclass

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
    """Each rung's quantity of an order of ``qty``: the kernel's own rule
    (``manage.policy.ladder_lots``: whole steps, at least one step per rung, and a ladder of
    100 % closes what rounding left on its last rung), run as plain Python."""
    if not rungs:
        return []
    import numpy as np

    from cryptobot.manage.policy import ladder_lots  # numba loads only for a ladder

    fracs = np.array([r.fraction for r in rungs])
    return [float(q) for q in ladder_lots.py_func(float(qty), fracs, float(step or 0.0))]
