"""The reference path's memory savings change no result: the column-major bar block against
the row-major one, the lake read file by file against the stored frame, the ruin bar and the
equity curve against their plain forms, the in-place EMA difference against the subtraction.
Real BTC candles from ../shared/data, real Parquet lakes in tmp dirs."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryptobot.analysis.ta import talib
from cryptobot.backtest.bars import BarBlock, symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units
from cryptobot.backtest.runner import equity_curve, ruin_bar
from cryptobot.core.errors import DataError
from cryptobot.data.lake import Lake
from cryptobot.manage.policy import Policy
from cryptobot.strategies.ema_cross import _crosses, ema_cross_signals
from tests.conftest import BINANCE

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def btc_1m() -> pd.DataFrame:
    return pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1m.parquet")


@pytest.fixture(scope="module")
def btc_5m() -> pd.DataFrame:
    """Eight months of 5m bars: eight monthly partitions, a threaded read."""
    frame = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "5m.parquet")
    return frame.iloc[: 8 * 30 * 288].reset_index(drop=True)


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("stop_atr", [None, 1.5])
def test_column_major_bars_trade_as_the_row_major_block(btc_1m, stop_atr):
    sb = symbol_bars(SYMBOL, "1m", btc_1m)
    assert sb.bars.flags.f_contiguous and sb.bars.shape == (len(btc_1m), 6)
    ohlcv = [btc_1m[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
    rows = np.column_stack([*ohlcv, talib.ATR(*ohlcv[1:4], 14)])
    assert _equal(sb.bars, rows)
    side = ema_cross_signals(sb.bars[:, 3], 9, 21)
    stops = None if stop_atr is None else stop_atr * sb.bars[:, 5]
    signals = Signals.of(side, stop_distance=stops)
    policy = Policy.none(exit_on_signal=True, stop_delay_bars=1)
    runs = [
        run_units(b, signals, qty=1.0, policy=policy, costs=Costs(taker=0.0004))
        for b in (sb, replace(sb, bars=rows))
    ]
    assert len(runs[0].trades) > 500
    for got, want in (tuple(getattr(r, f) for r in runs) for f in ("trades", "fills", "pnl")):
        assert _equal(got, want)


def test_lake_columns_across_partitions_and_windows_equal_the_stored_frame(tmp_path, btc_5m):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", btc_5m)
    assert len(list(lake.candle_dir("binanceusdm", SYMBOL, "5m").glob("*.parquet"))) == 8
    stamps = btc_5m["timestamp"].to_numpy()
    inside = (int(stamps[9000]) + 1, int(stamps[60_000]) - 1)  # between bars
    windows = [(None, None), (int(stamps[1000]), None), (None, int(stamps[-5000])), inside,
               (int(stamps[-1]) + 1, None)]  # fmt: skip
    for start, end in windows:
        got = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", start, end)
        keep = np.ones(len(stamps), bool)
        keep &= stamps >= (start if start is not None else stamps[0])
        keep &= stamps <= (end if end is not None else stamps[-1])
        assert list(got) == ["timestamp", "open", "high", "low", "close", "volume"]
        assert got["timestamp"].dtype == np.int64 and got["close"].dtype == np.float64
        for name, values in got.items():
            assert values.flags.writeable
            assert _equal(values, btc_5m[name].to_numpy()[keep])
    closes = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", prices=("close",))
    assert list(closes) == ["timestamp", "close"]
    assert _equal(closes["close"], btc_5m["close"].to_numpy())


def test_prices_read_into_the_bar_block_are_the_block_and_trade_as_a_copied_one(tmp_path, btc_5m):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", btc_5m)
    block = BarBlock()
    read = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", into=block)
    assert block.array is not None and block.array.shape == (len(btc_5m), 6)
    sb = symbol_bars(SYMBOL, "5m", read, block=block)
    assert sb.bars is block.array and sb.bars.flags.f_contiguous  # no copy of the prices
    want = symbol_bars(SYMBOL, "5m", btc_5m)  # the frame's prices copied into a fresh block
    assert _equal(sb.bars, want.bars) and _equal(sb.timestamps, want.timestamps)


def test_a_window_read_into_a_block_keeps_its_own_rows_only(tmp_path, btc_5m):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", btc_5m)
    end = int(btc_5m["timestamp"].iat[-5000])
    block = BarBlock()
    read = lake.read_candle_columns("binanceusdm", SYMBOL, "5m", None, end, into=block)
    sb = symbol_bars(SYMBOL, "5m", read, block=block)
    assert len(sb) == len(btc_5m) - 4999 < block.array.shape[0]
    assert sb.bars is not block.array and sb.bars.flags.f_contiguous
    assert _equal(sb.bars, symbol_bars(SYMBOL, "5m", btc_5m.iloc[: len(sb)]).bars)


def test_a_block_unrelated_to_the_candles_is_not_taken_for_them(tmp_path, btc_5m):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", btc_5m)
    block = BarBlock()
    lake.read_candle_columns("binanceusdm", SYMBOL, "5m", into=block)
    block.array[:] = -1.0  # another read's block, same length: its values must not be used
    sb = symbol_bars(SYMBOL, "5m", btc_5m, block=block)
    assert sb.bars is not block.array
    assert _equal(sb.bars[:, :5], btc_5m[["open", "high", "low", "close", "volume"]].to_numpy())


@pytest.mark.parametrize(
    "bad", [lambda n: {"close": np.empty(n - 1)}, lambda n: {"close": np.empty(n, np.float32)}]
)
def test_a_destination_of_the_wrong_length_or_type_is_refused(tmp_path, btc_5m, bad):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", btc_5m.iloc[:500])
    with pytest.raises(ValueError, match="close: 500 float64 rows wanted"):
        lake.read_candle_columns("binanceusdm", SYMBOL, "5m", into=bad)


def test_a_damaged_partition_among_good_ones_is_named_and_nothing_changes(tmp_path, btc_5m):
    lake = Lake(tmp_path)
    lake.write_candles("binanceusdm", SYMBOL, "5m", btc_5m)
    files = sorted(lake.candle_dir("binanceusdm", SYMBOL, "5m").glob("*.parquet"))
    before = {f: f.read_bytes() for f in files}
    files[3].write_bytes(before[files[3]][: len(before[files[3]]) // 2])  # a torn write
    with pytest.raises(DataError, match=f"cannot read {files[3]}"):
        lake.read_candle_columns("binanceusdm", SYMBOL, "5m")
    assert all(f.read_bytes() == before[f] for f in files if f != files[3])


curves = hnp.arrays(
    np.float64,
    st.integers(0, 200),
    elements=st.one_of(st.floats(-1e6, 1e6), st.just(0.0), st.just(np.nan)),
)


@settings(max_examples=300, deadline=None)
@given(curve=curves, start=st.integers(0, 10**6))
def test_ruin_bar_is_the_first_close_at_or_below_zero(curve, start):
    below = np.flatnonzero(curve <= 0)
    assert ruin_bar(curve, start=start) == (start + int(below[0]) if len(below) else None)


@settings(max_examples=300, deadline=None)
@given(
    pnl=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(0, 100)),
                   elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan))),
    initial=st.floats(0, 1e7),
)  # fmt: skip
def test_equity_curve_equals_the_initial_plus_the_running_sum(pnl, initial):
    want = initial + np.cumsum(pnl[0] if len(pnl) == 1 else pnl.sum(axis=0))
    assert _equal(equity_curve(pnl, initial=initial), want)


@settings(max_examples=100, deadline=None)
@given(
    close=hnp.arrays(np.float64, st.integers(0, 300), elements=st.floats(1, 1e5)),
    fast=st.integers(2, 12),
    slow=st.integers(13, 40),
)
def test_ema_crosses_equal_those_of_the_subtracted_emas(close, fast, slow):
    want = _crosses(talib.EMA(close, fast) - talib.EMA(close, slow))
    assert np.array_equal(ema_cross_signals(close, fast, slow), want)
