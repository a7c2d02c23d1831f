"""Performance figures of a run, from its equity curve and trade list (reused by ``report``).

Conventions: returns are daily (the equity's last value of each UTC day), annualised with 365
days (crypto trades every day); Sharpe = mean / standard deviation (ddof=1) x sqrt(365), with no
risk-free rate; Sortino uses the downside deviation sqrt(mean(min(r, 0)^2)); CAGR compounds over
the calendar span of the curve and is not reported (NaN, null in JSON) for spans shorter than
``MIN_CAGR_DAYS``: a week's +5 % compounded to a year says nothing about a strategy; Calmar =
CAGR / max drawdown (so it is not reported either). A curve that reaches zero or below
(``--units``, which trades without margin) reports no Sharpe, Sortino, CAGR or Calmar: returns
on a wiped-out account are not returns (-600 after -400 reads as a 50 % gain), and a sweep
would rank such a run first. Drawdown duration is the longest
time from a peak to the recovery of that peak (or to the end). Exposure is the share of bars
with a position open. Expectancy is the mean net PnL per closed trade; average R the mean of
closed trades' R multiples.

The tables are Arrow tables (what a run builds, ``engine``) or pandas frames alike: every figure
is worked out on NumPy columns, so a backtest needs no pandas to report them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from cryptobot.core.periods import period_ends
from cryptobot.data.arrow import column

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    Table = pa.Table | pd.DataFrame

DAY_MS = 86_400_000
YEAR_DAYS = 365.0
MIN_CAGR_DAYS = 90.0
#: a fall of 100 % or more from a peak: the equity reached zero or below (a wiped-out run)
RUIN_DRAWDOWN_PCT = 100.0


def summary(equity: Table, trades: Table, exposure: float | None = None) -> dict:
    """``equity``: columns timestamp (ms) and equity, one row per bar; ``trades``: the trade list
    of ``engine.trade_table`` (net, r, fees, funding, open, reason, entry and exit times)."""
    values = column(equity, "equity", np.float64)
    stamps = column(equity, "timestamp", np.int64)
    start, end = (values[0], values[-1]) if len(values) else (math.nan, math.nan)
    days = (stamps[-1] - stamps[0]) / DAY_MS if len(stamps) > 1 else 0.0
    dd, dd_days = max_drawdown(stamps, values)
    # a curve at or below zero (--units trades without margin) has no returns from there on:
    # a ratio of two negative equities reads as a gain, so its ratios are not reported
    ruined = dd >= RUIN_DRAWDOWN_PCT
    daily = np.empty(0) if ruined else daily_returns(stamps, values)
    out = {
        "start_equity": start,
        "end_equity": end,
        "total_return_pct": (end / start - 1) * 100 if start else math.nan,
        "cagr_pct": math.nan if ruined else cagr(start, end, days),
        "max_drawdown_pct": dd,
        "max_drawdown_days": dd_days,
        "sharpe": sharpe(daily),
        "sortino": sortino(daily),
        "trades": len(trades),
        "closed_trades": int(np.count_nonzero(~column(trades, "open", bool))) if len(trades) else 0,
        **trade_figures(trades, days),
        "exposure_pct": math.nan if exposure is None else exposure * 100,
    }
    out["calmar"] = out["cagr_pct"] / dd if dd > 0 else math.nan
    return out


def exposure(trades: Table, stamps: np.ndarray) -> float:
    """Share of bars with at least one position open. A trade still open at the end, or closed
    after it (a window ending before the data does closes it at the next open), is held to the
    last bar."""
    if len(stamps) == 0 or len(trades) == 0:
        return 0.0
    n = len(stamps)
    first = np.searchsorted(stamps, column(trades, "entry_time"))
    last = np.where(
        column(trades, "open", bool),
        n - 1,
        np.minimum(np.searchsorted(stamps, column(trades, "exit_time")), n - 1),
    )
    return covered(first=first, last=last) / n


def covered(*, first: np.ndarray, last: np.ndarray) -> int:
    """How many bars lie in at least one span ``first[k]..last[k]`` (inclusive; an empty span
    when first > last), worked out over the spans, not the bars (counting per bar took four 8
    MB arrays over a million bars). In start order, a span adds the bars beyond the furthest
    one the spans before it reach: they all start no later, so they cover a single run up to
    that bar from its start."""
    if len(first) == 0:
        return 0
    order = np.argsort(first, kind="stable")
    first, last = first[order], last[order]
    reach = np.maximum.accumulate(last)
    before = np.concatenate(([-1], reach[:-1]))
    return int(np.sum(np.maximum(last - np.maximum(before, first - 1), 0)))


def daily_returns(stamps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Returns from one UTC day's last equity to the next day's (bar-time-sorted curve); a day
    whose last value is NaN takes the day's last known one, and returns that are NaN drop."""
    known = ~np.isnan(values)
    if not known.all():  # a curve without NaN (every backtest's) is not copied
        stamps, values = stamps[known], values[known]
    if len(values) < 2:
        return np.empty(0)
    last = values[period_ends(stamps, DAY_MS)]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = last[1:] / last[:-1] - 1
    return returns[~np.isnan(returns)]


def cagr(start: float, end: float, days: float) -> float:
    if days < MIN_CAGR_DAYS or not start or start <= 0 or end <= 0:
        return math.nan
    return ((end / start) ** (YEAR_DAYS / days) - 1) * 100


def sharpe(daily: np.ndarray) -> float:
    if len(daily) < 2 or np.std(daily, ddof=1) == 0:
        return math.nan
    return float(np.mean(daily) / np.std(daily, ddof=1) * math.sqrt(YEAR_DAYS))


def sortino(daily: np.ndarray) -> float:
    downside = math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2))) if len(daily) else 0.0
    if len(daily) < 2 or downside == 0:
        return math.nan
    return float(np.mean(daily) / downside * math.sqrt(YEAR_DAYS))


def max_drawdown(stamps: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Deepest fall from a running peak in %, and the longest peak-to-recovery time in days
    (``stamps`` rising, as a curve's bar times do)."""
    if len(values) == 0:
        return 0.0, 0.0
    peaks = np.maximum.accumulate(values)
    # the bars at their running peak (the first bar is, unless NaN): the longest time from one
    # to a bar before the next is to the bar just before it, the times rising (vectorised: a
    # Python loop here took longer than the whole backtest of a million bars; bar by bar, four
    # 8 MB arrays took 0.01 s)
    at_peak = np.flatnonzero(values >= peaks)
    # max(1 - v/p) is 1 - min(v/p) exactly (rounding keeps the order), in the peaks' buffer
    depth = float((1 - np.min(np.divide(values, peaks, out=peaks))) * 100)
    if len(at_peak) == 0:  # a NaN first value: no peak at all (NaN spreads to every peak)
        at_peak = np.zeros(1, np.intp)
    until = np.append(at_peak[1:] - 1, len(values) - 1)
    longest = max(0, int(np.max(stamps[until] - stamps[at_peak])))
    return depth, longest / DAY_MS


def trade_figures(trades: Table, days: float) -> dict:
    """The trade statistics: closed trades' (win rate, profit factor, expectancy, R, hold
    time, liquidations) and every trade's (count per day, fees, funding)."""
    if len(trades) == 0:
        net = r = hold_ms = funding = fees = np.empty(0)
        reasons = np.empty(0, dtype=object)
    else:
        closed = ~column(trades, "open", bool)
        net, r = column(trades, "net", np.float64)[closed], column(trades, "r", np.float64)[closed]
        hold_ms = (column(trades, "exit_time") - column(trades, "entry_time"))[closed]
        reasons = column(trades, "reason")[closed]
        funding = column(trades, "funding", np.float64)
        fees = column(trades, "fees", np.float64)
    wins, losses = net[net > 0], net[net < 0]
    return {
        "win_rate_pct": len(wins) / len(net) * 100 if len(net) else math.nan,
        "profit_factor": wins.sum() / -losses.sum() if len(losses) else math.nan,
        "expectancy_usd": float(net.mean()) if len(net) else math.nan,
        "avg_r": float(np.nanmean(r)) if np.any(~np.isnan(r)) else math.nan,
        "trades_per_day": len(trades) / days if days else math.nan,
        "avg_hold_hours": float(np.mean(hold_ms)) / 3_600_000 if len(hold_ms) else math.nan,
        "fees_usd": float(fees.sum()),
        "funding_paid_usd": abs(float(funding[funding < 0].sum())),
        "funding_received_usd": float(funding[funding > 0].sum()),
        "liquidations": int(np.count_nonzero(reasons == "liquidation")),
    }


def buy_and_hold_pct(closes: np.ndarray) -> float:
    values = np.asarray(closes, dtype=np.float64)
    return (values[-1] / values[0] - 1) * 100 if len(values) > 1 else math.nan


def blend_pct(first: np.ndarray, second: np.ndarray) -> float:
    """Buy-and-hold of half the money in each (no rebalancing)."""
    return (buy_and_hold_pct(first) + buy_and_hold_pct(second)) / 2
