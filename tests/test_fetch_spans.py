"""``fetcher.missing_spans``: what a fetch asks for, given what is stored (the emulator tests
run it end to end; these pin its rule on a grid and on funding's irregular times)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.data.fetcher import missing_spans
from cryptobot.data.series import FUNDING_HOLE_MS

STEP = 300_000
HOUR = 3_600_000


@given(st.sets(st.integers(0, 60)), st.integers(0, 60), st.integers(0, 60))
def test_the_spans_hold_exactly_the_grid_times_missing_from_the_window(stored, a, b):
    start, end = min(a, b) * STEP, max(a, b) * STEP
    times = np.array(sorted(stored), dtype="int64") * STEP
    spans = missing_spans(times, start=start, end=end, step=STEP)
    asked = [t for lo, hi in spans for t in range(lo, hi + 1, STEP)]
    wanted = [t for t in range(start, end + 1, STEP) if t not in set(times.tolist())]
    assert asked == wanted  # each once, in order, and spans never touch
    assert all(lo % STEP == 0 and hi % STEP == 0 for lo, hi in spans)


def test_funding_settled_every_8h_is_asked_only_where_one_is_lost():
    settled = np.array([0, 8, 16, 24, 40, 48], dtype="int64") * HOUR  # 32h lost
    start = 3 * HOUR  # between two settlements: nothing before it is missing
    spans = missing_spans(settled, start=start, end=50 * HOUR, step=1000, widest=FUNDING_HOLE_MS)
    assert spans == [(24 * HOUR + 1000, 40 * HOUR - 1000), (48 * HOUR + 1000, 50 * HOUR)]
    late = settled + np.array([0, 0, 0, 30_000, 0, 0])  # a stamp half a minute late
    assert missing_spans(late, start=0, end=24 * HOUR + 30_000, step=1000,
                         widest=FUNDING_HOLE_MS) == []  # fmt: skip
    assert missing_spans(settled[:0], start=start, end=9 * HOUR, step=1000) == [(start, 9 * HOUR)]
