"""The candles a setup chart shows, read from the lake.

A panel shows the bars that had closed when the setup's bar closed (what the scan saw) and,
apart, the bars that closed after it up to ``now_ms`` (what happened next; drawn lighter and
labelled, never mixed into the first set). A bar still open at ``now_ms`` is never shown.
EMAs are computed over a warm-up read before the window, so they match the detector's values.
"""

from dataclasses import dataclass

import pandas as pd

from cryptobot.analysis.indicators import ema
from cryptobot.core.setup import Setup
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data.lake import Lake
from cryptobot.report.marks import Panel

MAX_BARS = 400  # an old marker widens the window, up to this many bars
WARM_UP = 200  # bars read before the window for the EMAs


@dataclass(frozen=True)
class Window:
    """A panel's candles: ``seen`` (closed by the setup's close), ``after`` (closed later),
    each EMA and the volume average over both, indexed like ``pd.concat([seen, after])``."""

    seen: pd.DataFrame
    after: pd.DataFrame
    emas: dict[int, pd.Series]
    volume_average: pd.Series | None = None


def setup_close(setup: Setup) -> int:
    """When the setup's bar closed: the newest moment its detector could have seen."""
    return setup.ts + timeframe_ms(setup.timeframe)


def read_window(lake: Lake, setup: Setup, panel: Panel, *, now_ms: int) -> Window:
    tf = timeframe_ms(panel.timeframe)
    close = setup_close(setup)
    first = close - panel.bars * tf
    earliest = panel.earliest()
    if earliest is not None:
        first = max(min(first, earliest - 8 * tf), close - MAX_BARS * tf)
    last = min(close + panel.after * tf, now_ms)
    warm = WARM_UP * tf if panel.emas or panel.volume_period else 0
    bars = lake.read_candles(setup.exchange, setup.symbol, panel.timeframe, first - warm, last)
    bars = bars[bars["timestamp"] + tf <= last].reset_index(drop=True)
    shown = bars["timestamp"] >= first
    seen = shown & (bars["timestamp"] + tf <= close)
    average = None
    if panel.volume_period:  # the baseline ``volume_ratio`` divides by: the bars before
        average = bars["volume"].rolling(panel.volume_period).mean().shift(1)[shown]
    return Window(
        seen=bars[seen],
        after=bars[shown & ~seen],
        emas={n: ema(bars, n)[shown] for n in panel.emas},
        volume_average=average,
    )
