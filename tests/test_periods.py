"""``core.periods.period_ends`` against its definition: the last row of each group of equal
``stamps // period_ms``, over dense and sparse columns, repeated times, gaps of many periods,
times before 1970, one row and none."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.periods import period_ends

HOUR_MS, DAY_MS = 3_600_000, 86_400_000


def _by_groupby(stamps: np.ndarray, period_ms: int) -> np.ndarray:
    rows = pd.Series(np.arange(len(stamps)))
    return rows.groupby(stamps // period_ms, sort=True).last().to_numpy()


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(-(10**13), 10**13),
    gaps=st.lists(st.one_of(st.just(0), st.integers(1, 120_000), st.integers(1, 5 * DAY_MS)),
                  max_size=200),
    period_ms=st.sampled_from([60_000, HOUR_MS, DAY_MS]),
)  # fmt: skip
def test_period_ends_are_the_last_row_of_each_period_holding_rows(start, gaps, period_ms):
    stamps = start + np.cumsum(np.array([0, *gaps], dtype=np.int64))
    got = period_ends(stamps, period_ms)
    assert got.dtype.kind == "i"
    assert np.array_equal(got, _by_groupby(stamps, period_ms))


@pytest.mark.parametrize("period_ms", [HOUR_MS, DAY_MS])
def test_a_million_minute_bars_end_their_hours_and_days(period_ms):
    stamps = 1_700_006_400_000 + 60_000 * np.arange(1_000_000, dtype=np.int64)
    got = period_ends(stamps, period_ms)
    assert np.array_equal(got, _by_groupby(stamps, period_ms))
    assert got[-1] == len(stamps) - 1


def test_no_rows_no_periods_and_one_row_one():
    assert len(period_ends(np.empty(0, np.int64), DAY_MS)) == 0
    assert period_ends(np.array([-1], np.int64), DAY_MS).tolist() == [0]
