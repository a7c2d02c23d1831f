"""Checks on OHLCV series, shared by every write and by ``fetch --status``.

Hard problems (NaN, non-positive prices, a high below the body or a low above it, negative volume,
timestamps off the timeframe grid, bars spaced wider than the timeframe) make a write refuse the
data. The spacing check catches a file imported under the wrong timeframe: 1h bars all lie on the
5m grid, but no two of them are 5m apart. A series with holes still has neighbours one timeframe
apart, so only a series whose *closest* pair of bars is further apart than one bar is refused.
Soft ones (gaps, duplicates, zero-volume runs) are facts about the market or the source and are
only reported: the shared Binance data has real flat zero-volume bars during exchange incidents,
and long holes between source segments.
"""

from dataclasses import asdict, dataclass

import numpy as np

from cryptobot.core.timeutil import iso


@dataclass(frozen=True)
class CandleReport:
    bars: int
    first: int | None
    last: int | None
    gaps: int  # holes in the series (one per run of missing bars)
    missing_bars: int  # bars the holes would hold
    duplicates: int
    misaligned: int
    nan_rows: int
    nonpositive: int
    ohlc_violations: int
    negative_volume: int
    zero_volume_bars: int
    zero_volume_runs: int
    tf_ms: int
    closest_ms: int | None  # smallest spacing between distinct bars (None below 2 bars)

    def problems(self, *, spacing: bool = True) -> list[str]:
        """The hard problems, worded for a one-line error. ``spacing=False`` leaves out the
        wrong-timeframe test, for bars an exchange served for the timeframe it was asked for (a
        short page across a venue's outage has no two bars one timeframe apart)."""
        labels = {
            "nan_rows": "rows with NaN",
            "nonpositive": "rows with a price <= 0",
            "ohlc_violations": "rows whose high/low do not contain open and close",
            "negative_volume": "rows with negative volume",
            "misaligned": "timestamps off the timeframe grid",
        }
        found = [f"{getattr(self, k)} {text}" for k, text in labels.items() if getattr(self, k)]
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


def check_candles(
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    tf_ms: int,
) -> CandleReport:
    """Examine one series (any order; duplicates allowed) for one timeframe."""
    n = len(ts)
    if n == 0:
        return CandleReport(0, None, None, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, tf_ms, None)
    prices = np.vstack([o, h, lo, c])
    nan_rows = np.isnan(prices).any(axis=0) | np.isnan(v)
    with np.errstate(invalid="ignore"):
        nonpos = (prices <= 0).any(axis=0)
        body_hi, body_lo = np.maximum(o, c), np.minimum(o, c)
        ohlc_bad = (h < body_hi) | (lo > body_lo) | (h < lo)
        neg_vol = v < 0
        zero = v == 0
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
        misaligned=int((ts % tf_ms != 0).sum()),
        nan_rows=int(nan_rows.sum()),
        nonpositive=int((nonpos & ~nan_rows).sum()),
        ohlc_violations=int((ohlc_bad & ~nan_rows).sum()),
        negative_volume=int(neg_vol.sum()),
        zero_volume_bars=int(zero.sum()),
        zero_volume_runs=int(run_starts.sum()),
        tf_ms=tf_ms,
        closest_ms=int(steps.min()) if len(steps) else None,
    )


def span(ms: int) -> str:
    """``3_600_000`` -> ``"1h"``: the largest unit that divides the length evenly."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms / 1000:g}s"
