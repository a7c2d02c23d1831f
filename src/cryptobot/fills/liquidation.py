"""Liquidation price of a one-way (BOTH) position, from each exchange's documented formula.

Part of the matching model: the simulated venues (replay, paper) liquidate a position at this
price, and sizing (``risk.sizing``) estimates the same price before an order is sent.

Binance USDⓈ-M ("How to Calculate Liquidation Price of USDⓈ-M Futures Contracts")::

    LP = (WB - TMM1 + UPNL1 + cum - side * qty * EP) / (qty * MMR - side * qty)

WB is the isolated margin of the position (isolated) or the cross wallet balance (cross, where
TMM1/UPNL1 are the maintenance margin and unrealised PnL of the account's other positions).
MMR and cum belong to the bracket of the position's notional *at the liquidation price*; when
that differs from the bracket at entry, the formula is solved again with the other bracket, as
the FAQ instructs. Because cum makes the maintenance margin continuous, exactly one bracket
gives a consistent answer.

Bitget USDT-M ("Estimated liquidation price"), isolated::

    LP = (margin - qty * EP * side) / (qty * (MMR + taker_fee - side))

i.e. the price where margin plus PnL equals the tier's maintenance margin plus the taker fee of
closing. For cross margin the same equation is used with ``margin`` replaced by the account's
balance plus other positions' PnL minus their maintenance margin (Bitget's "X"). Bitget's tier
rate applies to the whole position, so the requirement jumps at a tier boundary; for a short
the liquidation can then sit exactly on a boundary, which is returned as such.

``venue_of`` maps a ccxt id to a formula: ``bitget*`` uses Bitget's, every other venue Binance's
(bybit's USDT-perp rule has the same shape: margin + PnL = maintenance margin - deduction).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptobot.fills.brackets import Bracket, bracket_for

Venue = Literal["binance", "bitget"]


def venue_of(exchange: str) -> Venue:
    return "bitget" if exchange.startswith("bitget") else "binance"


@dataclass(frozen=True)
class Liquidation:
    price: float | None  # None: the balance covers the move all the way to zero
    bracket: Bracket
    venue: Venue


def liquidation_price(
    side: Literal["long", "short"],
    qty: float,
    entry: float,
    *,
    balance: float,
    brackets: Sequence[Bracket],
    venue: Venue = "binance",
    taker_fee: float = 0.0,
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
) -> Liquidation:
    """``qty`` in base units (contracts x contract size); ``balance`` is the isolated margin or
    the cross wallet balance."""
    s = 1 if side == "long" else -1
    base = balance - other_maintenance + other_upnl
    fee = taker_fee if venue == "bitget" else 0.0
    at_entry = bracket_for(brackets, qty * entry)
    if _excess(s, qty, entry, base, at_entry, fee, entry) <= 0:
        return Liquidation(entry, at_entry, venue)  # under-margined already: liquidated at once
    roots = [
        (price, b)
        for b in brackets
        if (price := _solve(s, qty, entry, base, b, fee)) is not None
        and price > 0
        and b.holds(qty * price)
    ]
    if s == 1:
        below = [(p, b) for p, b in roots if p <= entry]
        if not below:
            return Liquidation(None, at_entry, venue)
        price, bracket = max(below, key=lambda r: r[0])
        return Liquidation(price, bracket, venue)
    above = [(p, b) for p, b in roots if p >= entry]
    for b in brackets[1:]:  # a jump in the requirement at a tier floor can liquidate a short
        edge = b.floor / qty
        if edge > entry and _excess(s, qty, entry, base, b, fee, edge) <= 0:
            above.append((edge, b))
    price, bracket = min(above, key=lambda r: r[0])
    return Liquidation(price, bracket, venue)


def _solve(s: int, qty: float, entry: float, base: float, b: Bracket, fee: float) -> float | None:
    denominator = qty * (b.mmr + fee) - s * qty
    if denominator == 0:
        return None
    return (base + b.maint_amount - s * qty * entry) / denominator


def _excess(
    s: int, qty: float, entry: float, base: float, b: Bracket, fee: float, price: float
) -> float:
    """Margin balance above the requirement at ``price`` under bracket ``b``."""
    notional = qty * price
    return base + s * qty * (price - entry) - b.maintenance_margin(notional) - fee * notional


def margin_left_pct(
    side: Literal["long", "short"],
    qty: float,
    entry: float,
    *,
    balance: float,
    price: float,
    brackets: Sequence[Bracket],
) -> float:
    """Share of the margin balance still above maintenance at ``price``, in %: 100 with no
    position risk, 0 at liquidation. It is 100 minus Binance's "margin ratio" (MM / balance)."""
    s = 1 if side == "long" else -1
    equity = balance + s * qty * (price - entry)
    if equity <= 0:
        return 0.0
    maintenance = bracket_for(brackets, qty * price).maintenance_margin(qty * price)
    return max(0.0, 100.0 * (equity - maintenance) / equity)
