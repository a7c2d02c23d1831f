"""Indicators (TA-Lib) and market structure, computed on whole frames of closed bars.

Pure functions: frames in, series or frames out. No I/O, no clock, no trading decisions (the
strategies in ``strategies/`` decide; ``analysis`` only measures)."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "indicators": ("adx", "atr", "ema", "macd", "rsi", "volume_ratio"),
        "flow": ("order_flow",),
        "fvg": ("fair_value_gaps",),
        "strength": ("relative_strength", "universe_percentiles"),
        "structure": ("breaks", "swings"),
        "ta": ("talib",),
    },
    modules=("fib", "profile", "regime"),
)
