"""How an order fills against one OHLC bar: the only matching model (DESIGN.md §3).

Every function works on scalars and is a ``core.rules.rule``: the backtest's compiled loop calls
it compiled by numba; the paper broker and the replay exchange call the very same source as
plain Python, without loading numba. Sides are numbers: +1 buys (or a long position), -1 sells
(or a short position).

Rules, in the order a bar is lived through:

- **Market orders** fill at the reference price (the next bar's open) moved against the order
  by the slippage: ``slippage_bps`` plus, optionally, ``bps_per_pct_volume`` for every 1 % of
  the bar's volume the order takes, and held inside the bar's range (``market_fill``).
- **Stop orders** (stop-market) trigger when the bar touches the trigger price and fill there;
  when the bar *opens* beyond it (a gap) they fill at the open. Slippage applies as to any
  market order.
- **Limit orders** fill at their price when the bar touches it (``through=False``) or only when
  it trades beyond it (``through=True``); a bar opening beyond the limit fills it at the open,
  the better price. No slippage: a resting limit is filled at its price or better. A limit that
  would trade at once where it is placed (``takes``) pays the taker fee; a post-only one is
  refused instead.
- **Which price and fee an exit pays** (``exit_fill``): a take-profit rests on the book (its
  price, the maker fee), a stop becomes a market order (slippage, the taker fee), a liquidation
  happens at the liquidation price with the liquidation fee. Costs come as ``Costs.array()``
  (``fills.costs``).
- **Funding** at a funding timestamp: a long pays ``qty x price x rate`` when the rate is
  positive (receives when negative), a short the opposite.
- **Liquidation** of an isolated position happens at the liquidation price from the risk engine
  when the bar reaches it, with the liquidation fee charged on the notional there. The loss of
  an isolated position is capped there even when the bar gaps beyond.
- **One bar, several exits** (``exits_in_bar``): what happens at the open comes first (a gap
  beyond the stop exits everything at the open; a gap beyond targets fills them at the open).
  Inside the bar the path is unknown, so when the stop (or the liquidation price) and a target
  are both touched the conservative rule applies: **the stop first**. The backtest can replay
  a lower timeframe's bars through the same function instead (``--detail 1m``).
"""

import math

import numpy as np

from cryptobot.core.rules import rule
from cryptobot.fills.costs import C_LIQUIDATION_FEE, C_MAKER, C_SLIPPAGE, C_SLIPPAGE_VOLUME, C_TAKER

#: Kinds of fills, as stored in fills and trades.
ENTRY, STOP, TARGET, LIQUIDATION, SIGNAL, TIME, SCALE_IN, SCALE_OUT, FORCED = range(1, 10)
BREAKEVEN, TRAIL = 10, 11  # a STOP fill whose stop had moved to breakeven / trails
# exits at the next open that a strategy's bars raise (``manage.exit_on``)
REGIME, EMA_CROSS, DIVERGENCE = 12, 13, 14
KIND_NAMES = {
    ENTRY: "entry",
    STOP: "stop",
    TARGET: "target",
    LIQUIDATION: "liquidation",
    SIGNAL: "signal",
    TIME: "time_stop",
    SCALE_IN: "scale_in",
    SCALE_OUT: "scale_out",
    FORCED: "forced",
    BREAKEVEN: "breakeven",
    TRAIL: "trail",
    REGIME: "regime_change",
    EMA_CROSS: "ema_cross",
    DIVERGENCE: "rsi_divergence",
}


@rule(cache=True)
def slippage_bps(base_bps: float, qty: float, bar_volume: float, bps_per_pct: float) -> float:
    """Slippage of a market order: a base plus an impact growing with the share of the bar's
    volume the order takes (0 impact when the bar reports no volume)."""
    if bps_per_pct > 0.0 and bar_volume > 0.0:
        return base_bps + bps_per_pct * 100.0 * abs(qty) / bar_volume
    return base_bps


@rule(cache=True)
def market_price(reference: float, order_side: int, bps: float) -> float:
    return reference * (1.0 + order_side * bps * 1e-4)


@rule(cache=True)
def in_bar(price: float, high: float, low: float) -> float:
    """``price`` held inside the bar's range: slippage makes a fill worse, but never at a price
    the bar did not trade (a 10 bps slip on a bar that opened at its low would otherwise sell
    below the low)."""
    return min(max(price, low), high)


@rule(cache=True)
def market_fill(reference: float, order_side: int, bps: float, high: float, low: float) -> float:
    """A market (or triggered stop) order's fill: the slipped price, held inside the bar."""
    return in_bar(market_price(reference, order_side, bps), high, low)


@rule(cache=True)
def market_order_fill(
    reference: float,
    order_side: int,
    qty: float,
    bar_volume: float,
    high: float,
    low: float,
    costs: np.ndarray,
) -> float:
    """A market order (or a triggered stop) of ``qty`` base units sent at ``reference``: slipped
    by the costs' slippage for its share of the bar's volume, held inside the bar."""
    bps = slippage_bps(costs[C_SLIPPAGE], qty, bar_volume, costs[C_SLIPPAGE_VOLUME])
    return market_fill(reference, order_side, bps, high, low)


@rule(cache=True)
def exit_fill(
    kind: int,
    price: float,
    order_side: int,
    qty: float,
    bar_volume: float,
    high: float,
    low: float,
    costs: np.ndarray,
) -> tuple[float, float]:
    """Fill price and fee rate of one exit that ``exits_in_bar`` found at ``price``: a target
    rests on the book (its price, the maker fee); a stop is a market order once triggered
    (slipped inside the bar, the taker fee); a liquidation is the exchange's (the liquidation
    price, the liquidation fee)."""
    if kind == TARGET:
        return price, costs[C_MAKER]
    if kind == STOP:
        fill = market_order_fill(price, order_side, qty, bar_volume, high, low, costs)
        return fill, costs[C_TAKER]
    return price, costs[C_LIQUIDATION_FEE]


@rule(cache=True)
def takes(order_side: int, limit: float, price: float) -> bool:
    """Whether a limit order at ``limit`` trades at once against the market at ``price`` (a buy
    at or above it, a sell at or below it): a post-only order that would is refused, and a limit
    that does is a taker, not a resting maker."""
    return (limit - price) * order_side >= 0.0


@rule(cache=True)
def limit_rate(took: bool, costs: np.ndarray) -> float:
    """The fee rate of a limit order's fill (take-profits included): the maker fee for an order
    that rested on the book, the taker fee for one that traded at once where it was placed."""
    return costs[C_TAKER] if took else costs[C_MAKER]


@rule(cache=True)
def stop_trigger(order_side: int, trigger: float, open_: float, high: float, low: float) -> float:
    """Price a stop-market order is triggered at in this bar (before slippage), NaN if not.

    A sell stop (closing a long) triggers when the low reaches it; a buy stop when the high does.
    """
    if math.isnan(trigger):
        return math.nan
    if order_side < 0:
        if open_ <= trigger:
            return open_
        if low <= trigger:
            return trigger
    else:
        if open_ >= trigger:
            return open_
        if high >= trigger:
            return trigger
    return math.nan


@rule(cache=True)
def limit_fill(
    order_side: int, limit: float, open_: float, high: float, low: float, through: bool
) -> float:
    """Fill price of a resting limit order in this bar, NaN if it does not fill."""
    if math.isnan(limit):
        return math.nan
    if order_side > 0:
        if open_ <= limit:
            return open_
        if low < limit or (low == limit and not through):
            return limit
    else:
        if open_ >= limit:
            return open_
        if high > limit or (high == limit and not through):
            return limit
    return math.nan


@rule(cache=True)
def lot(qty: float, step: float) -> float:
    """``qty`` rounded down to a multiple of the market's ``step`` (0: any quantity), so a
    partial exit is an order the exchange accepts and never larger than intended."""
    if step <= 0.0:
        return qty
    return math.floor(qty / step + 1e-9) * step


@rule(cache=True)
def fee(price: float, qty: float, rate: float) -> float:
    return abs(price * qty) * rate


@rule(cache=True)
def funding_cash(side: int, qty: float, price: float, rate: float) -> float:
    """Cash a position receives (positive) or pays (negative) at one funding timestamp."""
    return -side * abs(qty) * price * rate


@rule(cache=True)
def beyond(side: int, price: float, level: float) -> bool:
    """Whether ``price`` is at or past ``level`` on the losing side of a ``side`` position."""
    if math.isnan(level):
        return False
    return price <= level if side > 0 else price >= level


@rule(cache=True)
def exits_in_bar(
    side: int,
    open_: float,
    high: float,
    low: float,
    qty: float,
    stop: float,
    liquidation: float,
    targets: np.ndarray,
    target_qty: np.ndarray,
    through: bool,
    out: np.ndarray,
) -> int:
    """The exits of a ``side`` position of ``qty`` during one bar, in the order they happen.

    ``targets``/``target_qty`` are the take-profit limits and the quantity still resting at
    each (0 = done); filled quantities are taken off ``target_qty``. Each exit is written to
    a row of ``out`` as (kind, price before slippage, qty); the count is returned. The stop and
    liquidation exit everything left.
    """
    n = 0
    left = qty
    adverse = low if side > 0 else high
    # 1. the open: a gap through the stop (or the liquidation price) ends the position there
    if beyond(side, open_, stop) or beyond(side, open_, liquidation):
        return _adverse_exit(side, open_, stop, liquidation, left, out, 0)
    # 2. the open: targets the bar opened beyond fill at the open
    for j in range(targets.shape[0]):
        if target_qty[j] > 0.0 and left > 0.0 and (open_ - targets[j]) * side >= 0.0:
            n = _target_exit(j, open_, targets, target_qty, left, out, n)
            left -= out[n - 1, 2]
    if left <= 0.0:
        return n
    # 3. inside the bar: stop first when the stop (or liquidation) was touched at all
    if beyond(side, adverse, stop) or beyond(side, adverse, liquidation):
        return _adverse_exit(side, stop, stop, liquidation, left, out, n)
    for j in range(targets.shape[0]):
        if target_qty[j] > 0.0 and left > 0.0:
            price = limit_fill(-side, targets[j], open_, high, low, through)
            if not math.isnan(price):
                n = _target_exit(j, price, targets, target_qty, left, out, n)
                left -= out[n - 1, 2]
    return n


@rule(cache=True)
def _target_exit(
    j: int,
    price: float,
    targets: np.ndarray,
    target_qty: np.ndarray,
    left: float,
    out: np.ndarray,
    n: int,
) -> int:
    q = min(target_qty[j], left)
    out[n, 0], out[n, 1], out[n, 2] = TARGET, price, q
    target_qty[j] -= q
    return n + 1


@rule(cache=True)
def _adverse_exit(
    side: int,
    price: float,
    stop: float,
    liquidation: float,
    qty: float,
    out: np.ndarray,
    n: int,
) -> int:
    """The stop fills at ``price`` unless the liquidation price comes first (no stop, or a
    fill at or beyond it): then the exchange liquidates there."""
    if not math.isnan(stop) and not beyond(side, price, liquidation):
        out[n, 0], out[n, 1], out[n, 2] = STOP, price, qty
        return n + 1
    out[n, 0], out[n, 1], out[n, 2] = LIQUIDATION, liquidation, qty
    return n + 1
