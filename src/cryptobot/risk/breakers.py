"""Circuit breakers: a pure state machine fed with equity, price, margin and reset events.

Backtest, paper and live feed it the same events and get the same answers. ``step`` returns
the new state and the actions the caller must carry out; nothing here talks to an exchange.

Modes, from least to most severe (a breaker only ever escalates until time, a reset or a
change of the loss limits releases it):

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
* ``stopped`` - the monthly limit tripped: full stop until the loss limits change.

Losses are measured from the equity at the first observation of the UTC day, ISO week and
calendar month of a dollar or more (``MIN_START``): a period whose first reading is 0 or a few
cents (an empty account, a feed's placeholder, ``1e-300`` typed) starts at the next reading of
a dollar or more, so such a start never switches the limits off (a zero did, for the whole day,
week and month, and a tiny positive one did until 2026-12-01: every later loss was a gain
against it). An account worth less than a dollar has no limits to count. ``-0`` is stored as
``0``.

Every step judges the stored figures against the limits in force, not only a new equity
reading: a limit lowered below the current loss trips at once, and a released stop whose loss
is still past a limit trips again.

**What releases a monthly stop.** A change of the loss limits, ``LIMIT_KEYS`` of
``risk.breakers`` (``daily_loss_pct``, ``weekly_loss_pct``, ``monthly_loss_pct``,
``daily_loss_usd``, ``weekly_loss_usd``): the trader has reconsidered how much they may lose.
Nothing else counts: not leverage, sizing or gates, not the other breaker settings, and never a
flag of one command. The release re-checks the month's loss (still from the month's first
reading) against the new limits, so only a monthly limit above the loss, or a new month, lets
entries resume; a weekly loss past the new weekly limit halts instead. A daily block tripped
with the stop runs its course, then its recovery.

Time only moves forward: an equity reading dated on a day before the last reading's is
refused (``DataError``, the state unchanged), so a clock set back cannot roll the periods back
and forget a day's losses. A block ends at the latest at the last time a clock can show.

Non-finite numbers never enter the state: a NaN equity compares false with every limit, so
one ``risk equity nan`` used to leave the breaker ``active`` for the rest of the day whatever
the losses. ``step`` refuses such events (:class:`~cryptobot.core.errors.DataError`, the state
unchanged). A stored state that is not a valid state (NaN or infinite figures, a field of the
wrong type, an unknown mode, a time no clock can show, a missing or unknown key, not an object
at all; a row lost while the account's last event left the breaker tripped, which the journal
hands over as its ``problem``) is read as ``blocked`` until a manual reset
(``tripped_by="corrupt_state"``), never as ``active``; a halt or a stop that parses as one
stays what it is.
"""

import hashlib
import json
import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from cryptobot.core.errors import DataError, OutOfOrder
from cryptobot.core.settings import BreakerSettings, RiskSettings
from cryptobot.core.timeutil import DAY_MS, LAST_MS

HOUR_MS = 3_600_000
CORRUPT = "corrupt_state"
#: The settings whose change releases a monthly stop (see the module docstring).
LIMIT_KEYS = (
    "daily_loss_pct",
    "weekly_loss_pct",
    "monthly_loss_pct",
    "daily_loss_usd",
    "weekly_loss_usd",
)
MAX_TS = LAST_MS - 1  # 9999-12-31T23:59:59.999Z, the last moment a datetime can hold
#: $: the least equity a period's losses are counted from (module docstring)
MIN_START = 1.0


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
    config_key: str | None = None  # the loss limits when a monthly stop tripped (limits_key)
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
    def from_record(cls, record: object) -> "BreakerState":
        """The stored state. Anything that is not a valid state is unsafe: its invalid fields
        are dropped (the next observations start fresh figures) and it comes back blocked
        until a reset, unless it is a valid halt or stop, which stays what it is."""
        if not isinstance(record, dict):  # a lost row says what it lost (``problem``)
            return _corrupt(cls(), getattr(record, "problem", "it is not a JSON object"))
        names = [n for n in cls.__dataclass_fields__ if n != "prices"]
        problems = sorted(set(record) - set(names) - {"prices"})  # prices were never stored
        problems += [n for n in names if n not in record or not _valid(n, record[n])]
        data = {n: record[n] for n in names if n in record and n not in problems}
        state = cls(**data | {"mode": Mode(data.get("mode", Mode.blocked))})
        lacking = _lacking(state)
        if not problems and lacking is None:
            return state
        severe = SEVERITY[state.mode] > SEVERITY[Mode.blocked]
        if "mode" not in problems and lacking is None and severe:
            return state  # a halt, or a stop that knows its limits, stays what it is
        problems = problems or [f"{state.mode} without {lacking}"]
        more = f" and {len(problems) - 4} more" if len(problems) > 4 else ""
        return _corrupt(state, f"invalid {', '.join(problems[:4])}{more}")


_TIMES = ("since", "until", "recovery_until", "flash_until")
_FIGURES = ("start_equity", "peak_equity", "last_equity", "day_start", "week_start", "month_start")
_LABELS = {"day": r"\d{4}-\d{2}-\d{2}", "week": r"\d{4}-W\d{2}", "month": r"\d{4}-\d{2}"}
_TRIPS = ("daily", "weekly", "monthly", "flash_crash", "margin", CORRUPT)
_LARGEST = 1.7e308  # a stored int beyond a float's range: ``math.isfinite`` would overflow


def _valid(name: str, value: object) -> bool:
    """Whether ``value`` can be the stored field ``name`` (a bool is not a number)."""
    if value is None:
        return name not in ("mode", "reason")
    if name == "mode":
        return isinstance(value, str) and value in Mode.__members__
    if name in _TIMES:
        return type(value) is int and 0 <= value <= MAX_TS
    if name in _FIGURES:  # an int too large for a float is no figure either
        return type(value) in (int, float) and abs(value) <= _LARGEST and math.isfinite(value)
    if name in _LABELS:
        return isinstance(value, str) and re.fullmatch(_LABELS[name], value) is not None
    if name == "tripped_by":
        return isinstance(value, str) and value in _TRIPS
    return isinstance(value, str)  # reason, config_key


def _lacking(state: BreakerState) -> str | None:
    """The field a mode cannot do without: a block without an end (other than a corrupt
    state's) or a recovery without one would never be released by time, and a stop without
    the key of its limits would release itself."""
    if state.mode is Mode.blocked and state.until is None and state.tripped_by != CORRUPT:
        return "until"
    if state.mode is Mode.recovery and state.recovery_until is None:
        return "recovery_until"
    if state.mode is Mode.stopped and state.config_key is None:
        return "config_key"
    return None


def _corrupt(state: BreakerState, problem: str) -> BreakerState:
    reason = (
        f"the stored breaker state is corrupt ({problem});"
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


def limits_key(b: BreakerSettings) -> str:
    """A fingerprint of the loss limits, stored with a monthly stop: it changes only when one
    of ``LIMIT_KEYS`` does."""
    return _fingerprint(tuple(getattr(b, name) for name in LIMIT_KEYS))


@lru_cache(maxsize=16)
def _fingerprint(limits: tuple) -> str:
    """(Every event takes the key, and a backtest feeds one per bar: hashed once per limits.)"""
    named = dict(zip(LIMIT_KEYS, limits, strict=True))
    return hashlib.sha1(json.dumps(named, sort_keys=True).encode()).hexdigest()[:12]


def step(
    state: BreakerState, event: Event, risk: RiskSettings
) -> tuple[BreakerState, tuple[Action, ...]]:
    """The state after ``event`` and what the caller must do now; raises
    :class:`DataError` (nothing changed) for an event carrying NaN, infinity or a price <= 0."""
    _check(event)
    _in_order(state, event)
    b = risk.breakers
    key = limits_key(b)
    state = _release(state, event.ts, key)
    actions: tuple[Action, ...] = ()
    if isinstance(event, Equity):
        state = _roll_periods(state, event)
    elif isinstance(event, Price):
        state, actions = _on_price(state, event, b)
    elif isinstance(event, MarginLevel):
        state, actions = _on_margin(state, event, b)
    elif isinstance(event, Reset):
        state = _on_reset(state, event)
    state, judged = _judge(state, event.ts, b, key)
    return state, tuple(dict.fromkeys(actions + judged))


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
    try:
        ts = operator.index(event.ts)  # an int, NumPy's too (a bool is no time)
    except TypeError:
        ts = None
    if ts is None or isinstance(event.ts, bool) or not 0 <= ts <= MAX_TS:  # unstorable
        raise DataError(f"breaker time {event.ts!r} is no time a clock shows (epoch ms from 1970 "
                        "to 9999); the breaker state is unchanged")  # fmt: skip
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


def _in_order(state: BreakerState, event: Event) -> None:
    """An equity reading dated on a UTC day before the last reading's is refused: the periods
    would roll back to it, and a day's losses or block be forgotten when the clock returns
    (a replay start set back, a host clock reset). Within a day the order does not matter."""
    if isinstance(event, Equity) and state.day is not None:
        day = _labels(event.ts)["day"]
        if day < state.day:
            raise OutOfOrder(
                f"an equity reading dated {day} is earlier than the breaker's last one "
                f"({state.day}): the clock went back (a replay started earlier needs a data dir "
                "of its own)? The breaker state is unchanged"
            )


def _release(state: BreakerState, ts: int, key: str) -> BreakerState:
    """Time, and a change of the loss limits, that end a trip (``_judge`` then re-checks)."""
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
        return _lifted(state, ts, "release of the monthly stop")
    return state


def _lifted(state: BreakerState, ts: int, what: str) -> BreakerState:
    """A halt or a stop released: the daily block tripped with it runs its course, then its
    recovery; the figures stay as they are."""
    fresh = _cleared(state, ts)
    if state.until is not None and ts < state.until:
        return replace(
            fresh, mode=Mode.blocked, tripped_by="daily", until=state.until,
            recovery_until=state.recovery_until,
            reason=f"daily loss limit: the block outlasts the {what}",
        )  # fmt: skip
    if state.recovery_until is not None and ts < state.recovery_until:
        return replace(
            fresh, mode=Mode.recovery, tripped_by="daily",
            recovery_until=state.recovery_until, reason="recovery after a daily stop",
        )  # fmt: skip
    return fresh


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


def _judge(
    state: BreakerState, ts: int, b: BreakerSettings, key: str
) -> tuple[BreakerState, tuple[Action, ...]]:
    """The latest equity against the limits in force, for the periods still current at ``ts``:
    the most severe limit it is past trips, unless the breaker is already that severe."""
    now = _labels(ts)
    trips = [
        (
            "monthly",
            _breach(state, "month", now, b.monthly_loss_pct, None),
            Mode.stopped,
            (Action.cancel_orders, Action.flatten_all),
        ),
        (
            "weekly",
            _breach(state, "week", now, b.weekly_loss_pct, b.weekly_loss_usd),
            Mode.halted,
            (Action.cancel_orders, Action.flatten_all),
        ),
        (
            "daily",
            _breach(state, "day", now, b.daily_loss_pct, b.daily_loss_usd),
            Mode.blocked,
            (Action.cancel_orders, Action.close_directional),
        ),
    ]
    daily = _daily_block(state, ts, trips[-1][1] is not None, b)
    for name, breach, mode, actions in trips:
        # a daily trip also replaces a flash-crash block, which would end after minutes
        flash = state.tripped_by == "flash_crash" and mode is state.mode
        if breach and (SEVERITY[mode] > SEVERITY[state.mode] or flash):
            tripped = replace(
                state,
                mode=mode,
                tripped_by=name,
                reason=f"{name} loss limit: {breach}",
                since=ts,
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
    if breached:  # never past the last time a clock can show (a block of 1e300 hours)
        until = min(ts + int(b.daily_block_hours * HOUR_MS), MAX_TS)
        return until, min(until + int(b.recovery_hours * HOUR_MS), MAX_TS)
    if state.recovery_until is not None and ts < state.recovery_until:
        return ts, state.recovery_until
    return None


def _labels(ts: int) -> Mapping[str, str]:
    """The UTC day, ISO week and calendar month ``ts`` falls in."""
    return _day_labels(ts // DAY_MS)


@lru_cache(maxsize=64)
def _day_labels(day: int) -> Mapping[str, str]:
    """(Labels of a whole UTC day, made once: every event of a backtest asks for them, and
    formatting dates was a sixth of a stepwise run.)"""
    moment = datetime.fromtimestamp(day * DAY_MS / 1000, UTC)
    iso = moment.isocalendar()
    return MappingProxyType({  # four-digit years (``strftime`` writes year 1 as "1")
        "day": f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}",
        "week": f"{iso.year:04d}-W{iso.week:02d}",
        "month": f"{moment.year:04d}-{moment.month:02d}",
    })  # fmt: skip


def _roll_periods(state: BreakerState, ev: Equity) -> BreakerState:
    """Record the reading; a period starts at its first reading of a dollar or more (a start
    cleared from a corrupt stored state is taken again from this observation)."""
    equity = float(ev.equity) + 0.0  # -0.0 becomes 0.0; numpy scalars plain floats
    changes: dict = {
        "last_equity": equity,
        "peak_equity": max(equity, state.peak_equity or equity),
    }
    if not _starts(state.start_equity):
        changes["start_equity"] = equity
    for period, label in _labels(ev.ts).items():
        if label != getattr(state, period) or not _starts(getattr(state, f"{period}_start")):
            changes.update({period: label, f"{period}_start": equity})
    return replace(state, **changes)


def _starts(figure: float | None) -> bool:
    """Whether ``figure`` can start a period: a dollar at least (``MIN_START``)."""
    return figure is not None and figure >= MIN_START


def _breach(
    state: BreakerState, period: str, now: Mapping[str, str], pct: float, usd: float | None
) -> str | None:
    """How far the latest equity is past the period's limit; None when it is not, or when the
    period has no start (``_starts``) or is over (its next reading starts a new one)."""
    start = getattr(state, f"{period}_start")
    current = getattr(state, period) == now[period]
    if not current or not _starts(start) or state.last_equity is None:
        return None
    return _loss(start, state.last_equity, pct, usd)


def _loss(start: float, equity: float, pct: float, usd: float | None) -> str | None:
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


def _on_reset(state: BreakerState, ev: Reset) -> BreakerState:
    """A manual reset releases a weekly halt (new daily and weekly budgets from the equity at
    the reset), or the block of a corrupt stored state. It cannot shorten a daily block or undo
    a monthly stop (only a change of the loss limits releases that)."""
    if state.tripped_by == CORRUPT:
        return _cleared(state, ev.ts)
    if state.mode is not Mode.halted:
        return state
    fresh = replace(state, day_start=state.last_equity, week_start=state.last_equity)
    return _lifted(fresh, ev.ts, "weekly reset")
