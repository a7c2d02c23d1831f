"""The plan-3 entry rule: COT for direction, crowd extremes for timing ("2 of 4").

With a BEARISH COT bias, short when at least ``required_extremes`` of these fire (the crowd
leaning long, against the bias):

- liquidations: short-side liquidations (shorts squeezed) >= ``liquidation_spike_mult`` x
  their rolling mean;
- Fear & Greed >= ``fear_greed_high`` (extreme greed);
- funding >= ``funding_extreme`` (longs pay);
- global long/short account ratio >= ``long_short_skew`` (``strategies.cot_crowd``; a ratio, so 2.0
  means 66.7 % of accounts long and the issue's 70 % is 2.33).

BULLISH is the mirror (long-side liquidation spike, fear <= ``fear_greed_low``, funding <=
-``funding_extreme``, ratio <= 1 / ``long_short_skew``). NEUTRAL gives nothing. An indicator
without data (None or NaN) counts as not firing and is listed under ``missing``. Safety from
the plan: no entry while a position on the asset is open, nor without the margin it needs.

``trigger`` is pure: readings in, a decision out. ``detect`` is the ``scan``/``backtest``
strategy (``strategies.cot_crowd``): at each closed ``timeframe`` bar it reads the COT bias
visible at the close and the crowd known then (``crowd_context``), and asks ``trigger``. An
episode gives one setup: a setup needs ``cooldown_bars`` bars without the trigger firing on
that side before it. Entry is the close, the stop ``stop_atr_mult`` x ATR(``atr_period``)
away, targets ``targets_r`` multiples of that risk; confidence = indicators fired (2..4).
Safety: ``scan`` knows no positions (the risk gates' ``one_position_per_symbol`` and margin
checks refuse a second entry or one without margin, in ``size`` and in the backtest).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from cryptobot.analysis.indicators import atr
from cryptobot.core.settings import CotCrowdSettings, CrowdSettings
from cryptobot.core.setup import Setup, Side
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.strategies import crowd_context
from cryptobot.strategies.base import SymbolData, make_setup
from cryptobot.strategies.spec import Strategy

NAME = "cot_crowd"

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
    values = _against(side, crowd, p)
    missing = [name for name, (value, _) in values.items() if not _known(value)]
    fired = {name: float(v) for name, (v, hit) in values.items() if _known(v) and hit(v)}
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


def tests(side: Side, p: CrowdSettings) -> dict[str, tuple[str, float]]:
    """Each indicator's test for the crowd leaning against ``side``: (operator, threshold).
    One table serves the decision and the reasons a setup shows."""
    if side == "short":  # the crowd is long
        return {
            "liquidation_spike": (">=", p.liquidation_spike_mult),  # shorts squeezed
            "fear_greed": (">=", p.fear_greed_high),
            "funding": (">=", p.funding_extreme),
            "long_short_ratio": (">=", p.long_short_skew),
        }
    return {
        "liquidation_spike": (">=", p.liquidation_spike_mult),  # longs flushed
        "fear_greed": ("<=", p.fear_greed_low),
        "funding": ("<=", -p.funding_extreme),
        "long_short_ratio": ("<=", 1 / p.long_short_skew),
    }


def _against(side: Side, c: CrowdReading, p: CrowdSettings) -> dict:
    """Each indicator's value and whether it passes its test against ``side``."""
    spike = c.short_liquidation_spike if side == "short" else c.long_liquidation_spike
    values = {"liquidation_spike": spike, "fear_greed": c.fear_greed, "funding": c.funding,
              "long_short_ratio": c.long_short_ratio}  # fmt: skip
    return {
        name: (values[name], lambda v, op=op, at=at: v >= at if op == ">=" else v <= at)
        for name, (op, at) in tests(side, p).items()
    }


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def detect(data: SymbolData, p: CotCrowdSettings) -> list[Setup]:
    """Triggered setups at the bars where ``trigger`` fires after a quiet spell."""
    frame, ctx = data.frame(p.timeframe), data.context.get(NAME)
    if ctx is None or len(frame) <= p.atr_period:
        return []
    closes = frame["timestamp"].to_numpy(dtype="int64") + timeframe_ms(p.timeframe)
    sides = ctx.bias.sides(ctx.asset, closes)
    values = ctx.readings(closes, p)
    ranges = atr(frame, p.atr_period).to_numpy()
    last_fired = {"long": -(10**9), "short": -(10**9)}
    setups = []
    for t in np.flatnonzero(sides != 0).tolist():  # NEUTRAL or no bias: the rule gives nothing
        reading = CrowdReading(**{k: float(v[t]) for k, v in values.items()})
        bias = "BULLISH" if sides[t] > 0 else "BEARISH"
        decision = trigger(bias=bias, bias_reason="", crowd=reading, p=p)
        if decision.side is None:
            continue
        quiet = t - last_fired[decision.side] > p.cooldown_bars
        last_fired[decision.side] = t
        if quiet and math.isfinite(ranges[t]):
            why = ctx.bias.at(ctx.asset, int(closes[t]))
            full = trigger(bias=why.label, bias_reason=why.reason, crowd=reading, p=p)
            setups.append(_setup(data, p, frame, t, full, why.reason, float(ranges[t])))
    return setups


def _setup(data: SymbolData, p: CotCrowdSettings, frame, t: int, decision: Trigger,
           bias_reason: str, atr_value: float) -> Setup:  # fmt: skip
    side = decision.side
    assert side is not None
    close = float(frame["close"].iat[t])
    stop = close - (1.0 if side == "long" else -1.0) * p.stop_atr_mult * atr_value
    rules = tests(side, p)
    reasons = {
        "cot_asset": data.context[NAME].asset,
        "bias": "BULLISH" if side == "long" else "BEARISH",
        "bias_reason": bias_reason,
        "fired": {
            name: {"value": value, "threshold": f"{rules[name][0]} {rules[name][1]:g}"}
            for name, value in decision.fired.items()
        },
        "missing": decision.missing,
        "required": p.required_extremes,
        "atr": atr_value,
        "decision": decision.reason,
    }
    ts = int(frame["timestamp"].iat[t])
    return make_setup(data, strategy=NAME, timeframe=p.timeframe, side=side, triggered=True,
                      times=(ts, ts), levels=(close, stop), targets_r=p.targets_r,
                      confidence=len(decision.fired), reasons=reasons)  # fmt: skip


STRATEGY = Strategy(
    name=NAME,
    timeframes=lambda p: [p.timeframe],
    detect=detect,
    context=crowd_context.load,
)
