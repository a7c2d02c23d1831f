"""``--chart DIR`` of ``scan`` and ``signal``: one PNG per setup and one page of them all.

File names sort by bar time and say what they show
(``20250319T1435Z_ETH_USDT_USDT_bos_fvg_fib_long_<id>.png``); the id makes them unique, so
charting the same setups again replaces the same files. Each file is written atomically:
an interrupted run leaves earlier charts whole.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptobot.core.settings import StrategiesSettings
from cryptobot.core.setup import Setup
from cryptobot.core.symbols import symbol_to_id
from cryptobot.core.timeutil import iso
from cryptobot.data.atomic import atomic_write
from cryptobot.data.lake import Lake
from cryptobot.report.charts import setup_png
from cryptobot.report.marks import panels_of
from cryptobot.report.page import Figure, figures_page
from cryptobot.report.text import price_text
from cryptobot.report.windows import read_window

PAGE = "setups.html"


def chart_setup(setup: Setup, *, lake: Lake, cfg: StrategiesSettings, now_ms: int) -> bytes:
    """The PNG of one setup: its strategy's panels over the lake's candles as of ``now_ms``."""
    panels = panels_of(setup, cfg)
    return setup_png(setup, [(p, read_window(lake, setup, p, now_ms=now_ms)) for p in panels])


def write_setup_charts(
    setups: Sequence[Setup],
    *,
    lake: Lake,
    cfg: StrategiesSettings,
    directory: Path,
    now_ms: int,
    title: str,
) -> list[Path]:
    """Write each setup's PNG and ``setups.html`` (all of them) into ``directory``; return
    the paths written, the page last."""
    figures, written = [], []
    for setup in setups:
        png = chart_setup(setup, lake=lake, cfg=cfg, now_ms=now_ms)
        path = directory / f"{file_stem(setup)}.png"
        atomic_write(path, lambda tmp, data=png: tmp.write_bytes(data))
        figures.append(Figure(id=setup.id, caption=caption(setup), png=png))
        written.append(path)
    page = directory / PAGE
    text = figures_page(figures, title=title)
    atomic_write(page, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return [*written, page]


def file_stem(setup: Setup) -> str:
    when = datetime.fromtimestamp(setup.ts / 1000, tz=UTC).strftime("%Y%m%dT%H%MZ")
    parts = (when, symbol_to_id(setup.symbol), setup.strategy, setup.side, setup.id)
    return "_".join(parts)


def caption(setup: Setup) -> str:
    when = (iso(setup.ts) or "")[:16].replace("T", " ")
    return (
        f"{setup.symbol} {setup.strategy} {setup.side} {setup.status} {setup.timeframe} "
        f"{when} UTC, confidence {setup.confidence}: entry {price_text(setup.entry)}, "
        f"stop {price_text(setup.stop)}"
    )
