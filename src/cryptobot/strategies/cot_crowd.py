"""The plan-3 entry rule: COT for direction, crowd extremes for timing ("2 of 4").

With a BEARISH COT bias, short when at least ``required_extremes`` of these fire (the crowd
leaning long, against the bias):

- liquidations: short-side liquidations (shorts squeezed) >= ``liquidation_spike_mult`` x
  their rolling mean;
- Fear & Greed >= ``fear_greed_high`` (extreme greed);
- funding >= ``funding_extreme`` (longs pay);
- global long/short account ratio >= ``long_short_skew`` (``context.crowd``; a ratio, so 2.0
  means 66.7 % of accounts long and the issue's 70 % is 2.33).

BULLISH is the mirror (long-side liquidation spike, fear <= ``fear_greed_low``, funding <=
-``funding_extreme``, ratio <= 1 / ``long_short_skew``). NEUTRAL gives nothing. An indicator
without data (None or NaN) counts as not firing and is listed under ``missing``. Safety from
the plan: no entry while a position on the asset is open, nor without the margin it needs.

Pure: readings in, a decision out. Gathering the readings (crowd data, part 4 of issue 14) and
wiring this into ``scan``/``backtest`` are not done yet.
"""

import math
from dataclasses import dataclass, field

from cryptobot.core.settings import CrowdSettings
from cryptobot.core.setup import Side

INDICATORS = ("liquidation_spike", "fear_greed", "funding", "long_short_ratio")


@dataclass(frozen=True)
class CrowdReading:
    """The crowd at one moment. Liquidation spikes are ratios to their rolling mean; counts
    from Binance's stream are a lower bound (at most one liquidation per symbol per second)."""

    long_liquidation_spike: float | None = None  # longs liquidated / rolling mean
    short_liquidation_spike: float | None = None  # shorts liquidated / rolling mean
    fear_greed: float | None = None
    funding: float | None = None  # fraction per period, 0.0001 = 0.01 %
    long_short_ratio: float | None = None  # long accounts / short accounts


@dataclass(frozen=True)
class Trigger:
    side: Side | None
    fired: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    reason: str = ""


def trigger(
    *,
    bias: str,
    bias_reason: str,
    crowd: CrowdReading,
    p: CrowdSettings,
    position_open: bool = False,
    free_margin: float | None = None,
    margin_needed: float | None = None,
) -> Trigger:
    """Short under BEARISH / long under BULLISH when enough extremes fire against the bias."""
    if bias not in ("BULLISH", "BEARISH"):
        return Trigger(None, reason=f"no entry: COT bias {bias} ({bias_reason})")
    side: Side = "short" if bias == "BEARISH" else "long"
    values = _against(side, crowd)
    missing = [name for name, (value, _) in values.items() if not _known(value)]
    fired = {name: float(v) for name, (v, hit) in values.items() if _known(v) and hit(v, p)}
    if len(fired) < p.required_extremes:
        why = f"{len(fired)} of {p.required_extremes} crowd extremes against the {bias} bias"
        return Trigger(None, fired, missing, f"no entry: {why}")
    if position_open:
        return Trigger(None, fired, missing, "no entry: a position on this asset is open")
    if free_margin is not None and margin_needed is not None and free_margin < margin_needed:
        need = f"{margin_needed:g} margin needed, {free_margin:g} free"
        return Trigger(None, fired, missing, f"no entry: {need}")
    names = ", ".join(f"{k}={v:g}" for k, v in fired.items())
    return Trigger(side, fired, missing, f"{side}: {bias_reason}; crowd against it: {names}")


def _against(side: Side, c: CrowdReading) -> dict:
    """Each indicator's value and its test for the crowd leaning against ``side``."""
    if side == "short":  # the crowd is long
        return {
            "liquidation_spike": (
                c.short_liquidation_spike,
                lambda v, p: v >= p.liquidation_spike_mult,
            ),
            "fear_greed": (c.fear_greed, lambda v, p: v >= p.fear_greed_high),
            "funding": (c.funding, lambda v, p: v >= p.funding_extreme),
            "long_short_ratio": (c.long_short_ratio, lambda v, p: v >= p.long_short_skew),
        }
    return {
        "liquidation_spike": (c.long_liquidation_spike, lambda v, p: v >= p.liquidation_spike_mult),
        "fear_greed": (c.fear_greed, lambda v, p: v <= p.fear_greed_low),
        "funding": (c.funding, lambda v, p: v <= -p.funding_extreme),
        "long_short_ratio": (c.long_short_ratio, lambda v, p: v <= 1 / p.long_short_skew),
    }


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
