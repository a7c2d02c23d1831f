"""What the ``cot_crowd`` detector reads besides candles, and its loader from the lake.

Every value is stamped with the moment it became known (``data.crowd``'s convention), and a
bar's reading is the newest value known at that bar's close:

- COT bias: :class:`cryptobot.cot.bias.BiasBook`, which sees only reports published by then;
- funding: the last settled rate; Fear & Greed: the last published day (its 00:00 UTC); both
  count as missing when older than ``max_reading_age_hours`` (a hole in the history is not
  "calm");
- long/short account ratio: the snapshot of the last closed ``crowd_period``, missing when the
  newest is older than one period;
- liquidation spike, per side: the last closed period's liquidated USD over the mean of the
  ``liquidation_window`` periods before it; NaN where a period in it was not recorded (Binance
  has no history of its own, see ``data.liquidations``) or the mean is 0.

A series never stored is all-missing, which the trigger counts as not firing: reported by
:meth:`CrowdContext.missing_note`, never an error. No COT report stored at all is an error:
the strategy has no direction without one.
"""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cryptobot.core.errors import ConfigError, DataError
from cryptobot.core.settings import CotCrowdSettings, Settings
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.cot.bias import BiasBook
from cryptobot.data import crowd
from cryptobot.data.lake import Lake

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Series:
    """Values (float64) and when each became known (int64 ms), oldest first."""

    known: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str) -> "Series":
        return cls(
            frame["timestamp"].to_numpy(dtype="int64"), frame[column].to_numpy(dtype="float64")
        )

    def at(self, times: np.ndarray, *, max_age_ms: float) -> np.ndarray:
        """Per time, the newest value known by then; NaN when none is, or it is too old."""
        i = np.searchsorted(self.known, times, side="right") - 1
        if not len(self.known):
            return np.full(len(times), np.nan)
        j = np.clip(i, 0, None)
        fresh = (i >= 0) & (times - self.known[j] <= max_age_ms)
        return np.where(fresh, self.values[j], np.nan)

    def truncated(self, end_ms: int) -> "Series":
        keep = self.known <= end_ms
        return Series(self.known[keep], self.values[keep])


@dataclass(frozen=True)
class CrowdContext:
    """One symbol's COT asset and bias book and its crowd series."""

    asset: str
    bias: BiasBook
    funding: Series
    fear_greed: Series
    long_short: Series
    long_spike: Series
    short_spike: Series

    def truncated(self, end_ms: int) -> "CrowdContext":
        """The bias book needs no cut: it is asked at bar closes and shows only what was
        published by then."""
        names = ("funding", "fear_greed", "long_short", "long_spike", "short_spike")
        return replace(self, **{n: getattr(self, n).truncated(end_ms) for n in names})

    def readings(self, closes: np.ndarray, p: CotCrowdSettings) -> dict[str, np.ndarray]:
        """Per bar close, each ``CrowdReading`` field (NaN: unknown)."""
        period = timeframe_ms(p.crowd_period)
        age = p.max_reading_age_hours * HOUR_MS
        return {
            "long_liquidation_spike": self.long_spike.at(closes, max_age_ms=period - 1),
            "short_liquidation_spike": self.short_spike.at(closes, max_age_ms=period - 1),
            "fear_greed": self.fear_greed.at(closes, max_age_ms=age),
            "funding": self.funding.at(closes, max_age_ms=age),
            "long_short_ratio": self.long_short.at(closes, max_age_ms=period),
        }

    def missing_note(self, symbol: str, closes: np.ndarray, p: CotCrowdSettings) -> str | None:
        """One line naming what was unknown at some of these closes: the COT bias (no entry
        there) and each crowd indicator (counted as not firing); None when all was known."""
        values = self.readings(closes, p)
        spike = np.isnan(values.pop("long_liquidation_spike")) | np.isnan(
            values.pop("short_liquidation_spike")
        )
        gaps = {"liquidation_spike": spike, **{k: np.isnan(v) for k, v in values.items()}}
        parts = [
            f"{name} at {int(g.sum())}" + (" (no data stored)" if g.all() else "")
            for name, g in gaps.items()
            if g.any()
        ]
        no_bias = "cot_crowd takes no entry there"
        lines = [self.bias.gap_note(self.asset, closes, effect=no_bias)] if len(closes) else []
        if parts and len(closes):
            lines.append(
                f"{symbol}: cot_crowd indicators missing (counted as not firing) of "
                f"{len(closes)} bars: {', '.join(parts)}"
            )
        return "; ".join(line for line in lines if line) or None


def cot_asset(symbol: str, p: CotCrowdSettings, settings: Settings) -> str:
    """The COT asset of ``symbol``'s base, or a clear error naming the map to edit."""
    base = symbol.split("/")[0].upper()
    asset = p.assets.get(base)
    if asset is None:
        raise ConfigError(
            f"cot_crowd: {symbol} has no COT asset (its base {base} is not in "
            f"strategies.cot_crowd.assets: {', '.join(p.assets) or 'empty'})"
        )
    if asset.upper() not in settings.cot.markets:
        raise ConfigError(
            f"cot_crowd: COT asset {asset} of {symbol} is not in cot.markets "
            f"({', '.join(settings.cot.markets)})"
        )
    return asset.upper()


def load(
    *,
    lake: Lake,
    settings: Settings,
    exchange: str,
    symbol: str,
    params: CotCrowdSettings,
    start: int,
    end: int,
) -> CrowdContext:
    """Everything known about ``symbol``'s crowd up to ``end`` (ms), liquidation totals from
    ``liquidation_window`` periods before ``start``."""
    asset = cot_asset(symbol, params, settings)
    book = BiasBook(lake.root, settings.cot)
    if book.frame.empty:
        raise DataError(
            f"cot_crowd needs COT reports and none ({settings.cot.bias_report}) are stored; run"
            " `cryptobot cot fetch` (or `cryptobot cot fetch --import fut_fin_txt_YYYY.zip`)"
        )
    period = timeframe_ms(params.crowd_period)
    ratios = crowd.read_long_short(
        lake, exchange=exchange, symbol=symbol, period=params.crowd_period, end=end
    )
    funding = crowd.read_funding(lake, exchange=exchange, symbol=symbol, end=end)
    totals = crowd.liquidation_totals(
        lake, exchange=exchange, symbol=symbol, period=params.crowd_period,
        start=start - (params.liquidation_window + 1) * period, end=end,
    )  # fmt: skip
    return CrowdContext(
        asset=asset,
        bias=book,
        funding=Series.of(funding, "funding_rate"),
        fear_greed=Series.of(crowd.read_fear_greed(lake, end=end), "value"),
        long_short=Series.of(ratios, "long_short_ratio"),
        long_spike=_spikes(totals, "long_usd", params.liquidation_window),
        short_spike=_spikes(totals, "short_usd", params.liquidation_window),
    )


def _spikes(totals: pd.DataFrame, column: str, window: int) -> Series:
    """Each period's total over the mean of the ``window`` periods before it (all known)."""
    usd = totals[column].astype("float64")
    mean = usd.shift(1).rolling(window, min_periods=window).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        spike = np.where(mean > 0, usd / mean, np.nan)
    return Series(totals["timestamp"].to_numpy(dtype="int64"), spike.astype("float64"))
