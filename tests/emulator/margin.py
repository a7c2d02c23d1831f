"""Maintenance margin and liquidation price of a one-way position, written from the venues' own
documents and NOT imported from cryptobot: the emulator is the exchange's truth the product is
tested against, so a bug shared by both would pass unseen.

Both venues liquidate where the position's margin plus its PnL falls to its maintenance margin;
they differ in what that margin is, which the brackets and ``close_fee`` carry.

Binance USDⓈ-M ("Leverage and Margin of USDⓈ-M Futures"; "How to Calculate Liquidation Price
of USDⓈ-M Futures Contracts")::

    MM = notional * MMR - cum            (MMR and cum of the notional's bracket)
    LP = (WB - TMM1 + UPNL1 + cum - side * qty * EP) / (qty * MMR - side * qty)

Bitget USDT-M ("Position tier", "Estimated liquidation price")::

    MM = notional * MMR + notional * taker fee      (the tier's rate on the whole notional)
    LP = (WB - side * qty * EP) / (qty * (MMR + taker fee) - side * qty)

which is Binance's equation with cum = 0 and the fee of closing at the liquidation price added
to the rate, so one solver serves both. WB is the isolated wallet of the position (isolated) or
the cross wallet balance (cross, where TMM1 and UPNL1 are the maintenance margin and unrealised
PnL of the account's *other* cross positions; both are 0 for isolated). MMR (and cum) are those
of the bracket the notional falls in *at the liquidation price*: the formula is solved per
bracket and the one whose bracket holds ``qty * LP`` is the answer. "0" when no positive price
liquidates (and, Bitget's tiers being discontinuous, when no bracket holds its own root).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Bracket:
    floor: float  # notional from which the bracket applies
    cap: float  # notional up to which it applies
    mmr: float  # maintenance margin rate
    max_leverage: int
    cum: float  # maintenance amount that keeps MM continuous across brackets (Binance)


def brackets_from(
    table: list[tuple[float, float, int]], *, cumulative: bool = True
) -> list[Bracket]:
    """Brackets from (cap, MMR, max leverage) rows. ``cumulative``: ``cum`` derived as Binance
    defines it, cum_i = cum_{i-1} + floor_i * (MMR_i - MMR_{i-1}); else 0 (Bitget's tiers)."""
    out, floor, cum, prev = [], 0.0, 0.0, 0.0
    for cap, mmr, lev in table:
        if cumulative:
            cum += floor * (mmr - prev)
        out.append(Bracket(floor, float(cap), mmr, lev, round(cum, 2)))
        floor, prev = float(cap), mmr
    return out


def bracket_of(brackets: list[Bracket], notional: float) -> Bracket:
    for b in brackets:
        if notional < b.cap:
            return b
    return brackets[-1]


def maintenance_margin(brackets: list[Bracket], notional: float, close_fee: float = 0.0) -> float:
    b = bracket_of(brackets, abs(notional))
    return abs(notional) * (b.mmr + close_fee) - b.cum


def liquidation_price(
    *,
    qty: float,
    entry: float,
    wallet: float,
    brackets: list[Bracket],
    close_fee: float = 0.0,
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
) -> float:
    """``qty`` signed (long > 0); ``wallet`` is WB above. 0.0 when nothing liquidates."""
    if qty == 0:
        return 0.0
    side, size = (1.0, qty) if qty > 0 else (-1.0, -qty)
    for b in brackets:
        denominator = size * (b.mmr + close_fee) - side * size
        if denominator == 0:
            continue
        price = (
            wallet - other_maintenance + other_upnl + b.cum - side * size * entry
        ) / denominator
        if price > 0 and b.floor <= size * price < b.cap:
            return price
    return 0.0
