"""One managed position, stepped a bar or a price event at a time: the plain-Python face of the
compiled position engine (``manage.step``) for ``manage``, the daemon and the simulated venues.

``Position.step_bar`` and ``Position.step_price`` call the very functions the backtest kernel
calls in its loop (no rule is written again here), so a position stepped bar by bar books the
fills the backtest books for the same trade. What this layer adds is what a live caller needs
and the compiled code does not check: refusal of bad input (a non-finite or inconsistent bar,
a bar not newer than the last, a price event older than the last, a zero quantity, a stop on
the wrong side) with one clear message, and the actions as records. The clock is the one the
caller passes in (the bar's open time, the event's time): nothing here reads the system clock.

Fills are priced by ``fills`` (market orders slip, stops trigger, targets rest), as the paper
and replay venues price them; a live venue's own fills will be fed back by the trade issue.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from cryptobot.core.errors import DataError
from cryptobot.fills.costs import C_TAKER, Costs
from cryptobot.fills.model import KIND_NAMES, beyond, fee
from cryptobot.manage.policy import Policy, Rules
from cryptobot.manage.step import (
    A_FEE,
    A_KIND,
    A_PRICE,
    A_QTY,
    A_REASON,
    A_SIDE,
    ACT_CLOSE_LEG,
    ACTION_NAMES,
    BAR_COLUMNS,
    L_ENTRY,
    L_QTY,
    L_STOP,
    S_ADDS,
    S_AVG,
    S_BARS,
    S_FEES,
    S_LEGS,
    S_PENDING,
    S_QTY,
    S_REALISED,
    S_REASON,
    S_RISK,
    S_STOP,
    Candles,
    Inputs,
    PositionState,
    new_actions,
    new_state,
    open_position,
    step_bar,
    step_price,
)


class PositionError(DataError):
    """A position or a step was given input it cannot act on."""


@dataclass(frozen=True)
class Bar:
    """One closed bar of the position's timeframe: ``ts`` its open time (ms, UTC), ``atr`` the
    ATR at its close (NaN while unknown: the trail waits)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    atr: float = math.nan


@dataclass(frozen=True)
class BarInputs:
    """What the strategy said at the bar's close: the side it signalled (+1/-1/0), one exit
    event per ``Policy.exit_kinds`` column (bit 1 closes longs, bit 2 shorts) and whether the
    trend weakens (the trail's weak-trend multiple)."""

    signal: int = 0
    exits: tuple[int, ...] = ()
    weak: bool = False


@dataclass(frozen=True)
class Action:
    """What the position did: ``kind`` (``manage.step.ACTION_NAMES``: add, scale_out,
    take_partial, close, close_leg, move_stop, move_leg_stop, next_open), its ``reason`` (a fill
    kind: target, stop, breakeven, trail, signal, time_stop, forced, scale_in, scale_out, ...),
    the order's ``side`` (buy/sell), ``qty``, ``price`` (a fill's price, a stop's new level;
    NaN for a decision) and ``fee``, at ``ts`` (the bar's open time or the event's time)."""

    kind: str
    reason: str
    side: str
    qty: float
    price: float
    fee: float
    ts: int

    @property
    def is_fill(self) -> bool:
        return self.kind in FILL_KINDS


FILL_KINDS = frozenset(ACTION_NAMES[k] for k in range(1, ACT_CLOSE_LEG + 1))


@dataclass
class Position:
    """A position under ``policy``, filled at ``costs``; make one with ``Position.open``."""

    policy: Policy
    costs: Costs
    side: int
    opened_at: int
    _state: PositionState = field(repr=False)
    _rules: Rules = field(repr=False)
    _costs: np.ndarray = field(repr=False)
    _acts: np.ndarray = field(repr=False)
    _last_bar: int | None = field(default=None, repr=False)
    _last_event: int = field(default=0, repr=False)

    @classmethod
    def open(
        cls,
        *,
        policy: Policy,
        costs: Costs,
        side: int | str,
        qty: float,
        price: float,
        ts: int,
        stop: float | None = None,
        liquidation: float | None = None,
        leverage: float = 1.0,
        step: float = 0.0,
        tick: float = 0.0,
        entry_fee: float | None = None,
    ) -> "Position":
        """A position of ``qty`` base units entered at ``price`` at ``ts`` (ms). ``stop``: its
        initial stop (None: opened by hand without one; then ``policy.manual_risk_pct`` or the
        ``liquidation`` distance is its R); ``leverage`` scales the ROE the scale-in reads;
        ``step``: the market's quantity step (partial exits and adds are whole steps);
        ``tick``: its price tick (stops and targets sit on it, ``manage.ticks``; 0: none);
        ``entry_fee``: what the entry paid (default: the taker fee on the notional)."""
        sign = _side(side)
        _time("ts", ts)
        _positive("qty", qty)
        _positive("price", price)
        _positive("leverage", leverage)
        if not (math.isfinite(step) and step >= 0):
            raise PositionError(f"step must be a finite number >= 0, got {step}")
        if not (math.isfinite(tick) and tick >= 0):
            raise PositionError(f"tick must be a finite number >= 0, got {tick}")
        if step > 0 and qty < step * (1 - 1e-9):
            raise PositionError(f"qty {qty} is less than one step of {step}")
        for name, level in (("stop", stop), ("liquidation", liquidation)):
            if level is not None:
                _positive(name, level)
                if beyond(sign, price, level):
                    where = "below" if sign > 0 else "above"
                    raise PositionError(f"a {_name(sign)}'s {name} must be {where} the entry "
                                        f"{price}, got {level}")  # fmt: skip
        arr = costs.array()
        paid = fee(price, qty, arr[C_TAKER]) if entry_fee is None else entry_fee
        _finite("entry_fee", paid)
        rules = policy.rules()
        state = new_state(rules)
        liq_ratio = math.nan if liquidation is None else liquidation / price
        open_position(state, rules, sign, float(qty), float(price), float(paid),
                      math.nan if stop is None else float(stop), liq_ratio, float(leverage),
                      float(step), float(tick))  # fmt: skip
        return cls(policy, costs, sign, int(ts), state, rules, arr, new_actions(rules),
                   _last_event=int(ts))  # fmt: skip

    # -- stepping ---------------------------------------------------------------------------
    def step_bar(self, bar: Bar, inputs: BarInputs = BarInputs(), *,
                 forced: bool = False) -> list[Action]:  # fmt: skip
        """Live the position through one closed bar (the entry bar first): the decision of the
        last close at its open (``forced``: close there whatever was decided, e.g. a circuit
        breaker; on the entry bar the open is the entry itself, so ``step_price(...,
        forced=True)`` closes at once), its stops and targets, then breakeven, the trail and
        the next decision at its close (``manage.step`` says the order)."""
        self._check_open()
        values = _bar_values(bar)
        if self._last_bar is not None and bar.ts <= self._last_bar:
            raise PositionError(
                f"bar at {bar.ts} is not newer than the last one stepped ({self._last_bar})"
            )
        exits = _exit_row(inputs, self.policy)
        candles = Candles(values, _NO_FUNDING, _NO_DETAIL, _NO_SPAN)
        row = Inputs(np.array([_signal(inputs.signal)], np.int8), exits,
                     np.array([bool(inputs.weak)]))  # fmt: skip
        n = step_bar(self._state, self._rules, self._costs, candles, row, 0, bool(forced),
                     self._acts)  # fmt: skip
        self._last_bar = int(bar.ts)
        return self._actions(n, int(bar.ts))

    def step_price(self, price: float, ts: int, *, forced: bool = False) -> list[Action]:
        """Live the position through one traded price at ``ts``: the decision of the last close
        (or ``forced``) is carried out at it, then stops, legs' stops, targets and the
        liquidation price it reaches fill there. Breakeven, the trail, the time stop, strategy
        exits and the scale-in trigger read closes: they wait for ``step_bar``."""
        self._check_open()
        _positive("price", price)
        _time("ts", ts)
        floor = max(self._last_event, self._last_bar if self._last_bar is not None else 0)
        if ts < floor:
            raise PositionError(f"price event at {ts} is older than the last one stepped ({floor})")
        n = step_price(self._state, self._rules, self._costs, float(price), bool(forced),
                       self._acts)  # fmt: skip
        self._last_event = int(ts)
        return self._actions(n, int(ts))

    def preview_open(self, price: float) -> list[Action]:
        """What the decision of the last close would do at ``price`` (the next open, where a
        venue fills the orders sent for it), worked out by the same step on a copy of the
        position: a composer sends these as orders (a scale-in's add, its cut and the leg's new
        stop) without writing the rule again. The position itself does not change."""
        self._check_open()
        _positive("price", price)
        copy = PositionState(*(a.copy() for a in self._state))
        acts = np.zeros_like(self._acts)
        n = step_price(copy, self._rules, self._costs, float(price), False, acts)
        return self._rows(acts[:n], self._last_event)

    # -- what the position holds ------------------------------------------------------------
    @property
    def qty(self) -> float:
        return float(self._state.vec[S_QTY])

    @property
    def is_open(self) -> bool:
        return self.qty > 0.0

    @property
    def stop(self) -> float:
        """The position's stop (NaN: none); a leg may hold a tighter one of its own (``legs``)."""
        return float(self._state.vec[S_STOP])

    @property
    def average_entry(self) -> float:
        return float(self._state.vec[S_AVG])

    @property
    def risk(self) -> float:
        """The price distance of one R (NaN: none, the R rules are off)."""
        return float(self._state.vec[S_RISK])

    @property
    def realised(self) -> float:
        """Profit booked by the exits so far, before fees."""
        return float(self._state.vec[S_REALISED])

    @property
    def fees(self) -> float:
        return float(self._state.vec[S_FEES])

    @property
    def bars(self) -> int:
        """Bars stepped (the entry bar included)."""
        return int(self._state.vec[S_BARS])

    @property
    def pending(self) -> str | None:
        """What the last close decided for the next open (None: nothing)."""
        code = int(self._state.vec[S_PENDING])
        return KIND_NAMES[code] if code else None

    @property
    def exit_reason(self) -> str | None:
        """Why the position closed (None while it is open)."""
        return None if self.is_open else KIND_NAMES.get(int(self._state.vec[S_REASON]), "?")

    @property
    def legs(self) -> list[tuple[float, float, float]]:
        """(entry, quantity, own stop - NaN: the position's) of each leg (plan 3's scale-in)."""
        legs = self._state.legs
        if self._state.vec[S_ADDS] == 0:  # kept per leg from the first scale-in on
            return [(float(legs[0, L_ENTRY]), self.qty, math.nan)]
        return [(float(r[L_ENTRY]), float(r[L_QTY]), float(r[L_STOP]))
                for r in legs[: int(self._state.vec[S_LEGS])]]  # fmt: skip

    @property
    def targets(self) -> list[tuple[float, float]]:
        """(price, quantity still resting) of each take-profit."""
        tg = self._state.targets
        return [(float(p), float(q)) for p, q in zip(tg[0], tg[1], strict=True)]

    @property
    def state(self) -> PositionState:
        """The compiled step's arrays (read them, do not write them): what the backtest kernel
        writes a trade's row from, so a composer's trade rows are the kernel's."""
        return self._state

    # -- helpers ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if not self.is_open:
            raise PositionError(f"the position is closed ({self.exit_reason}): nothing to step")

    def _actions(self, n: int, ts: int) -> list[Action]:
        return self._rows(self._acts[:n], ts)

    @staticmethod
    def _rows(rows: np.ndarray, ts: int) -> list[Action]:
        return [
            Action(
                ACTION_NAMES[int(r[A_KIND])],
                KIND_NAMES.get(int(r[A_REASON]), "?"),
                "buy" if r[A_SIDE] > 0 else "sell",
                float(r[A_QTY]),
                float(r[A_PRICE]),
                float(r[A_FEE]),
                ts,
            )
            for r in rows
        ]


_NO_FUNDING = np.zeros((1, 2))
_NO_DETAIL = np.zeros((0, 3))
_NO_SPAN = np.zeros((1, 2), np.int64)


def _bar_values(bar: Bar) -> np.ndarray:
    """The bar as the step's one-row array, refused when it cannot be a traded bar."""
    values = [bar.open, bar.high, bar.low, bar.close, bar.volume]
    for name, value in zip(BAR_COLUMNS, values, strict=False):
        _finite(f"bar {name}", value)
    _time("bar ts", bar.ts)
    atr = math.nan if bar.atr is None else bar.atr
    _number("bar atr", atr)
    if math.isinf(atr) or atr < 0:
        raise PositionError(f"bar atr must be >= 0 or NaN (unknown), got {atr}")
    if min(values[:4]) <= 0 or bar.volume < 0:
        raise PositionError(f"bar prices must be > 0 and its volume >= 0, got {bar}")
    if bar.high < max(bar.open, bar.close, bar.low) or bar.low > min(bar.open, bar.close):
        raise PositionError(f"bar high/low do not bound its open and close: {bar}")
    return np.array([[*values, atr]], dtype=np.float64)


def _exit_row(inputs: BarInputs, policy: Policy) -> np.ndarray:
    wanted = policy.exit_kinds.shape[0]
    if len(inputs.exits) != wanted:
        raise PositionError(
            f"the bar carries {len(inputs.exits)} strategy exit events, the policy reads {wanted}"
        )
    if any(not 0 <= int(e) <= 3 for e in inputs.exits):
        raise PositionError(f"strategy exit events are bit masks 0..3, got {inputs.exits}")
    return np.array([list(inputs.exits)], dtype=np.uint8).reshape(1, wanted)


def _signal(value: int) -> int:
    if value not in (-1, 0, 1):
        raise PositionError(f"a signal is -1, 0 or +1, got {value}")
    return int(value)


def _side(side: int | str) -> int:
    sides = {1: 1, -1: -1, "long": 1, "short": -1, "buy": 1, "sell": -1}
    if isinstance(side, bool) or side not in sides:
        raise PositionError(f"side must be long or short (+1/-1), got {side!r}")
    return sides[side]


def _name(sign: int) -> str:
    return "long" if sign > 0 else "short"


def _number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise PositionError(f"{name} must be a number, got {value!r}")


def _time(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PositionError(f"{name} must be a time in integer milliseconds, got {value!r}")


def _finite(name: str, value: float) -> None:
    _number(name, value)
    if not math.isfinite(value):
        raise PositionError(f"{name} must be a finite number, got {value}")


def _positive(name: str, value: float) -> None:
    _finite(name, value)
    if value <= 0:
        raise PositionError(f"{name} must be positive, got {value}")


__all__ = ["Action", "Bar", "BarInputs", "Position", "PositionError"]
