"""Each strategy's backtest on real candles, trade by trade and fill by fill, against a plain
account of its plan's management (``tests/manage_reference.py``): breakout (scalping plan: 25 %
at 1R/2R/3R, breakeven, the rest trailed from 2R by 2 or 1 ATR, regime-change exit, 30-minute
time stop), bos_fvg_fib (thirds at 1R/2R/3R, structural stop, no trail) and momentum (trail
1.2/1.0/0.8 ATR from 1R, opposite EMA cross and RSI divergence exits, 72 h unless 2R).

Fixed units with no costs, one symbol per run (its own bar grid), the configured profiles."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.backtest import runner
from cryptobot.backtest.engine import Costs
from cryptobot.core.config import load_settings
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import parse_time
from cryptobot.data.lake import Lake
from cryptobot.data.resample import resample
from tests.conftest import BINANCE
from tests.manage_reference import Plan, plain_trade

EXCHANGE = "binanceusdm"
# strategy: (symbols traded, stored spans (base, timeframe, from, to))
CASES = {
    "breakout": (
        ["SOL", "ETH", "XRP"],
        [
            (b, tf, "2025-05-05", "2025-06-03")
            for b in ("SOL", "ETH", "XRP", "BTC")
            for tf in ("1m", "5m")
        ]
        + [(b, "1d", "2025-01-01", "2025-06-03") for b in ("SOL", "ETH", "XRP")],
    ),
    "bos_fvg_fib": (
        ["BTC", "ETH", "LTC"],
        [
            (b, tf, "2024-01-01", "2024-05-14")
            for b in ("BTC", "ETH", "LTC")
            for tf in ("15m", "5m")
        ],
    ),
    "momentum": (["BTC", "LTC"], [(b, "1h", None, None) for b in ("BTC", "LTC")]),
}


def _store(lake: Lake, spans) -> None:
    for base, tf, start, end in spans:
        frame = pq.read_table(BINANCE / f"{base}_USDT_USDT/{tf}.parquet").to_pandas()
        if start:
            frame = frame[frame.timestamp.between(parse_time(start), parse_time(end))]
        lake.write_candles(EXCHANGE, f"{base}/USDT:USDT", tf, frame)
        if tf == "1h":
            lake.write_candles(EXCHANGE, f"{base}/USDT:USDT", "4h", resample(frame, "1h", "4h"))


def run_checked(lake: Lake, settings, strategy: str, base: str) -> pd.DataFrame:
    """Backtest one symbol and check every trade's fills against the plain account; returns
    its trades."""
    req = runner.Request(
        strategy=strategy, symbols=[f"{base}/USDT:USDT"], exchange=EXCHANGE, units=1.0,
        funding=False, breakers=False, costs=Costs(), market_fees=False,
    )  # fmt: skip
    data = runner.load(lake, req, settings)
    result = runner.run(req, data, settings)
    (signals,) = runner.signals_for(req, data, settings)
    (sb,) = data.bars
    plan = Plan.of(settings.manage.for_strategy(strategy), timeframe_ms(sb.timeframe) / 60_000)
    for k, t in result.trades.iterrows():
        i0 = int(np.searchsorted(sb.timestamps, t.entry_time))
        side = 1 if t.side == "long" else -1
        expected = plain_trade(sb.bars, signals.exits, signals.weak, i0, side, t.qty,
                               t.entry_price, t.stop, plan)  # fmt: skip
        got = result.fills[result.fills.trade == k]
        bars = np.searchsorted(sb.timestamps, got.time.to_numpy())
        assert got.kind.tolist() == [e[0] for e in expected], (strategy, base, k)
        assert bars.tolist() == [e[1] for e in expected], (strategy, base, k)
        np.testing.assert_allclose(got.price, [e[2] for e in expected], rtol=1e-12)
        np.testing.assert_allclose(got.qty, [e[3] for e in expected], rtol=1e-12)
    return result.trades


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    if not BINANCE.is_dir():
        pytest.skip("../shared/data is not present (real market data)")
    lake = Lake(Path(tmp_path_factory.mktemp("manage")) / "data")
    for _, spans in CASES.values():
        _store(lake, spans)
    return lake


@pytest.fixture(scope="module")
def settings():
    return load_settings(None, {}, env={})


def test_breakout_trades_follow_the_scalping_plan(lake, settings):
    trades = pd.concat([run_checked(lake, settings, "breakout", b) for b in CASES["breakout"][0]])
    reasons = set(trades.reason)
    # every rule of the plan shows up on real candles, each exit matched fill by fill above
    assert {"trail", "time_stop", "regime_change", "breakeven", "stop"} <= reasons
    trail = trades[trades.reason == "trail"]
    assert (trail.mfe_r >= 2.0).all()  # the trail starts at 2R
    timed = trades[trades.reason == "time_stop"]
    assert (timed.bars_held == 31).all() and (timed.mfe_r < 1.0).all()  # out at the 31st open


def test_bos_fvg_fib_trades_keep_the_structural_stop_and_no_trail(lake, settings):
    trades = pd.concat(
        [run_checked(lake, settings, "bos_fvg_fib", b) for b in CASES["bos_fvg_fib"][0]]
    )
    assert len(trades) > 20
    assert "trail" not in set(trades.reason) and "time_stop" not in set(trades.reason)
    assert {"target", "breakeven", "stop"} <= set(trades.reason)  # all thirds filled: target
    stopped = trades[trades.reason == "stop"]
    assert (stopped.mfe_r < 1.0).all()  # the initial stop stays until breakeven at 1R


def test_momentum_trades_follow_the_momentum_plan(lake, settings):
    trades = pd.concat([run_checked(lake, settings, "momentum", b) for b in CASES["momentum"][0]])
    assert {"trail", "stop", "ema_cross", "rsi_divergence"} <= set(trades.reason)
    trail = trades[trades.reason == "trail"]
    assert (trail.mfe_r >= 1.0).all()  # the initial 1.5 ATR stop does not trail before 1R
