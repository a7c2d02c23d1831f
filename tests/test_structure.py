"""Swing points: a hand-checked real window, and no look-ahead on real data."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.analysis.fvg import fair_value_gaps, fill_fraction, gaps_as_of
from cryptobot.analysis.structure import breaks, swings
from cryptobot.strategies.bos_fvg_fib import points_of_interest
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


def test_swing_significance_drops_the_wiggles(window):
    # each pivot's size against its own 3-bar window: high row 3 83213.0 - lowest low of rows
    # 2..4 (82610.1) = 602.9; high row 10 84474.8 - 83790.0 = 684.8. Low row 4: highest high
    # of rows 3..5 (83292.0) - 82846.1 = 445.9; low row 6: 83565.0 - 82852.8 = 712.2; low
    # row 14: 85475.0 - 82505.0 = 2970.0. A 650 floor keeps rows 10, 6 and 14.
    out = swings(window, left=1, right=1, min_size=np.full(len(window), 650.0))
    assert _events(out, "high") == [(11, 10, 84474.8)]
    assert _events(out, "low") == [(7, 6, 82852.8), (15, 14, 82505.0)]
    # the floor is per bar (k x ATR at the pivot); NaN (ATR not known yet) rejects the pivot
    floor = np.full(len(window), 600.0)
    floor[6] = np.nan
    out = swings(window, left=1, right=1, min_size=floor)
    assert _events(out, "high") == [(4, 3, 83213.0), (11, 10, 84474.8)]
    assert _events(out, "low") == [(15, 14, 82505.0)]


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


# ---- breaks of structure, impulse legs, fair value gaps, Fib and POI on a longer window ----
# The same BTC/USDT:USDT 1h candles from 2025-04-01 00:00 UTC, rows 0..29.


@pytest.fixture
def window30(shared) -> pd.DataFrame:
    table = pq.read_table(BINANCE / "BTC_USDT_USDT/1h.parquet").to_pandas()
    return table[table.timestamp >= 1_743_465_600_000].head(30).reset_index(drop=True)


def test_hand_checked_breaks_and_legs(window30):
    out = breaks(window30, swings(window30, 1, 1), confirm_closes=1)
    events = [
        (
            int(t),
            int(out.bos[t] or out.choch[t]),
            "bos" if out.bos[t] else "choch",
            out.break_level[t],
        )
        for t in np.flatnonzero((out.bos != 0) | (out.choch != 0))
    ]
    # row 6 closes 83420.1 above the swing high 83213.0 (pivot row 3, known at row 4): first
    # break, no prior direction -> BOS. Row 15 closes 85245.4 above the next swing high 84474.8
    # (pivot 10): BOS again. The swing low 84715.7 (pivot 20, known at 21) replaced the older
    # 84666.3 (pivot 18); row 26 closes 84674.1 below it: bearish, against the trend -> CHoCH.
    assert events == [(6, 1, "bos", 83213.0), (15, 1, "bos", 84474.8), (26, -1, "choch", 84715.7)]
    # the row-6 leg starts at the lowest low between pivot 3 and row 6 (82846.1, row 4) and
    # extends with each new high: 83460.0 at row 6, 84474.8 at row 10 and after
    assert (out.leg_start[6], out.leg_start_pos[6], out.leg_end[6]) == (82846.1, 4, 83460.0)
    assert (out.leg_end[10], out.leg_end[14]) == (84474.8, 84474.8)
    # the row-15 leg starts at row 14's 82505.0 sweep; the row-26 leg at row 23's 85595.5 high
    assert (out.leg_start[15], out.leg_end[23]) == (82505.0, 85595.5)
    assert (out.leg_start[26], out.leg_start_pos[26], out.leg_end[29]) == (85595.5, 23, 84075.1)
    assert out.trend.tolist() == [0] * 6 + [1] * 20 + [-1] * 4


def test_break_needs_the_confirmation_closes(window30):
    out = breaks(window30, swings(window30, 1, 1), confirm_closes=2)
    # row 6 alone is not enough: row 7 closes 83415.2, still above 83213.0 -> break on row 7
    assert int(np.flatnonzero(out.bos != 0)[0]) == 7


def test_hand_checked_fair_value_gaps(window30):
    gaps = fair_value_gaps(window30)
    # (pos, side, top, bottom, touch, fill): e.g. row 9: low 84062.0 > row 7's high 83565.0 and
    # row 8 closed up; row 11's low 83790.0 enters it, row 12's 83549.2 fills it. Row 15's gap
    # (83869.0..84133.8) is first entered on row 29 (84075.1) and not filled by then.
    assert gaps.values.tolist() == [
        [3, 1, 82888.0, 82710.2, 4, 14],
        [7, 1, 83334.0, 83292.0, 14, 14],
        [9, 1, 84062.0, 83565.0, 11, 12],
        [15, 1, 84133.8, 83869.0, 29, -1],
        [16, 1, 84758.1, 84332.3, 18, 29],
    ]
    assert gaps_as_of(gaps, 11).values.tolist()[-1] == [9, 1, 84062.0, 83565.0, 11, -1]
    gap = gaps.iloc[2]
    # by row 11 the low 83790.0 went (84062.0 - 83790.0) / 497.0 = 54.7% into the gap
    assert fill_fraction(gap, window30, 11) == pytest.approx(272.0 / 497.0)
    assert fill_fraction(gap, window30, 12) == 1.0


def test_hand_checked_fib_and_point_of_interest(window30, settings):
    params = settings.strategies.bos_fvg_fib.model_copy(
        update={"swing_left": 1, "swing_right": 1, "swing_min_atr": 0.0}
    )
    pois = points_of_interest(window30, params)
    # no POI before row 8: the row-7 gap 83292.0..83334.0 is known on row 7, but the leg
    # 82846.1 -> 83565.0 puts the zone at 82999.05..83205.55, below the gap
    assert pois[:8] == [None] * 8
    # row 8: leg 82846.1 -> 84181.2, zone 83131.8..83513.65 holds the whole row-7 gap
    assert (pois[8].bottom, pois[8].top, pois[8].fvg_pos) == (83292.0, 83334.0, 7)
    poi = pois[10]
    # leg 82846.1 -> 84474.8 (1628.7): 0.5 = 83660.45, 0.618 = 83468.2634, 0.786 = 83194.6418
    assert poi.fib == pytest.approx({0.5: 83660.45, 0.618: 83468.2634, 0.786: 83194.6418})
    # the row-9 gap 83565.0..84062.0 (first candle row 7, inside the leg) overlaps the zone over
    # 83565.0..83660.45, wider than the row-7 gap's 42.0: it becomes the POI
    assert (poi.bottom, poi.top) == pytest.approx((83565.0, 83660.45))
    assert (poi.fvg, poi.fvg_pos, poi.level) == ((83565.0, 84062.0), 9, 83213.0)
    # row 11's low 83790.0 trades into the gap but not through it: the POI stands
    assert pois[11] == poi
    # row 12's low 83549.2 trades through the gap's bottom 83565.0: the POI is dead and the leg
    # gets no other one (the row-7 gap below, or the bare Fib zone, do not take its place)
    assert pois[12:15] == [None] * 3
    # the row-15 break's leg starts at row 14 (82505.0): the row-15 gap's first candle (row 13)
    # is before the leg, and the row-16 gap (84332.3..84758.1) sits above its 0.5 level
    # (84050.25 once the leg reaches 85595.5): no POI; the CHoCH on row 26 ends bullish legs
    assert pois[15:] == [None] * 15
