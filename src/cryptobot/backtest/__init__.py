"""Backtests: the compiled trade loop, signals, portfolio, metrics, sweeps and walk-forward.

The fast path of the composer: a strategy over stored candles, fills by ``fills/``, positions by
``manage/``'s compiled step, gates and breakers by ``risk/``. It places no order and reads no
venue (``engine/`` steps the same rules against an exchange)."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "bars": ("SymbolBars",),
        "engine": ("Costs", "Signals"),
        "portfolio": (
            "PortfolioRun",
            "PortfolioSetup",
            "manual_reset",
            "reason_key",
            "signal_intent",
        ),
    },
    modules=("kernel", "portfolio", "runner", "sweep"),
)
