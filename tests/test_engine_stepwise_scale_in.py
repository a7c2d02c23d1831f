"""``backtest --stepwise`` with scale-ins (plan 3's per-leg rule) against the fast path, on real
ETH/USDT:USDT 1h candles of 2024 (the lake of tests/test_engine_stepwise.py).

A test profile makes the rule fire often: at +1.5 % ROE on the newest leg's margin add the first
leg's margin, close half of the triggering leg and move that leg's own stop to its entry, up to
three adds, with the ladder, breakeven and the ATR trail in play. The composer sends what the
position decides at a close as venue orders for the next open (a market add, a reduce-only
market cut, the position's stop re-sent for what the venue will hold, one reduce-only stop per
leg with its own stop) and reads the fills back.

Besides the late exits of the entry bar (tests/test_engine_stepwise.py) nothing differs. A bar
that reaches a leg's own stop and a tighter position stop (the trail or breakeven has moved past
the leg's entry) is met at the position's stop first on the way, and that stop closes every leg:
the venue fills it so, and so does the kernel (``manage.step._leg_stops`` leaves a leg stop no
tighter than the position's to it). It once filled the leg's looser stop first; this pins the
fix."""

import numpy as np
import pytest

from tests.test_engine_stepwise import _both, _check, _keys, _numbered, lake  # noqa: F401

STOPS = {"breakeven", "trail", "stop"}
SCALE_IN = {"enabled": True, "trigger_margin_profit_pct": 1.5, "add_size_mult": 1.0,
            "close_original_frac": 0.5, "stop_to_breakeven": True, "max_adds": 3}  # fmt: skip
END = 1_704_067_200_000 + 3000 * 3_600_000  # the lake's first 3,000 bars (about four months)


def _legs_behind(result) -> dict[tuple[int, str], list]:
    """(entry time, symbol) -> the stop fills of a bar where a trade with adds filled a leg's
    stop before a tighter position stop (what the kernel once did)."""
    out: dict[tuple[int, str], list] = {}
    for k, trade in result.trades.iterrows():
        fills = result.fills[(result.fills.trade == k) & result.fills.kind.isin(STOPS)]
        if trade.adds == 0 or fills.empty:
            continue
        last = fills[fills.time == fills.time.max()]
        legs, rest = last.iloc[:-1], last.price.iloc[-1]  # the position's stop fills last
        sign = 1 if trade.side == "long" else -1
        if "breakeven" in set(legs.kind) and (sign * (rest - legs.price) > 0).any():
            key = (int(trade.entry_time), trade.symbol)
            out[key] = list(zip(last.qty, last.price, strict=True))
    return out


@pytest.fixture
def runs(lake, settings):  # noqa: F811
    manage = settings.manage.overriding(scale_in=SCALE_IN)
    settings = settings.model_copy(update={"manage": manage})
    return _both(lake, settings, strategy="ema_cross", risk_usd=3.0, params={"stop_atr": 2.0},
                 end=END)  # fmt: skip


def test_scale_ins_equal_the_fast_path(runs):
    fast, step = runs
    assert fast.trades.adds.sum() >= 40 and (fast.trades.adds >= 2).sum() >= 5
    assert {"scale_in", "scale_out", "breakeven", "trail", "target"} <= set(fast.fills.kind)
    assert _legs_behind(fast) == {}  # no leg stop filled behind a tighter position stop
    late = _check(fast, step, ["target", "stop", "breakeven", "trail"])
    assert len(late) < 10
    assert not [n for n in step.notes if "not sent" in n or "not placed" in n]


def test_every_add_cut_and_leg_stop_is_a_venue_fill_of_the_fast_paths_size(runs):
    """The adds and cuts are the venue's market fills at the next open, of the size the
    position's rule decides (the first leg's margin at that open; half the triggering leg),
    and a leg's own stop alone fills as the kernel's does."""
    fast, step = (_numbered(r) for r in runs)
    for kind in ("scale_in", "scale_out"):
        a, b = (r.fills[r.fills.kind == kind] for r in (fast, step))
        assert len(a) == len(b) >= 40
        np.testing.assert_allclose(b.qty, a.qty, rtol=1e-12)
        np.testing.assert_allclose(b.price, a.price, rtol=1e-12)
        assert list(b.time) == list(a.time)
    legs_alone = [k for k in range(len(fast.trades))
                  if fast.trades.adds.iloc[k] > 0
                  and "breakeven" in set(fast.fills[fast.fills.trade == k].kind)]  # fmt: skip
    assert legs_alone
    for k in legs_alone:
        a, b = (r.fills[(r.fills.trade == k) & (r.fills.kind == "breakeven")] for r in (fast, step))
        np.testing.assert_allclose(b[["qty", "price", "fee"]], a[["qty", "price", "fee"]],
                                   rtol=1e-9)  # fmt: skip
