"""``cot history --chart``: the week-by-week COT picture on the report's one charting path.

Top pane: the net position of each trader category. Bottom pane: the bias index with the
BULLISH/BEARISH thresholds, so the weeks the bias flipped are visible at a glance. Drawn with
matplotlib like the setup charts and inlined into the same self-contained page
(``report.page``), so every picture cryptobot writes opens offline and looks alike.
"""

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from cryptobot.core.settings import CotBiasSettings
from cryptobot.cot.reports import CATEGORY_LABELS
from cryptobot.report.charts import DPI
from cryptobot.report.page import Figure as PageFigure
from cryptobot.report.page import figures_page

SIZE_PX = (1500, 900)
BANDS = (("BULLISH at", "#2e7d32"), ("BEARISH at", "#c62828"))


def history_figure(
    rows: pd.DataFrame, *, asset: str, categories: Sequence[str], index: str, cfg: CotBiasSettings
) -> Figure:
    """The figure for ``rows`` (a :func:`cryptobot.cot.bias.table` frame): one line per
    category's net, then the index line and its two threshold lines. Weeks without a value
    (an index before its window fills) are gaps, not zeros."""
    dates = pd.to_datetime(rows["report_date"].astype("int64"), unit="ms").to_numpy()
    fig = Figure(figsize=(SIZE_PX[0] / DPI, SIZE_PX[1] / DPI), dpi=DPI)
    nets, bias = fig.subplots(2, 1, sharex=True, height_ratios=[3.0, 2.0])
    fig.subplots_adjust(left=0.07, right=0.97, top=0.92, bottom=0.07, hspace=0.12)
    fig.suptitle(_title(rows, asset=asset, index=index), x=0.07, ha="left", fontsize=12)
    for category in categories:
        values = rows[f"net_{category}"].astype(float).to_numpy()
        nets.plot(dates, values, lw=1.4, label=CATEGORY_LABELS[category])
    nets.axhline(0.0, color="#90a4ae", lw=0.8)
    nets.set_ylabel("net contracts")
    nets.legend(loc="upper left", fontsize=9, framealpha=0.8)
    bias.plot(dates, rows[index].astype(float).to_numpy(), color="#263238", lw=1.6, label=index)
    for (name, colour), level in zip(BANDS, (cfg.bullish_at, cfg.bearish_at), strict=True):
        bias.axhline(level, color=colour, ls="--", lw=1.2, label=f"{name} {level:g}")
    bias.set_ylim(0.0, 100.0)
    bias.set_ylabel("index")
    bias.legend(loc="upper left", fontsize=9, framealpha=0.8)
    locator = AutoDateLocator()
    bias.xaxis.set_major_locator(locator)
    bias.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for ax in (nets, bias):
        ax.grid(True, color="#eceff1", lw=0.8)
    return fig


def history_page(
    rows: pd.DataFrame, *, asset: str, categories: Sequence[str], index: str, cfg: CotBiasSettings
) -> str:
    """The self-contained HTML page holding the figure of ``rows``."""
    fig = history_figure(rows, asset=asset, categories=categories, index=index, cfg=cfg)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    title = f"{asset} COT: net positions and {index}"
    caption = _title(rows, asset=asset, index=index)
    return figures_page([PageFigure(id=f"cot-{asset}", caption=caption, png=buffer.getvalue())],
                        title=title)  # fmt: skip


def _title(rows: pd.DataFrame, *, asset: str, index: str) -> str:
    stamps = rows["report_date"].astype("int64").to_numpy()
    if stamps.size == 0:
        return f"{asset} COT: no reports"
    first, last = (np.datetime64(int(t), "ms").astype("datetime64[D]") for t in stamps[[0, -1]])
    return f"{asset} COT {index}: {first} to {last}, {stamps.size} reports"
