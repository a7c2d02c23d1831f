"""Backtests: the compiled trade loop, signals, the composer's two desks, metrics, sweeps and
walk-forward.

The engine's composer (``engine.composer``) decides; a backtest drives it over stored candles
through one of two desks: the fast path's (``portfolio``: positions lived by ``manage/``'s
compiled step in the kernel, fills by ``fills/``) or ``--stepwise`` (``stepwise``: orders on a
replay exchange or the paper broker, bar by bar)."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "bars": ("SymbolBars",),
        "engine": ("Costs", "Signals"),
        "portfolio": ("PortfolioRun", "PortfolioSetup", "composer_of", "costs_of"),
        "stepwise": ("drive", "run_stepwise"),
    },
    modules=("kernel", "portfolio", "runner", "stepwise", "sweep"),
)
