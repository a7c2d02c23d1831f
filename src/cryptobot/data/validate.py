"""Checks on OHLCV series, shared by every write and by ``fetch --status``.

Hard problems (NaN or infinite values, non-positive prices, a high below the body or a low above
it, negative volume, timestamps off the timeframe grid, bars spaced wider than the timeframe) make
a write refuse the data. The spacing check catches a file imported under the wrong timeframe: 1h
bars all lie on the 5m grid, but no two of them are 5m apart. A series with holes still has
neighbours one timeframe apart, so only a series whose *closest* pair of bars is further apart
than one bar is refused. One bar has no spacing to judge: :func:`lone_bar_problem` asks the
stored series instead.
Soft ones (gaps, duplicates, zero-volume runs) are facts about the market or the source and are
only reported: the shared Binance data has real flat zero-volume bars during exchange incidents,
and long holes between source segments.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from cryptobot.core.timeframes import off_grid
from cryptobot.core.timeutil import iso

if TYPE_CHECKING:  # the writers hand their frames in; the readers load no pandas
    import pandas as pd


@dataclass(frozen=True)
class CandleReport:
    bars: int
    first: int | None
    last: int | None
    gaps: int  # holes in the series (one per run of missing bars)
    missing_bars: int  # bars the holes would hold
    duplicates: int
    misaligned: int
    nonfinite_rows: int  # NaN or +-inf in any OHLCV column
    nonpositive: int
    ohlc_violations: int
    negative_volume: int
    zero_volume_bars: int
    zero_volume_runs: int
    tf_ms: int
    closest_ms: int | None  # smallest spacing between distinct bars (None below 2 bars)
    first_bad: int | None = None  # open time of the earliest bar with a row-level hard problem

    def problems(self, *, spacing: bool = True) -> list[str]:
        """The hard problems, worded for a one-line error. ``spacing=False`` leaves out the
        wrong-timeframe test, for bars an exchange served for the timeframe it was asked for (a
        short page across a venue's outage has no two bars one timeframe apart)."""
        labels = {
            "nonfinite_rows": "rows with NaN or infinite values",
            "nonpositive": "rows with a price <= 0",
            "ohlc_violations": "rows whose high/low do not contain open and close",
            "negative_volume": "rows with negative volume",
            "misaligned": "timestamps off the timeframe grid",
        }
        found = [f"{getattr(self, k)} {text}" for k, text in labels.items() if getattr(self, k)]
        if found:
            found.append(f"the first bad bar opens at {iso(self.first_bad)}")
        wide = self.closest_ms is not None and self.closest_ms > self.tf_ms
        if spacing and wide and not self.misaligned:
            tf = span(self.tf_ms)
            found.append(
                f"no two bars are {tf} apart (closest: {span(self.closest_ms)}): these are not"
                f" {tf} bars; check the timeframe"
            )
        return found

    def as_row(self) -> dict:
        row = asdict(self)
        row["first"], row["last"] = iso(self.first), iso(self.last)
        return row


def check_candles(bars: Mapping[str, ArrayLike], *, tf_ms: int) -> CandleReport:
    """Examine one series (any order; duplicates allowed) for one timeframe. ``bars`` holds the
    OHLCV columns by name (``timestamp open high low close volume``): a frame or the lake's
    column dict, so no caller has to keep six arrays in their order."""
    ts, v = np.asarray(bars["timestamp"]), np.asarray(bars["volume"])
    o, h, lo, c = (np.asarray(bars[name]) for name in ("open", "high", "low", "close"))
    n = len(ts)
    if n == 0:
        return CandleReport(0, None, None, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, tf_ms, None)
    prices = np.vstack([o, h, lo, c])
    nonfinite = ~np.isfinite(prices).all(axis=0) | ~np.isfinite(v)
    with np.errstate(invalid="ignore"):
        nonpos = (prices <= 0).any(axis=0)
        body_hi, body_lo = np.maximum(o, c), np.minimum(o, c)
        ohlc_bad = (h < body_hi) | (lo > body_lo) | (h < lo)
        neg_vol = v < 0
        zero = v == 0
    misaligned = off_grid(ts, tf_ms)
    bad = nonfinite | nonpos | ohlc_bad | neg_vol | misaligned
    order = np.argsort(ts, kind="stable")
    sts = ts[order]
    diffs = np.diff(sts)
    duplicates = int((diffs == 0).sum())
    steps = diffs[diffs > 0]
    holes = steps[steps > tf_ms]
    zero_sorted = zero[order]
    run_starts = zero_sorted & ~np.concatenate(([False], zero_sorted[:-1]))
    return CandleReport(
        bars=n - duplicates,
        first=int(sts[0]),
        last=int(sts[-1]),
        gaps=len(holes),
        missing_bars=int((holes // tf_ms - 1).sum()),
        duplicates=duplicates,
        misaligned=int(misaligned.sum()),
        nonfinite_rows=int(nonfinite.sum()),
        nonpositive=int((nonpos & ~nonfinite).sum()),
        ohlc_violations=int((ohlc_bad & ~nonfinite).sum()),
        negative_volume=int((neg_vol & ~nonfinite).sum()),
        zero_volume_bars=int(zero.sum()),
        zero_volume_runs=int(run_starts.sum()),
        tf_ms=tf_ms,
        closest_ms=int(steps.min()) if len(steps) else None,
        first_bad=int(ts[bad].min()) if bad.any() else None,
    )


#: Market data starts with Bitcoin (2009); a time before it, or after 2099, is not an epoch
#: millisecond of any venue's (a negative number, epoch microseconds, a date read wrongly) and
#: could not even be written as a date: it would break every later read of the series.
FIRST_PLAUSIBLE_MS = 1_230_768_000_000  # 2009-01-01
LAST_PLAUSIBLE_MS = 4_102_444_800_000  # 2100-01-01, excluded


def first_conflict(frame: "pd.DataFrame", stamps: np.ndarray) -> tuple[int, int, int] | None:
    """The index labels of the first two rows of ``frame`` that hold different values for one
    time (``stamps``: as the lake files them), and that time; None when there are none. Which
    one is meant cannot be guessed, so a writer refuses them; identical repeats are harmless
    (the merge keeps one)."""
    rows = frame.assign(timestamp=stamps)
    distinct = rows[rows.duplicated("timestamp", keep=False)].drop_duplicates()
    clash = distinct[distinct.duplicated("timestamp", keep=False)]
    if clash.empty:
        return None
    ts = clash["timestamp"].iloc[0]
    first, second = clash.index[clash["timestamp"] == ts][:2]
    return first, second, int(ts)


def implausible(ts: np.ndarray) -> np.ndarray:
    """Which of ``ts`` cannot be the epoch milliseconds of market data."""
    return (ts < FIRST_PLAUSIBLE_MS) | (ts >= LAST_PLAUSIBLE_MS)


def implausible_times(ts: np.ndarray) -> str | None:
    """Why some of ``ts`` cannot be stored (see :func:`implausible`), or ``None``; the bad value
    is shown as the number it is, since it has no date."""
    bad = implausible(ts)
    if not bad.any():
        return None
    return (
        f"{int(bad.sum())} timestamps before 2009 or after 2099 (the first: {int(ts[bad][0])}):"
        " not epoch milliseconds of market data"
    )


def lone_bar_problem(*, ts: int, neighbours: np.ndarray, tf_ms: int) -> str | None:
    """Why one bar written alone cannot be taken for a ``tf_ms`` bar, or ``None``.

    A single bar has no spacing to judge its timeframe by (a 1h bar imported as 1m was taken
    for a 1m bar and drove a backtest from it), so it must sit on or next to a stored bar:
    ``neighbours`` are the stored open times within one bar of ``ts``. Files of two bars or more
    are judged by their own spacing (:meth:`CandleReport.problems`).
    """
    if len(neighbours) and (np.abs(neighbours - ts) <= tf_ms).any():
        return None
    tf = span(tf_ms)
    return (
        f"a single bar at {iso(ts)} with no stored bar next to it: one bar cannot show it is a"
        f" {tf} bar; import it together with its neighbours, or next to the stored {tf} series"
    )


def span(ms: int) -> str:
    """``3_600_000`` -> ``"1h"``: the largest unit that divides the length evenly."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms / 1000:g}s"
