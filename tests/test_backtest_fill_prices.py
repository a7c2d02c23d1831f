"""Fill prices stay inside their bar, and MFE/MAE count the bar a trade ends in: hand-made bars
worked out in the docstrings, and every fill of a run on real candles (../shared/data)."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units
from cryptobot.manage.policy import Policy
from tests.conftest import BINANCE
from tests.test_backtest_fills import candles, long_at


def test_slippage_never_buys_above_the_high_nor_sells_below_the_low():
    """Entry at bar 1, which opens at its high 100 (100 bps slippage would buy at 101, a price
    bar 1 never traded): the fill is 100. Bar 2 opens at 97.5, below the stop 98, and that open
    is its low: the stop fills at 97.5, not 97.5 x 0.99."""
    rows = [(100, 100, 100, 100), (100, 100, 99, 99.5), (97.5, 98.5, 97.5, 98)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    run = run_units(
        sb, long_at(3, stop=98.0), qty=1.0, policy=Policy.none(), costs=Costs(slippage_bps=100)
    )
    t = run.trades_frame().iloc[0]
    assert (t.entry_price, t.exit_price, t.reason) == (100.0, 97.5, "stop")


def test_slippage_inside_the_range_still_moves_the_fill_against_the_order():
    """The bar has room: bought at 100 x 1.001 (high 101), stopped at 98 x 0.999 (low 96)."""
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100), (99, 99, 96, 97)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    run = run_units(
        sb, long_at(3, stop=98.0), qty=1.0, policy=Policy.none(), costs=Costs(slippage_bps=10)
    )
    t = run.trades_frame().iloc[0]
    assert t.entry_price == pytest.approx(100.1)
    assert t.exit_price == pytest.approx(98 * 0.999)


def test_mae_of_a_stop_out_reaches_minus_one_r_and_stops_at_the_fill():
    """Long at 100, stop 98 (risk 2): bar 2 spikes to 103 then (stop first) trades down to 90.
    The position ended at the stop, 98: MAE -1R exactly (the low at 90, after the exit, is not
    held: -5R would be wrong, and leaving the bar out gave -0.25R from bar 1's low 99.5). The
    spike is not counted either: with the stop first, the path is unknown."""
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100), (100, 103, 90, 91)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    run = run_units(sb, long_at(3, stop=98.0), qty=1.0, policy=Policy.none(), costs=Costs())
    t = run.trades_frame().iloc[0]
    assert t.reason == "stop"
    assert (t.mae_r, t.mfe_r) == (-1.0, 0.5)


def test_mfe_counts_a_target_filled_in_the_exit_bar():
    """Long at 100, stop 98, one target at 2R = 104 for the whole position: bar 2 reaches 105
    and fills it at 104. MFE 2R (the fill), not 0.5R (bar 1 only) nor 2.5R (after the exit)."""
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100), (100, 105, 100, 104)]
    sb = symbol_bars("X/USDT:USDT", "1h", candles(rows))
    policy = replace(Policy.none(), tp_r=np.array([2.0]), tp_frac=np.array([1.0]))
    run = run_units(sb, long_at(3, stop=98.0), qty=1.0, policy=policy, costs=Costs())
    t = run.trades_frame().iloc[0]
    assert t.reason == "target"
    assert (t.mfe_r, t.mae_r) == (2.0, -0.25)


def eth_hourly_trades(*, every: int, stop_atr: float):
    """Real ETH/USDT:USDT 1h bars (2024 on) and a trade on every ``every``-th bar, on the side of
    that bar's colour, its stop ``stop_atr`` ATR from the fill: many gaps, stops and exits."""
    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("shared candles missing")
    frame = pd.read_parquet(path)
    frame = frame[frame.timestamp >= 1_704_067_200_000].reset_index(drop=True)
    sb = symbol_bars("ETH/USDT:USDT", "1h", frame)
    side = np.where(sb.bars[:, kernel.CLOSE] >= sb.bars[:, kernel.OPEN], 1, -1).astype(np.int8)
    side[np.arange(len(side)) % every != 0] = 0
    return sb, Signals.of(side, stop_distance=sb.bars[:, kernel.ATR] * stop_atr)


@pytest.fixture(scope="module")
def eth_run():
    """ETH/USDT:USDT 1h (2024 on), a long or short on every 40th bar by the last bar's colour,
    stop 1.5 ATR from the fill, 30 bps slippage: many gaps, stops and opposite-signal exits."""
    sb, signals = eth_hourly_trades(every=40, stop_atr=1.5)
    policy = Policy.none(exit_on_signal=True)
    return sb, run_units(
        sb, signals, qty=1.0, policy=policy, costs=Costs(taker=0.0005, slippage_bps=30)
    )


def test_every_fill_on_real_candles_lies_inside_its_bar(eth_run):
    sb, run = eth_run
    fills = run.fills
    assert len(fills) > 100
    bar = fills[:, kernel.F_BAR].astype(int)
    price = fills[:, kernel.F_PRICE]
    high, low = sb.bars[bar, kernel.HIGH], sb.bars[bar, kernel.LOW]
    outside = (price > high) | (price < low)
    assert not outside.any(), fills[outside]


def test_every_stop_out_on_real_candles_shows_its_loss_in_the_mae(eth_run):
    """A stop-out's MAE is at least as bad as its fill: -1R or worse (slippage, gaps)."""
    _, run = eth_run
    trades = run.trades_frame()
    stops = trades[trades.reason == "stop"]
    assert len(stops) > 20
    sign = np.where(stops.side == "long", 1.0, -1.0)
    fill_r = (stops.exit_price - stops.entry_price) * sign / stops.risk
    assert (stops.mae_r <= fill_r + 1e-9).all()
    assert (stops.mae_r <= -1.0 + 1e-9).all()
    assert not math.isnan(stops.mfe_r.sum())
