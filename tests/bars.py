"""Synthetic bars for tests, in a module of its own: processes a test starts import it without
the conftest (pytest, hypothesis, the emulator, the CLI)."""

import numpy as np
import pandas as pd


def walk_bars(start: int, n: int, step: int = 300_000, seed: int = 1) -> pd.DataFrame:
    """``n`` valid OHLCV bars of a seeded random walk from ``start``, ``step`` ms apart."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(0.002 * rng.standard_normal(n).cumsum())
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame(
        {
            "timestamp": start + step * np.arange(n, dtype="int64"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )
