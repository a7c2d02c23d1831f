"""What a setup's chart shows: panels of candles with the levels its strategy saw.

This is the ONE place that reads a setup's ``reasons`` for drawing: ``PANELS`` maps a strategy
name to a function that turns a setup into panels (a timeframe, horizontal lines, boxes, bar
markers, an impulse leg, EMA overlays, a volume pane). Renderers know nothing about strategies.

Every key is optional: what a record carries is drawn, what it lacks is left out (a malformed
value too), so a record from another version still charts. ``bos_fvg_fib`` records carry their
parts nested (``break``, ``leg``, ``fib``, ``fvg``, ``poi``, ``first_touch_time``, ``trigger``,
``stop``: the keys are listed in that module's docstring). A strategy without an entry here gets
one panel of its own timeframe with entry, stop and targets.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptobot.core.errors import CryptobotError
from cryptobot.core.settings import StrategiesSettings
from cryptobot.core.setup import Setup
from cryptobot.core.timeutil import parse_time


@dataclass(frozen=True)
class Line:
    """A horizontal price level, from ``since`` (ms; None: the whole panel) to ``until``."""

    price: float
    label: str
    kind: str  # entry | stop | target | level | fib | leg
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class Box:
    """A price band (POI, FVG) from ``since`` (ms; None: the whole panel) onwards."""

    low: float
    high: float
    label: str
    kind: str  # poi | fvg
    since: int | None = None


@dataclass(frozen=True)
class Marker:
    """A bar worth pointing at: the BOS bar, the trigger, an EMA cross."""

    ts: int
    label: str
    kind: str  # setup | event
    price: float | None = None


@dataclass(frozen=True)
class Leg:
    """The impulse leg: start and end price, with times when the record has them."""

    start: float
    end: float
    start_ts: int | None = None
    end_ts: int | None = None


@dataclass(frozen=True)
class Panel:
    """One timeframe's candles and what to draw on them. ``bars`` closed bars up to the
    setup are shown (more when an older marker needs them), then up to ``after`` later ones."""

    timeframe: str
    title: str
    lines: list[Line] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    leg: Leg | None = None
    emas: tuple[int, ...] = ()
    volume_period: int | None = None  # draw a volume pane with this average
    bars: int = 96
    after: int = 24

    def earliest(self) -> int | None:
        """The oldest time a drawing refers to (the window reaches back to it)."""
        times = [m.ts for m in self.markers]
        times += [t for t in (self.leg.start_ts, self.leg.end_ts) if t] if self.leg else []
        times += [b.since for b in self.boxes if b.since is not None]
        return min(times, default=None)


def _part(r: dict[str, Any], key: str) -> dict[str, Any]:
    """One nested part of a ``bos_fvg_fib`` record (``break``, ``leg``, ``fvg``, ``poi``,
    ``trigger``, ``stop``: see that module's docstring); ``{}`` when absent or malformed."""
    value = r.get(key)
    return value if isinstance(value, dict) else {}


def trade_lines(setup: Setup, *, since: int | None) -> list[Line]:
    """Entry, stop and each target with its R multiple: the same on every strategy's chart."""
    lines = [
        Line(setup.entry, "entry", "entry", since),
        Line(setup.stop, _stop_label(setup), "stop", since),
    ]
    lines += [
        Line(t, f"T{i} {r:g}R", "target", since)
        for i, (t, r) in enumerate(zip(setup.targets, setup.r_targets, strict=True), 1)
    ]
    return lines


def _stop_label(setup: Setup) -> str:
    basis = _part(setup.reasons, "stop").get("basis")
    return f"stop ({basis.replace('_', ' ')})" if isinstance(basis, str) and basis else "stop"


def bos_fvg_fib(setup: Setup, cfg: StrategiesSettings) -> list[Panel]:
    """15m: broken swing, BOS bar, leg, Fib lines, FVG and POI. 5m: POI, trigger, trade."""
    p, r = cfg.bos_fvg_fib, setup.reasons
    brk = _part(r, "break")
    bos_ts = _time(brk.get("time")) or setup.anchor_ts
    kind = str(brk.get("kind") or "BOS").upper().replace("CHOCH", "CHoCH")
    # the POI exists from the break on; the FVG from its first candle, when the record says
    zones = _boxes(
        r, since_poi=bos_ts, since_fvg=_time(_part(r, "fvg").get("start_time")) or bos_ts
    )
    level = _number(brk.get("level"))
    context = Panel(
        timeframe=p.context_timeframe,
        title=f"{p.context_timeframe}: structure, impulse leg, Fib zone and POI",
        lines=(
            [Line(level, f"broken swing ({kind})", "level", _time(brk.get("swing_time")), bos_ts)]
            if level is not None
            else []
        )
        + [Line(v, f"fib {k}", "fib", bos_ts) for k, v in _fibs(r)],
        boxes=zones,
        markers=[Marker(bos_ts, kind, "event", level), *_setup_marker(setup, r)],
        leg=_leg(r),
        bars=56,
        after=16,
    )
    touch = _time(r.get("first_touch_time"))
    entry = Panel(
        timeframe=p.entry_timeframe,
        title=f"{p.entry_timeframe}: trigger, entry, stop and targets",
        lines=trade_lines(setup, since=setup.ts),
        boxes=zones,
        markers=([Marker(touch, "first touch", "event")] if touch else [])
        + _setup_marker(setup, r),
        bars=72,
        after=36,
    )
    return [context, entry]


def momentum(setup: Setup, cfg: StrategiesSettings) -> list[Panel]:
    """1h: the EMA cross, the trigger bar and the volume surge; 4h: the trend that confirms."""
    p, r = cfg.momentum, setup.reasons
    cross = _time(r.get("ema_cross_ts"))
    main = Panel(
        timeframe=p.timeframe,
        title=f"{p.timeframe}: EMA({p.ema_fast}/{p.ema_slow}) cross, volume and the trade",
        lines=trade_lines(setup, since=setup.ts),
        markers=([Marker(cross, "EMA cross", "event")] if cross else []) + _setup_marker(setup, r),
        emas=(p.ema_fast, p.ema_slow),
        volume_period=p.volume_period,
        bars=72,
        after=24,
    )
    confirm = Panel(
        timeframe=p.confirm_timeframe,
        title=f"{p.confirm_timeframe}: trend confirmation (EMA {p.ema_fast}/{p.ema_slow})",
        lines=[Line(setup.entry, "entry", "entry", setup.ts)],
        emas=(p.ema_fast, p.ema_slow),
        bars=60,
        after=6,
    )
    return [main, confirm]


def breakout(setup: Setup, cfg: StrategiesSettings) -> list[Panel]:
    """1m: the broken level, the break bar's volume surge, the pullback entry; 5m: the level
    in context with the EMAs the momentum rule reads."""
    p, r = cfg.breakout, setup.reasons
    brk = _time(r.get("break_ts"))
    level = _number(r.get("level"))
    name = "resistance" if setup.side == "long" else "support"
    levels = [Line(level, f"broken {name}", "level")] if level is not None else []
    fast = Panel(
        timeframe=p.timeframe,
        title=f"{p.timeframe}: break of {name}, volume surge, pullback entry",
        lines=levels + trade_lines(setup, since=brk or setup.ts),
        markers=([Marker(brk, "break", "event", level)] if brk else []) + _setup_marker(setup, r),
        emas=(9, 21),
        volume_period=p.volume_period,
        bars=90,
        after=30,
    )
    confirm = Panel(
        timeframe=p.confirm_timeframe,
        title=f"{p.confirm_timeframe}: the {name} level ({p.sr_lookback}-bar extreme) and trend",
        lines=list(levels),
        emas=(9, 21),
        bars=max(72, p.sr_lookback + 12),
        after=12,
    )
    return [fast, confirm]


def cot_crowd(setup: Setup, cfg: StrategiesSettings) -> list[Panel]:
    """The trade on its timeframe, titled with what decided it: the COT bias (its reason is
    in the figure's heading), each crowd indicator that fired (value against threshold) and
    those without data."""
    p, r = cfg.cot_crowd, setup.reasons
    fired = r.get("fired") if isinstance(r.get("fired"), dict) else {}
    shown = [
        f"{name} {_number(v.get('value')):g} ({v.get('threshold')})"
        for name, v in fired.items()
        if isinstance(v, dict) and _number(v.get("value")) is not None
    ]
    missing = r.get("missing") if isinstance(r.get("missing"), list) else []
    title = (
        f"{p.timeframe}: {r.get('bias', 'COT')} bias; crowd against it: {', '.join(shown) or '-'}"
    )
    title += f"; no data: {', '.join(map(str, missing))}" if missing else ""
    return [
        Panel(
            timeframe=p.timeframe,
            title=title,
            lines=trade_lines(setup, since=setup.ts),
            markers=[
                Marker(setup.ts, f"{setup.side} ({len(shown)} extremes)", "setup", setup.entry)
            ],
            emas=(21,),
            bars=120,
            after=48,
        )
    ]


def fallback(setup: Setup, cfg: StrategiesSettings) -> list[Panel]:
    return [
        Panel(
            timeframe=setup.timeframe,
            title=f"{setup.timeframe}: entry, stop and targets",
            lines=trade_lines(setup, since=setup.ts),
            markers=_setup_marker(setup, setup.reasons),
        )
    ]


PANELS: dict[str, Callable[[Setup, StrategiesSettings], list[Panel]]] = {
    "bos_fvg_fib": bos_fvg_fib,
    "momentum": momentum,
    "breakout": breakout,
    "cot_crowd": cot_crowd,
}


def panels_of(setup: Setup, cfg: StrategiesSettings) -> list[Panel]:
    return PANELS.get(setup.strategy, fallback)(setup, cfg)


def _setup_marker(setup: Setup, r: dict[str, Any]) -> list[Marker]:
    """The setup's own bar: the trigger (with its kind when known) or where it stands armed."""
    if setup.status == "armed":
        return [Marker(setup.ts, "armed (waiting)", "setup", setup.entry)]
    trigger = r.get("trigger")
    kind = trigger.get("kind") if isinstance(trigger, dict) else trigger  # bos_fvg_fib: a part
    label = f"trigger: {str(kind).replace('_', ' ')}" if kind else "trigger"
    when = _time(trigger.get("time")) if isinstance(trigger, dict) else None
    return [Marker(when or setup.ts, label, "setup", setup.entry)]


def _boxes(r: dict[str, Any], *, since_poi: int | None, since_fvg: int | None) -> list[Box]:
    boxes = []
    fvg = _band(_part(r, "fvg"))
    if fvg:
        boxes.append(Box(*fvg, "15m FVG", "fvg", since_fvg))
    poi = _band(_part(r, "poi"))
    if poi:
        boxes.append(Box(*poi, "POI", "poi", since_poi))
    return boxes


def _fibs(r: dict[str, Any]) -> list[tuple[str, float]]:
    fibs = r.get("fib")
    if not isinstance(fibs, dict):
        return []
    pairs = [(str(k), _number(v)) for k, v in fibs.items()]
    return sorted((k, v) for k, v in pairs if v is not None)


def _leg(r: dict[str, Any]) -> Leg | None:
    leg = _part(r, "leg")
    start, end = _number(leg.get("start")), _number(leg.get("end"))
    if start is None or end is None:
        return None
    return Leg(start, end, _time(leg.get("start_time")), _time(leg.get("end_time")))


def _band(part: dict[str, Any]) -> tuple[float, float] | None:
    low, high = _number(part.get("bottom")), _number(part.get("top"))
    return None if low is None or high is None else (min(low, high), max(low, high))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _time(value: Any) -> int | None:
    """A reason's time as ms: records carry ints in Parquet rows and may carry ISO text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if value == value and abs(value) != float("inf") else None
    try:
        return parse_time(str(value))
    except CryptobotError:
        return None
