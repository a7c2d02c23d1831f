"""numba loads without scipy (core/jit.py), and numba's linear algebra still gets scipy."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _python(code: str) -> str:
    env = os.environ | {"PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_kernel_runs_without_importing_scipy_linalg():
    out = _python(
        "import sys, numpy as np\n"
        "from cryptobot.strategies.ema_cross import ema_cross_signals\n"
        "cross = ema_cross_signals(np.linspace(1.0, 2.0, 60) ** 2, 3, 5)\n"
        "print(int(np.abs(cross).sum()), 'scipy.linalg' in sys.modules,"
        " 'scipy.linalg.cython_blas' in sys.modules)"
    )
    assert out == "0 False False"  # a monotonic series never crosses; nothing left blocked


def test_numba_linear_algebra_still_finds_scipy_afterwards():
    out = _python(
        "import sys, numpy as np\n"
        "import cryptobot.core.jit as jit\n"
        "@jit.njit\n"
        "def dot(a, b):\n"
        "    return np.dot(a, b)\n"
        "print(dot(np.arange(3.0), np.arange(3.0)), 'scipy.linalg' in sys.modules)"
    )
    assert out == "5.0 True"


def test_correlate_takes_the_plain_loop_and_agrees_with_numpy():
    out = _python(
        "import numpy as np\n"
        "from cryptobot.core.jit import njit\n"
        "@njit\n"
        "def corr(a, b):\n"
        "    return np.correlate(a, b)\n"
        "a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, -1.0])\n"
        "print(np.array_equal(corr(a, b), np.correlate(a, b)))"
    )
    assert out == "True"


def test_nothing_is_blocked_when_scipy_blas_is_loaded_already():
    out = _python(
        "import scipy.linalg.cython_blas, sys\n"
        "from cryptobot.core import jit\n"
        "print(jit.load_numba_without_scipy(), sys.modules[jit.BLAS] is not None)"
    )
    assert out == "False True"


def test_a_kernel_runs_without_importing_scipy_or_cffi_and_both_import_afterwards():
    out = _python(
        "import sys, numpy as np\n"
        "from cryptobot.strategies.ema_cross import ema_cross_signals\n"
        "from cryptobot.core import jit\n"
        "from numba.core.registry import cpu_target\n"
        "cpu_target.target_context.refresh()\n"
        "cross = ema_cross_signals(np.linspace(1.0, 2.0, 60) ** 2, 3, 5)\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'cffi'})\n"
        "import cffi, scipy\n"
        "print(int(np.abs(cross).sum()), loaded, cffi.FFI.__name__, scipy.__name__)"
    )
    assert out == "0 [] FFI scipy"


def test_nothing_is_blocked_when_the_module_is_loaded_already():
    out = _python(
        "import cffi, sys\n"
        "from cryptobot.core import jit\n"
        "blocked = jit.import_blocking('numba.core.typing.cffi_utils', blocked=jit.CFFI)\n"
        "from numba.core.registry import cpu_target\n"
        "cpu_target.target_context.refresh()\n"
        "print(blocked, sys.modules['numba.core.typing.cffi_utils'].SUPPORTED)"
    )
    assert out == "False True"


def test_constants_passed_by_compiled_callers_compile_the_callee_once():
    """numba would compile ``scale`` once per literal (0.5, 2.0, True, False): each constant
    a caller passes is typed as its literal. A fresh cache's backtest compiled ``_act`` ten
    times that way."""
    out = _python(
        "import cryptobot.core.jit as jit\n"
        "@jit.njit\n"
        "def scale(x, k, flip):\n"
        "    return -x * k if flip else x * k\n"
        "@jit.njit\n"
        "def caller(x):\n"
        "    return scale(x, 0.5, True) + scale(x, 2.0, False) + scale(x, 3, False)\n"
        "print(caller(4.0), [str(s) for s in scale.signatures])"
    )
    assert out == "18.0 ['(float64, float64, bool)', '(float64, int64, bool)']"


#: modules only numba's registries import (``CPUContext.load_additional_registries``)
REGISTRY_ONLY = ("numba.np.random.generator_methods", "numba.typed.dictimpl", "numba.cpython.heapq")
CACHED_KERNEL = (
    "import sys, numpy as np\n"
    "from cryptobot.strategies.ema_cross import ema_cross_signals, _crosses\n"
    "cross = ema_cross_signals(np.linspace(1.0, 2.0, 60) ** 2, 3, 5)\n"
    f"registries = [m for m in {REGISTRY_ONLY!r} if m in sys.modules]\n"
)


def test_a_cached_kernel_loads_without_numbas_registries_and_a_later_compile_gets_them():
    """The registries are what compiling needs (0.1-0.17 s of a backtest process); a kernel
    from the cache needs numba's runtime only, and gives the same result. A function compiled
    afterwards in the same process still gets them (and scipy stays blocked)."""
    _python(CACHED_KERNEL)  # fills the cache on a fresh machine
    out = _python(
        CACHED_KERNEL + "print(int(np.abs(cross).sum()), len(_crosses.stats.cache_hits),"
        " len(_crosses.stats.cache_misses), registries)\n"
        "from cryptobot.core.jit import njit\n"
        "@njit\n"
        "def corr(a, b):\n"
        "    return np.correlate(a, b)\n"
        "a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, -1.0])\n"
        "same = np.array_equal(corr(a, b), np.correlate(a, b))\n"
        f"print(same, all(m in sys.modules for m in {REGISTRY_ONLY!r}),"
        " 'scipy.linalg' in sys.modules)"
    )
    assert out.splitlines() == ["0 1 0 []", "True True False"]


def test_a_function_passed_to_a_kernel_is_typed_when_only_cached_loads_came_before(tmp_path):
    """numba registers the type of a ctypes/cfunc function argument in a module its registries
    import; a process that only loaded kernels from the cache built none (review finding)."""
    (tmp_path / "kern.py").write_text(
        "from cryptobot.core.jit import njit\n"
        "@njit(cache=True)\ndef one(x):\n    return x + 1.0\n"
        "@njit(cache=True)\ndef call(f, x):\n    return f(x)\n"
    )
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "import ctypes, ctypes.util\nfrom numba import types\nimport kern\n"
        "libm = ctypes.CDLL(ctypes.util.find_library('m'))\n"
        "class Cos(types.WrapperAddressProtocol):\n"
        "    def __wrapper_address__(self):\n"
        "        return ctypes.cast(libm.cos, ctypes.c_void_p).value\n"
        "    def signature(self):\n"
        "        return types.float64(types.float64)\n"
        "print(kern.one(0.0), kern.call(Cos(), 0.0), len(kern.call.stats.cache_hits))"
    )
    assert _python(code).split()[:2] == ["1.0", "1.0"]  # compiles both, filling the cache
    assert _python(code) == "1.0 1.0 1"
