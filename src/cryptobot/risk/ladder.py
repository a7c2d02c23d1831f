"""The scalping plan's account-growth ladder and dynamic leverage.

The ladder steps the risk per trade and the leverage cap up as equity grows past +X% of the
starting capital (``risk.leverage_ladder.steps``). Dynamic leverage then moves that cap by whole
steps: +1x for a high-confidence setup, +1x in low volatility, -1x after a recent loss, and caps
it at 2x while the drawdown from the equity peak is beyond ``drawdown_cap_pct``. Both only move
the *cap*: sizing still picks the lowest leverage that carries the position, because less
leverage is never less safe. Both are off unless enabled in the config.
"""

from dataclasses import dataclass

from cryptobot.core.settings import RiskSettings


@dataclass(frozen=True)
class LeverageContext:
    equity: float | None = None
    start_equity: float | None = None
    peak_equity: float | None = None
    confidence: int | None = None
    volatility_pct: float | None = None  # ATR / price, in %
    recent_loss: bool = False


@dataclass(frozen=True)
class LadderDecision:
    risk_pct: float | None  # None: the policy's own
    max_leverage: float | None  # None: no cap beyond the market's and the config's
    reasons: tuple[str, ...]


def ladder_decision(risk: RiskSettings, ctx: LeverageContext) -> LadderDecision:
    reasons: list[str] = []
    risk_pct, cap = _ladder_step(risk, ctx, reasons)
    if risk.dynamic_leverage.enabled:
        cap = _dynamic(risk, ctx, cap if cap is not None else risk.max_leverage, reasons)
    return LadderDecision(risk_pct, cap, tuple(reasons))


def _ladder_step(
    risk: RiskSettings, ctx: LeverageContext, reasons: list[str]
) -> tuple[float | None, float | None]:
    ladder = risk.leverage_ladder
    if not ladder.enabled or not ctx.equity or not ctx.start_equity:
        return None, None
    gain = (ctx.equity / ctx.start_equity - 1) * 100
    reached = [s for s in sorted(ladder.steps, key=lambda s: s.gain_pct) if gain >= s.gain_pct]
    if not reached:
        reasons.append(f"ladder: +{gain:.1f}% since the start, below the first step")
        return None, None
    step = reached[-1]
    reasons.append(
        f"ladder: +{gain:.1f}% since the start reaches the +{step.gain_pct:g}% step: "
        f"risk {step.risk_pct:g}%, leverage cap {step.max_leverage:g}x"
    )
    return step.risk_pct, step.max_leverage


def _dynamic(risk: RiskSettings, ctx: LeverageContext, cap: float, reasons: list[str]) -> float:
    d = risk.dynamic_leverage
    if ctx.confidence is not None and ctx.confidence >= d.high_confidence_min:
        cap += d.high_confidence_bonus
        reasons.append(f"dynamic: confidence {ctx.confidence} -> +{d.high_confidence_bonus}x")
    if ctx.volatility_pct is not None and ctx.volatility_pct <= d.low_volatility_max_pct:
        cap += d.low_volatility_bonus
        reasons.append(
            f"dynamic: volatility {ctx.volatility_pct:.2f}% -> +{d.low_volatility_bonus}x"
        )
    if ctx.recent_loss:
        cap -= d.after_loss_penalty
        reasons.append(f"dynamic: a recent loss -> -{d.after_loss_penalty}x")
    cap = max(1.0, cap)
    if ctx.peak_equity and ctx.equity is not None:
        drawdown = (1 - ctx.equity / ctx.peak_equity) * 100
        if drawdown > d.drawdown_cap_pct:
            cap = min(cap, 2.0)
            reasons.append(f"dynamic: drawdown {drawdown:.1f}% > {d.drawdown_cap_pct:g}% -> cap 2x")
    return cap
