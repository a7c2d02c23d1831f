"""A setup's picture: its panels (see ``marks``) drawn over their candles, as PNG bytes.

matplotlib's object API (``Figure``, no pyplot): no global state and no GUI backend, so
charts can be drawn from any process or thread. Every figure has the same pixel size
(``SIZE_PX``), whatever it holds, so pages line up and tests can check it.
"""

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from cryptobot.core.setup import Setup
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import DAY_MS, iso
from cryptobot.report.marks import Box, Leg, Line, Marker, Panel
from cryptobot.report.text import price_text, reasons_text
from cryptobot.report.windows import Window

DPI = 100
SIZE_PX = (1500, 1100)
UP, DOWN = "#26a69a", "#ef5350"
LINE_STYLE = {  # kind -> colour, dashes, width
    "entry": ("#1565c0", "-", 1.6),
    "stop": ("#c62828", "--", 1.6),
    "target": ("#2e7d32", "-.", 1.3),
    "level": ("#ef6c00", "-", 2.0),
    "fib": ("#6a1b9a", ":", 1.3),
    "leg": ("#546e7a", "--", 1.0),
}
BOX_STYLE = {"poi": ("#ffb300", None), "fvg": ("#42a5f5", "//")}
Label = tuple[float, str, str]  # price, text, colour
AFTER_NOTE = "pale candles: closed after the setup's bar (the detector had not seen them)"


def setup_png(setup: Setup, panels: Sequence[tuple[Panel, Window]]) -> bytes:
    """The figure for ``setup``: one price pane per panel (plus its volume pane), titled with
    what a trader checks first."""
    fig = Figure(figsize=(SIZE_PX[0] / DPI, SIZE_PX[1] / DPI), dpi=DPI)
    ratios = []
    for panel, _ in panels:
        ratios += [3.0, 0.8] if panel.volume_period else [3.0]
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.35)
    fig.subplots_adjust(left=0.06, right=0.86, top=0.90, bottom=0.04)
    fig.suptitle(_title(setup), x=0.05, ha="left", fontsize=11, family="monospace")
    row = 0
    for panel, window in panels:
        price = fig.add_subplot(grid[row])
        volume = fig.add_subplot(grid[row + 1], sharex=price) if panel.volume_period else None
        row += 2 if volume is not None else 1
        _draw_panel(price, volume, setup, panel, window)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _title(setup: Setup) -> str:
    when = (iso(setup.ts) or "")[:16].replace("T", " ")
    targets = "  ".join(
        f"{price_text(t)} ({r:g}R)" for t, r in zip(setup.targets, setup.r_targets, strict=True)
    )
    return (
        f"{setup.symbol}  {setup.strategy}  {setup.side.upper()}  {setup.status}  "
        f"{setup.timeframe} bar {when} UTC  confidence {setup.confidence}/5\n"
        f"entry {price_text(setup.entry)}   stop {price_text(setup.stop)}   targets {targets}\n"
        + _wrap(reasons_text(setup.reasons), 150)
    )


def _wrap(text: str, width: int) -> str:
    lines, current = [], ""
    for part in text.split("; "):
        if current and len(current) + len(part) + 2 > width:
            lines.append(current)
            current = part
        else:
            current = f"{current}; {part}" if current else part
    return "\n".join([*lines, current][:2])


def _x(ms: float | np.ndarray) -> float | np.ndarray:
    """matplotlib's date numbers: days since 1970-01-01."""
    return np.asarray(ms, dtype="float64") / DAY_MS


def _draw_panel(ax: Axes, volume: Axes | None, setup: Setup, panel: Panel, window: Window) -> None:
    tf = timeframe_ms(panel.timeframe)
    ax.set_title(panel.title, loc="left", fontsize=10)
    _candles(ax, window.seen, tf, alpha=1.0)
    _candles(ax, window.after, tf, alpha=0.3)
    frames = pd.concat([window.seen, window.after])
    left, right = _span(frames, setup, panel, tf)
    ax.set_xlim(_x(left), _x(right))
    for n, series in window.emas.items():
        ax.plot(_x(frames["timestamp"] + tf / 2), series, lw=1.1, label=f"EMA {n}")
    for box in panel.boxes:
        _box(ax, box, right)
    labels = [_line(ax, line, left, right) for line in panel.lines]
    if panel.leg is not None:
        labels += _leg(ax, panel.leg, left, right, tf)
    _labels(ax, labels)
    for i, marker in enumerate(sorted(panel.markers, key=lambda m: m.ts)):
        _marker(ax, volume, marker, setup, tf, height=0.995 - 0.07 * (i % 2))
    notes = []
    if window.seen.empty:
        notes.append(f"no {panel.timeframe} candles stored for this window")
    if not window.after.empty:
        notes.append(AFTER_NOTE)
    if notes:
        ax.text(
            0.005,
            0.98,
            "\n".join(notes),
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            color="#37474f",
            bbox={"fc": "white", "ec": "#b0bec5", "alpha": 0.85},
        )
    if window.emas:
        ax.legend(loc="lower left", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.25)
    ax.yaxis.set_major_formatter(lambda y, _pos: price_text(float(f"{y:.6g}")))
    if volume is not None:
        _volume(volume, frames, tf, panel.volume_period or 1, window)
    _time_axis(volume if volume is not None else ax, ax if volume is not None else None)


def _span(frames: pd.DataFrame, setup: Setup, panel: Panel, tf: int) -> tuple[float, float]:
    """The x range: the candles (or the setup's time when none are stored), and at least a
    few bars of room after the setup, so its levels read as lines even on the newest bar."""
    ahead = setup.ts + timeframe_ms(setup.timeframe) + min(panel.after, 8) * tf
    if frames.empty:
        left, right = setup.ts - panel.bars * tf, ahead
    else:
        left = float(frames["timestamp"].iloc[0])
        right = max(float(frames["timestamp"].iloc[-1]) + tf, ahead)
    return left - tf, right + 0.01 * (right - left)


def _candles(ax: Axes, bars: pd.DataFrame, tf: int, *, alpha: float) -> None:
    if bars.empty:
        return
    o, h, lo, c = (bars[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
    x = _x(bars["timestamp"].to_numpy() + tf / 2)
    colour = np.where(c >= o, UP, DOWN)
    ax.vlines(x, lo, h, colors=colour, lw=0.8, alpha=alpha)
    body = np.maximum(np.abs(c - o), (h - lo).max() * 1e-3)
    ax.bar(x, body, width=_x(0.7 * tf), bottom=np.minimum(o, c), color=colour, alpha=alpha)


def _line(ax: Axes, line: Line, left: float, right: float) -> Label:
    """Draw the level; return its right-hand label (placed once all levels are known)."""
    colour, dashes, width = LINE_STYLE.get(line.kind, LINE_STYLE["level"])
    start = left if line.since is None else max(line.since, left)
    end = right if line.until is None else line.until
    ax.hlines(line.price, _x(start), _x(end), colors=colour, linestyles=dashes, lw=width)
    return line.price, f"{line.label} {price_text(float(f'{line.price:.8g}'))}", colour


def _labels(ax: Axes, labels: list[Label]) -> None:
    """Level labels right of the pane, at their price, pushed apart just enough to be read."""
    ax.autoscale_view()
    low, high = ax.get_ylim()
    ax.set_ylim(low, high)
    labels = sorted(labels)
    wanted = [(price - low) / (high - low) for price, _, _ in labels]
    gap = 11 / max(ax.bbox.height, 1.0)  # one 8-point line, as a fraction of the pane
    for (_, text, colour), y in zip(labels, spread(wanted, gap=gap), strict=True):
        ax.text(1.005, y, text, transform=ax.transAxes, va="center", fontsize=8, color=colour)


def spread(wanted: Sequence[float], *, gap: float) -> list[float]:
    """Positions (fractions of the pane, ascending) moved apart to at least ``gap``: first up
    from the lowest, then down from the top edge where that pushed them past it. Order is
    kept, so each label stays beside its own line's neighbours."""
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, placed[-1] + gap) if placed else y)
    for i in range(len(placed) - 1, -1, -1):
        placed[i] = min(placed[i], 1.0 if i == len(placed) - 1 else placed[i + 1] - gap)
    return placed


def _box(ax: Axes, box: Box, right: float) -> None:
    """A shaded band from ``since``; the POI named above it, an FVG below (they often share
    an edge: the POI is narrowed to the FVG)."""
    colour, hatch = BOX_STYLE.get(box.kind, BOX_STYLE["poi"])
    left = max(ax.get_xlim()[0], _x(box.since)) if box.since is not None else ax.get_xlim()[0]
    ax.fill_between(
        [left, _x(right)],
        box.low,
        box.high,
        color=colour,
        alpha=0.18,
        hatch=hatch,
        edgecolor=colour,
        lw=0.8,
    )
    below = box.kind == "fvg"
    ax.text(
        left,
        box.low if below else box.high,
        f" {box.label}",
        fontsize=8,
        color=colour,
        va="top" if below else "bottom",
        fontweight="bold",
    )


def _leg(ax: Axes, leg: Leg, left: float, right: float, tf: int) -> list[Label]:
    """The impulse leg as an arrow when its times are known; its two ends as levels."""
    if leg.start_ts is not None and leg.end_ts is not None:
        ax.annotate(
            "",
            xy=(_x(leg.end_ts + tf / 2), leg.end),
            xytext=(_x(leg.start_ts + tf / 2), leg.start),
            arrowprops={"arrowstyle": "->", "color": "#37474f", "lw": 1.6},
        )
    return [
        _line(ax, Line(price, name, "leg", leg.start_ts), left, right)
        for price, name in ((leg.start, "leg start"), (leg.end, "leg end"))
    ]


def _marker(
    ax: Axes, volume: Axes | None, marker: Marker, setup: Setup, tf: int, *, height: float
) -> None:
    """A dotted line through the bar (and its volume) with its label at ``height``; the
    setup's own bar gets an arrow at its entry."""
    own = timeframe_ms(setup.timeframe) if marker.kind == "setup" else tf  # the setup's bar
    x = _x(marker.ts + own / 2)
    colour = "#1565c0" if marker.kind == "setup" else "#37474f"
    for axis in (ax, volume):
        if axis is not None:
            axis.axvline(x, color=colour, lw=0.9, ls=":", alpha=0.9)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(
        x,
        height,
        marker.label,
        transform=top,
        ha="center",
        va="top",
        fontsize=8,
        color=colour,
        fontweight="bold",
        bbox={"fc": "white", "ec": "none", "alpha": 0.8},
    )
    if marker.price is not None and marker.kind == "setup":
        shape = "^" if setup.side == "long" else "v"
        ax.plot([x], [marker.price], marker=shape, ms=11, color=colour, mec="white", zorder=5)


def _volume(ax: Axes, frames: pd.DataFrame, tf: int, period: int, window: Window) -> None:
    if frames.empty:
        return
    x = _x(frames["timestamp"].to_numpy() + tf / 2)
    up = frames["close"].to_numpy() >= frames["open"].to_numpy()
    seen = np.arange(len(frames)) < len(window.seen)
    for mask, colour in ((up, UP), (~up, DOWN)):
        for shown, a in ((seen, 0.9), (~seen, 0.3)):
            keep = mask & shown
            ax.bar(
                x[keep],
                frames["volume"].to_numpy()[keep],
                width=_x(0.7 * tf),
                color=colour,
                alpha=a,
            )
    if window.volume_average is not None:
        ax.plot(
            x,
            window.volume_average,
            color="#37474f",
            lw=1.0,
            label=f"average of the {period} bars before",
        )
        ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    ax.set_ylabel("volume", fontsize=8)
    ax.grid(alpha=0.25)


def _time_axis(bottom: Axes, above: Axes | None) -> None:
    """Concise UTC dates under the lowest pane of a panel only."""
    locator = AutoDateLocator(minticks=6, maxticks=12)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if above is not None:
        above.tick_params(labelbottom=False)
