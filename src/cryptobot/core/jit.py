"""numba's ``njit`` for every compiled module of cryptobot, with numba loaded without scipy
or cffi.

The first function numba compiles or loads from its cache in a process pulls in all of numba's
lowering code, and one module of it, ``numba.np.arraymath``, imports ``scipy.linalg`` (0.2-0.4 s,
more than the compiled backtest of a million bars) only to find out whether BLAS is there for
``np.correlate``/``np.convolve`` of floats. No kernel here uses those, so arraymath is imported
here with the one scipy module it asks for blocked: numba then takes its plain-loop path for
those two functions and scipy stays unloaded. The block is lifted straight away, so numba's
linear algebra (``np.dot``, ``np.linalg``) still finds scipy when a function using it compiles.
Likewise numba imports scipy at its own import only to check scipy's version (~0.01 s), and its
typing registry imports cffi (and its C parser, ~0.015 s) to type cffi functions, which no
kernel here calls: both are imported with that module blocked, so numba skips the check and
records cffi as absent; anything importing scipy or cffi later still gets it.

A kernel found in the cache loads without numba's registries (:func:`loads_without_registries`).
"""

import os
import sys
from collections.abc import Callable
from functools import partial

from cryptobot.core import numba_cache

BLAS = "scipy.linalg.cython_blas"  # what numba.np.linalg.ensure_blas imports
CFFI = "cffi"  # what numba.core.typing.cffi_utils imports


def import_blocking(module: str, *, blocked: str) -> bool:
    """Import ``module`` while ``blocked`` cannot be imported (``None`` in ``sys.modules``
    makes its import raise ImportError, which numba takes for "not installed"). Returns whether
    it blocked: not when ``blocked`` or ``module`` is loaded already (nothing left to save)."""
    if blocked in sys.modules or module in sys.modules:
        return False
    sys.modules[blocked] = None
    try:
        __import__(module)
    finally:
        if sys.modules.get(blocked, "") is None:
            del sys.modules[blocked]
    return True


def load_numba_without_scipy() -> bool:
    """numba's array lowering with scipy's BLAS blocked; whether it blocked."""
    return import_blocking("numba.np.arraymath", blocked=BLAS)


# before numba's first import (it reads the variable once): only commands that compile pay it
numba_cache.configure(os.environ)
import_blocking("numba", blocked="scipy")
load_numba_without_scipy()
import_blocking("numba.core.typing.cffi_utils", blocked=CFFI)

import numba  # noqa: E402

# the one typeof the registries add that an argument may need (a ctypes or cfunc function
# passed to a kernel): registered here, as a cached load builds no registry (1 ms)
import numba.experimental.function_type  # noqa: E402
from numba.core import types as nbtypes  # noqa: E402
from numba.core.caching import Cache  # noqa: E402
from numba.core.runtime import rtsys  # noqa: E402
from numba.extending import typeof_impl  # noqa: E402

from cryptobot.core.rules import Rule  # noqa: E402

_CACHE_STEPS = ("_load_overload", "_guard_against_spurious_io_errors")


@typeof_impl.register(Rule)
def _typeof_rule(rule: Rule, context: object) -> nbtypes.Dispatcher:
    """A rule (``core.rules``) that compiled code calls is its compiled twin."""
    return nbtypes.Dispatcher(rule.compiled())


def njit(fn: Callable | None = None, /, **options: object) -> Callable:
    """numba's ``njit`` (same options), whose functions compile once per argument *type* when
    compiled code calls them. numba types a constant argument as its literal (``_act(..., 0,
    7, ...)`` is typed ``Literal[int](0)``, ``Literal[int](7)``) and compiled a callee again
    for every combination of constants its callers pass: the step's ``_act`` ten times,
    ``_reduce`` five, ``run_trade`` twice: a quarter of the 40 s a fresh cache took to build
    the backtest's kernels. A literal is passed as its plain type instead; LLVM still sees the
    constant where it inlines the callee, so the machine code is as fast."""

    def compile_(py_func: Callable) -> Callable:
        return loads_without_registries(plain_type_calls(numba.njit(**options)(py_func)))

    return compile_ if fn is None else compile_(fn)


def loads_without_registries(dispatcher: Callable) -> Callable:
    """``dispatcher`` loading its cached machine code without building numba's registries.

    Before every load from its cache numba refreshes the whole target context: the first time
    in a process it imports and installs the typing and lowering of all of Python and NumPy
    that numba supports (0.1-0.17 s of a backtest process, for two cached kernels). That is
    what compiling needs; machine code loaded from the cache needs only numba's runtime (NRT:
    its allocator and the helpers the code calls), which is initialised here instead. A miss
    compiles as before, and numba's compiler refreshes the contexts itself first."""
    cache = getattr(dispatcher, "_cache", None)
    # not numba's NullCache of a function without cache=True, nor a numba whose cache lacks
    # the private steps used here (checked on 0.68): that one loads as numba does
    if isinstance(cache, Cache) and all(hasattr(cache, n) for n in _CACHE_STEPS):
        cache.load_overload = partial(_load_cached, cache)
    return dispatcher


def _load_cached(cache: Cache, sig: object, target_context: object) -> object:
    """numba's ``Cache.load_overload`` with the runtime initialised in place of the refresh:
    the compiled result, or None on a miss."""
    rtsys.initialize(target_context)
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)


def plain_type_calls(dispatcher: Callable) -> Callable:
    """``dispatcher`` resolving calls from compiled code with the arguments' plain types."""
    resolve = dispatcher.get_call_template  # type: ignore[attr-defined]

    def get_call_template(args: tuple, kws: dict) -> tuple:
        return resolve(tuple(nbtypes.unliteral(a) for a in args),
                       {k: nbtypes.unliteral(v) for k, v in kws.items()})  # fmt: skip

    dispatcher.get_call_template = get_call_template  # type: ignore[attr-defined]
    return dispatcher


__all__ = ["njit"]
