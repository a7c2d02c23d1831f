"""``backtest --stepwise`` against the fast path for the scan strategies (bos_fvg_fib on 5m/15m,
breakout on 1m/5m/1d with BTC as its benchmark), each under its own management profile, on real
Binance candles and funding from ../shared/data.

Both take the runner's per-strategy signals (the detector over the whole history, one code
path) and enter at the next open by a market order, as the fast path does; the composer's
difference is the one pinned in tests/test_engine_stepwise.py: a take-profit reached in the
entry bar is filled at the next open (the stops of these strategies are prices known with the
signal, live in the entry bar on both)."""

import pandas as pd
import pytest

from cryptobot.core.timeframes import timeframe_ms
from tests.test_engine_stepwise import _both, _check
from tests.venues import market

ETH, BTC = "ETH/USDT:USDT", "BTC/USDT:USDT"


def real_lake(root, *, symbols: list[str], timeframes: list[str], start: int, bars: int):
    """A lake of ``symbols``' real candles: the first of ``timeframes`` from ``start``, ``bars``
    bars long, the others (the strategy's context) from 60 days earlier to the same end; their
    funding, and markets stored without a tick (the fast path does not round stops to one)."""
    from cryptobot.data.importer import read_candle_file
    from cryptobot.data.lake import Lake
    from tests.conftest import BINANCE, SHARED

    lake = Lake(root)
    end = start + bars * timeframe_ms(timeframes[0])
    for symbol in symbols:
        sid = symbol.replace("/", "_").replace(":", "_")
        for k, tf in enumerate(timeframes):
            path = BINANCE / sid / f"{tf}.parquet"
            if not path.exists():
                pytest.skip(f"../shared/data has no {path.name} of {symbol} (real candles)")
            candles = read_candle_file(path)
            since = start if k == 0 else start - 60 * 86_400_000
            inside = (candles.timestamp >= since) & (candles.timestamp < end)
            lake.write_candles("sim", symbol, tf, candles[inside].reset_index(drop=True))
        funding = pd.read_parquet(SHARED / f"funding/binance/{sid}.parquet")
        lake.write_funding("sim", symbol, funding)
    lake.write_markets("sim", [market(s, tick_size=None, min_notional=None) for s in symbols])
    return lake


def test_bos_fvg_fib_equals_the_fast_path(tmp_path, settings):
    """104 days of ETH 5m bars (2024): its structural stop goes with the entry, a third of the
    position at 1R/2R/3R, breakeven after 1R, no trail: the same trades, fills and equity."""
    lake = real_lake(tmp_path / "lake", symbols=[ETH], timeframes=["5m", "15m"],
                     start=1_704_067_200_000, bars=30_000)  # fmt: skip
    fast, step = _both(lake, settings, strategy="bos_fvg_fib", timeframe=None, risk_usd=3.0)
    assert len(fast.trades) >= 8
    assert {"target", "stop", "breakeven"} <= set(fast.fills.kind)
    assert _check(fast, step, ["target"]) == {}
    assert step.equity.equity.iloc[-1] == pytest.approx(fast.equity.equity.iloc[-1], rel=1e-12)


def test_breakout_equals_the_fast_path_but_for_targets_in_the_entry_bar(tmp_path, settings):
    """28 days of ETH 1m bars (May 2025) with BTC as the benchmark: the ladder, breakeven, the
    2 ATR trail from 2R, the 30 min time stop and the regime-change exit all in play."""
    lake = real_lake(tmp_path / "lake", symbols=[ETH, BTC], timeframes=["1m", "5m", "1d"],
                     start=1_746_316_800_000, bars=40_000)  # fmt: skip
    fast, step = _both(lake, settings, strategy="breakout", timeframe=None, risk_usd=3.0)
    assert len(fast.trades) >= 45  # 47: signal's regime filter drops breakout's ranging entries
    kinds = {"target", "stop", "trail", "breakeven", "time_stop", "regime_change"}
    assert kinds <= set(fast.fills.kind)
    late = _check(fast, step, ["target"])
    assert 0 < len(late) < 6
