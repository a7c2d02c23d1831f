"""The vectorised drawdown and the bar-time union give exactly what their plain versions gave."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryptobot.backtest.metrics import DAY_MS, max_drawdown
from cryptobot.backtest.portfolio import _sorted_union


def loop_drawdown(stamps: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """The loop max_drawdown replaced, kept as the reference."""
    peaks = np.maximum.accumulate(values)
    depth = float(np.max(1 - values / peaks) * 100)
    longest, peak_time = 0, stamps[0]
    for t, v, p in zip(stamps, values, peaks, strict=True):
        if v >= p:
            peak_time = t
        longest = max(longest, t - peak_time)
    return depth, longest / DAY_MS


equity = hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(1, 1e6))


@settings(max_examples=300, deadline=None)
@given(values=equity, gaps=st.lists(st.integers(1, 10 * DAY_MS), min_size=300, max_size=300))
def test_vectorised_drawdown_equals_the_loop(values, gaps):
    stamps = 1_700_000_000_000 + np.cumsum(np.array(gaps[: len(values)], dtype=np.int64))
    assert max_drawdown(stamps, values) == loop_drawdown(stamps, values)


def test_drawdown_of_a_flat_and_of_an_empty_curve():
    stamps = np.arange(5, dtype=np.int64) * DAY_MS
    assert max_drawdown(stamps, np.full(5, 100.0)) == (0.0, 0.0)
    assert max_drawdown(stamps[:0], np.empty(0)) == (0.0, 0.0)
    never_recovers = np.array([100.0, 90, 80, 85, 95])
    assert max_drawdown(stamps, never_recovers) == loop_drawdown(stamps, never_recovers)
    assert max_drawdown(stamps, never_recovers)[1] == 4.0


stamp_sets = st.lists(
    st.lists(st.integers(0, 500), max_size=60).map(lambda x: np.array(sorted(x), np.int64)),
    min_size=1,
    max_size=4,
)


@given(arrays=stamp_sets)
def test_sorted_union_equals_numpy_unique(arrays):
    got = _sorted_union(arrays)
    want = np.unique(np.concatenate(arrays))
    assert got.dtype == want.dtype and np.array_equal(got, want)
