"""The compiled trade loop: one position from its entry fill to its last exit, bar by bar.

``run_trade`` opens a position (``manage.step.open_position``) and calls the position state
machine, ``manage.step.step_bar``, on each bar (compiled inline: the rules exist once, in
``manage/``, and cost nothing extra per bar). The loop itself books what is the account's, not
the position's: funding at each bar's open, the step's fills as fill rows, the mark-to-market
PnL per bar (added into ``pnl``) and the trade's row. ``run_signals`` chains trades of a fixed
quantity over a signal array entirely in compiled code; the portfolio driver sizes each through
the risk engine in Python and steps the open ones in time with its own moments (``open_trade``,
``advance``, ``write_row``), so a circuit breaker's forced close is the step's own input.

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
(2-4 are ``manage.step.step_bar``; its docstring says each in full.)

Per bar, besides the candles, the loop reads what the strategy's bars said at each close
(``manage.step.Inputs``): ``signal`` (the side it signalled), ``exits`` (one column per
strategy exit of the policy, ``Rules.exit_kinds``: bit 1 closes longs, bit 2 shorts) and
``weak`` (the trend weakens: the trail takes its weak-trend multiple).

An entry is a market fill at bar i0's open, made by the caller. A position still open after the
last bar is marked at the last close with no exit fill and no exit fee.
"""

import math
from collections import namedtuple

import numpy as np

from cryptobot.core.jit import njit
from cryptobot.fills.costs import C_TAKER
from cryptobot.fills.model import ENTRY, beyond, fee, funding_cash, market_order_fill
from cryptobot.manage.policy import Rules, r_multiple
from cryptobot.manage.step import (  # noqa: F401  (bar columns: re-exported)
    A_FEE,
    A_KIND,
    A_PRICE,
    A_QTY,
    A_REASON,
    A_SIDE,
    ACT_CLOSE_LEG,
    ATR,
    BAR_COLUMNS,
    CLOSE,
    HIGH,
    LOW,
    OPEN,
    S_ADDS,
    S_AT_OPEN,
    S_AVG,
    S_BARS,
    S_BEST,
    S_EXIT_QTY,
    S_EXIT_VALUE,
    S_FEES,
    S_MAX_QTY,
    S_QTY,
    S_REALISED,
    S_REASON,
    S_RISK,
    S_WORST,
    VOLUME,
    Candles,
    Inputs,
    PositionState,
    new_actions,
    new_state,
    open_position,
    step_bar,
)
from cryptobot.risk.cooldown import allowed_after
from cryptobot.risk.stops import initial_stop

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

#: a market entry at bar ``bar``'s open: ``side`` +1/-1, ``qty`` base units filled at ``price``,
#: the initial ``stop`` (NaN: none), the liquidation price as a ratio of the average entry
#: (NaN: none), the ``leverage`` the scale-in's ROE reads, the market's quantity ``step`` and
#: price ``tick`` (0: none; stops and targets sit on it, ``manage.ticks``)
Entry = namedtuple(
    "Entry", ["bar", "side", "qty", "price", "stop", "liq_ratio", "leverage", "step", "tick"]
)
#: where trades write: PnL per bar, trade rows, fill rows
Books = namedtuple("Books", ["pnl", "trades", "fills"])
#: ``run_signals``' fixed-quantity trading: ``qty`` units on every eligible signal of bars
#: ``start``..``end`` (exclusive), ``cooldown_bars`` after a loss, stops and targets on ``tick``
Units = namedtuple("Units", ["qty", "leverage", "step", "start", "end", "cooldown_bars", "tick"])


def entry_of(
    *,
    bar: int,
    side: int,
    qty: float,
    price: float,
    stop: float,
    liq_ratio: float = math.nan,
    leverage: float = 1.0,
    step: float = 0.0,
    tick: float = 0.0,
) -> Entry:
    """An ``Entry`` with the types the compiled loop is compiled for (one specialisation)."""
    return Entry(int(bar), int(side), float(qty), float(price), float(stop), float(liq_ratio),
                 float(leverage), float(step), float(tick))  # fmt: skip


@njit(cache=True, _nrt=False)
def _fill(fills, nf, k, bar, kind, side, qty, price, paid):
    fills[nf, F_TRADE], fills[nf, F_BAR], fills[nf, F_KIND] = k, bar, kind
    fills[nf, F_SIDE], fills[nf, F_QTY], fills[nf, F_PRICE], fills[nf, F_FEE] = (
        side,
        qty,
        price,
        paid,
    )
    return nf + 1


@njit(cache=True, _nrt=False)
def run_trade(candles, inputs, rules, costs, entry, end_bar, pos, acts, books, k, nf):
    """Live one position (``entry``) to its end, closing it at bar ``end_bar``'s open if it gets
    there; writes trade row ``k`` and fills from row ``nf`` of ``books``, and returns the new
    fills count. ``pos``/``acts``: the position's buffers (``manage.step.new_state``,
    ``new_actions``), reused from trade to trade."""
    nf = open_trade(rules, costs, entry, pos, books, k, nf)
    last = candles.bars.shape[0] - 1
    nf, paid_funding, _, exit_bar = advance(candles, inputs, rules, costs, entry, end_bar, pos,
                                            acts, books, k, nf, last, 0.0, 0.0)  # fmt: skip
    write_row(books.trades[k], pos.vec, entry, candles.bars, exit_bar, paid_funding)
    return nf


@njit(cache=True, _nrt=False)
def open_trade(rules, costs, entry, pos, books, k, nf):
    """Open ``pos`` at ``entry``'s fill (the taker fee on it) and book that fill as row ``nf``
    of trade ``k``; returns the new fills count."""
    side, qty, price = entry.side, entry.qty, entry.price
    paid = fee(price, qty, costs[C_TAKER])
    open_position(pos, rules, side, qty, price, paid, entry.stop, entry.liq_ratio,
                  entry.leverage, entry.step, entry.tick)  # fmt: skip
    return _fill(books.fills, nf, k, entry.bar, ENTRY, side, qty, price, paid)


@njit(cache=True, _nrt=False)
def advance(candles, inputs, rules, costs, entry, end_bar, pos, acts, books, k, nf, upto,
            paid_funding, marked):  # fmt: skip
    """Live the open position ``pos`` of trade ``k`` from the bar after the last one it lived
    (its entry bar first) through bar ``upto``, or until it ends; at bar ``end_bar``'s open it
    is closed (forced). ``paid_funding``/``marked``: the funding booked and the value marked so
    far. Returns (fills count, funding booked, value marked, exit bar or -1 while open)."""
    bars, funding, fills = candles.bars, candles.funding, books.fills
    i0, side = entry.bar, entry.side
    v = pos.vec
    exit_bar = -1
    for i in range(i0 + int(v[S_BARS]), min(upto + 1, bars.shape[0])):
        if i > i0:
            rate = funding[i, 0]
            if rate != 0.0:
                mark = funding[i, 1] if not math.isnan(funding[i, 1]) else bars[i - 1, CLOSE]
                paid_funding += funding_cash(side, v[S_QTY], mark, rate)
        m = step_bar(pos, rules, costs, candles, inputs, i, i >= end_bar, acts)
        for a in range(m):
            if acts[a, A_KIND] <= ACT_CLOSE_LEG:
                nf = _fill(fills, nf, k, i, acts[a, A_REASON], acts[a, A_SIDE], acts[a, A_QTY],
                           acts[a, A_PRICE], acts[a, A_FEE])  # fmt: skip
        value = (
            v[S_REALISED] - v[S_FEES] + paid_funding + side * (bars[i, CLOSE] - v[S_AVG]) * v[S_QTY]
        )
        books.pnl[i] += value - marked
        marked = value
        if v[S_QTY] <= 0.0:
            exit_bar = i
            break
    return nf, paid_funding, marked, exit_bar


@njit(cache=True, _nrt=False)
def write_row(row, v, entry, bars, exit_bar, paid_funding):
    """The trade's row from its position state; a position still open (``exit_bar`` -1) is
    marked at the last bar's close."""
    still_open = exit_bar < 0
    last_bar = bars.shape[0] - 1 if still_open else exit_bar
    side, qty, price, risk = entry.side, entry.qty, entry.price, v[S_RISK]
    unrealised = side * (bars[last_bar, CLOSE] - v[S_AVG]) * v[S_QTY]
    gross = v[S_REALISED] + unrealised
    row[T_ENTRY_BAR], row[T_SIDE], row[T_QTY], row[T_ENTRY_PX] = entry.bar, side, qty, price
    # the initial stop (none for a position without one, whose R comes from the policy)
    row[T_STOP] = price - side * risk if not math.isnan(entry.stop) else math.nan
    row[T_RISK], row[T_EXIT_BAR] = risk, last_bar
    row[T_EXIT_PX] = bars[last_bar, CLOSE] if still_open else v[S_EXIT_VALUE] / v[S_EXIT_QTY]
    row[T_GROSS], row[T_FEES], row[T_FUNDING] = gross, v[S_FEES], paid_funding
    row[T_NET] = gross - v[S_FEES] + paid_funding
    row[T_R] = row[T_NET] / (risk * qty) if risk > 0.0 else math.nan
    row[T_REASON], row[T_MAX_QTY], row[T_ADDS] = v[S_REASON], v[S_MAX_QTY], v[S_ADDS]
    row[T_MFE_R] = r_multiple(side, price, risk, v[S_BEST])
    row[T_MAE_R] = r_multiple(side, price, risk, v[S_WORST])
    row[T_LIQ], row[T_OPEN] = price * entry.liq_ratio, still_open
    row[T_EXIT_AT_OPEN] = v[S_AT_OPEN]


def live_trade(*, candles: Candles, inputs: Inputs, rules: Rules, costs: np.ndarray,
               entry: Entry, end_bar: int, books: Books, row: int, fills_at: int,
               pos: PositionState | None = None,
               acts: np.ndarray | None = None) -> int:  # fmt: skip
    """``run_trade`` from Python: trade row ``row``, fills from row ``fills_at``; returns the
    new fills count. The position's buffers are made for it unless given."""
    pos = new_state(rules) if pos is None else pos
    acts = new_actions(rules) if acts is None else acts
    return run_trade(candles, inputs, rules, costs, entry, int(end_bar), pos, acts, books,
                     int(row), int(fills_at))  # fmt: skip


def advance_trade(*, candles: Candles, inputs: Inputs, rules: Rules, costs: np.ndarray,
                  entry: Entry, end_bar: int, pos: PositionState, acts: np.ndarray, books: Books,
                  row: int, fills_at: int, upto: int, funding: float,
                  marked: float) -> tuple[int, float, float, int]:  # fmt: skip
    """``advance`` from Python (the portfolio steps its open positions in time with its own
    moments): (fills count, funding booked, value marked, exit bar or -1)."""
    nf, paid, value, exit_bar = advance(candles, inputs, rules, costs, entry, int(end_bar), pos,
                                        acts, books, int(row), int(fills_at), int(upto),
                                        float(funding), float(marked))  # fmt: skip
    return int(nf), float(paid), float(value), int(exit_bar)


@njit(cache=True, _nrt=False)
def entry_fill(bars, i0, side, qty, costs):
    """Price of a market entry at bar ``i0``'s open, slippage against the order (inside the
    bar's range)."""
    op, hi, lo, vol = bars[i0, OPEN], bars[i0, HIGH], bars[i0, LOW], bars[i0, VOLUME]
    return market_order_fill(op, side, qty, vol, hi, lo, costs)


@njit(cache=True, _nrt=False)
def next_signal_bar(trade):
    """First signal bar whose entry (at the next open) may follow this trade: a trade closed at a
    bar's open makes room for a signal at the close before (a reversal); one closed during the
    bar, for a signal at that bar's close."""
    exit_bar = int(trade[T_EXIT_BAR])
    return exit_bar - 1 if trade[T_EXIT_AT_OPEN] > 0.0 else exit_bar


@njit(cache=True, _nrt=False)
def run_signals(candles, inputs, stop_price, stop_distance, rules, costs, units, pos, acts, books):
    """Trades of ``units.qty`` on every eligible signal between bars ``units.start`` and
    ``units.end`` (exclusive): a signal at the close of bar t enters at bar t+1's open, when
    flat or when the position it reverses closes at that same open. Returns (trades, fills)
    counts."""
    k, nf, allowed = 0, 0, units.start
    sig, trades = inputs.signal, books.trades
    for t in range(units.start, units.end - 1):
        side = np.int64(sig[t])  # the type entry_of gives: one specialisation
        if side == 0 or t < allowed:
            continue
        i0 = t + 1
        px = entry_fill(candles.bars, i0, side, units.qty, costs)
        stop = initial_stop(side, px, stop_price[t], stop_distance[t])
        if beyond(side, px, stop):
            continue  # the entry would fill beyond its own stop
        entry = Entry(i0, side, units.qty, px, stop, math.nan, units.leverage, units.step,
                      units.tick)  # fmt: skip
        nf = run_trade(candles, inputs, rules, costs, entry, units.end, pos, acts, books, k, nf)
        k += 1
        if trades[k - 1, T_OPEN] > 0.0:
            break
        last = trades[k - 1]
        allowed = allowed_after(next_signal_bar(last), last[T_NET], int(last[T_EXIT_BAR]),
                                units.cooldown_bars)  # fmt: skip
    return k, nf
