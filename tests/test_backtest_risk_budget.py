"""The $ at risk holds at the stop: sized from the price the order is sent at (the next open),
with the slippage in the budget and the stop live on the entry bar. Hand-made bars worked out in
the docstrings, a hypothesis invariant on gap-free random walks, and real candles.

Fees: the default ``risk.sizing.include_fees: true`` counts the taker fee in and out in the
budget, so the bound below is on the **net** loss (fees included)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.backtest import kernel, runner
from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, trades_frame
from cryptobot.backtest.portfolio import PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.manage.policy import Policy
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup
from tests.conftest import BINANCE
from tests.test_backtest_fill_prices import eth_hourly_trades
from tests.test_backtest_fills import candles, long_at
from tests.test_backtest_invariants import market, random_signals

SYMBOL = "X/USDT:USDT"
TARGET = 10.0


def run(sb, signals, costs: Costs, equity: float = 100_000.0):
    base = load_settings(None, {}).risk
    sizing = base.sizing.model_copy(update={"method": "fixed_usd", "risk_usd": TARGET})
    risk = base.model_copy(update={"sizing": sizing})
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="test", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", costs.taker),
        markets={sb.symbol: flag_market(sb.symbol, MarketFlags(max_leverage=20))},
        brackets_of=brackets_resolver("binance", 20, None), policy=Policy.none(), costs=costs,
        initial_equity=equity, use_breakers=False,
    )  # fmt: skip
    out = run_portfolio([sb], [signals], setup)
    frame = trades_frame(sb, out.trades)
    frame["risk_usd"] = out.risk_usd
    return out, frame


def test_a_gap_from_the_signal_close_to_the_next_open_is_sized_for():
    """Signal at bar 0's close 100, stop 95; bar 1 opens at 103 (long: the stop is 8 away, not
    5). Sized from 103 with 10 bps slippage and no fees: $10 / (8 + 0.001 x (103 + 95)) =
    1.2195 units. Bar 2 falls through 95 inside the bar: bought 103.103, sold 94.905 - a loss of
    $10.00 at most (sized from the close it was 2 units and $16.40)."""
    rows = [(100, 100, 100, 100), (103, 104, 102, 103), (103, 103, 90, 91)]
    sb = symbol_bars(SYMBOL, "1h", candles(rows))
    _, trades = run(sb, long_at(3, stop=95.0), Costs(slippage_bps=10))
    t = trades.iloc[0]
    assert t.qty == pytest.approx(10 / (8 + 0.001 * 198))
    assert (t.entry_price, t.exit_price, t.reason) == (
        pytest.approx(103.103),
        pytest.approx(94.905),
        "stop",
    )
    assert -t.net <= TARGET + 1e-9
    assert -t.net == pytest.approx(TARGET)  # nothing lost to rounding: no step


def test_the_stop_is_live_on_the_entry_bar():
    """Entered at bar 1's open 100, stop 98: bar 1 itself trades to 97 and closes at 97.5. The
    stop fills there at 98 (not at bar 2's open 96, a loss of 2x the budget)."""
    rows = [(100, 100, 100, 100), (100, 100, 97, 97.5), (96, 96, 95, 95)]
    sb = symbol_bars(SYMBOL, "1h", candles(rows))
    _, trades = run(sb, long_at(3, stop=98.0), Costs())
    t = trades.iloc[0]
    assert (t.exit_price, t.reason) == (98.0, "stop")
    assert trades.exit_time.iloc[0] == trades.entry_time.iloc[0]
    assert t.net == pytest.approx(-TARGET)


def test_ema_cross_sized_by_risk_keeps_its_stop_live_from_the_entry_bar():
    """The reference (units) checks its stop from the next bar, as its definition does; with
    --risk-usd it is a sized trade and the stop is live at once."""
    cfg = load_settings(None, {})
    units = runner.with_defaults(runner.Request("ema_cross", ["BTC/USDT:USDT"], "binanceusdm"))
    sized = runner.Request("ema_cross", ["BTC/USDT:USDT"], "binanceusdm", risk_usd=10.0)
    assert runner.policy_for(units, cfg, "1h").stop_delay_bars == 1
    assert runner.policy_for(sized, cfg, "1h").stop_delay_bars == 0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    slippage=st.floats(0.0, 50.0),
    taker=st.sampled_from([0.0, 0.0004, 0.0005]),
)
def test_on_a_gap_free_path_the_loss_at_the_stop_never_exceeds_the_target(seed, slippage, taker):
    """Every bar opens at the previous close; longs and shorts with stops 0.5-4 away placed from
    the fill, any slippage, fees in the budget: every stop-out loses at most the $ target."""
    sb = symbol_bars(SYMBOL, "1h", market(seed, 300, gaps=False))
    _, trades = run(sb, random_signals(seed, 300, 0.05), Costs(taker=taker, slippage_bps=slippage))
    stops = trades[trades.reason == "stop"]
    assert (-stops.net <= stops.risk_usd * (1 + 1e-9)).all(), stops[["net", "risk_usd"]]
    assert (stops.risk_usd == TARGET).all()


@pytest.fixture(scope="module")
def real_trades():
    """ETH/USDT:USDT 1h (2024 on), every 25th bar a trade by the last bar's colour, stop 1 ATR
    from the fill, 20 bps slippage, 0.05 % taker fees in the budget."""
    sb, signals = eth_hourly_trades(every=25, stop_atr=1.0)
    _, trades = run(sb, signals, Costs(taker=0.0005, slippage_bps=20), equity=1_000_000.0)
    return sb, trades


def test_real_stop_outs_lose_at_most_the_target_unless_the_bar_gapped_through(real_trades):
    """A stop filled inside its bar (not at an open beyond it) loses at most $10 net; only a gap
    through the stop may lose more, and each such trade is shown by its fill at the bar's open."""
    sb, trades = real_trades
    stops = trades[trades.reason == "stop"]
    assert len(stops) >= 30
    exit_bar = np.searchsorted(sb.timestamps, stops.exit_time.to_numpy())
    opened = sb.bars[exit_bar, kernel.OPEN]
    sign = np.where(stops.side == "long", 1.0, -1.0)
    gapped = (opened - stops.stop.to_numpy()) * sign <= 0
    inside = stops[~gapped]
    assert len(inside) >= 25
    assert (-inside.net <= TARGET * (1 + 1e-9)).all(), inside[["net", "qty", "entry_price"]]
    realised = inside.net / inside.risk_usd
    assert realised.min() >= -1.0 - 1e-9
    assert not math.isnan(realised.mean())


def test_the_run_reports_the_risk_and_realised_r_of_every_trade(tmp_path, shared):
    """``backtest`` of ema_cross with --risk-usd 10 on stored ETH 1h candles (2025 on), 10 bps
    slippage, stop 1.5 ATR from the fill: every trade carries the $10 it was sized for and
    realised_r = net / $10; a stop-out inside its bar (the stop is live from the entry bar)
    realises -1R or better."""
    cfg = load_settings(None, {})
    lake = Lake(tmp_path / "data")
    hourly = pd.read_parquet(BINANCE / "ETH_USDT_USDT" / "1h.parquet")
    lake.write_candles(
        "binanceusdm", "ETH/USDT:USDT", "1h", hourly[hourly.timestamp >= 1_735_689_600_000]
    )
    req = runner.Request(
        strategy="ema_cross", symbols=["ETH/USDT:USDT"], exchange="binanceusdm", timeframe="1h",
        risk_usd=10.0, params={"stop_atr": 1.5},
        costs=Costs(taker=0.0005, slippage_bps=10), breakers=False,
    )  # fmt: skip
    trades = runner.run(req, runner.load(lake, req, cfg), cfg).trades
    assert len(trades) > 20
    assert (trades.risk_usd == 10.0).all()
    assert np.allclose(trades.realised_r, trades.net / 10.0)
    stops = trades[trades.reason == "stop"]
    opened = hourly.set_index("timestamp").open.reindex(stops.exit_time).to_numpy()
    sign = np.where(stops.side == "long", 1.0, -1.0)
    inside = stops[(opened - stops.stop.to_numpy()) * sign > 0]  # not gapped through at the open
    assert len(inside) > 5
    assert inside.realised_r.min() >= -1.0 - 1e-9
