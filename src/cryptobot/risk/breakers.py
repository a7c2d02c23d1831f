"""Circuit breakers: a pure state machine fed with equity, price, margin and reset events.

Backtest, paper and live feed it the same events and get the same answers. ``step`` returns
the new state and the actions the caller must carry out; nothing here talks to an exchange.

Modes, from least to most severe (a breaker only ever escalates until time, a reset or a
config change releases it):

* ``active`` - trading normally.
* ``recovery`` - entries allowed at ``recovery_size_mult`` (50%) of the normal size, for
  ``recovery_hours`` after a daily block ends.
* ``reducing`` - the margin guard fired (less than ``min_margin_ratio_pct`` of the margin left
  above maintenance): reduce positions, no new entries until the margin recovers.
* ``blocked`` - the daily loss limit (% or $) tripped: cancel orders, close directional
  positions, no entries for ``daily_block_hours``, then recovery. A flash crash (a move beyond
  ``flash_crash_pct`` within ``flash_crash_window_s``) exits everything and blocks entries for
  ``flash_crash_block_min``.
* ``halted`` - the weekly limit tripped: flatten everything; only a manual reset releases it
  (and starts new daily and weekly budgets from the equity at the reset). A daily block
  tripped by the same losses (before or at the same moment) runs its course under a halt or a
  stop: the reset leaves the account blocked, then in recovery, until that block's end.
* ``stopped`` - the monthly limit tripped: full stop until the risk configuration changes.

Losses are measured from the equity at the first observation of the UTC day, ISO week and
calendar month.

Non-finite numbers never enter the state: a NaN equity compares false with every limit, so
one ``risk equity nan`` used to leave the breaker ``active`` for the rest of the day whatever
the losses. ``step`` refuses such events (:class:`~cryptobot.core.errors.DataError`, the state
unchanged), and a stored state that holds one anyway is read as ``blocked`` until a manual
reset (``tripped_by="corrupt_state"``), never as ``active``.
"""

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from cryptobot.core.errors import DataError
from cryptobot.core.settings import BreakerSettings, RiskSettings

HOUR_MS = 3_600_000
CORRUPT = "corrupt_state"


class Mode(StrEnum):
    active = "active"
    recovery = "recovery"
    reducing = "reducing"
    blocked = "blocked"
    halted = "halted"
    stopped = "stopped"


SEVERITY = {m: i for i, m in enumerate(Mode)}
SEVERITY[Mode.recovery] = SEVERITY[Mode.active]


class Action(StrEnum):
    cancel_orders = "cancel_orders"
    close_directional = "close_directional"
    flatten_all = "flatten_all"
    exit_all = "exit_all"
    reduce_positions = "reduce_positions"


@dataclass(frozen=True)
class Equity:
    ts: int
    equity: float


@dataclass(frozen=True)
class Price:
    ts: int
    symbol: str
    price: float


@dataclass(frozen=True)
class MarginLevel:
    ts: int
    margin_left_pct: float


@dataclass(frozen=True)
class Reset:
    ts: int


@dataclass(frozen=True)
class Clock:
    ts: int


Event = Equity | Price | MarginLevel | Reset | Clock


@dataclass(frozen=True)
class BreakerState:
    mode: Mode = Mode.active
    tripped_by: str | None = None
    reason: str = ""
    since: int | None = None
    until: int | None = None  # end of a block
    recovery_until: int | None = None
    flash_until: int | None = None  # no second flash-crash exit before this
    config_key: str | None = None  # the risk config when a monthly stop tripped
    start_equity: float | None = None
    peak_equity: float | None = None
    last_equity: float | None = None
    day: str | None = None
    day_start: float | None = None
    week: str | None = None
    week_start: float | None = None
    month: str | None = None
    month_start: float | None = None
    prices: tuple[tuple[str, int, float], ...] = field(default=(), compare=False)

    @property
    def entries_allowed(self) -> bool:
        return self.mode in (Mode.active, Mode.recovery)

    def size_mult(self, settings: BreakerSettings) -> float:
        return settings.recovery_size_mult if self.mode is Mode.recovery else 1.0

    def to_record(self) -> dict:
        """JSON-safe; the flash-crash price window is not kept (it refills within a window)."""
        out = asdict(self)
        out.pop("prices")
        out["mode"] = self.mode.value
        return out

    @classmethod
    def from_record(cls, record: dict) -> "BreakerState":
        """The stored state; one holding NaN/inf figures is unsafe and comes back blocked."""
        data = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        data["mode"] = Mode(data.get("mode", "active"))
        data.pop("prices", None)
        bad = [k for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)]
        if not bad:
            return cls(**data)
        data.update(dict.fromkeys(bad))  # the next observations start fresh figures
        state = cls(**data)
        if SEVERITY[state.mode] > SEVERITY[Mode.blocked]:  # a halt or a stop stays what it is
            return state
        reason = (
            f"the stored breaker state holds non-finite {', '.join(sorted(bad))};"
            " entries are blocked until `cryptobot risk reset`"
        )
        return replace(
            state,
            mode=Mode.blocked,
            tripped_by=CORRUPT,
            reason=reason,
            until=None,
            recovery_until=None,
        )


def config_key(risk: RiskSettings) -> str:
    return hashlib.sha1(json.dumps(risk.model_dump(), sort_keys=True).encode()).hexdigest()[:12]


def step(
    state: BreakerState, event: Event, risk: RiskSettings
) -> tuple[BreakerState, tuple[Action, ...]]:
    """The state after ``event`` and what the caller must do now; raises
    :class:`DataError` (nothing changed) for an event carrying NaN, infinity or a price <= 0."""
    _check(event)
    b = risk.breakers
    key = config_key(risk)
    state = _release(state, event.ts, key)
    if isinstance(event, Equity):
        return _on_equity(state, event, b, key)
    if isinstance(event, Price):
        return _on_price(state, event, b)
    if isinstance(event, MarginLevel):
        return _on_margin(state, event, b)
    if isinstance(event, Reset):
        return _on_reset(state, event)
    return state, ()


def run(
    state: BreakerState, events: Sequence[Event], risk: RiskSettings
) -> tuple[BreakerState, list[tuple[Event, tuple[Action, ...]]]]:
    """Feed events in order; returns the final state and every event that asked for actions."""
    acted = []
    for event in events:
        state, actions = step(state, event, risk)
        if actions:
            acted.append((event, actions))
    return state, acted


def _check(event: Event) -> None:
    figures = {
        Equity: ("equity",),
        Price: ("price",),
        MarginLevel: ("margin_left_pct",),
    }.get(type(event), ())
    for name in figures:
        value = getattr(event, name)
        try:
            finite = math.isfinite(value)  # numpy scalars too
        except TypeError:
            finite = False
        if not finite:
            raise DataError(
                f"breaker {name} must be a finite number, got {value!r}; the breaker state is"
                " unchanged"
            )
    if isinstance(event, Price) and event.price <= 0:
        raise DataError(f"breaker price must be positive, got {event.price!r}")


def _release(state: BreakerState, ts: int, key: str) -> BreakerState:
    """Time and configuration changes that end a trip."""
    if state.mode is Mode.blocked and state.until is not None and ts >= state.until:
        if state.tripped_by == "daily" and state.recovery_until and ts < state.recovery_until:
            return replace(
                state,
                mode=Mode.recovery,
                reason="recovery after a daily stop",
                since=state.until,
                until=None,
            )
        return _cleared(state, ts)
    if (
        state.mode is Mode.recovery
        and state.recovery_until is not None
        and ts >= state.recovery_until
    ):
        return _cleared(state, ts)
    if state.mode is Mode.stopped and state.config_key != key:
        return replace(_cleared(state, ts), month_start=state.last_equity)
    return state


def _cleared(state: BreakerState, ts: int) -> BreakerState:
    return replace(
        state,
        mode=Mode.active,
        tripped_by=None,
        reason="",
        since=ts,
        until=None,
        recovery_until=None,
        config_key=None,
    )


def _on_equity(
    state: BreakerState, ev: Equity, b: BreakerSettings, key: str
) -> tuple[BreakerState, tuple[Action, ...]]:
    state = _roll_periods(state, ev)
    trips = [
        (
            "monthly",
            _loss(state.month_start, ev.equity, b.monthly_loss_pct, None),
            Mode.stopped,
            (Action.cancel_orders, Action.flatten_all),
        ),
        (
            "weekly",
            _loss(state.week_start, ev.equity, b.weekly_loss_pct, b.weekly_loss_usd),
            Mode.halted,
            (Action.cancel_orders, Action.flatten_all),
        ),
        (
            "daily",
            _loss(state.day_start, ev.equity, b.daily_loss_pct, b.daily_loss_usd),
            Mode.blocked,
            (Action.cancel_orders, Action.close_directional),
        ),
    ]
    daily = _daily_block(state, ev.ts, trips[-1][1] is not None, b)
    for name, breach, mode, actions in trips:
        # a daily trip also replaces a flash-crash block, which would end after minutes
        flash = state.tripped_by == "flash_crash" and mode is state.mode
        if breach and (SEVERITY[mode] > SEVERITY[state.mode] or flash):
            tripped = replace(
                state,
                mode=mode,
                tripped_by=name,
                reason=f"{name} loss limit: {breach}",
                since=ev.ts,
                until=None,
                recovery_until=None,
            )
            if daily is not None:  # a weekly or monthly trip keeps the daily block underneath
                tripped = replace(tripped, until=daily[0], recovery_until=daily[1])
            if mode is Mode.stopped:
                tripped = replace(tripped, config_key=key)
            return tripped, actions
    return state, ()


def _daily_block(
    state: BreakerState, ts: int, breached: bool, b: BreakerSettings
) -> tuple[int, int] | None:
    """(end of the entry block, end of the recovery) of the daily stop in force or tripping
    now, so that a reset of a more severe trip cannot shorten it."""
    carried = state.tripped_by == "daily" or state.mode in (Mode.halted, Mode.stopped)
    if carried and state.until is not None and ts < state.until:
        return state.until, state.recovery_until or state.until
    if breached:
        until = ts + int(b.daily_block_hours * HOUR_MS)
        return until, until + int(b.recovery_hours * HOUR_MS)
    if state.recovery_until is not None and ts < state.recovery_until:
        return ts, state.recovery_until
    return None


def _roll_periods(state: BreakerState, ev: Equity) -> BreakerState:
    moment = datetime.fromtimestamp(ev.ts / 1000, UTC)
    day = moment.strftime("%Y-%m-%d")
    iso = moment.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    month = moment.strftime("%Y-%m")
    changes: dict = {
        "last_equity": ev.equity,
        "peak_equity": max(ev.equity, state.peak_equity or ev.equity),
    }
    if state.start_equity is None:
        changes["start_equity"] = ev.equity
    # a start cleared from a corrupt stored state is taken again from this observation
    if day != state.day or state.day_start is None:
        changes.update(day=day, day_start=ev.equity)
    if week != state.week or state.week_start is None:
        changes.update(week=week, week_start=ev.equity)
    if month != state.month or state.month_start is None:
        changes.update(month=month, month_start=ev.equity)
    return replace(state, **changes)


def _loss(start: float | None, equity: float, pct: float, usd: float | None) -> str | None:
    if not start:
        return None
    lost = start - equity
    lost_pct = lost / start * 100
    if lost_pct >= pct:
        return f"down {lost_pct:.2f}% (${lost:,.2f}) from ${start:,.2f}, limit {pct:g}%"
    if usd is not None and lost >= usd:
        return f"down ${lost:,.2f} from ${start:,.2f}, limit ${usd:g}"
    return None


def _on_price(
    state: BreakerState, ev: Price, b: BreakerSettings
) -> tuple[BreakerState, tuple[Action, ...]]:
    horizon = ev.ts - int(b.flash_crash_window_s * 1000)
    window = [p for p in state.prices if p[1] >= horizon] + [(ev.symbol, ev.ts, ev.price)]
    state = replace(state, prices=tuple(window))
    seen = [p for s, _, p in window if s == ev.symbol]
    high, low = max(seen), min(seen)
    drop = (high - ev.price) / high * 100
    rise = (ev.price - low) / low * 100
    move = max(drop, rise)
    quiet = state.flash_until is not None and ev.ts < state.flash_until
    if move <= b.flash_crash_pct or quiet or state.mode in (Mode.halted, Mode.stopped):
        return state, ()
    word = "fell" if drop >= rise else "rose"
    reason = f"flash crash: {ev.symbol} {word} {move:.2f}% within {b.flash_crash_window_s:g}s"
    until = ev.ts + int(b.flash_crash_block_min * 60_000)
    state = replace(state, flash_until=until)
    if state.mode is not Mode.blocked:  # a daily block keeps its longer term
        state = replace(
            state,
            mode=Mode.blocked,
            tripped_by="flash_crash",
            reason=reason,
            since=ev.ts,
            until=until,
            recovery_until=None,
        )
    return state, (Action.cancel_orders, Action.exit_all)


def _on_margin(
    state: BreakerState, ev: MarginLevel, b: BreakerSettings
) -> tuple[BreakerState, tuple[Action, ...]]:
    low = ev.margin_left_pct < b.min_margin_ratio_pct
    if low and state.entries_allowed:
        reason = (
            f"margin guard: {ev.margin_left_pct:.1f}% of the margin left above maintenance "
            f"(< {b.min_margin_ratio_pct:g}%)"
        )
        return replace(
            state, mode=Mode.reducing, tripped_by="margin", reason=reason, since=ev.ts
        ), (Action.reduce_positions,)
    if low and state.mode is Mode.reducing:
        return state, (Action.reduce_positions,)
    if not low and state.mode is Mode.reducing:
        resumed = state.recovery_until is not None and ev.ts < state.recovery_until
        if resumed:
            return replace(
                state,
                mode=Mode.recovery,
                tripped_by="daily",
                reason="recovery after a daily stop",
                since=ev.ts,
            ), ()
        return _cleared(state, ev.ts), ()
    return state, ()


def _on_reset(state: BreakerState, ev: Reset) -> tuple[BreakerState, tuple[Action, ...]]:
    """A manual reset releases a weekly halt, or the block of a corrupt stored state. It cannot
    shorten a daily block or undo a monthly stop (only a configuration change releases that)."""
    if state.tripped_by == CORRUPT:
        return _cleared(state, ev.ts), ()
    if state.mode is not Mode.halted:
        return state, ()
    fresh = replace(
        _cleared(state, ev.ts), day_start=state.last_equity, week_start=state.last_equity
    )
    if state.until is not None and ev.ts < state.until:  # the daily block still runs
        return replace(
            fresh, mode=Mode.blocked, tripped_by="daily", since=ev.ts, until=state.until,
            recovery_until=state.recovery_until,
            reason="daily loss limit: the block outlasts the weekly reset",
        ), ()  # fmt: skip
    if state.recovery_until is not None and ev.ts < state.recovery_until:
        return replace(
            fresh, mode=Mode.recovery, tripped_by="daily", since=ev.ts,
            recovery_until=state.recovery_until, reason="recovery after a daily stop",
        ), ()  # fmt: skip
    return fresh, ()
