"""From stored positions to a weekly bias with its reason.

Net position = long - short of a category (spreads are offsetting long+short and left out),
optionally as a percentage of open interest. Each report is placed in the window of the last
``w`` reports (itself included) two ways:

- COT index (min-max): ``100 * (x - min) / (max - min)``; a flat window gives 50.
- percentile rank: ``100 * (below + (equal - 1) / 2) / (w - 1)``, where ``below`` counts the
  window's values under x and ``equal`` those equal to it (x itself included). Tie rule: values
  equal to x count half. The window's unique maximum is 100, its unique minimum 0, a window of
  identical values 50.

An index needs the full window: with fewer reports than ``w`` it is None and the bias NEUTRAL.
BULLISH at index >= ``bullish_at``, BEARISH at <= ``bearish_at``. Only reports published by
``now`` are used: the caller's clock decides what is visible, so a backtest never sees a report
before its publication time.

A bias is only as good as its report is recent: positioning from months ago says nothing about
this week. When the newest visible report's as-of date lies more than ``max_report_age_days``
before ``now`` (a lake not fetched for a while, or a shutdown backlog) the bias is ``none``,
with the reason, and no filter applies; so it is when nothing at all is public yet.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptobot.core.errors import CryptobotError
from cryptobot.core.settings import CotBiasSettings
from cryptobot.core.timeutil import iso
from cryptobot.cot.reports import CATEGORY_LABELS, REPORTS, ReportType, check_category
from cryptobot.cot.store import CotLake

BULLISH, BEARISH, NEUTRAL, NONE = "BULLISH", "BEARISH", "NEUTRAL", "none"
DAY_MS = 86_400_000


def visible(frame: pd.DataFrame, now_ms: int) -> pd.DataFrame:
    """The reports public at ``now_ms``."""
    return frame[frame["published_ts"] <= now_ms]


def code_of(asset: str, cfg: CotBiasSettings) -> str:
    code = cfg.markets.get(asset.upper())
    if code is None:
        known = ", ".join(cfg.markets)
        raise CryptobotError(f"unknown asset {asset!r}; cot.markets lists {known}")
    return code


def positions(frame: pd.DataFrame, report: ReportType, code: str) -> pd.DataFrame:
    """One contract's reports, oldest first, with ``net_<cat>`` and ``net_pct_oi_<cat>``."""
    rows = frame[frame["code"] == code].sort_values("report_date", ignore_index=True)
    out = rows[["report_date", "published_ts", "open_interest"]].copy()
    oi = rows["open_interest"].to_numpy(dtype="float64")
    for cat in report.categories:
        net = (rows[f"{cat}_long"] - rows[f"{cat}_short"]).to_numpy(dtype="int64")
        out[f"net_{cat}"] = net
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(oi > 0, 100.0 * net / oi, np.nan)
        out[f"net_pct_oi_{cat}"] = pct
    return out


def minmax_index(window: np.ndarray) -> float:
    """The last value's place between the window's min (0) and max (100)."""
    lo, hi, x = window.min(), window.max(), window[-1]
    return 50.0 if hi == lo else float(100.0 * (x - lo) / (hi - lo))


def percentile_rank(window: np.ndarray) -> float:
    """The last value's percentile rank in the window, ties counting half."""
    x, n = window[-1], len(window)
    below = int(np.sum(window < x))
    equal = int(np.sum(window == x))
    return float(100.0 * (below + (equal - 1) / 2) / (n - 1))


def rolling(values: np.ndarray, window: int, method: str) -> np.ndarray:
    """The index of every report over the ``window`` reports ending at it (NaN before)."""
    fn = percentile_rank if method == "percentile" else minmax_index
    out = np.full(len(values), np.nan)
    for end in range(window, len(values) + 1):
        chunk = values[end - window : end]
        if not np.isnan(chunk).any():
            out[end - 1] = fn(chunk)
    return out


@dataclass(frozen=True)
class Reading:
    label: str
    index: float | None
    reason: str


def read_bias(
    *, asset: str, index: float | None, net: float | None, weeks: int, cfg: CotBiasSettings
) -> Reading:
    """BULLISH/BEARISH/NEUTRAL for an index value, with the sentence that explains it."""
    who = CATEGORY_LABELS[cfg.category]
    if index is None or np.isnan(index) or net is None:
        reason = f"{asset} {NEUTRAL}: {weeks} weeks of reports, the index needs {cfg.bias_window}"
        return Reading(NEUTRAL, None, reason)
    label = BULLISH if index >= cfg.bullish_at else BEARISH if index <= cfg.bearish_at else NEUTRAL
    side = "long" if net >= 0 else "short"
    measure = " as % of open interest" if cfg.measure == "net_pct_oi" else ""
    if cfg.method == "percentile":
        where = f"at the {_ordinal(round(index))} percentile of {cfg.bias_window} weeks"
    else:
        where = f"at {index:.0f}% of its {cfg.bias_window}-week range"
    rule = f" (BULLISH at >= {cfg.bullish_at:g}, BEARISH at <= {cfg.bearish_at:g})"
    return Reading(
        label,
        index,
        f"{asset} {label}: {who}' net {side}{measure} {where}" + rule * (label == NEUTRAL),
    )


def table(
    frame: pd.DataFrame, report: ReportType, asset: str, cfg: CotBiasSettings
) -> pd.DataFrame:
    """Every visible report of ``asset`` with nets, indexes over ``cfg.windows`` (both
    methods) and the bias each week would have read."""
    check_category(report, cfg.category)
    pos = positions(frame, report, code_of(asset, cfg))
    measure = pos[f"{cfg.measure}_{cfg.category}"].to_numpy(dtype="float64")
    pos["measure"] = measure
    pos["change"] = np.diff(measure, prepend=np.nan)  # no reports: no rows, not one NaN
    for w in sorted(set(cfg.windows) | {cfg.bias_window}):
        pos[f"cot_index_{w}"] = rolling(measure, w, "minmax")
        pos[f"pctl_{w}"] = rolling(measure, w, "percentile")
    chosen = pos[index_column(cfg)]
    readings = [
        read_bias(asset=asset, index=i, net=m, weeks=n + 1, cfg=cfg)
        for n, (i, m) in enumerate(zip(chosen, measure, strict=True))
    ]
    pos["bias"] = [r.label for r in readings]
    pos["reason"] = [r.reason for r in readings]
    return pos


def latest(
    frame: pd.DataFrame,
    report: ReportType,
    assets: Sequence[str],
    cfg: CotBiasSettings,
    *,
    now_ms: int,
) -> list[dict]:
    """The newest visible report per asset, as :func:`table` rows (assets without any
    report are left out); one older than ``cfg.max_report_age_days`` at ``now_ms`` keeps its
    numbers but reads bias ``none``, with the reason."""
    out = []
    for asset in assets:
        rows = table(frame, report, asset, cfg)
        if not len(rows):
            continue
        row = {"asset": asset.upper(), **rows.iloc[-1].to_dict()}
        if too_old(int(row["report_date"]), now_ms, cfg):
            row |= {"bias": NONE, "reason": stale_reason(asset, row["report_date"], now_ms, cfg)}
        out.append(row)
    return out


def too_old(report_ms: Any, now_ms: Any, cfg: CotBiasSettings) -> Any:
    """Whether a report as of ``report_ms`` is past ``cfg.max_report_age_days`` at ``now_ms``
    (ints or NumPy arrays)."""
    return np.asarray(now_ms) - np.asarray(report_ms) > cfg.max_report_age_days * DAY_MS


def stale_reason(asset: str, report_ms: int, now_ms: int, cfg: CotBiasSettings) -> str:
    days = (now_ms - int(report_ms)) // DAY_MS
    return (
        f"{asset.upper()} {NONE}: the newest COT report is as of {iso(int(report_ms))[:10]},"
        f" {days} days before {iso(now_ms)[:10]} (cot.max_report_age_days: "
        f"{cfg.max_report_age_days})"
    )


class BiasBook:
    """The bias of any configured asset as of any moment, from one read of the lake: what
    ``signal`` and the backtest ask, seeing only reports published by then.

    A report counts once it and every earlier one are public (the running maximum of the
    publication times), so what is visible is always a prefix of the history and the index
    computed over the whole history equals the one computed over what was visible.
    """

    def __init__(self, root: Path, cfg: CotBiasSettings) -> None:
        self.cfg = cfg
        self.report = REPORTS[cfg.bias_report]
        check_category(self.report, cfg.category)
        self.frame = CotLake(root).read(self.report)
        self._tables: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}

    def at(self, asset: str, now_ms: int) -> Reading:
        """The reading at ``now_ms``; bias ``none`` (with why) for an asset not in
        ``cot.markets``, with nothing public yet, or whose newest public report is too old."""
        key = asset.upper()
        if key not in self.cfg.markets:
            return Reading(NONE, None, f"{key} {NONE}: not in cot.markets")
        rows, usable = self._table(key)
        i = int(np.searchsorted(usable, now_ms, side="right")) - 1
        if i < 0:
            when = iso(now_ms)
            reason = f"{key} {NONE}: no {self.report.name} COT report published by {when}"
            return Reading(NONE, None, reason)
        row = rows.iloc[i]
        if too_old(int(row["report_date"]), now_ms, self.cfg):
            return Reading(NONE, None, stale_reason(key, row["report_date"], now_ms, self.cfg))
        index = float(row[index_column(self.cfg)])
        return Reading(str(row["bias"]), None if np.isnan(index) else index, str(row["reason"]))

    def sides(self, asset: str, times_ms: np.ndarray) -> np.ndarray:
        """Per time: +1 under BULLISH, -1 under BEARISH, 0 otherwise (NEUTRAL or none)."""
        rows, _ = self._table(asset)
        labels = np.select([rows["bias"] == BULLISH, rows["bias"] == BEARISH], [1, -1], 0)
        i, usable = self._usable(asset, times_ms)
        picked = labels[np.clip(i, 0, None)] if len(labels) else np.zeros(len(i), dtype="int64")
        return np.where(usable, picked, 0).astype(np.int8)

    def gap_note(
        self, asset: str, times_ms: np.ndarray, *, effect: str = "entries there are not filtered"
    ) -> str | None:
        """What a backtest should be told when some of its bars had no usable report, and
        what that meant for it (``effect``); None for an asset outside ``cot.markets``."""
        key = asset.upper()
        times = np.asarray(times_ms, dtype="int64")
        if key not in self.cfg.markets or not len(times):
            return None
        missing = int((~self._usable(key, times)[1]).sum())
        if not missing:
            return None
        return (
            f"{key}: no COT bias at {missing} of {len(times)} bars (no report published yet,"
            f" or the newest older than cot.max_report_age_days {self.cfg.max_report_age_days});"
            f" {effect}"
        )

    def _usable(self, asset: str, times_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per time: the index of the newest public report (-1: none) and whether it is
        recent enough to read."""
        rows, published = self._table(asset)
        times = np.asarray(times_ms, dtype="int64")
        i = np.searchsorted(published, times, side="right") - 1
        dates = rows["report_date"].to_numpy(dtype="int64") if len(rows) else np.zeros(1, "int64")
        ok = (i >= 0) & ~too_old(dates[np.clip(i, 0, None)], times, self.cfg)
        return i, ok

    def _table(self, asset: str) -> tuple[pd.DataFrame, np.ndarray]:
        key = asset.upper()
        if key not in self._tables:
            if key in self.cfg.markets:
                rows = table(self.frame, self.report, key, self.cfg)
            else:
                empty = pd.Series(dtype="int64")
                rows = pd.DataFrame({"published_ts": empty, "report_date": empty, "bias": []})
            usable = np.maximum.accumulate(rows["published_ts"].to_numpy(dtype="int64"))
            self._tables[key] = (rows, usable)
        return self._tables[key]


def index_column(cfg: CotBiasSettings) -> str:
    return f"{'pctl' if cfg.method == 'percentile' else 'cot_index'}_{cfg.bias_window}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
