"""Binance USDⓈ-M margin arithmetic, written from Binance's own documents and NOT imported from
cryptobot: the emulator is the exchange's truth the product is tested against, so a bug shared
by both would pass unseen.

Maintenance margin (Binance, "Leverage and Margin of USDⓈ-M Futures")::

    MM = notional * MMR - cum            (MMR and cum of the notional's bracket)

Liquidation price of a one-way (BOTH) position (Binance, "How to Calculate Liquidation Price
of USDⓈ-M Futures Contracts")::

    LP = (WB - TMM1 + UPNL1 + cum - side * qty * EP) / (qty * MMR - side * qty)

WB is the isolated wallet of the position (isolated) or the cross wallet balance (cross, where
TMM1 and UPNL1 are the maintenance margin and unrealised PnL of the account's *other* cross
positions; both are 0 for isolated). MMR and cum are those of the bracket the notional falls
in *at the liquidation price*: the formula is solved per bracket and the one whose bracket
holds ``qty * LP`` is the answer. Binance answers "0" when no positive price liquidates.
"""

from dataclasses import dataclass

# Binance's documented BTCUSDT brackets: (notional cap, maintenance margin rate, max leverage)
BTC_BRACKETS = [
    (50_000, 0.004, 125),
    (250_000, 0.005, 100),
    (3_000_000, 0.01, 50),
    (15_000_000, 0.025, 20),
    (30_000_000, 0.05, 10),
    (80_000_000, 0.1, 5),
    (100_000_000, 0.125, 4),
    (200_000_000, 0.15, 3),
    (300_000_000, 0.25, 2),
    (500_000_000, 0.5, 1),
]


@dataclass(frozen=True)
class Bracket:
    floor: float  # notional from which the bracket applies
    cap: float  # notional up to which it applies
    mmr: float  # maintenance margin rate
    max_leverage: int
    cum: float  # maintenance amount that keeps MM continuous across brackets


def brackets_from(table: list[tuple[float, float, int]]) -> list[Bracket]:
    """Brackets from (cap, MMR, max leverage) rows, with ``cum`` derived as Binance defines it:
    cum_i = cum_{i-1} + floor_i * (MMR_i - MMR_{i-1})."""
    out, floor, cum, prev = [], 0.0, 0.0, 0.0
    for cap, mmr, lev in table:
        cum += floor * (mmr - prev)
        out.append(Bracket(floor, float(cap), mmr, lev, round(cum, 2)))
        floor, prev = float(cap), mmr
    return out


def bracket_of(brackets: list[Bracket], notional: float) -> Bracket:
    for b in brackets:
        if notional < b.cap:
            return b
    return brackets[-1]


def maintenance_margin(brackets: list[Bracket], notional: float) -> float:
    b = bracket_of(brackets, abs(notional))
    return abs(notional) * b.mmr - b.cum


def liquidation_price(
    *,
    qty: float,
    entry: float,
    wallet: float,
    brackets: list[Bracket],
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
) -> float:
    """``qty`` signed (long > 0); ``wallet`` is WB above. 0.0 when nothing liquidates."""
    if qty == 0:
        return 0.0
    side, size = (1.0, qty) if qty > 0 else (-1.0, -qty)
    for b in brackets:
        denominator = size * b.mmr - side * size
        if denominator == 0:
            continue
        price = (
            wallet - other_maintenance + other_upnl + b.cum - side * size * entry
        ) / denominator
        if price > 0 and b.floor <= size * price < b.cap:
            return price
    return 0.0
