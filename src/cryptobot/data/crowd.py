"""Crowd data as a strategy reads it: observations that had been made by a time, stamped with
the time each became known, so a detector that reads up to its bar's close cannot look ahead.

Each reader returns the stored rows whose known time lies in ``[start, end]`` (ms; None: open),
oldest first, ``timestamp`` being that known time:

- funding: the settlement time (the rate charged then);
- open interest and long/short ratios: the snapshot time the venue stamps;
- taker volume: the **end** of the period it sums (the venue's stamp + the period);
- Fear & Greed: the day's 00:00 UTC, when alternative.me publishes it;
- liquidations: the trade time of each forced order; per-period totals at the period's close
  (:func:`read_liquidations`, :func:`liquidation_totals`, from :mod:`cryptobot.data.liquidations`).

A series never stored reads as an empty frame with its columns: "no history" is for the caller
to say (the ``cot_crowd`` trigger counts it as not firing).
"""

import math

import pandas as pd

from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data.lake import Lake
from cryptobot.data.liquidations import liquidation_totals, read_liquidations
from cryptobot.data.series import kind_of
from cryptobot.data.sources import FEAR_GREED_SOURCE

__all__ = [
    "LONG_SHORT",
    "liquidation_totals",
    "observations",
    "read_fear_greed",
    "read_funding",
    "read_liquidations",
    "read_long_short",
    "read_open_interest",
    "read_taker_volume",
]

#: ``traders`` of :func:`read_long_short` -> the stored kind
LONG_SHORT = {
    "all": "long_short",
    "top_accounts": "top_long_short_accounts",
    "top_positions": "top_long_short_positions",
}


def observations(
    lake: Lake,
    kind: str,
    *,
    source: str,
    symbol: str | None = None,
    period: str | None = None,
    start: int | None = None,
    end: int | None = None,
) -> pd.DataFrame:
    """Any stored series of ``kind`` (see :mod:`cryptobot.data.series`) as known in time."""
    spec = kind_of(kind)
    if kind == "funding":
        frame = lake.read_funding(source, symbol or "")
    else:
        frame = lake.read_series(kind, source, symbol, spec.period or period)
    if spec.summed and len(frame):
        frame = frame.assign(timestamp=frame["timestamp"] + timeframe_ms(period or ""))
    known = frame["timestamp"].to_numpy()
    lo = -math.inf if start is None else start
    hi = math.inf if end is None else end
    return frame[(known >= lo) & (known <= hi)].reset_index(drop=True)


def read_funding(
    lake: Lake, *, exchange: str, symbol: str, start: int | None = None, end: int | None = None
) -> pd.DataFrame:
    """``timestamp, funding_rate, mark_price`` (mark price NaN where none is stored)."""
    return observations(lake, "funding", source=exchange, symbol=symbol, start=start, end=end)


def read_open_interest(
    lake: Lake,
    *,
    exchange: str,
    symbol: str,
    period: str,
    start: int | None = None,
    end: int | None = None,
) -> pd.DataFrame:
    """``timestamp, open_interest, open_interest_value`` (base units; quote currency)."""
    return observations(
        lake, "open_interest", source=exchange, symbol=symbol, period=period, start=start, end=end
    )


def read_long_short(
    lake: Lake,
    *,
    exchange: str,
    symbol: str,
    period: str,
    traders: str = "all",
    start: int | None = None,
    end: int | None = None,
) -> pd.DataFrame:
    """``timestamp, long_short_ratio, long_account, short_account`` of all accounts
    (``traders="all"``) or of the top traders by account or position (``top_accounts``,
    ``top_positions``). ``long_account`` is the share of accounts long (0.7 = 70 %)."""
    if traders not in LONG_SHORT:
        raise ValueError(f"traders must be one of {', '.join(LONG_SHORT)}, not {traders!r}")
    return observations(
        lake,
        LONG_SHORT[traders],
        source=exchange,
        symbol=symbol,
        period=period,
        start=start,
        end=end,
    )


def read_taker_volume(
    lake: Lake,
    *,
    exchange: str,
    symbol: str,
    period: str,
    start: int | None = None,
    end: int | None = None,
) -> pd.DataFrame:
    """``timestamp`` (the period's close), ``buy_volume, sell_volume`` taken by market orders."""
    return observations(
        lake, "taker_volume", source=exchange, symbol=symbol, period=period, start=start, end=end
    )


def read_fear_greed(
    lake: Lake,
    *,
    start: int | None = None,
    end: int | None = None,
    source: str = FEAR_GREED_SOURCE,
) -> pd.DataFrame:
    """``timestamp, value`` (0 extreme fear .. 100 extreme greed), one a day."""
    return observations(lake, "fear_greed", source=source, start=start, end=end)
