"""Maintenance-margin brackets (leverage tiers): which rate applies to a position of a given size.

A bracket covers position notionals in ``[floor, cap)``. ``maint_amount`` is Binance's "cum": the
amount that makes the maintenance margin ``notional x mmr - maint_amount`` continuous across
brackets. When an exchange does not publish it, it is derived the way Binance documents it:
``cum_n = floor_n x (mmr_n - mmr_(n-1)) + cum_(n-1)``. Bitget's tiers apply their rate to the
whole position with no such amount, so its brackets keep ``maint_amount = 0``.

They are part of the matching model: the simulated venues liquidate with them, and sizing
estimates the same liquidation price from them. Where brackets come from, in order: the
market's stored leverage tiers (``fetch`` with API keys), a ``--brackets FILE`` in ccxt's shape
or Binance's raw ``leverageBracket`` JSON (read by ``risk.bracket_files``), else the documented
fallback: one bracket whose rate is half the initial margin rate at the market's
maximum leverage (``0.5 / max_leverage``). That is the rule Binance's own tables follow at tier 1
(125x -> 0.4%, 50x -> 1%, 20x -> 2.5%), so the estimate errs neither way for small positions.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptobot.core.errors import DataError
from cryptobot.core.market import Market


@dataclass(frozen=True)
class Bracket:
    tier: int
    floor: float
    cap: float
    mmr: float
    max_leverage: float
    maint_amount: float = 0.0

    def holds(self, notional: float) -> bool:
        return self.floor <= notional < self.cap

    def maintenance_margin(self, notional: float) -> float:
        return notional * self.mmr - self.maint_amount


def from_tiers(tiers: Sequence[dict[str, Any]], derive_amounts: bool = True) -> list[Bracket]:
    """Brackets from ccxt-shaped tiers (``minNotional``, ``maxNotional``,
    ``maintenanceMarginRate``, ``maxLeverage``, optional ``maintenanceAmount``)."""
    rows = sorted(tiers, key=lambda t: float(t.get("minNotional") or 0))
    out: list[Bracket] = []
    for i, t in enumerate(rows, start=1):
        try:
            floor = float(t.get("minNotional") or 0)
            cap = float(t["maxNotional"]) if t.get("maxNotional") is not None else math.inf
            mmr = float(t["maintenanceMarginRate"])
            lev = float(t["maxLeverage"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"leverage tier {i}: missing or bad field ({exc})") from None
        amount = t.get("maintenanceAmount")
        if amount is None:
            amount = _derived_amount(out, floor, mmr) if derive_amounts else 0.0
        out.append(Bracket(i, floor, cap, mmr, lev, float(amount)))
    return out


def _derived_amount(previous: list[Bracket], floor: float, mmr: float) -> float:
    if not previous:
        return 0.0
    last = previous[-1]
    return floor * (mmr - last.mmr) + last.maint_amount


def fallback(max_leverage: float) -> list[Bracket]:
    return [Bracket(1, 0.0, math.inf, 0.5 / max_leverage, max_leverage, 0.0)]


def for_market(market: Market, venue: str, default_max_leverage: float) -> list[Bracket]:
    if market.leverage_tiers:
        return from_tiers(market.leverage_tiers, derive_amounts=venue != "bitget")
    max_lev = market.max_leverage or default_max_leverage
    if market.maint_margin_rate:
        return [Bracket(1, 0.0, math.inf, market.maint_margin_rate, max_lev, 0.0)]
    return fallback(max_lev)


def bracket_for(brackets: Sequence[Bracket], notional: float) -> Bracket:
    for b in brackets:
        if b.holds(notional):
            return b
    return brackets[-1] if notional >= brackets[-1].cap else brackets[0]
