"""cryptobot: a command-line toolkit for crypto-futures traders (paper trading by default)."""

import os

from cryptobot.core import numba_cache

__version__ = "0.1.0"

# before any module imports numba (numba reads the variable once, at its own import)
numba_cache.configure(os.environ)
