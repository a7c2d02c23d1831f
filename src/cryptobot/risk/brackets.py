"""Maintenance-margin brackets (leverage tiers): which rate applies to a position of a given size.

A bracket covers position notionals in ``[floor, cap)``. ``maint_amount`` is Binance's "cum": the
amount that makes the maintenance margin ``notional x mmr - maint_amount`` continuous across
brackets. When an exchange does not publish it, it is derived the way Binance documents it:
``cum_n = floor_n x (mmr_n - mmr_(n-1)) + cum_(n-1)``. Bitget's tiers apply their rate to the
whole position with no such amount, so its brackets keep ``maint_amount = 0``.

Where brackets come from, in order: the market's stored leverage tiers (``fetch`` with API keys),
a ``--brackets FILE`` in ccxt's shape (or Binance's raw ``leverageBracket`` JSON), else the
documented fallback: one bracket whose rate is half the initial margin rate at the market's
maximum leverage (``0.5 / max_leverage``). That is the rule Binance's own tables follow at tier 1
(125x -> 0.4%, 50x -> 1%, 20x -> 2.5%), so the estimate errs neither way for small positions.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptobot.core.errors import DataError
from cryptobot.core.market import Market, plain_tier


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


def read_file(path: Path, symbol: str, market_id: str | None = None) -> list[dict[str, Any]]:
    """Tiers for ``symbol`` from a JSON file: ccxt's ``fetch_leverage_tiers`` dict, its
    ``fetch_market_leverage_tiers`` list, or Binance's raw ``/fapi/v1/leverageBracket`` list."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"--brackets {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"--brackets {path}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        if symbol not in data:
            raise DataError(f"--brackets {path} has no tiers for {symbol}")
        data = data[symbol]
    if not isinstance(data, list) or not data:
        raise DataError(f"--brackets {path}: expected a list of tiers")
    if "brackets" in data[0]:
        return _binance_raw(data, path, symbol, market_id)
    return [plain_tier(t) for t in data]


def _binance_raw(
    data: list[dict[str, Any]], path: Path, symbol: str, market_id: str | None
) -> list[dict[str, Any]]:
    wanted = market_id or symbol.split("/")[0] + symbol.split("/")[1].split(":")[0]
    rows = [d for d in data if d.get("symbol") == wanted] if len(data) > 1 else data
    if not rows:
        raise DataError(f"--brackets {path} has no brackets for {wanted}")
    return [
        {
            "tier": b.get("bracket"),
            "minNotional": b.get("notionalFloor"),
            "maxNotional": b.get("notionalCap"),
            "maintenanceMarginRate": b.get("maintMarginRatio"),
            "maxLeverage": b.get("initialLeverage"),
            "maintenanceAmount": b.get("cum"),
        }
        for b in rows[0]["brackets"]
    ]
