"""``cot history --chart``: one self-contained HTML file (inline SVG, no scripts, no network).

Top: net position per trader category, week by week. Bottom: the bias index with the
BULLISH/BEARISH thresholds, so the weeks the bias flipped are visible at a glance.
"""

import html
import math
from collections.abc import Sequence

import pandas as pd

from cryptobot.core.settings import CotBiasSettings
from cryptobot.cot.reports import CATEGORY_LABELS

WIDTH, HEIGHT, PAD = 960, 260, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f")


def history_html(
    rows: pd.DataFrame, *, asset: str, categories: Sequence[str], index: str, cfg: CotBiasSettings
) -> str:
    """The page for ``rows`` (a :func:`cryptobot.cot.bias.table` frame)."""
    dates = [pd.Timestamp(int(t), unit="ms").strftime("%Y-%m-%d") for t in rows["report_date"]]
    nets = {CATEGORY_LABELS[c]: rows[f"net_{c}"].astype(float).tolist() for c in categories}
    bands = {"BULLISH at": cfg.bullish_at, "BEARISH at": cfg.bearish_at}
    title = f"{asset} COT: net positions and {index}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:16px}</style></head><body>"
        f"<h2>{html.escape(title)}</h2><p>{html.escape(dates[0] if dates else '')} to "
        f"{html.escape(dates[-1] if dates else '')}, {len(dates)} reports</p>"
        + _panel(nets, dates, "net contracts")
        + _panel({index: rows[index].astype(float).tolist()}, dates, "index", (0, 100), bands)
        + "</body></html>\n"
    )


def _panel(
    series: dict[str, list[float]],
    dates: list[str],
    label: str,
    bounds: tuple[float, float] | None = None,
    bands: dict[str, float] | None = None,
) -> str:
    values = [v for vs in series.values() for v in vs if math.isfinite(v)]
    lo, hi = bounds or (min(values, default=0.0), max(values, default=1.0))
    hi = hi if hi > lo else lo + 1
    n = max(len(dates) - 1, 1)

    def xy(i: int, v: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * i / n
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [f"<svg width='{WIDTH}' height='{HEIGHT}' role='img' aria-label='{label}'>"]
    parts.append(f"<text x='4' y='16' font-size='12'>{html.escape(label)}: {lo:g} .. {hi:g}</text>")
    for name, level in (bands or {}).items():
        y = xy(0, level).split(",")[1]
        parts.append(
            f"<line x1='{PAD}' x2='{WIDTH - PAD}' y1='{y}' y2='{y}' stroke='#aaa' "
            f"stroke-dasharray='4'/><text x='{WIDTH - PAD + 2}' y='{y}' font-size='10'>"
            f"{html.escape(name)} {level:g}</text>"
        )
    for k, (name, vs) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = " ".join(xy(i, v) for i, v in enumerate(vs) if math.isfinite(v))
        parts.append(f"<polyline fill='none' stroke='{colour}' points='{points}'/>")
        parts.append(
            f"<text x='{PAD + 150 * k}' y='{HEIGHT - 8}' fill='{colour}' font-size='12'>"
            f"{html.escape(name)}</text>"
        )
    for i in (0, len(dates) - 1) if dates else ():
        x = xy(i, lo).split(",")[0]
        parts.append(f"<text x='{x}' y='{HEIGHT - PAD + 14}' font-size='10'>{dates[i]}</text>")
    return "".join(parts) + "</svg>"
