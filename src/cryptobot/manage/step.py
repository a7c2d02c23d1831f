"""The position state machine: what one position does on one bar, or on one price event.

``step_bar`` holds every management rule of ``manage.policy`` in the order they apply; the
backtest kernel calls it inline in its loop (``inline="always"``: a compiled call taking the
position's arrays costs more per bar than the rest of the bar's work) and ``manage.Position``
calls the very same function per bar or price event, so no rule exists twice. Fills are priced
by ``fills.model`` (a market order's slippage, a stop's trigger, a target's limit, the fees).
These functions allocate nothing and are compiled without numba's reference counting
(``_nrt=False``, as the kernel): each array the inlined per-bar code binds (the position's, the
rules', the bar inputs') otherwise cost two atomic operations per bar, which made the loop 5x
slower than the same rules written out in it.

Order of events inside a bar (after the entry bar):

1. the open: what was decided at the previous close happens here - a close of the whole
   position (the opposite signal, a strategy exit, the time stop) or a scale-in; a ``forced``
   close (the end of a window, a circuit breaker) overrides the decision;
2. during the bar: stops, the legs' own stops, targets and liquidation
   (``fills.model.exits_in_bar``; a bar where a stop and a target were both reached and that
   has detail bars is lived through them instead);
3. the close: breakeven and the ATR trail move the stop (effective from the next bar) and the
   decision for the next open is taken, the first that applies of: the opposite signal, a
   strategy exit, the time stop, a scale-in.

Funding at the open (before 1) is the account's, not the position's: the caller books it.

**A price event** (``step_price``: one price, no bar, for live use) does what needs no close:
the decision taken at the last close is carried out at that price (live, "the next open" is the
first price after the close) and stops, legs' stops, targets and the liquidation price are
checked against it (a price beyond a level fills at that price, as a gap at an open). Everything
that reads a bar's close or ATR needs ``step_bar``: breakeven and the trail (a stop moved by a
closed bar), the time stop (counted in bars), strategy exits and the opposite signal (read at
closes), the scale-in trigger (ROE at a close).

**State** (``PositionState``): ``vec`` (float64, the ``S_*`` fields), ``targets`` (row 0: the
take-profit prices, row 1: the quantity still resting at each), ``legs`` (one row per leg:
entry, quantity, own stop - NaN: the position's stop) and ``events`` (scratch rows for
``exits_in_bar``). One leg until the first scale-in; its row is kept up to date from then on.

**Actions** are written to rows of a float64 buffer (``ACTION_COLUMNS``): the kind (``ACT_*``;
those up to ``ACT_CLOSE_LEG`` are fills), the reason (a fill kind of ``fills.model``: target,
stop, breakeven, trail, signal, time_stop, a strategy exit, forced, scale_in, scale_out,
liquidation), the order's side, quantity, price and fee.
"""

import math
from collections import namedtuple

import numpy as np

from cryptobot.core.jit import njit
from cryptobot.fills.costs import C_SLIPPAGE, C_SLIPPAGE_VOLUME, C_TAKER, C_THROUGH
from cryptobot.fills.model import (
    BREAKEVEN,
    FORCED,
    SCALE_IN,
    SCALE_OUT,
    SIGNAL,
    STOP,
    TARGET,
    TIME,
    TRAIL,
    beyond,
    exit_fill,
    exits_in_bar,
    fee,
    lot,
    market_fill,
    slippage_bps,
    stop_trigger,
)
from cryptobot.manage.policy import (
    P_BREAKEVEN_R,
    P_EXIT_ON_SIGNAL,
    P_MANUAL_RISK,
    P_SCALE_ADD,
    P_SCALE_BE,
    P_SCALE_CLOSE,
    P_SCALE_MAX,
    P_SCALE_TRIGGER,
    P_STOP_DELAY,
    P_TIME_BARS,
    P_TIME_UNTIL_R,
    P_WEAK_MULT,
    Rules,
    margin_profit_pct,
    r_multiple,
    tighter,
    time_stopped,
    trail_multiple,
    trail_stop,
    weakened,
)
from cryptobot.manage.targets import ladder_lots_into, target_prices_into
from cryptobot.manage.ticks import on_tick

# bar columns
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "atr")
OPEN, HIGH, LOW, CLOSE, VOLUME, ATR = range(len(BAR_COLUMNS))

#: one symbol's arrays: ``bars`` (BAR_COLUMNS), ``funding`` (rate, price at each bar's open; the
#: caller's), ``detail`` (open, high, low of lower-timeframe bars), ``span`` (the detail rows
#: of each bar)
Candles = namedtuple("Candles", ["bars", "funding", "detail", "span"])
#: what the strategy said at each close: ``signal`` (+1/-1/0), ``exits`` (one uint8 column per
#: ``Rules.exit_kinds``, bit 1 closes longs, bit 2 shorts), ``weak`` (the trend weakens)
Inputs = namedtuple("Inputs", ["signal", "exits", "weak"])
PositionState = namedtuple("PositionState", ["vec", "targets", "legs", "events"])

STATE_FIELDS = (
    "side", "qty", "first_qty", "avg", "entry", "risk", "stop", "stop_kind", "liq", "liq_ratio",
    "leverage", "step", "best", "worst", "pending", "adds", "bars", "max_qty", "realised",
    "fees", "exit_value", "exit_qty", "next_target", "reason", "at_open", "legs", "leg_stop",
    "tick",
)  # fmt: skip
(
    S_SIDE, S_QTY, S_FIRST_QTY, S_AVG, S_ENTRY, S_RISK, S_STOP, S_STOP_KIND, S_LIQ, S_LIQ_RATIO,
    S_LEVERAGE, S_STEP, S_BEST, S_WORST, S_PENDING, S_ADDS, S_BARS, S_MAX_QTY, S_REALISED,
    S_FEES, S_EXIT_VALUE, S_EXIT_QTY, S_NEXT_TP, S_REASON, S_AT_OPEN, S_LEGS, S_LEG_STOP,
    S_TICK,
) = range(len(STATE_FIELDS))  # fmt: skip
LEG_COLUMNS = ("entry", "qty", "stop")
L_ENTRY, L_QTY, L_STOP = range(len(LEG_COLUMNS))

ACTION_COLUMNS = ("kind", "reason", "side", "qty", "price", "fee")
A_KIND, A_REASON, A_SIDE, A_QTY, A_PRICE, A_FEE = range(len(ACTION_COLUMNS))
(
    ACT_ADD, ACT_SCALE_OUT, ACT_TAKE, ACT_CLOSE, ACT_CLOSE_LEG, ACT_MOVE_STOP, ACT_MOVE_LEG_STOP,
    ACT_NEXT_OPEN,
) = range(1, 9)  # fmt: skip
ACTION_NAMES = {
    ACT_ADD: "add",  # a scale-in leg bought (sold for a short) at market
    ACT_SCALE_OUT: "scale_out",  # part of the leg that triggered a scale-in, closed at market
    ACT_TAKE: "take_partial",  # a take-profit filled
    ACT_CLOSE: "close",  # everything left closed (a stop, liquidation, an exit at the open)
    ACT_CLOSE_LEG: "close_leg",  # a leg's own stop filled
    ACT_MOVE_STOP: "move_stop",  # the position's stop moved (breakeven, trail)
    ACT_MOVE_LEG_STOP: "move_leg_stop",  # a leg's own stop set (to its entry)
    ACT_NEXT_OPEN: "next_open",  # decided at the close: happens at the next open
}
DUST = 1e-12


def new_state(rules: Rules) -> PositionState:
    """Buffers for one position under ``rules`` (reused from one trade to the next)."""
    targets = rules.tp_r.shape[0]
    legs = 1 + int(rules.scalars[P_SCALE_MAX])
    return PositionState(
        np.zeros(len(STATE_FIELDS)),
        np.zeros((2, targets)),
        np.zeros((legs, len(LEG_COLUMNS))),
        np.zeros((targets + 2, 3)),
    )


def new_actions(rules: Rules) -> np.ndarray:
    """An actions buffer large enough for one step: at the open a close, or an add, a cut and a
    leg's stop; during the bar one exit per target and per leg plus the stop; at the close two
    stop moves and a decision."""
    rows = rules.tp_r.shape[0] + 2 * (1 + int(rules.scalars[P_SCALE_MAX])) + 8
    return np.zeros((rows, len(ACTION_COLUMNS)))


@njit(cache=True, _nrt=False)
def open_position(pos, rules, side, qty, price, paid, stop, liq_ratio, leverage, step, tick):
    """Start ``pos`` as a ``side`` position of ``qty`` entered at ``price`` (``paid``: the entry
    fee) with its initial ``stop`` (NaN: none) and liquidation price ``liq_ratio`` x the
    average entry (NaN: none); ``leverage`` scales the ROE the scale-in reads; partial exits and
    adds are rounded down to ``step`` (0: not rounded); stops and targets sit on the price
    ``tick`` (0: not rounded; ``manage.ticks``), the stop's R is from the ticked stop. The
    targets are priced by ``manage.targets.target_prices_into``, as a sized order's are."""
    v = pos.vec
    v[:] = 0.0
    stop = on_tick(side, stop, tick, True)
    liq = price * liq_ratio
    tg = pos.targets
    risk = target_prices_into(tg[0], side, price, stop, liq, rules.scalars[P_MANUAL_RISK],
                              rules.tp_r, tick)  # fmt: skip
    v[S_SIDE], v[S_QTY], v[S_FIRST_QTY], v[S_AVG], v[S_ENTRY] = side, qty, qty, price, price
    v[S_RISK], v[S_STOP], v[S_STOP_KIND] = risk, stop, STOP
    v[S_LIQ], v[S_LIQ_RATIO], v[S_LEVERAGE], v[S_STEP] = liq, liq_ratio, leverage, step
    v[S_BEST], v[S_WORST], v[S_MAX_QTY], v[S_FEES] = price, price, qty, paid
    v[S_LEGS], v[S_LEG_STOP], v[S_TICK] = 1.0, math.nan, tick
    if risk > 0.0:
        ladder_lots_into(tg[1], qty, rules.tp_frac, step)
    else:
        tg[1, :] = 0.0
    v[S_NEXT_TP] = _nearest_target(side, tg[0], tg[1])
    pos.legs[0, L_ENTRY], pos.legs[0, L_QTY], pos.legs[0, L_STOP] = price, qty, math.nan


@njit(cache=True, inline="always", _nrt=False)
def step_bar(pos, rules, costs, candles, inputs, i, forced, acts):
    """Live ``pos`` through bar ``i`` of ``candles`` (the entry bar first); returns the number
    of actions written to ``acts``. ``forced``: close at this bar's open whatever was decided
    (ignored on the entry bar)."""
    v = pos.vec
    bars = candles.bars
    side = int(v[S_SIDE])
    op, hi, lo = bars[i, OPEN], bars[i, HIGH], bars[i, LOW]
    n = 0
    if v[S_BARS] > 0.0:
        action = FORCED if forced else int(v[S_PENDING])
        v[S_PENDING] = 0.0
        if action != 0:
            n = _at_open(pos, rules.scalars, costs, side, action, op, bars[i, VOLUME], hi, lo,
                         acts, n)  # fmt: skip
    if (
        v[S_QTY] > 0.0
        and v[S_BARS] >= rules.scalars[P_STOP_DELAY]
        and _reached(
            side, op, hi, lo, tighter(side, v[S_STOP], v[S_LEG_STOP]), v[S_LIQ], v[S_NEXT_TP]
        )
    ):
        n = _bar_exits(pos, side, candles, i, costs, acts, n)
    _excursions(v, side, op, hi, lo, acts, n)
    if v[S_QTY] > 0.0:
        n = _at_close(pos, rules, side, bars[i, CLOSE], bars[i, ATR], inputs, i, acts, n)
    v[S_BARS] += 1.0
    return n


@njit(cache=True, _nrt=False)
def step_price(pos, rules, costs, price, forced, acts):
    """Live ``pos`` through one traded ``price`` between closes: the decision of the last close
    (or ``forced``) is carried out at it, then the stops, targets and liquidation it reaches
    fill there. A market fill slips with the costs' base slippage (no bar bounds it, no volume
    is known). Returns the number of actions written to ``acts``."""
    v = pos.vec
    side = int(v[S_SIDE])
    n = 0
    action = FORCED if forced else int(v[S_PENDING])
    v[S_PENDING] = 0.0
    if action != 0:
        n = _at_open(pos, rules.scalars, costs, side, action, price, 0.0, math.inf, -math.inf,
                     acts, n)  # fmt: skip
    if v[S_QTY] > 0.0 and v[S_BARS] >= rules.scalars[P_STOP_DELAY]:
        n, last = _exits_in(pos, side, price, price, price, 0.0, math.inf, -math.inf, costs,
                            acts, n, 0)  # fmt: skip
        v[S_NEXT_TP] = _nearest_target(side, pos.targets[0], pos.targets[1])
        if v[S_QTY] <= 0.0:
            v[S_REASON] = last
    _excursions(v, side, price, price, price, acts, n)
    return n


@njit(cache=True, inline="always", _nrt=False)
def _excursions(v, side, op, hi, lo, acts, n):
    """The best and worst prices seen while the position was held: the whole bar while it is
    still open after it; in the bar it ends in, its open and its exit fills, not beyond (its
    whole range would count prices after the position was gone)."""
    if v[S_QTY] > 0.0:
        v[S_BEST], v[S_WORST] = _extremes(side, hi, lo, v[S_BEST], v[S_WORST])
        return
    best, worst = _extremes(side, op, op, v[S_BEST], v[S_WORST])
    for a in range(n):
        if acts[a, A_KIND] <= ACT_CLOSE_LEG:
            price = acts[a, A_PRICE]
            best, worst = _extremes(side, price, price, best, worst)
    v[S_BEST], v[S_WORST] = best, worst


@njit(cache=True, inline="always", _nrt=False)
def _at_close(pos, rules, side, close, atr, inputs, i, acts, n):
    """Breakeven and the trail (from the next bar on), then the decision for the next open."""
    v, p = pos.vec, rules.scalars
    r_best = r_multiple(side, v[S_ENTRY], v[S_RISK], v[S_BEST])
    stop = v[S_STOP]
    if r_best >= p[P_BREAKEVEN_R]:
        moved = tighter(side, stop, on_tick(side, v[S_AVG], v[S_TICK], True))
        if moved != stop:
            stop = moved
            n = _move_stop(v, side, moved, BREAKEVEN, acts, n)
    if rules.trail_r.shape[0] > 0:
        mult = trail_multiple(r_best, rules.trail_r, rules.trail_mult)
        mult = weakened(mult, inputs.weak[i], p[P_WEAK_MULT])
        level = on_tick(side, trail_stop(side, v[S_BEST], atr, mult), v[S_TICK], True)
        moved = tighter(side, stop, level)
        if moved != stop:
            n = _move_stop(v, side, moved, TRAIL, acts, n)
    kind = (
        _strategy_exit(inputs.exits, rules.exit_kinds, i, side) if rules.exit_kinds.shape[0] else 0
    )
    pending = 0
    if p[P_EXIT_ON_SIGNAL] > 0.0 and inputs.signal[i] == -side:
        pending = SIGNAL
    elif kind > 0:
        pending = kind
    elif time_stopped(p[P_TIME_BARS], int(v[S_BARS]) + 1, r_best, p[P_TIME_UNTIL_R]):
        pending = TIME
    elif (
        v[S_ADDS] < p[P_SCALE_MAX]
        and margin_profit_pct(side, pos.legs[int(v[S_LEGS]) - 1, L_ENTRY], close, v[S_LEVERAGE])
        >= p[P_SCALE_TRIGGER]
    ):
        pending = SCALE_IN
    if pending != 0:
        v[S_PENDING] = pending
        n = _act(acts, n, ACT_NEXT_OPEN, pending, side if pending == SCALE_IN else -side,
                 v[S_QTY], math.nan, 0.0)  # fmt: skip
    return n


@njit(cache=True, _nrt=False)
def _move_stop(v, side, level, reason, acts, n):
    v[S_STOP], v[S_STOP_KIND] = level, reason
    return _act(acts, n, ACT_MOVE_STOP, reason, -side, v[S_QTY], level, 0.0)


@njit(cache=True, _nrt=False)
def _act(acts, n, kind, reason, side, qty, price, paid):
    acts[n, A_KIND], acts[n, A_REASON], acts[n, A_SIDE] = kind, reason, side
    acts[n, A_QTY], acts[n, A_PRICE], acts[n, A_FEE] = qty, price, paid
    return n + 1


@njit(cache=True, _nrt=False)
def _reduce(v, side, qty, price, rate, acts, n, kind, reason):
    """Close ``qty`` of the position at ``price``, paying ``rate`` on the notional (profit booked
    against the average entry, as an exchange books a one-way position)."""
    paid = fee(price, qty, rate)
    v[S_REALISED] += side * (price - v[S_AVG]) * qty
    v[S_FEES] += paid
    v[S_QTY] -= qty
    if v[S_QTY] <= DUST * max(1.0, qty):
        v[S_QTY] = 0.0
    v[S_EXIT_VALUE] += price * qty
    v[S_EXIT_QTY] += qty
    return _act(acts, n, kind, reason, -side, qty, price, paid)


@njit(cache=True, _nrt=False)
def _at_open(pos, p, costs, side, action, op, volume, fill_hi, fill_lo, acts, n):
    """What was decided at the last close, at market at ``op``: a scale-in, else a close of
    everything (its reason the decision's). ``fill_hi``/``fill_lo`` bound a slipped fill."""
    v = pos.vec
    bps = slippage_bps(costs[C_SLIPPAGE], v[S_QTY], volume, costs[C_SLIPPAGE_VOLUME])
    if action == SCALE_IN:
        return _scale_in(pos, p, costs, side, op, bps, fill_hi, fill_lo, acts, n)
    px = market_fill(op, -side, bps, fill_hi, fill_lo)
    qty = v[S_QTY]
    n = _reduce(v, side, qty, px, costs[C_TAKER], acts, n, ACT_CLOSE, action)
    if v[S_ADDS] > 0.0:
        _take_oldest(pos, side, qty)
    v[S_REASON], v[S_AT_OPEN] = action, 1.0
    return n


@njit(cache=True, _nrt=False)
def _scale_in(pos, p, costs, side, op, bps, fill_hi, fill_lo, acts, n):
    """The position-manager rule (``manage.policy``): a new leg with the first leg's margin x
    ``add_size_mult`` (sized at ``op``, where the order is sent), ``close_original_frac`` of
    the leg that triggered closed, that leg's own stop to its entry."""
    v, legs = pos.vec, pos.legs
    count = int(v[S_LEGS])
    k = count - 1
    if v[S_ADDS] == 0.0:
        legs[0, L_QTY] = v[S_QTY]  # targets may have taken from it; kept per leg from here on
    step = v[S_STEP]
    add = lot(p[P_SCALE_ADD] * v[S_FIRST_QTY] * v[S_ENTRY] / op, step)
    cut = lot(p[P_SCALE_CLOSE] * legs[k, L_QTY], step)
    if add > 0.0:
        px = market_fill(op, side, bps, fill_hi, fill_lo)
        paid = fee(px, add, costs[C_TAKER])
        q = v[S_QTY]
        v[S_AVG] = (v[S_AVG] * q + px * add) / (q + add)
        v[S_QTY] += add
        v[S_FEES] += paid
        v[S_MAX_QTY] = max(v[S_MAX_QTY], v[S_QTY])
        legs[count, L_ENTRY], legs[count, L_QTY], legs[count, L_STOP] = px, add, math.nan
        v[S_LEGS] = count + 1
        n = _act(acts, n, ACT_ADD, SCALE_IN, side, add, px, paid)
    if cut > 0.0:
        px = market_fill(op, -side, bps, fill_hi, fill_lo)
        n = _reduce(v, side, cut, px, costs[C_TAKER], acts, n, ACT_SCALE_OUT, SCALE_OUT)
        legs[k, L_QTY] = max(legs[k, L_QTY] - cut, 0.0)
    if p[P_SCALE_BE] > 0.0 and legs[k, L_QTY] > 0.0:
        legs[k, L_STOP] = on_tick(side, legs[k, L_ENTRY], v[S_TICK], True)
        n = _act(acts, n, ACT_MOVE_LEG_STOP, BREAKEVEN, -side, legs[k, L_QTY], legs[k, L_STOP],
                 0.0)  # fmt: skip
    v[S_LEG_STOP] = _tightest_leg_stop(pos, side)
    v[S_LIQ] = v[S_AVG] * v[S_LIQ_RATIO]
    v[S_ADDS] += 1.0
    if v[S_QTY] <= 0.0:
        v[S_REASON] = SCALE_OUT
    return n


@njit(cache=True, _nrt=False)
def _tightest_leg_stop(pos, side):
    """The tightest own stop of a leg still held (NaN: none)."""
    out = math.nan
    legs = pos.legs
    for j in range(int(pos.vec[S_LEGS])):
        if legs[j, L_QTY] > 0.0:
            out = tighter(side, out, legs[j, L_STOP])
    return out


@njit(cache=True, _nrt=False)
def _take_oldest(pos, side, qty):
    """An exit's ``qty`` taken from the legs, oldest first (the ladder is the first leg's; the
    position's stop and the exits at the open take everything)."""
    legs = pos.legs
    for j in range(int(pos.vec[S_LEGS])):
        take = min(qty, legs[j, L_QTY])
        legs[j, L_QTY] -= take
        qty -= take
        if qty <= 0.0:
            break
    pos.vec[S_LEG_STOP] = _tightest_leg_stop(pos, side)


@njit(cache=True, _nrt=False)
def _bar_exits(pos, side, candles, i, costs, acts, n):
    """Exits during bar i; an ambiguous bar with detail bars is lived through them instead."""
    v, tg = pos.vec, pos.targets
    bars = candles.bars
    op, hi, lo, vol = bars[i, OPEN], bars[i, HIGH], bars[i, LOW], bars[i, VOLUME]
    start, end = candles.span[i, 0], candles.span[i, 1]
    near = tighter(side, v[S_STOP], v[S_LEG_STOP])
    last = 0
    if end > start and _ambiguous(side, op, hi, lo, near, v[S_LIQ], tg[0], tg[1]):
        detail = candles.detail
        for j in range(start, end):
            if v[S_QTY] <= 0.0:
                break
            n, last = _exits_in(pos, side, detail[j, 0], detail[j, 1], detail[j, 2], vol,
                                detail[j, 1], detail[j, 2], costs, acts, n, last)  # fmt: skip
    else:
        n, last = _exits_in(pos, side, op, hi, lo, vol, hi, lo, costs, acts, n, last)
    v[S_NEXT_TP] = _nearest_target(side, tg[0], tg[1])
    if v[S_QTY] <= 0.0:
        v[S_REASON] = last
    return n


@njit(cache=True, _nrt=False)
def _exits_in(pos, side, op, hi, lo, vol, fill_hi, fill_lo, costs, acts, n, last):
    """The exits of one (detail) bar; returns (actions count, reason of the last exit).

    With legs holding their own stops (after a scale-in) the bar is lived in three parts, stop
    first as ever: its open (gaps through the position's stop or beyond targets), the legs'
    stops it reaches, tightest first, then the rest of the bar (the position's stop, else
    targets)."""
    v, tg = pos.vec, pos.targets
    through = costs[C_THROUGH] > 0.0
    if math.isnan(v[S_LEG_STOP]):
        m = exits_in_bar(side, op, hi, lo, v[S_QTY], v[S_STOP], v[S_LIQ], tg[0], tg[1], through,
                         pos.events)  # fmt: skip
        return _book(pos, side, m, vol, fill_hi, fill_lo, costs, acts, n, last)
    m = exits_in_bar(side, op, op, op, v[S_QTY], v[S_STOP], v[S_LIQ], tg[0], tg[1], through,
                     pos.events)  # fmt: skip
    n, last = _book(pos, side, m, vol, fill_hi, fill_lo, costs, acts, n, last)
    if v[S_QTY] > 0.0:
        n, last = _leg_stops(pos, side, op, hi, lo, vol, fill_hi, fill_lo, costs, acts, n, last)
    if v[S_QTY] > 0.0:
        m = exits_in_bar(side, op, hi, lo, v[S_QTY], v[S_STOP], v[S_LIQ], tg[0], tg[1], through,
                         pos.events)  # fmt: skip
        n, last = _book(pos, side, m, vol, fill_hi, fill_lo, costs, acts, n, last)
    return n, last


@njit(cache=True, _nrt=False)
def _leg_stops(pos, side, op, hi, lo, vol, fill_hi, fill_lo, costs, acts, n, last):
    """Each leg whose own stop the bar reaches closes there (at the open when it gapped beyond),
    tightest first: a BREAKEVEN fill of that leg's quantity, at market from the trigger. A leg
    stop no tighter than the position's stop is left to it: the price meets the position's stop
    first, and that closes every leg (as a venue holding both stops fills them)."""
    v, legs = pos.vec, pos.legs
    while v[S_QTY] > 0.0:
        hit, trigger = -1, math.nan
        for j in range(int(v[S_LEGS])):
            level = legs[j, L_STOP]
            if legs[j, L_QTY] <= 0.0 or math.isnan(level) or (level - v[S_STOP]) * side <= 0.0:
                continue
            price = stop_trigger(-side, level, op, hi, lo)
            if not math.isnan(price) and (hit < 0 or (level - legs[hit, L_STOP]) * side > 0.0):
                hit, trigger = j, price
        if hit < 0:
            break
        qty = min(legs[hit, L_QTY], v[S_QTY])
        px, rate = exit_fill(STOP, trigger, -side, qty, vol, fill_hi, fill_lo, costs)
        n = _reduce(v, side, qty, px, rate, acts, n, ACT_CLOSE_LEG, BREAKEVEN)
        legs[hit, L_QTY] = 0.0
        last = BREAKEVEN
    v[S_LEG_STOP] = _tightest_leg_stop(pos, side)
    return n, last


@njit(cache=True, _nrt=False)
def _book(pos, side, m, vol, fill_hi, fill_lo, costs, acts, n, last):
    """Book the ``m`` exits ``exits_in_bar`` wrote to ``pos.events``, priced by
    ``fills.model.exit_fill``; returns (actions count, reason of the last exit)."""
    v, events = pos.vec, pos.events
    for e in range(m):
        kind, price, qty = int(events[e, 0]), events[e, 1], events[e, 2]
        px, rate = exit_fill(kind, price, -side, qty, vol, fill_hi, fill_lo, costs)
        if kind == TARGET:
            last = TARGET
            n = _reduce(v, side, qty, px, rate, acts, n, ACT_TAKE, TARGET)
        else:
            last = int(v[S_STOP_KIND]) if kind == STOP else kind
            n = _reduce(v, side, qty, px, rate, acts, n, ACT_CLOSE, last)
        if v[S_ADDS] > 0.0:  # legs are kept from the first scale-in on
            _take_oldest(pos, side, qty)
    return n, last


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False)
def _nearest_target(side, tp_px, tp_q):
    """The resting take-profit nearest the price (NaN when none is left)."""
    out = math.nan
    for j in range(tp_px.shape[0]):
        if tp_q[j] > 0.0 and (math.isnan(out) or (tp_px[j] - out) * side < 0.0):
            out = tp_px[j]
    return out


@njit(cache=True, _nrt=False)
def _extremes(side, hi, lo, best, worst):
    """The best and worst prices for a ``side`` position after a bar ranging ``lo``..``hi``."""
    favourable, adverse = (hi, lo) if side > 0 else (lo, hi)
    if (favourable - best) * side > 0.0:
        best = favourable
    if (adverse - worst) * side < 0.0:
        worst = adverse
    return best, worst


@njit(cache=True, _nrt=False)
def _strategy_exit(exits, exit_kinds, i, side):
    """The reason of the first strategy exit raised against a ``side`` position at bar i's
    close (0: none)."""
    bit = 1 if side > 0 else 2
    for c in range(exit_kinds.shape[0]):
        if exits[i, c] & bit:
            return exit_kinds[c]
    return 0
