"""Rules written once (``core.rules``): plain Python for Python callers, without numba; the
compiled twin of the same source for compiled callers; the same answers from both."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.jit import njit
from cryptobot.fills import model

ROOT = Path(__file__).resolve().parents[1]

CALLS = """
import sys
import numpy as np
from cryptobot.fills import model
from cryptobot.manage import targets, ticks
from cryptobot.risk import cooldown, stops
out = np.zeros((4, 3))
n = model.exits_in_bar(1, 100.0, 101.0, 98.0, 1.0, 99.0, float("nan"), np.array([100.5]),
                       np.array([0.5]), False, out)
assert n == 1 and out[0].tolist() == [model.STOP, 99.0, 1.0], out
assert ticks.on_tick(1, 99.93, 0.1, True) == 100.0
assert stops.initial_stop(-1, 100.0, float("nan"), 2.0) == 102.0
assert cooldown.allowed_after(3, -1.0, 5, 4) == 9
prices = np.zeros(1)
targets.target_prices_into(prices, 1, 100.0, 99.0, float("nan"), float("nan"),
                           np.array([2.0]), 0.0)
assert prices.tolist() == [102.0], prices
print(sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite")))
"""


def test_python_callers_run_the_rules_without_loading_numba():
    done = subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src")}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@njit(cache=False)
def _exits_compiled(side, open_, high, low, qty, stop, liq, targets, target_qty, through, out):
    return model.exits_in_bar(side, open_, high, low, qty, stop, liq, targets, target_qty,
                              through, out)  # fmt: skip


prices = st.floats(90.0, 110.0, allow_nan=False)


@settings(deadline=None, max_examples=150)
@given(side=st.sampled_from([1, -1]), bar=st.lists(prices, min_size=4, max_size=4),
       stop=prices | st.just(math.nan), liq=prices | st.just(math.nan),
       levels=st.lists(prices, min_size=0, max_size=3), through=st.booleans())  # fmt: skip
def test_a_compiled_caller_and_python_get_the_same_exits(side, bar, stop, liq, levels, through):
    """The matching model's widest rule, through a compiled caller (its compiled twin) and
    from Python (the plain source), bar by bar on random bars, stops, liquidations and
    targets: the same exits in the same order."""
    open_, close = bar[0], bar[3]
    high, low = max(bar), min(bar)
    results = []
    for call in (_exits_compiled, model.exits_in_bar):
        out, left = np.zeros((8, 3)), np.full(len(levels), 0.25)
        n = call(side, open_, high, low, 1.0, stop, liq, np.array(levels, dtype=float), left,
                 through, out)  # fmt: skip
        results.append((n, out[:n].tolist(), left.tolist()))
    assert results[0] == results[1], (close, results)
    assert model.exits_in_bar.compiled().signatures  # the compiled caller ran the twin
