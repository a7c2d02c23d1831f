"""``ema_cross``: the engine against an independent plain-Python loop on real candles."""

import numpy as np
import pandas as pd
import pytest

from tests.backtest_reference import engine_ema_cross, plain_ema_cross
from tests.conftest import BINANCE


@pytest.fixture(scope="module")
def btc_1m() -> pd.DataFrame:
    path = BINANCE / "BTC_USDT_USDT" / "1m.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present")
    return pd.read_parquet(path)


@pytest.mark.parametrize("stop_atr", [None, 1.5])
def test_same_trades_and_pnl_as_a_plain_loop(btc_1m, stop_atr):
    expected, fees, pnl = plain_ema_cross(btc_1m, stop_atr)
    run = engine_ema_cross(btc_1m, stop_atr)
    got = run.trades_frame()
    assert len(got) == len(expected) > 500
    assert got["side"].tolist() == ["long" if t.side > 0 else "short" for t in expected]
    assert got["entry_time"].tolist() == [int(btc_1m.timestamp.iat[t.entry_bar]) for t in expected]
    assert got["entry_price"].tolist() == [t.entry for t in expected]
    closed = [t for t in expected if t.exit is not None]
    assert got.loc[~got.open, "exit_time"].tolist() == [
        int(btc_1m.timestamp.iat[t.exit_bar]) for t in closed
    ]
    exits = [t.exit for t in closed]
    assert np.allclose(got.loc[~got.open, "exit_price"], exits, rtol=0, atol=1e-9)
    assert got["fees"].sum() == pytest.approx(fees, abs=0.005)
    assert run.pnl.sum() == pytest.approx(pnl, abs=0.005)
    assert got["net"].sum() == pytest.approx(pnl, abs=0.005)
    if stop_atr:
        assert (got.reason == "stop").sum() > 100  # the stop path is really exercised
        gaps = got[(got.reason == "stop") & (got.exit_price != got.stop)]
        assert len(gaps) > 0  # and so is the exit at a gapped open


def test_truncating_the_future_changes_nothing_before(btc_1m):
    """No look-ahead: the run on bars[:t] has the same closed trades before t."""
    full = engine_ema_cross(btc_1m, 1.5).trades_frame()
    cut = 20_000
    part = engine_ema_cross(btc_1m.iloc[:cut], 1.5).trades_frame()
    closed = part[~part.open]
    assert len(closed) > 100
    pd.testing.assert_frame_equal(full.iloc[: len(closed)], closed, check_exact=True)
