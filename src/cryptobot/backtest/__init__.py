"""Backtests: the compiled trade loop, signals, portfolio, metrics, sweeps and walk-forward."""
