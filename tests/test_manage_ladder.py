"""The take-profit ladder in whole steps of the market (``manage.policy.ladder_lots``): a slice
smaller than one step is not dropped; the ladder never sells more than the position."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.manage.policy import ladder_lots
from tests.manage_reference import whole_steps

QUARTERS = [0.25, 0.25, 0.25]


@pytest.mark.parametrize(
    ("steps", "fractions", "expected"),
    [
        (3, QUARTERS, [1, 1, 1]),  # nothing trails
        (2, QUARTERS, [1, 1, 0]),  # 1 at 1R, 1 at 2R
        (1, QUARTERS, [1, 0, 0]),
        (0, QUARTERS, [0, 0, 0]),
        (4, QUARTERS, [1, 1, 1]),  # one step trails
        (10, QUARTERS, [2, 2, 2]),  # rounded down as before: 4 steps trail
        (10, [0.3333, 0.3333, 0.3334], [3, 3, 4]),  # a 100 % ladder closes everything
        (2, [0.3333, 0.3333, 0.3334], [1, 1, 0]),
        (5, [0.5, 0.5], [2, 3]),
        # a larger slice's steps beyond its first leave a later slice its one (hypothesis
        # found the 40 % slice taking two and the last slice none)
        (5, [0.01, 0.01, 0.01, 0.40, 0.01], [1, 1, 1, 1, 1]),
        (6, [0.01, 0.01, 0.01, 0.40, 0.01], [1, 1, 1, 2, 1]),
        (3, [0.6, 0.2, 0.2], [1, 1, 1]),
    ],
)
def test_ladder_in_whole_steps(steps, fractions, expected):
    step = 0.001
    lots = ladder_lots(steps * step, np.array(fractions), step)
    assert np.round(lots / step).astype(int).tolist() == expected


def test_without_a_step_the_slices_are_exact_fractions():
    np.testing.assert_allclose(ladder_lots(0.3, np.array(QUARTERS), 0.0), [0.075] * 3)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.integers(0, 500),
    step=st.sampled_from([1e-3, 0.01, 0.1, 0.25, 1.0, 5.0]),
    pcts=st.lists(st.integers(1, 100), min_size=1, max_size=5).filter(lambda p: sum(p) <= 100),
)
def test_the_slices_are_whole_steps_and_never_more_than_the_position(steps, step, pcts):
    qty = steps * step
    fractions = np.array(pcts) / 100
    lots = ladder_lots(qty, fractions, step)
    counts = lots / step
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)  # whole steps
    assert (lots >= 0).all() and lots.sum() <= qty + 1e-9 * max(1.0, qty)
    # while steps remain, no slice is left empty (nearest target first)
    expected_filled = min(steps, len(pcts))
    assert (np.round(counts[:expected_filled]) >= 1).all()
    if sum(pcts) == 100:
        assert lots.sum() == pytest.approx(qty)
    np.testing.assert_allclose(lots, whole_steps(qty, list(fractions), step), atol=1e-9)
