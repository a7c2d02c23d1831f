"""Position sizing: how many contracts an order may carry so the loss at its stop stays within
the target, at which leverage, with which margin, and where it would be liquidated.

Three methods (``risk.sizing.method``):

* ``fixed_usd`` - lose at most ``risk_usd`` at the stop (the BOS/FVG plan's $1).
* ``pct_equity`` - lose at most ``risk_pct`` % of equity at the stop (the scalping plan's 0.5%).
* ``margin_pct`` - put ``margin_pct`` % of equity up as margin at ``leverage`` (the position
  manager's "10% of the account at 20x"); the stop, if any, is checked but does not size.

The settings come per order from ``RiskSettings.for_order``: a strategy's ``risk.profiles``
entry over ``risk:``, and ``leverage_by_asset`` as the leverage of the symbol's base (plan 3:
20x BTC, 40x ETH), so this module sees one plain ``RiskSettings``.

With ``include_fees`` the taker fee in at the entry and out at the stop counts in the risk, so
"$1 at risk" means $1 after fees. Quantities are rounded **down** to the market's step: the risk
never exceeds the target. If the exchange minimum (min qty, min notional) needs a larger order,
it is used only when its risk stays within ``min_size_tolerance_pct`` of the target; otherwise
the order is refused with the figures. Leverage is the lowest whole number that keeps the margin
within the budget (``margin_pct`` of equity; without an equity, the configured ``leverage``),
capped by the market's bracket, the config and the ladder. A stop at or beyond the liquidation
price (within ``liquidation_buffer_pct``) is refused.
"""

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from cryptobot.core.errors import DataError
from cryptobot.core.market import Market
from cryptobot.core.numbers import finite, short
from cryptobot.core.settings import RiskSettings
from cryptobot.core.setup import check_stop, check_targets
from cryptobot.fills.brackets import Bracket, bracket_for
from cryptobot.fills.liquidation import Venue, liquidation_price

# Prices, equity and $ risk above this are typos or attacks, not markets: a trillion keeps every
# product of them (qty x price, fees) far inside a float, and every figure in a message short.
MAX_AMOUNT = 1e12

Side = Literal["long", "short"]


@dataclass(frozen=True)
class SizeRequest:
    symbol: str
    side: Side
    entry: float
    stop: float | None
    targets: tuple[float, ...] = ()
    equity: float | None = None
    leverage: float | None = None  # forced leverage; None = choose
    max_leverage: float | None = None  # a further cap (ladder, dynamic leverage)
    risk_pct: float | None = None  # overrides the policy's % (ladder step)
    size_mult: float = 1.0  # recovery mode after a daily breaker
    other_maintenance: float = 0.0  # cross margin: the account's other positions
    other_upnl: float = 0.0
    slippage_bps: float = 0.0  # expected market-order slippage, counted in the risk budget


@dataclass(frozen=True)
class TargetFigures:
    price: float
    r: float | None  # None without a stop
    pnl_usd: float


@dataclass(frozen=True)
class Sizing:
    """Every figure of the arithmetic; ``refused`` says why no order may be sent."""

    method: str
    risk_target_usd: float | None
    qty_raw: float
    qty: float
    notional: float
    leverage: float
    margin: float
    liquidation_price: float | None
    liquidation_distance_pct: float | None
    bracket: Bracket
    risk_usd: float | None
    fees_usd: float
    targets: tuple[TargetFigures, ...]
    steps: tuple[str, ...]
    refused: str | None = None


@dataclass
class _Work:
    """One sizing run's figures so far, and the lines that explain them."""

    req: SizeRequest
    market: Market
    risk: RiskSettings
    fee: float
    steps: list[str] = field(default_factory=list)
    per_unit: float | None = None
    target: float | None = None
    qty_raw: float = 0.0
    qty: float = 0.0
    leverage: float = 1.0
    refused: str | None = None

    def note(self, text: str) -> None:
        self.steps.append(text)

    def refuse(self, reason: str | None) -> None:
        self.refused = self.refused or reason


def size_position(
    req: SizeRequest,
    market: Market,
    brackets: list[Bracket],
    risk: RiskSettings,
    *,
    venue: Venue = "binance",
    taker_fee: float = 0.0005,
    market_fees: bool = True,
) -> Sizing:
    """``taker_fee`` is used when the market does not state its own, or for every market
    without ``market_fees`` (a fee forced on the run, as ``backtest --fee`` forces it on the
    fills)."""
    validate_request(req, risk)
    fee = market.taker if market_fees and market.taker is not None else taker_fee
    w = _Work(req, market, risk, fee if risk.sizing.include_fees else 0.0)
    w.per_unit = _per_unit_risk(w)
    w.target = _risk_target(w)
    w.qty_raw = _raw_qty(w)
    w.qty = floor_to_step(w.qty_raw, market.step_size)
    if market.step_size:
        w.note(f"rounded down to the step {market.step_size:g}: {w.qty:g}")
    _apply_minimums(w)
    if w.qty <= 0:
        w.refuse("the risk target buys less than one step of this market")
    notional = w.qty * market.contract_size * req.entry
    _check_overflow(req.symbol, qty=w.qty_raw, notional=notional)
    w.leverage = _leverage(w, brackets, notional)
    margin = notional / w.leverage
    w.note(
        f"notional {w.qty:g} x {req.entry:g} = ${notional:,.2f}; "
        f"margin at {w.leverage:g}x ${margin:,.2f}"
    )
    return _with_liquidation_and_targets(w, brackets, venue, fee, notional, margin)


def _raw_qty(w: _Work) -> float:
    req, policy = w.req, w.risk.sizing
    if policy.method != "margin_pct":
        assert w.target is not None and w.per_unit is not None
        w.note(f"qty: {w.target:.4f} / {w.per_unit:.6g} = {w.target / w.per_unit:.8g}")
        return w.target / w.per_unit
    assert req.equity is not None
    leverage = float(req.leverage or policy.leverage)
    notional = req.equity * policy.margin_pct / 100 * leverage * req.size_mult
    w.note(
        f"qty: ${req.equity:g} x {policy.margin_pct:g}% x {leverage:g}x"
        + (f" x {req.size_mult:g}" if req.size_mult != 1 else "")
        + f" = ${notional:,.2f} notional / {req.entry:g}"
    )
    return notional / (req.entry * w.market.contract_size)


def _with_liquidation_and_targets(
    w: _Work, brackets: list[Bracket], venue: Venue, fee: float, notional: float, margin: float
) -> Sizing:
    req, risk = w.req, w.risk
    base_qty = w.qty * w.market.contract_size
    balance = margin
    if risk.margin_mode == "cross" and req.equity is not None:
        balance = req.equity
        w.note(f"cross margin: the wallet balance ${balance:,.2f} backs the position")
    lp = None
    bracket = bracket_for(brackets, notional)
    if base_qty > 0:
        liq = liquidation_price(
            req.side,
            base_qty,
            req.entry,
            balance=balance,
            brackets=brackets,
            venue=venue,
            taker_fee=fee,
            other_maintenance=req.other_maintenance,
            other_upnl=req.other_upnl,
        )
        lp, bracket = liq.price, liq.bracket
    distance = abs(req.entry - lp) / req.entry * 100 if lp is not None else None
    if lp is not None:
        w.note(
            f"liquidation ({venue}, {risk.margin_mode}, bracket {bracket.tier}: mmr "
            f"{bracket.mmr:g}, amount {bracket.maint_amount:g}): {lp:,.2f} "
            f"({distance:.2f}% away)"
        )
    w.refuse(_stop_vs_liquidation(req, lp, risk.liquidation_buffer_pct))
    fee_in = base_qty * req.entry * w.fee
    fees, risk_usd = fee_in, None
    if req.stop is not None:
        fees = fee_in + base_qty * req.stop * w.fee
        risk_usd = base_qty * abs(req.entry - req.stop) + fees
        w.note(f"risk at the stop: ${risk_usd:.4f} (fees ${fees:.4f})")
    return Sizing(
        method=risk.sizing.method,
        risk_target_usd=w.target,
        qty_raw=w.qty_raw,
        qty=w.qty,
        notional=notional,
        leverage=w.leverage,
        margin=margin,
        liquidation_price=lp,
        liquidation_distance_pct=distance,
        bracket=bracket,
        risk_usd=risk_usd,
        fees_usd=fees,
        targets=_targets(w, base_qty, fee_in),
        steps=tuple(w.steps),
        refused=w.refused,
    )


def _targets(w: _Work, base_qty: float, fee_in: float) -> tuple[TargetFigures, ...]:
    req = w.req
    s = 1 if req.side == "long" else -1
    out = []
    for t in req.targets:
        r = s * (t - req.entry) / abs(req.entry - req.stop) if req.stop is not None else None
        pnl = base_qty * s * (t - req.entry) - fee_in - base_qty * t * w.fee
        out.append(TargetFigures(t, round(r, 4) if r is not None else None, pnl))
    return tuple(out)


def validate_request(req: SizeRequest, risk: RiskSettings) -> None:
    """Every number finite and positive first: NaN passes every comparison below unnoticed
    (and a price of 1e308 overflows whatever is priced from it, a ladder's rungs included)."""
    amounts = [
        (f"{req.symbol}: entry", req.entry),
        (f"{req.symbol}: stop", req.stop),
        ("equity", req.equity),
        ("risk_usd", risk.sizing.risk_usd if risk.sizing.method == "fixed_usd" else None),
        *((f"{req.symbol}: target", t) for t in req.targets),
    ]
    try:
        for name, value in amounts:
            if value is not None or name.endswith("entry"):
                finite(value, name=name, gt=0, le=MAX_AMOUNT)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    method = risk.sizing.method
    if method != "margin_pct" and req.stop is None:
        raise DataError(f"{req.symbol}: {method} sizing needs a stop (--stop)")
    if method in ("pct_equity", "margin_pct") and req.equity is None:
        raise DataError(f"{method} sizing needs the account equity (--equity)")
    if req.stop is not None:
        check_stop(symbol=req.symbol, side=req.side, entry=req.entry, stop=req.stop)
    check_targets(symbol=req.symbol, side=req.side, entry=req.entry, targets=req.targets)
    if req.leverage is not None and req.leverage < 1:
        raise DataError(f"leverage must be at least 1, got {req.leverage}")


def _check_overflow(symbol: str, *, qty: float, notional: float) -> None:
    """A stop a hair from a tiny entry can still ask for more contracts than a float holds."""
    if not (math.isfinite(qty) and math.isfinite(notional)):
        raise DataError(
            f"{symbol}: the order overflows (qty {short(qty)}, notional {short(notional)}); "
            "check the entry, the stop and the risk"
        )


def _per_unit_risk(w: _Work) -> float | None:
    req, cs = w.req, w.market.contract_size
    if req.stop is None:
        return None
    distance = abs(req.entry - req.stop) * cs
    fees = w.fee * (req.entry + req.stop) * cs
    w.note(
        f"risk per contract: |{req.entry:g} - {req.stop:g}| = {distance:.6g}"
        + (f" + fees {w.fee:g} x ({req.entry:g} + {req.stop:g}) = {fees:.6g}" if w.fee else "")
    )
    return distance + fees + _slippage_per_unit(w)


def _slippage_per_unit(w: _Work) -> float:
    """The slippage of the market entry and of the stop fill, per contract: without it a
    stop-out loses more than the target (a backtest at 5 bps slippage lost 1.05x on average)."""
    req, cs = w.req, w.market.contract_size
    if req.stop is None or not req.slippage_bps:
        return 0.0
    slip = req.slippage_bps * 1e-4 * (req.entry + req.stop) * cs
    w.note(f"+ slippage {req.slippage_bps:g} bps x ({req.entry:g} + {req.stop:g}) = {slip:.6g}")
    return slip


def _risk_target(w: _Work) -> float | None:
    req, p = w.req, w.risk.sizing
    if p.method == "fixed_usd":
        target = p.risk_usd
        w.note(f"risk target: ${p.risk_usd:g} (fixed_usd)")
    elif p.method == "pct_equity":
        assert req.equity is not None
        pct = req.risk_pct if req.risk_pct is not None else p.risk_pct
        target = req.equity * pct / 100
        w.note(f"risk target: {pct:g}% of ${req.equity:,.2f} = ${target:.4f}")
    else:
        return None
    if req.size_mult != 1:
        target *= req.size_mult
        w.note(f"recovery mode: target x {req.size_mult:g} = ${target:.4f}")
    return target


def _apply_minimums(w: _Work) -> None:
    """Lift the order to the exchange minimum only within the tolerance; never silently."""
    m = w.market
    price = w.req.entry * m.contract_size
    least = max(m.min_qty or 0.0, (m.min_notional or 0.0) / price)
    if least <= 0 or w.qty >= least * (1 - 1e-9):
        return
    needed = ceil_to_step(least, m.step_size)
    limits = f"min qty {m.min_qty or 0:g}, min notional ${m.min_notional or 0:g}"
    tolerance = w.risk.sizing.min_size_tolerance_pct
    if w.target is None or w.per_unit is None:
        w.qty = 0.0
        w.refuse(f"the order is below the exchange minimum ({limits}); raise the margin")
        return
    needed_risk = needed * w.per_unit
    over = (needed_risk / w.target - 1) * 100
    if over <= tolerance:
        w.note(
            f"raised to the exchange minimum {needed:g} ({limits}): risk ${needed_risk:.4f}, "
            f"{over:.1f}% over the target (tolerance {tolerance:g}%)"
        )
        w.qty = needed
        return
    w.qty = 0.0
    w.refuse(
        f"the exchange minimum ({limits}) needs {needed:g}, risking ${needed_risk:.4f}: "
        f"{over:.0f}% above the ${w.target:.4f} target (tolerance {tolerance:g}%)"
    )


def _leverage(w: _Work, brackets: list[Bracket], notional: float) -> float:
    req, risk = w.req, w.risk
    caps = {
        "market bracket": bracket_for(brackets, notional).max_leverage,
        "config": risk.max_leverage,
    }
    if req.max_leverage is not None:
        caps["ladder"] = req.max_leverage
    which, cap = min(caps.items(), key=lambda kv: kv[1])
    cap = max(1, math.floor(cap))
    if req.leverage is not None or risk.sizing.method == "margin_pct":
        chosen = float(req.leverage or risk.sizing.leverage)
        why = "as given"
    elif req.equity is not None:
        budget = req.equity * risk.sizing.margin_pct / 100
        chosen = float(max(1, math.ceil(notional / budget - 1e-9)))
        why = (
            f"lowest that keeps the margin within {risk.sizing.margin_pct:g}% of equity "
            f"(${budget:,.2f})"
        )
    else:
        chosen = float(min(risk.sizing.leverage, cap))
        why = "configured (no equity given for a margin budget)"
    w.note(f"leverage {chosen:g}x: {why}; cap {cap}x ({which})")
    if chosen > cap:
        w.refuse(f"needs {chosen:g}x leverage but the cap is {cap}x ({which})")
    return chosen


def _stop_vs_liquidation(req: SizeRequest, lp: float | None, buffer_pct: float) -> str | None:
    if lp is None or req.stop is None:
        return None
    if req.side == "long":
        limit = lp * (1 + buffer_pct / 100)
        bad = req.stop <= limit
    else:
        limit = lp * (1 - buffer_pct / 100)
        bad = req.stop >= limit
    if not bad:
        return None
    past = req.stop <= lp if req.side == "long" else req.stop >= lp
    where = "beyond the liquidation price" if past else "inside the buffer before liquidation at"
    return (
        f"the stop {req.stop:,.10g} is {where} {lp:,.2f} (with the {buffer_pct:g}% buffer: "
        f"{limit:,.2f}); use less leverage or a nearer stop"
    )


def floor_to_step(value: float, step: float | None) -> float:
    """Round down to a multiple of ``step`` in decimal, so 0.3 / 0.1 is 3 steps, not 2."""
    return _to_step(value, step, ROUND_FLOOR)


def ceil_to_step(value: float, step: float | None) -> float:
    return _to_step(value, step, ROUND_CEILING)


def _to_step(value: float, step: float | None, rounding: str) -> float:
    if not step:
        return value
    d_step = Decimal(str(step))
    units = (Decimal(repr(value)) / d_step).to_integral_value(rounding=rounding)
    return float(units * d_step)
