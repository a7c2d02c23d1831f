"""The matching model and management inside the loop, on small hand-made bar series whose
expected fills are worked out in the comments."""

import math

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest.bars import funding_warning, symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units, trades_frame
from cryptobot.backtest.portfolio import PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.manage.policy import Policy
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup

H8 = 8 * 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC, a funding time


def candles(rows: list[tuple[float, float, float, float]], step_ms: int = 3_600_000):
    o, h, lo, c = zip(*rows, strict=True)
    return pd.DataFrame(
        {"timestamp": T0 + step_ms * np.arange(len(rows)), "open": o, "high": h, "low": lo,
         "close": c, "volume": 1000.0}
    )  # fmt: skip


def long_at(n: int, t: int = 0, stop: float = math.nan) -> Signals:
    side = np.zeros(n, dtype=np.int8)
    side[t] = 1
    return Signals.of(side, stop_price=np.where(np.arange(n) == t, stop, np.nan))


def flat(n: int, price: float = 100.0) -> list[tuple[float, float, float, float]]:
    return [(price, price, price, price)] * n


@pytest.mark.parametrize("side", [1, -1])
def test_funding_is_notional_times_rate_with_the_sign_of_the_side(side):
    """A 2-unit position entered at 01:00 and held to the end of 24 flat 1h bars at 100 sees the
    funding times 08:00 and 16:00 (00:00 is before its entry): it pays 2 x 100 x rate when long
    and the rate is positive, receives it when short; a negative rate reverses both."""
    bars = candles(flat(24))
    funding = pd.DataFrame(
        {"timestamp": [T0, T0 + H8, T0 + 2 * H8], "funding_rate": [0.01, 0.0001, -0.0003]}
    )
    sb = symbol_bars("X/USDT:USDT", "1h", bars, funding=funding)
    signals = long_at(24) if side > 0 else Signals.of(-long_at(24).side)
    run = run_units(sb, signals, qty=2.0, policy=Policy.none(), costs=Costs())
    trade = run.trades_frame().iloc[0]
    expected = -side * 2 * 100 * 0.0001 - side * 2 * 100 * -0.0003
    assert trade.funding == pytest.approx(expected, abs=1e-12)
    assert run.pnl.sum() == pytest.approx(expected, abs=1e-12)  # flat prices: funding only


def test_funding_uses_the_stored_mark_price_and_a_constant_where_history_is_missing():
    bars = candles(flat(48))
    funding = pd.DataFrame(
        {"timestamp": [T0 + H8], "funding_rate": [0.0002], "mark_price": [101.0]}
    )
    sb = symbol_bars("X/USDT:USDT", "1h", bars, funding=funding, fallback_rate=0.0001)
    assert sb.funding[8].tolist() == [0.0002, 101.0]
    assert sb.funding[16, 0] == sb.funding[24, 0] == sb.funding[32, 0] == 0.0001
    assert "no stored funding for 5 of 6 funding times" in funding_warning(sb)
    assert "for 2 of 2 funding times" in funding_warning(sb, T0 + 2 * H8, T0 + 3 * H8)
    assert funding_warning(sb, T0 + H8, T0 + H8) is None  # the stored one
    run = run_units(sb, long_at(48), qty=1.0, policy=Policy.none(), costs=Costs())
    # 08:00 at the mark 101, then 16:00, 00:00, 08:00, 16:00 at the previous close 100
    assert run.trades_frame().funding.iat[0] == pytest.approx(-(101 * 0.0002 + 4 * 100 * 0.0001))


def test_a_stop_gapped_through_fills_at_the_open_and_slippage_moves_fills_against_the_order():
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100), (97, 97.5, 96, 97)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    run = run_units(
        sb, long_at(3, stop=98.0), qty=1.0, policy=Policy.none(), costs=Costs(slippage_bps=10)
    )
    t = run.trades_frame().iloc[0]
    assert t.entry_price == pytest.approx(100 * 1.001)  # bought at the open + 10 bps
    assert t.exit_price == pytest.approx(97 * 0.999)  # the bar opened below the stop
    assert t.reason == "stop"


def ladder(through: bool = False) -> tuple[Policy, Costs]:
    one = np.array([1.0])
    return Policy(one, one, np.empty(0), np.empty(0)), Costs(limit_through=through)


def test_stop_and_target_in_one_bar_resolve_stop_first():
    """Entry 100, stop 98 (R = 2), target 102: bar 2 spans 97..103, so both were touched and
    the order inside the bar is unknown: the documented conservative rule takes the stop."""
    rows = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 103, 97, 100)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    policy, costs = ladder()
    run = run_units(sb, long_at(3, stop=98.0), qty=1.0, policy=policy, costs=costs)
    t = run.trades_frame().iloc[0]
    assert (t.reason, t.exit_price, t.net) == ("stop", 98.0, -2.0)


@pytest.mark.parametrize(
    ("path", "reason", "price"),
    [
        # 1m path: up to the target first, then down through the stop
        ([(100, 103, 99.5), (101, 101, 97), (98, 100, 98)], "target", 102.0),
        # 1m path: down through the stop first
        ([(100, 100, 97.5), (98, 103, 98), (101, 101, 100)], "stop", 98.0),
    ],
)
def test_with_detail_bars_the_order_follows_the_lower_timeframe(path, reason, price):
    rows = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 103, 97, 100)]
    detail = pd.DataFrame(
        {
            "timestamp": T0 + 2 * 3_600_000 + 60_000 * np.arange(3),
            "open": [p[0] for p in path], "high": [p[1] for p in path],
            "low": [p[2] for p in path], "close": [p[0] for p in path],
        }
    )  # fmt: skip
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows), detail=detail)
    policy, costs = ladder()
    run = run_units(sb, long_at(3, stop=98.0), qty=1.0, policy=policy, costs=costs)
    t = run.trades_frame().iloc[0]
    assert (t.reason, t.exit_price) == (reason, price)


def test_limit_through_needs_a_trade_beyond_the_target():
    rows = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 102, 99, 101)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))

    def first_exit(through: bool) -> str:
        policy, costs = ladder(through)
        run = run_units(sb, long_at(3, stop=98.0), qty=1.0, policy=policy, costs=costs)
        return run.trades_frame().reason.iat[0]

    assert first_exit(False) == "target" and first_exit(True) == "open"


def test_take_profit_ladder_breakeven_and_never_loosening_trail():
    """25 % at 1R and 2R, breakeven after 1R, a 1 x ATR trail: entry 100, stop 98 (R = 2)."""
    rows = [(100, 101, 99, 100)] * 15 + [(100, 100.5, 99.5, 100), (100, 102.5, 99.8, 102),
            (102, 104.5, 101.8, 104), (104, 104.2, 99, 100)]  # fmt: skip
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    policy = Policy(np.array([1.0, 2.0]), np.array([0.25, 0.25]), np.array([0.0]),
                    np.array([1.0]), breakeven_r=1.0)  # fmt: skip
    run = run_units(sb, long_at(len(rows), t=14, stop=98.0), qty=4.0, policy=policy, costs=Costs())
    fills = run.fills_frame()
    assert fills.kind.tolist() == ["entry", "target", "target", "trail"]
    assert fills.price.tolist()[1:3] == [102.0, 104.0]  # 1 unit at 1R, 1 unit at 2R
    trail = fills.price.iat[3]
    atr = sb.bars[17, 5]
    assert trail == pytest.approx(104.5 - atr)  # best high - 1 ATR, tighter than breakeven 100
    assert trail > 100.0


def test_partial_exits_are_rounded_down_to_the_market_step():
    """The same ladder on 1 unit with a 0.1 step: 25 % is 0.25, which no order can carry; each
    target takes 0.2 and the trail closes the 0.6 left. On 0.3 units (3 steps) a 25 % slice is
    smaller than one step: the ladder goes in whole steps, one at 1R and one at 2R, and the
    trail closes the last step (issue 15: the ladder is no longer dropped)."""
    rows = [(100, 101, 99, 100)] * 15 + [(100, 100.5, 99.5, 100), (100, 102.5, 99.8, 102),
            (102, 104.5, 101.8, 104), (104, 104.2, 99, 100)]  # fmt: skip
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    policy = Policy(np.array([1.0, 2.0]), np.array([0.25, 0.25]), np.array([0.0]),
                    np.array([1.0]), breakeven_r=1.0)  # fmt: skip
    signals = long_at(len(rows), t=14, stop=98.0)
    fills = run_units(sb, signals, qty=1.0, policy=policy, costs=Costs(), step=0.1).fills_frame()
    assert fills.kind.tolist() == ["entry", "target", "target", "trail"]
    assert fills.qty.tolist() == pytest.approx([1.0, 0.2, 0.2, 0.6])
    fills = run_units(sb, signals, qty=0.3, policy=policy, costs=Costs(), step=0.1).fills_frame()
    assert fills.kind.tolist() == ["entry", "target", "target", "trail"]
    assert fills.qty.tolist() == pytest.approx([0.3, 0.1, 0.1, 0.1])


def test_time_stop_closes_a_trade_going_nowhere_at_the_next_open():
    rows = flat(10)
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    policy = Policy(np.empty(0), np.empty(0), np.empty(0), np.empty(0), time_stop_bars=3)
    run = run_units(sb, long_at(10, stop=98.0), qty=1.0, policy=policy, costs=Costs())
    t = run.trades_frame().iloc[0]
    assert (t.reason, t.bars_held) == ("time_stop", 4)  # 3 bars lived, out at the 4th open


def test_scale_in_at_100_pct_on_margin_adds_a_leg_closes_half_the_original_and_its_stop_to_100():
    """Plan 3 (the position-manager rule), 10x leverage: +10 % of price = +100 % on margin.
    Entry 100 (1 unit = margin 10), close 110 -> at the next open 110: a leg with the same
    margin (10 x 10 / 110 = 0.909 units), half of the original leg sold, its stop to 100. The
    dip to 99 closes that half at its breakeven (100); the new leg keeps the position's 95."""
    rows = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 110, 100, 110),
            (110, 110, 104, 104), (104, 104, 99, 100)]  # fmt: skip
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    policy = Policy(np.empty(0), np.empty(0), np.empty(0), np.empty(0), scale_trigger_pct=100.0,
                    scale_max_adds=1)  # fmt: skip
    run = run_units(sb, long_at(5, stop=95.0), qty=1.0, policy=policy, costs=Costs(), leverage=10.0)
    fills = run.fills_frame()
    assert fills.kind.tolist() == ["entry", "scale_in", "scale_out", "breakeven"]
    assert fills.qty.tolist() == pytest.approx([1.0, 100 / 110, 0.5, 0.5])
    assert fills.price.tolist() == [100.0, 110.0, 110.0, 100.0]
    t = run.trades_frame().iloc[0]
    assert (t.reason, t.adds, t.max_qty) == ("open", 1, pytest.approx(1 + 100 / 110))
    # per leg: 0.5 x +10 and 0.5 x 0 on the original; the new leg marked at 100: -10/11
    assert t.net == pytest.approx(5.0 - 100 / 110 * 10)


def settings_for_portfolio():
    return load_settings(None, {})


def test_an_isolated_position_gapped_through_its_liquidation_price_is_closed_there_with_the_fee():
    """$10 risk at a stop 1 % away sizes 10 units at 100 ($1,000); the risk engine picks the
    lowest leverage within the margin budget and gives the liquidation price. A bar opening far
    below both stop and liquidation ends the position at the liquidation price, charged the
    liquidation fee on the notional there."""
    settings = settings_for_portfolio()
    rows = [(100, 100, 100, 100), (100, 100.2, 99.8, 100), (80, 81, 79, 80)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    sizing = settings.risk.sizing.model_copy(update={"method": "fixed_usd", "risk_usd": 10.0})
    risk = settings.risk.model_copy(update={"sizing": sizing, "max_leverage": 50.0})
    market = flag_market("X/USDT:USDT", MarketFlags(max_leverage=125))
    costs = Costs(liquidation_fee=0.0125)
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="test", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", 0.0, leverage=50.0),
        markets={"X/USDT:USDT": market}, brackets_of=brackets_resolver("binance", 125, None),
        policy=Policy.none(), costs=costs, initial_equity=10_000.0, use_breakers=False,
    )  # fmt: skip
    out = run_portfolio([sb], [long_at(3, stop=99.0)], setup)
    assert not out.refused, out.refused
    assert len(out.trades) == 1
    t = trades_frame(sb, out.trades).iloc[0]
    assert t.reason == "liquidation"
    assert 97.0 < t.liquidation_price < 99.0  # 50x: about 2 % below the entry, beyond the stop
    assert t.exit_price == t.liquidation_price
    assert t.fees == pytest.approx(0.0125 * t.qty * t.liquidation_price)
    assert t.net == pytest.approx(t.qty * (t.liquidation_price - 100.0) - t.fees)
