"""numba's ``njit`` for every compiled module of cryptobot, with numba loaded without scipy.

The first function numba compiles or loads from its cache in a process pulls in all of numba's
lowering code, and one module of it, ``numba.np.arraymath``, imports ``scipy.linalg`` (0.2-0.4 s,
more than the compiled backtest of a million bars) only to find out whether BLAS is there for
``np.correlate``/``np.convolve`` of floats. No kernel here uses those, so arraymath is imported
here with the one scipy module it asks for blocked: numba then takes its plain-loop path for
those two functions and scipy stays unloaded. The block is lifted straight away, so numba's
linear algebra (``np.dot``, ``np.linalg``) still finds scipy when a function using it compiles.
"""

import os
import sys

from cryptobot.core import numba_cache

# before numba's first import (it reads the variable once): only commands that compile pay it
numba_cache.configure(os.environ)

from numba import njit  # noqa: E402

__all__ = ["njit"]

BLAS = "scipy.linalg.cython_blas"  # what numba.np.linalg.ensure_blas imports


def load_numba_without_scipy() -> bool:
    """Import numba's array lowering with scipy's BLAS blocked (``None`` in ``sys.modules`` makes
    its import raise ImportError, which numba takes for "no BLAS"). Returns whether it blocked:
    not when scipy's BLAS or numba's arraymath is loaded already (nothing left to save)."""
    if BLAS in sys.modules or "numba.np.arraymath" in sys.modules:
        return False
    sys.modules[BLAS] = None
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if sys.modules.get(BLAS, "") is None:
            del sys.modules[BLAS]
    return True


load_numba_without_scipy()
