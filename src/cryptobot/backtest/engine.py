"""Running the compiled loop: costs, signals, buffers, and the trades/fills/equity tables.

``run_units`` trades a fixed quantity on every eligible signal of one symbol, entirely in
compiled code (the reference strategy, sweeps). The portfolio driver (``portfolio``) sizes each
trade through the risk engine instead; both live every trade through ``kernel.run_trade``, which
steps the position with ``manage.step.step_bar``.

Trades, fills and equity are Arrow tables (``trade_table``, ``fill_table``, ``equity_table``):
the CLI prints, records and writes them without pandas, whose import and frame building were
0.2 s of a million-bar backtest. ``trades_frame`` and ``fills_frame`` are the same tables as
pandas frames, for callers that compute with pandas.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import SymbolBars
from cryptobot.data.arrow import numbers, text
from cryptobot.fills.costs import Costs
from cryptobot.fills.model import KIND_NAMES
from cryptobot.manage.policy import Policy
from cryptobot.manage.step import Candles, Inputs, new_actions, new_state

if TYPE_CHECKING:
    import pandas as pd

TRADE_FLOATS = ("qty", "entry_price", "stop", "risk", "exit_price", "gross", "fees", "funding",
                "net", "r", "max_qty", "mfe_r", "mae_r", "liquidation_price")  # fmt: skip


@dataclass(frozen=True)
class Signals:
    """Per bar of one symbol, what the strategy said at its close: the side signalled (+1/-1/0)
    and the stop of that entry, as a price (``stop_price``) or as a distance from the entry fill
    (``stop_distance``), NaN where none; ``exits`` (one uint8 column per strategy exit of the
    policy, ``Policy.exit_kinds``: bit 1 closes longs, bit 2 shorts) and ``weak`` (the trend
    weakens: a trail takes ``Policy.weak_trail_mult``); ``anchor``: the anchor time of the setup
    behind each signal (part of its id, so the backtest's client order id is the live one; -1
    or None: the signal's own bar)."""

    side: np.ndarray
    stop_price: np.ndarray
    stop_distance: np.ndarray
    exits: np.ndarray
    weak: np.ndarray
    anchor: np.ndarray | None = None

    @classmethod
    def of(cls, side: np.ndarray, *, stop_price=None, stop_distance=None, exits=None,
           weak=None, anchor=None) -> "Signals":  # fmt: skip
        n = len(side)
        none = np.full(n, np.nan)
        return cls(
            np.ascontiguousarray(side, dtype=np.int8),
            none if stop_price is None else np.ascontiguousarray(stop_price, dtype=np.float64),
            none if stop_distance is None else np.ascontiguousarray(stop_distance, np.float64),
            np.zeros((n, 0), np.uint8) if exits is None else np.ascontiguousarray(exits, np.uint8),
            np.zeros(n, np.bool_) if weak is None else np.ascontiguousarray(weak, np.bool_),
            None if anchor is None else np.ascontiguousarray(anchor, np.int64),
        )

    def inputs(self) -> Inputs:
        """What the position's step reads at each close."""
        return Inputs(self.side, self.exits, self.weak)

    def checked(self, policy: Policy) -> "Signals":
        """These signals, refused when their exit columns are not the ones ``policy`` reads (the
        compiled loop indexes them without a bounds check)."""
        if self.exits.shape[1] != policy.exit_kinds.shape[0]:
            raise ValueError(
                f"the signals carry {self.exits.shape[1]} strategy exit columns, the policy "
                f"reads {policy.exit_kinds.shape[0]}"
            )
        return self


@dataclass(frozen=True)
class SymbolRun:
    """What one symbol's trades left: trade rows, fill rows and PnL per bar (kernel layout)."""

    bars: SymbolBars
    trades: np.ndarray
    fills: np.ndarray
    pnl: np.ndarray

    def trade_table(self) -> pa.Table:
        return trade_table(self.bars, self.trades)

    def fill_table(self) -> pa.Table:
        return fill_table(self.bars, self.fills)

    def trades_frame(self) -> "pd.DataFrame":
        return self.trade_table().to_pandas()

    def fills_frame(self) -> "pd.DataFrame":
        return self.fill_table().to_pandas()


def run_units(
    sb: SymbolBars,
    signals: Signals,
    *,
    qty: float,
    policy: Policy,
    costs: Costs,
    start: int = 0,
    end: int | None = None,
    cooldown_bars: int = 0,
    leverage: float = 1.0,
    step: float = 0.0,
    tick: float = 0.0,
) -> SymbolRun:
    """Trades of ``qty`` units on the signals of bars ``start:end`` (end of data by default);
    ``leverage`` only scales the profit on margin a scale-in rule looks at; partial exits and
    scale-ins are rounded down to ``step``, stops and targets put on ``tick`` (0: not
    rounded)."""
    n = len(sb)
    end = n if end is None else end
    signals = signals.checked(policy)
    capacity = max(1, int(np.count_nonzero(signals.side[start:end])))
    trades = np.zeros((capacity, len(kernel.TRADE_COLUMNS)))
    fills = np.zeros((capacity * policy.max_fills, len(kernel.FILL_COLUMNS)))
    pnl = np.zeros(n)
    rules = policy.rules()
    units = kernel.Units(float(qty), float(leverage), float(step), int(start), int(end),
                         int(cooldown_bars), float(tick))  # fmt: skip
    k, nf = kernel.run_signals(
        candles_of(sb), signals.inputs(), signals.stop_price, signals.stop_distance, rules,
        costs.array(), units, new_state(rules), new_actions(rules),
        kernel.Books(pnl, trades, fills),
    )  # fmt: skip
    return SymbolRun(sb, trades[:k], fills[:nf], pnl)


def candles_of(sb: SymbolBars) -> Candles:
    """One symbol's arrays as the compiled loop reads them."""
    return Candles(sb.bars, sb.funding, sb.detail, sb.span)


def trade_table(sb: SymbolBars, rows: np.ndarray) -> pa.Table:
    """One symbol's trade rows (kernel layout) as the trade list: times, not bars; names, not
    codes. A fill inside a bar is stamped with the bar's open time (its moment is unknown)."""
    t = {name: rows[:, i] for i, name in enumerate(kernel.TRADE_COLUMNS)}
    entry, exit_ = t["entry_bar"].astype(np.int64), t["exit_bar"].astype(np.int64)
    still_open = t["open"] > 0
    reasons = np.where(still_open, len(_KINDS), _kind_codes(t["reason"]))
    return pa.table(
        {
            "symbol": text(np.zeros(len(rows), np.int8), [sb.symbol]),
            "side": text(t["side"] > 0, ["short", "long"]),
            "entry_time": numbers(sb.timestamps[entry]),
            "exit_time": numbers(np.where(still_open, -1, sb.timestamps[exit_]).astype(np.int64)),
            **{c: floats(t[c]) for c in TRADE_FLOATS},
            "adds": numbers(t["adds"].astype(np.int64)),
            "reason": text(reasons, [*_KINDS, "open"]),
            "open": numbers(still_open),
            "bars_held": numbers(exit_ - entry + 1),
        }
    )


def trades_frame(sb: SymbolBars, rows: np.ndarray) -> "pd.DataFrame":
    return trade_table(sb, rows).to_pandas()


def fill_table(sb: SymbolBars, rows: np.ndarray) -> pa.Table:
    f = {name: rows[:, i] for i, name in enumerate(kernel.FILL_COLUMNS)}
    return pa.table(
        {
            "symbol": text(np.zeros(len(rows), np.int8), [sb.symbol]),
            "trade": numbers(f["trade"].astype(np.int64)),
            "time": numbers(sb.timestamps[f["bar"].astype(np.int64)]),
            "kind": kind_names(f["kind"]),
            "side": text(f["side"] > 0, ["sell", "buy"]),
            "qty": floats(f["qty"]),
            "price": floats(f["price"]),
            "fee": floats(f["fee"]),
        }
    )


def fills_frame(sb: SymbolBars, rows: np.ndarray) -> "pd.DataFrame":
    return fill_table(sb, rows).to_pandas()


#: the fill kinds by code (``fills.model.KIND_NAMES``), "?" for a code it lacks (also at 0)
_KINDS = ["?", *(KIND_NAMES.get(k, "?") for k in range(1, max(KIND_NAMES) + 1))]


def _kind_codes(codes: np.ndarray) -> np.ndarray:
    """Kernel kind codes as indices into ``_KINDS``: one it does not name is 0 ("?")."""
    index = codes.astype(np.int64)
    return np.where((index >= 0) & (index < len(_KINDS)), index, 0)


def kind_names(codes: np.ndarray) -> pa.Array:
    """The names of fill kinds (``fills.model.KIND_NAMES``; "?" for a code it lacks), looked up
    as one array: a Python loop over a million-bar run's fills took 0.02-0.05 s."""
    return text(_kind_codes(codes), _KINDS)


def equity_table(timestamps: np.ndarray, equity: np.ndarray) -> pa.Table:
    """Equity marked at each bar's close."""
    return pa.table({"timestamp": numbers(timestamps), "equity": floats(equity)})


def floats(values: np.ndarray) -> pa.Array:
    """A float column whose NaN (no stop, no R, still open) is stored as null, as the frames
    written through pandas always stored it (SQL readers see NULL, pandas reads NaN back)."""
    return numbers(np.asarray(values, dtype=np.float64), nan_is_null=True)
