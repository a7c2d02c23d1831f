"""Swing points: a hand-checked real window, and no look-ahead on real data."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.analysis.structure import swings
from tests.conftest import BINANCE

# Binance BTC/USDT:USDT 1h, 2025-04-01 00:00 .. 15:00 UTC (rows 0..15), highs and lows as stored.
HIGH = [
    82775.4,
    82710.2,
    83094.3,
    83213.0,
    83194.9,
    83292.0,
    83460.0,
    83565.0,
    84181.2,
    84359.0,
    84474.8,
    84170.0,
    84119.4,
    83869.0,
    84332.3,
    85475.0,
]
LOW = [
    82383.3,
    82409.6,
    82610.1,
    82888.0,
    82846.1,
    82951.0,
    82852.8,
    83334.0,
    83401.0,
    84062.0,
    84107.1,
    83790.0,
    83549.2,
    83360.2,
    82505.0,
    84133.8,
]


@pytest.fixture
def window(shared) -> pd.DataFrame:
    table = pq.read_table(BINANCE / "BTC_USDT_USDT/1h.parquet").to_pandas()
    frame = table[table.timestamp >= 1_743_465_600_000].head(16).reset_index(drop=True)
    assert frame.high.tolist() == HIGH and frame.low.tolist() == LOW
    return frame


def _events(out: pd.DataFrame, side: str) -> list[tuple[int, int, float]]:
    """(confirmation row, pivot row, price) for each reported swing."""
    rows = out.index[out[f"swing_{side}"].notna()]
    return [(int(r), int(out.at[r, f"swing_{side}_pos"]), out.at[r, f"swing_{side}"]) for r in rows]


def test_hand_checked_swings_one_bar_each_side(window):
    out = swings(window, left=1, right=1)
    # highs: row 3 (83213.0 > 83094.3 before, >= 83194.9 after) and row 10 (84474.8 between
    # 84359.0 and 84170.0); row 14 fails on 85475.0 after it. Each is reported one bar later.
    assert _events(out, "high") == [(4, 3, 83213.0), (11, 10, 84474.8)]
    # lows: row 4 (82846.1 under 82888.0 and 82951.0), row 6 (82852.8 under 82951.0 and
    # 83334.0) and row 14 (82505.0 under 83360.2 and 84133.8, confirmed on the last row 15);
    # row 13 fails on 82505.0 after it.
    assert _events(out, "low") == [(5, 4, 82846.1), (7, 6, 82852.8), (15, 14, 82505.0)]
    assert out.last_swing_high.iloc[10] == 83213.0 and out.last_swing_high.iloc[11] == 84474.8


def test_hand_checked_swings_two_bars_each_side(window):
    out = swings(window, left=2, right=2)
    # row 3 no longer qualifies (83292.0 two bars later is higher); row 10 does, seen at row 12
    assert _events(out, "high") == [(12, 10, 84474.8)]
    # row 4 fails on 82610.1 two bars before, row 6 on 82846.1 two bars before
    assert _events(out, "low") == []


def test_equal_highs_count_once_the_first():
    frame = pd.DataFrame({"high": [1, 2, 5, 5, 2, 1.0], "low": [0.5] * 6})
    assert _events(swings(frame, 1, 1), "high") == [(3, 2, 5.0)]


def test_no_look_ahead_on_real_data(shared):
    frame = pq.read_table(BINANCE / "ETH_USDT_USDT/15m.parquet").to_pandas().iloc[:6000]
    full = swings(frame, 3, 3)
    for end in (1000, 2500, 5999):
        pd.testing.assert_frame_equal(swings(frame.iloc[:end], 3, 3), full.iloc[:end])
    # and changing every bar after t changes nothing at or before t
    shuffled = frame.copy()
    rng = np.random.default_rng(0)
    shuffled.iloc[3000:, 1:5] = shuffled.iloc[3000:, 1:5].to_numpy()[rng.permutation(3000)]
    pd.testing.assert_frame_equal(swings(shuffled, 3, 3).iloc[:3000], full.iloc[:3000])
