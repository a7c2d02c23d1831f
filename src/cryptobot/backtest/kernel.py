"""The compiled trade loop: one position from its entry fill to its last exit, bar by bar.

``run_trade`` lives a position through the bars with the matching model of ``fills.model`` and
the management rules of ``manage.policy``. It writes the trade's row, its fills and its
mark-to-market PnL per bar (added with ``weight`` into ``pnl``, so a trade can also be taken
back with weight -1 when the portfolio cuts it short). ``run_signals`` chains trades of a fixed
quantity over a signal array entirely in compiled code; the portfolio driver chains them in
Python instead, to size each through the risk engine.

Order of events inside bar i (after the entry bar):
1. funding at the bar's open (a position held at a funding timestamp pays or receives);
2. what was decided at the previous close happens at this open: exit on the opposite signal,
   a strategy exit (regime change, EMA cross, RSI divergence), time stop, forced exit (end of
   a window, a breaker), or a scale-in;
3. stops, targets and liquidation during the bar (``fills.model.exits_in_bar``; with detail
   bars, an ambiguous bar is replayed through its lower-timeframe bars);
4. at the close: breakeven and trailing stops move (effective from the next bar), the
   decision for the next open is taken (the opposite signal, a strategy exit, the time stop, a
   scale-in: the first that applies), and the position is marked to the close.

Per bar, besides the candles, the loop reads what the strategy's bars said at each close:
``exit_sig`` (the side it signalled), ``exits`` (one column per strategy exit of the policy,
``exit_kinds``: bit 1 closes longs, bit 2 shorts) and ``weak`` (the trend weakens: the trail
takes its weak-trend multiple).

An entry is a market fill at bar i0's open, made by the caller. A position still open after the
last bar is marked at the last close with no exit fill and no exit fee.
"""

import math

import numpy as np

from cryptobot.core.jit import njit
from cryptobot.fills.costs import (
    C_SLIPPAGE,
    C_SLIPPAGE_VOLUME,
    C_TAKER,
    C_THROUGH,
)
from cryptobot.fills.model import (
    BREAKEVEN,
    ENTRY,
    FORCED,
    SCALE_IN,
    SCALE_OUT,
    SIGNAL,
    STOP,
    TIME,
    TRAIL,
    beyond,
    exit_fill,
    exits_in_bar,
    fee,
    funding_cash,
    lot,
    market_fill,
    market_order_fill,
    slippage_bps,
)
from cryptobot.manage.policy import (
    P_BREAKEVEN_R,
    P_EXIT_ON_SIGNAL,
    P_SCALE_ADD,
    P_SCALE_BE,
    P_SCALE_CLOSE,
    P_SCALE_MAX,
    P_SCALE_TRIGGER,
    P_STOP_DELAY,
    P_TIME_BARS,
    P_TIME_UNTIL_R,
    P_WEAK_MULT,
    ladder_lots,
    margin_profit_pct,
    r_multiple,
    tighter,
    time_stopped,
    trail_multiple,
    trail_stop,
    weakened,
)

# bars columns
OPEN, HIGH, LOW, CLOSE, VOLUME, ATR = range(6)
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "atr")
# trade rows
TRADE_COLUMNS = (
    "entry_bar", "side", "qty", "entry_price", "stop", "risk", "exit_bar", "exit_price",
    "gross", "fees", "funding", "net", "r", "reason", "max_qty", "adds", "mfe_r", "mae_r",
    "liquidation_price", "open", "exit_at_open",
)  # fmt: skip
(
    T_ENTRY_BAR, T_SIDE, T_QTY, T_ENTRY_PX, T_STOP, T_RISK, T_EXIT_BAR, T_EXIT_PX, T_GROSS,
    T_FEES, T_FUNDING, T_NET, T_R, T_REASON, T_MAX_QTY, T_ADDS, T_MFE_R, T_MAE_R, T_LIQ,
    T_OPEN, T_EXIT_AT_OPEN,
) = range(len(TRADE_COLUMNS))  # fmt: skip
# fill rows
FILL_COLUMNS = ("trade", "bar", "kind", "side", "qty", "price", "fee")
F_TRADE, F_BAR, F_KIND, F_SIDE, F_QTY, F_PRICE, F_FEE = range(len(FILL_COLUMNS))
# running state of a trade
S_QTY, S_AVG, S_REALISED, S_FEES, S_EXIT_VALUE, S_EXIT_QTY = range(6)
DUST = 1e-12


@njit(cache=True)
def _fill(fills, nf, k, bar, kind, side, qty, price, paid):
    fills[nf, F_TRADE], fills[nf, F_BAR], fills[nf, F_KIND] = k, bar, kind
    fills[nf, F_SIDE], fills[nf, F_QTY], fills[nf, F_PRICE], fills[nf, F_FEE] = (
        side,
        qty,
        price,
        paid,
    )
    return nf + 1


@njit(cache=True)
def _reduce(st, side, qty, price, rate, fills, nf, k, bar, kind):
    """Close ``qty`` of the position at ``price``, paying ``rate`` on the notional."""
    paid = fee(price, qty, rate)
    st[S_REALISED] += side * (price - st[S_AVG]) * qty
    st[S_FEES] += paid
    st[S_QTY] -= qty
    if st[S_QTY] <= DUST * max(1.0, qty):
        st[S_QTY] = 0.0
    st[S_EXIT_VALUE] += price * qty
    st[S_EXIT_QTY] += qty
    return _fill(fills, nf, k, bar, kind, -side, qty, price, paid)


@njit(cache=True)
def _apply_exits(st, side, events, m, stop_kind, bar_volume, hi, lo, costs, fills, nf, k, bar):
    """Book the exits ``exits_in_bar`` found in a bar ranging ``lo``..``hi``; returns (fills
    count, kind of the last exit)."""
    last = 0
    for e in range(m):
        kind, price, qty = int(events[e, 0]), events[e, 1], events[e, 2]
        px, rate = exit_fill(kind, price, -side, qty, bar_volume, hi, lo, costs)
        last = stop_kind if kind == STOP else kind
        nf = _reduce(st, side, qty, px, rate, fills, nf, k, bar, last)
    return nf, last


@njit(cache=True)
def _ambiguous(side, op, hi, lo, stop, liq, targets, target_qty):
    """Stop (or liquidation) and a target both reached inside the bar, not settled at the open."""
    if beyond(side, op, stop) or beyond(side, op, liq):
        return False
    adverse = lo if side > 0 else hi
    if not (beyond(side, adverse, stop) or beyond(side, adverse, liq)):
        return False
    favourable = hi if side > 0 else lo
    for j in range(targets.shape[0]):
        if target_qty[j] > 0.0 and (favourable - targets[j]) * side >= 0.0:
            return True
    return False


@njit(cache=True)
def _bar_exits(st, side, i, bars, detail, span, stop, liq, tp_px, tp_q, stop_kind, costs,
               events, fills, nf, k):  # fmt: skip
    """Exits during bar i; an ambiguous bar with detail bars is lived through them instead."""
    through = costs[C_THROUGH] > 0.0
    op, hi, lo, vol = bars[i, OPEN], bars[i, HIGH], bars[i, LOW], bars[i, VOLUME]
    start, end = span[i, 0], span[i, 1]
    if end > start and _ambiguous(side, op, hi, lo, stop, liq, tp_px, tp_q):
        last = 0
        for j in range(start, end):
            if st[S_QTY] <= 0.0:
                break
            m = exits_in_bar(side, detail[j, 0], detail[j, 1], detail[j, 2], st[S_QTY], stop,
                             liq, tp_px, tp_q, through, events)  # fmt: skip
            if m > 0:
                nf, last = _apply_exits(st, side, events, m, stop_kind, vol, detail[j, 1],
                                        detail[j, 2], costs, fills, nf, k, i)  # fmt: skip
        return nf, last
    m = exits_in_bar(side, op, hi, lo, st[S_QTY], stop, liq, tp_px, tp_q, through, events)
    return _apply_exits(st, side, events, m, stop_kind, vol, hi, lo, costs, fills, nf, k, i)


@njit(cache=True)
def _reached(side, op, hi, lo, stop, liq, target):
    """Whether the bar touched a level that exits: a test on scalars that spares most bars the
    full matching (whose array arguments cost more than the test)."""
    low, high = min(lo, op), max(hi, op)
    adverse, favourable = (low, high) if side > 0 else (high, low)
    return (
        beyond(side, adverse, stop)
        or beyond(side, adverse, liq)
        or (favourable - target) * side >= 0.0  # False while no target rests (NaN)
    )


@njit(cache=True)
def _nearest_target(side, tp_px, tp_q):
    """The resting take-profit nearest the price (NaN when none is left)."""
    out = math.nan
    for j in range(tp_px.shape[0]):
        if tp_q[j] > 0.0 and (math.isnan(out) or (tp_px[j] - out) * side < 0.0):
            out = tp_px[j]
    return out


@njit(cache=True)
def _extremes(side, hi, lo, best, worst):
    """The best and worst prices for a ``side`` position after a bar ranging ``lo``..``hi``."""
    favourable, adverse = (hi, lo) if side > 0 else (lo, hi)
    if (favourable - best) * side > 0.0:
        best = favourable
    if (adverse - worst) * side < 0.0:
        worst = adverse
    return best, worst


@njit(cache=True)
def _exit_bar_extremes(side, op, fills, first, last, best, worst):
    """MFE/MAE over the bar the position ends in: it was held at the open and at each of its
    exit fills (``fills[first:last]``), not beyond. Leaving the exit bar out entirely made every
    stop-out's MAE read above -1R; its whole range would count prices after the position was
    gone (a stop touched first, then a rally the position never saw)."""
    best, worst = _extremes(side, op, op, best, worst)
    for f in range(first, last):
        price = fills[f, F_PRICE]
        best, worst = _extremes(side, price, price, best, worst)
    return best, worst


@njit(cache=True)
def _strategy_exit(exits, exit_kinds, i, side):
    """The reason of the first strategy exit raised against a ``side`` position at bar i's
    close (0: none)."""
    bit = 1 if side > 0 else 2
    for c in range(exit_kinds.shape[0]):
        if exits[i, c] & bit:
            return exit_kinds[c]
    return 0


@njit(cache=True)
def run_trade(bars, exit_sig, exits, weak, funding, detail, span, i0, side, qty, entry_px, stop,
              liq_ratio, leverage, step, end_bar, p, tp_r, tp_frac, trail_r, trail_mult,
              exit_kinds, costs, pnl, weight, trades, k, fills, nf):  # fmt: skip
    """Live one position (entered at bar ``i0``'s open at ``entry_px``) to its end; returns the
    new fills count. ``liq_ratio`` = liquidation price / entry price (NaN: none); ``step`` = the
    market's quantity step (0: none), to which partial exits and scale-ins are rounded down."""
    n = bars.shape[0]
    st = np.zeros(6)
    st[S_QTY], st[S_AVG] = qty, entry_px
    st[S_FEES] = fee(entry_px, qty, costs[C_TAKER])
    nf = _fill(fills, nf, k, i0, ENTRY, side, qty, entry_px, st[S_FEES])
    risk = abs(entry_px - stop)
    liq = entry_px * liq_ratio
    tp_px = entry_px + side * tp_r * risk
    tp_q = ladder_lots(qty, tp_frac, step) if risk > 0.0 else np.zeros(tp_r.shape[0])
    next_tp = _nearest_target(side, tp_px, tp_q)
    events = np.empty((tp_r.shape[0] + 2, 3))
    stop_kind, pending, adds = STOP, 0, 0
    best, worst, max_q, paid_funding, marked = entry_px, entry_px, qty, 0.0, 0.0
    exit_bar, reason, at_open = -1, 0, False
    be_r = p[P_BREAKEVEN_R]
    for i in range(i0, n):
        op, hi, lo, cl = bars[i, OPEN], bars[i, HIGH], bars[i, LOW], bars[i, CLOSE]
        nf_bar = nf
        if i > i0:
            rate = funding[i, 0]
            if rate != 0.0:
                price = funding[i, 1] if not math.isnan(funding[i, 1]) else bars[i - 1, CLOSE]
                paid_funding += funding_cash(side, st[S_QTY], price, rate)
            action = FORCED if i >= end_bar else pending
            pending = 0
            q = st[S_QTY]
            bps = slippage_bps(costs[C_SLIPPAGE], q, bars[i, VOLUME], costs[C_SLIPPAGE_VOLUME])
            if action == SCALE_IN:
                add, cut = lot(p[P_SCALE_ADD] * q, step), lot(p[P_SCALE_CLOSE] * q, step)
                if add > 0.0:
                    px = market_fill(op, side, bps, hi, lo)
                    paid = fee(px, add, costs[C_TAKER])
                    st[S_AVG] = (st[S_AVG] * q + px * add) / (q + add)
                    st[S_QTY] += add
                    st[S_FEES] += paid
                    nf = _fill(fills, nf, k, i, SCALE_IN, side, add, px, paid)
                    max_q = max(max_q, st[S_QTY])
                if cut > 0.0:
                    px = market_fill(op, -side, bps, hi, lo)
                    nf = _reduce(st, side, cut, px, costs[C_TAKER], fills, nf, k, i, SCALE_OUT)
                if p[P_SCALE_BE] > 0.0:
                    stop = tighter(side, stop, st[S_AVG])
                    stop_kind = BREAKEVEN
                liq = st[S_AVG] * liq_ratio
                adds += 1
            elif action != 0:  # every other decision closes the position at this open
                px = market_fill(op, -side, bps, hi, lo)
                nf = _reduce(st, side, q, px, costs[C_TAKER], fills, nf, k, i, action)
                exit_bar, reason, at_open = i, action, True
        if (
            exit_bar < 0
            and i >= i0 + p[P_STOP_DELAY]
            and _reached(side, op, hi, lo, stop, liq, next_tp)
        ):
            nf, last = _bar_exits(st, side, i, bars, detail, span, stop, liq, tp_px, tp_q,
                                  stop_kind, costs, events, fills, nf, k)  # fmt: skip
            next_tp = _nearest_target(side, tp_px, tp_q)
            if st[S_QTY] <= 0.0:
                exit_bar, reason = i, last
        if exit_bar < 0:
            best, worst = _extremes(side, hi, lo, best, worst)
        else:
            best, worst = _exit_bar_extremes(side, op, fills, nf_bar, nf, best, worst)
        if exit_bar < 0:
            r_best = r_multiple(side, entry_px, risk, best)
            if r_best >= be_r:
                moved = tighter(side, stop, st[S_AVG])
                if moved != stop:
                    stop, stop_kind = moved, BREAKEVEN
            if trail_r.shape[0] > 0:
                mult = trail_multiple(r_best, trail_r, trail_mult)
                mult = weakened(mult, weak[i], p[P_WEAK_MULT])
                moved = tighter(side, stop, trail_stop(side, best, bars[i, ATR], mult))
                if moved != stop:
                    stop, stop_kind = moved, TRAIL
            # the decision for the next open, the first that applies (inline: a compiled
            # call taking arrays costs more per bar than the rest of the bar's work)
            kind = _strategy_exit(exits, exit_kinds, i, side) if exit_kinds.shape[0] else 0
            if p[P_EXIT_ON_SIGNAL] > 0.0 and exit_sig[i] == -side:
                pending = SIGNAL
            elif kind > 0:
                pending = kind
            elif time_stopped(p[P_TIME_BARS], i - i0 + 1, r_best, p[P_TIME_UNTIL_R]):
                pending = TIME
            elif (
                adds < p[P_SCALE_MAX]
                and margin_profit_pct(side, st[S_AVG], cl, leverage) >= p[P_SCALE_TRIGGER]
            ):
                pending = SCALE_IN
        value = st[S_REALISED] - st[S_FEES] + paid_funding + side * (cl - st[S_AVG]) * st[S_QTY]
        pnl[i] += weight * (value - marked)
        marked = value
        if exit_bar >= 0:
            break
    still_open = exit_bar < 0
    last_bar = n - 1 if still_open else exit_bar
    unrealised = side * (bars[last_bar, CLOSE] - st[S_AVG]) * st[S_QTY]
    gross = st[S_REALISED] + unrealised
    row = trades[k]
    row[T_ENTRY_BAR], row[T_SIDE], row[T_QTY], row[T_ENTRY_PX] = i0, side, qty, entry_px
    row[T_STOP], row[T_RISK], row[T_EXIT_BAR] = entry_px - side * risk, risk, last_bar
    row[T_EXIT_PX] = bars[last_bar, CLOSE] if still_open else st[S_EXIT_VALUE] / st[S_EXIT_QTY]
    row[T_GROSS], row[T_FEES], row[T_FUNDING] = gross, st[S_FEES], paid_funding
    row[T_NET] = gross - st[S_FEES] + paid_funding
    row[T_R] = row[T_NET] / (risk * qty) if risk > 0.0 else math.nan
    row[T_REASON], row[T_MAX_QTY], row[T_ADDS] = reason, max_q, adds
    row[T_MFE_R] = r_multiple(side, entry_px, risk, best)
    row[T_MAE_R] = r_multiple(side, entry_px, risk, worst)
    row[T_LIQ], row[T_OPEN], row[T_EXIT_AT_OPEN] = entry_px * liq_ratio, still_open, at_open
    return nf


@njit(cache=True)
def entry_fill(bars, i0, side, qty, costs):
    """Price of a market entry at bar ``i0``'s open, slippage against the order (inside the
    bar's range)."""
    op, hi, lo, vol = bars[i0, OPEN], bars[i0, HIGH], bars[i0, LOW], bars[i0, VOLUME]
    return market_order_fill(op, side, qty, vol, hi, lo, costs)


@njit(cache=True)
def next_signal_bar(trade):
    """First signal bar whose entry (at the next open) may follow this trade: a trade closed at a
    bar's open makes room for a signal at the close before (a reversal); one closed during the
    bar, for a signal at that bar's close."""
    exit_bar = int(trade[T_EXIT_BAR])
    return exit_bar - 1 if trade[T_EXIT_AT_OPEN] > 0.0 else exit_bar


@njit(cache=True)
def run_signals(bars, sig, stop_abs, stop_dist, exits, weak, funding, detail, span, qty, leverage,
                step, start, end, cooldown_bars, p, tp_r, tp_frac, trail_r, trail_mult,
                exit_kinds, costs, pnl, trades, fills):  # fmt: skip
    """Trades of ``qty`` units on every eligible signal between bars ``start`` and ``end``
    (exclusive): a signal at the close of bar t enters at bar t+1's open, when flat or when
    the position it reverses closes at that same open. Returns (trades, fills) counts."""
    k, nf, allowed = 0, 0, start
    for t in range(start, end - 1):
        side = sig[t]
        if side == 0 or t < allowed:
            continue
        i0 = t + 1
        px = entry_fill(bars, i0, side, qty, costs)
        stop = stop_abs[t] if not math.isnan(stop_abs[t]) else px - side * stop_dist[t]
        if beyond(side, px, stop):
            continue  # the entry would fill beyond its own stop
        nf = run_trade(bars, sig, exits, weak, funding, detail, span, i0, side, qty, px, stop,
                       math.nan, leverage, step, end, p, tp_r, tp_frac, trail_r, trail_mult,
                       exit_kinds, costs, pnl, 1.0, trades, k, fills, nf)  # fmt: skip
        k += 1
        if trades[k - 1, T_OPEN] > 0.0:
            break
        allowed = next_signal_bar(trades[k - 1])
        if cooldown_bars > 0 and trades[k - 1, T_NET] < 0.0:
            allowed = max(allowed, int(trades[k - 1, T_EXIT_BAR]) + cooldown_bars)
    return k, nf
