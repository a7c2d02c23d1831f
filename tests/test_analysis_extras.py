"""Volume profile, order-flow proxy, relative strength, regime and Hurst: worked examples."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.analysis.flow import order_flow
from cryptobot.analysis.profile import volume_profile
from cryptobot.analysis.regime import hurst, regime
from cryptobot.analysis.strength import relative_strength, universe_percentiles
from cryptobot.data.resample import resample
from tests.conftest import BINANCE


def test_volume_profile_worked_example():
    # three bars over 100..110 in 10 bins of 1: bar A spreads 100 over 100..110 (10 per bin),
    # bar B puts 60 in 104..105, bar C (no range) puts 30 in the 107..108 bin.
    frame = pd.DataFrame(
        {"high": [110.0, 105.0, 107.5], "low": [100.0, 104.0, 107.5], "volume": [100, 60, 30.0]}
    )
    p = volume_profile(frame, bins=10, value_area=0.7)
    assert p.volume.tolist() == pytest.approx([10, 10, 10, 10, 70, 10, 10, 40, 10, 10])
    assert p.poc == 104.5
    # 70% of 190 = 133: POC 70, then the busier neighbour each time: 105..106 (10) vs 103..104
    # (10): ties go up -> 80; 106..107 (10) vs 103..104 (10) -> 90; 107..108 (40) -> 130;
    # 108..109 (10) vs 103..104 (10) -> 140 >= 133. Value area 104..109.
    assert (p.val, p.vah) == (104.0, 109.0)


def test_order_flow_exact_with_taker_volume_and_approximated_without():
    frame = pd.DataFrame(
        {
            "high": [11.0] * 22,
            "low": [9.0] * 22,
            "close": [10.0] * 20 + [11.0, 9.5],
            "volume": [100.0] * 20 + [400.0, 100.0],
        }
    )
    flow = order_flow(frame, period=20)
    # mid-range closes are balanced; a close on the high is all buying; 9.5 is 25% up the range
    assert flow.delta.tolist()[:20] == [0.0] * 20
    assert flow.delta.iloc[20] == 400.0 and flow.delta.iloc[21] == pytest.approx(-50.0)
    assert np.isnan(flow.flow_ratio.iloc[20])  # its baseline of 20 balanced bars is zero
    exact = order_flow(frame.assign(taker_buy_volume=[60.0] * 22), period=20)
    assert exact.delta.iloc[0] == 20.0 and exact.flow_ratio.iloc[20] == pytest.approx(
        abs(120 - 400) / 20.0
    )


def test_relative_strength_and_percentiles():
    stamps = np.arange(5) * 300_000
    btc = pd.DataFrame({"timestamp": stamps, "close": [100, 101, 102, 103, 104.0]})
    sol = pd.DataFrame({"timestamp": stamps, "close": [10, 10.5, 11, 11.5, 12.0]})
    rs = relative_strength(sol, btc, 4)
    assert rs.iloc[-1] == pytest.approx(np.log(12 / 10) - np.log(104 / 100))
    flat = relative_strength(btc, btc, 4)
    ranks = universe_percentiles({"SOL": rs, "BTC": flat, "ETH": flat * 0 - 0.1})
    assert ranks.iloc[-1].to_dict() == pytest.approx({"SOL": 100.0, "BTC": 200 / 3, "ETH": 100 / 3})


def test_hurst_separates_random_walks_trends_and_mean_reversion():
    rng = np.random.default_rng(1)
    walk = np.exp(np.cumsum(rng.normal(0, 0.01, 3000)))
    revert = np.exp(0.01 * np.sin(np.arange(3000)) + rng.normal(0, 0.001, 3000))
    h_walk = hurst(pd.DataFrame({"close": walk}), window=1000).dropna().mean()
    h_revert = hurst(pd.DataFrame({"close": revert}), window=1000).dropna().mean()
    assert 0.4 < h_walk < 0.6 and h_revert < 0.2


def test_regime_labels_on_real_candles(shared):
    hourly = pq.read_table(BINANCE / "BTC_USDT_USDT/1h.parquet").to_pandas().iloc[-2000:]
    labels = regime(hourly)
    counts = labels.value_counts()
    assert set(counts.index) == {"unknown", "ranging", "trending", "volatile"}
    assert counts["unknown"] == 27  # ADX(14) needs 27 bars of warm-up
    # volatile is the top 20% of realised volatility, so it is a minority
    assert counts["volatile"] < 0.3 * len(labels)


def test_resample_keeps_only_complete_bars(shared):
    hourly = pq.read_table(BINANCE / "BTC_USDT_USDT/1h.parquet").to_pandas()
    four = resample(hourly.iloc[1:13], "1h", "4h")  # starts one hour into a 4h bar
    assert len(four) == 2  # the first, incomplete 4h bar is dropped
    first = hourly.iloc[4:8]
    assert four.iloc[0].tolist() == [
        first.timestamp.iloc[0],
        first.open.iloc[0],
        first.high.max(),
        first.low.min(),
        first.close.iloc[-1],
        pytest.approx(first.volume.sum()),
    ]
