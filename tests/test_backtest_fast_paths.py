"""The fast paths of a backtest give exactly what their plain versions gave: the vectorised
drawdown, exposure and fill names, the bar-time union, a one-symbol run's summary worked out
once, and candles read once when the traded symbol is also a buy-and-hold benchmark."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryptobot.backtest import runner
from cryptobot.backtest.engine import kind_names
from cryptobot.backtest.grid import _sorted_union
from cryptobot.backtest.metrics import DAY_MS, exposure, max_drawdown
from cryptobot.data.lake import Lake
from cryptobot.fills.model import KIND_NAMES
from tests.conftest import BINANCE


def loop_drawdown(stamps: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """The loop max_drawdown replaced, kept as the reference."""
    peaks = np.maximum.accumulate(values)
    depth = float(np.max(1 - values / peaks) * 100)
    longest, peak_time = 0, stamps[0]
    for t, v, p in zip(stamps, values, peaks, strict=True):
        if v >= p:
            peak_time = t
        longest = max(longest, t - peak_time)
    return depth, longest / DAY_MS


equity = hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(1, 1e6))


@settings(max_examples=300, deadline=None)
@given(values=equity, gaps=st.lists(st.integers(1, 10 * DAY_MS), min_size=300, max_size=300))
def test_vectorised_drawdown_equals_the_loop(values, gaps):
    stamps = 1_700_000_000_000 + np.cumsum(np.array(gaps[: len(values)], dtype=np.int64))
    assert max_drawdown(stamps, values) == loop_drawdown(stamps, values)


@settings(max_examples=200, deadline=None)
@given(values=hnp.arrays(np.float64, st.integers(1, 60),
                         elements=st.one_of(st.floats(1, 1e6), st.just(np.nan))),
       gaps=st.lists(st.integers(0, 3 * DAY_MS), min_size=60, max_size=60))  # fmt: skip
def test_drawdown_equals_the_loop_with_missing_values_and_repeated_times(values, gaps):
    """A NaN (also the first value) is no peak, and bars may share a time (gap 0): the depth
    is NaN as the loop's, the longest time to recovery is the loop's."""
    stamps = 1_700_000_000_000 + np.cumsum(np.array(gaps[: len(values)], dtype=np.int64))
    got, want = max_drawdown(stamps, values), loop_drawdown(stamps, values)
    assert got[1] == want[1]
    assert got[0] == want[0] or (np.isnan(got[0]) and np.isnan(want[0]))


def test_drawdown_of_a_flat_and_of_an_empty_curve():
    stamps = np.arange(5, dtype=np.int64) * DAY_MS
    assert max_drawdown(stamps, np.full(5, 100.0)) == (0.0, 0.0)
    assert max_drawdown(stamps[:0], np.empty(0)) == (0.0, 0.0)
    never_recovers = np.array([100.0, 90, 80, 85, 95])
    assert max_drawdown(stamps, never_recovers) == loop_drawdown(stamps, never_recovers)
    assert max_drawdown(stamps, never_recovers)[1] == 4.0


stamp_sets = st.lists(
    st.lists(st.integers(0, 500), max_size=60).map(lambda x: np.array(sorted(x), np.int64)),
    min_size=1,
    max_size=4,
)


@given(arrays=stamp_sets)
def test_sorted_union_equals_numpy_unique(arrays):
    got = _sorted_union(arrays)
    want = np.unique(np.concatenate(arrays))
    assert got.dtype == want.dtype and np.array_equal(got, want)


def loop_exposure(trades: pd.DataFrame, stamps: np.ndarray) -> float:
    """The np.add.at version bincount replaced."""
    held = np.zeros(len(stamps) + 1)
    first = np.searchsorted(stamps, trades["entry_time"].to_numpy())
    ends = np.searchsorted(stamps, trades["exit_time"].to_numpy())
    last = np.where(trades["open"].to_numpy(), len(stamps) - 1, np.minimum(ends, len(stamps) - 1))
    np.add.at(held, first, 1)
    np.add.at(held, last + 1, -1)
    return float(np.mean(np.cumsum(held)[:-1] > 0))


trade_spans = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 30), st.booleans()), min_size=1, max_size=25
)


@given(spans=trade_spans, n=st.integers(1, 50))
def test_exposure_equals_the_add_at_version(spans, n):
    stamps = np.arange(n, dtype=np.int64) * 60_000
    entry = np.array([s[0] for s in spans], np.int64) * 60_000
    trades = pd.DataFrame(
        {"entry_time": entry, "exit_time": entry + np.array([s[1] for s in spans]) * 60_000,
         "open": [s[2] for s in spans]}
    )  # fmt: skip
    assert exposure(trades, stamps) == loop_exposure(trades, stamps)


def test_kind_names_equal_the_table_and_an_unknown_code_is_a_question_mark():
    codes = np.array([*KIND_NAMES, 0, 99, -3], dtype=np.float64)  # as the kernel stores them
    assert kind_names(codes).to_pylist() == [*KIND_NAMES.values(), "?", "?", "?"]
    assert kind_names(np.empty(0)).to_pylist() == []


class CountingLake(Lake):
    """A real lake that remembers which candle series were read."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.reads: list[tuple[str, str]] = []

    def read_candle_columns(self, exchange, symbol, timeframe, start=None, end=None, **only):
        self.reads.append((symbol, timeframe))  # read_candles reads through it too
        return super().read_candle_columns(exchange, symbol, timeframe, start, end, **only)


def _ema_cross(symbols: list[str]) -> runner.Request:
    req = runner.Request(strategy="ema_cross", symbols=symbols, exchange="binanceusdm",
                         timeframe="1m", params={"stop_atr": 1.5})  # fmt: skip
    return runner.with_defaults(req)


def _same(a: dict, b: dict) -> bool:
    """Equal figures, NaN (undefined) equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)


def test_a_traded_btc_is_read_once_and_its_summary_is_the_portfolios(shared, settings, tmp_path):
    lake = CountingLake(tmp_path)
    frame = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1m.parquet").iloc[:20_000]
    lake.write_candles("binanceusdm", "BTC/USDT:USDT", "1m", frame)
    lake.write_candles("binanceusdm", "XBT/USDT:USDT", "1m", frame.iloc[::-1])  # a twin
    alone = runner.load(lake, _ema_cross(["BTC/USDT:USDT"]), settings)
    assert lake.reads == [("BTC/USDT:USDT", "1m"), ("ETH/USDT:USDT", "1m")]
    assert alone.held["BTC"] is alone.candles["BTC/USDT:USDT"]["1m"]
    assert len(alone.held["ETH"]["timestamp"]) == 0
    one = runner.run(_ema_cross(["BTC/USDT:USDT"]), alone, settings)
    pair = _ema_cross(["BTC/USDT:USDT", "XBT/USDT:USDT"])
    two = runner.run(pair, runner.load(lake, pair, settings), settings)
    assert len(one.trades) > 100 and len(two.trades) == 2 * len(one.trades)
    (row,) = one.per_symbol.to_dict("records")  # the portfolio's figures, not recomputed
    assert _same(row, {"symbol": "BTC/USDT:USDT", **one.summary})
    assert _same(row, two.per_symbol.to_dict("records")[0])  # as the general path works it out
    assert one.benchmarks["hold BTC"] == one.benchmarks["hold BTC/USDT:USDT"]


def test_an_untraded_benchmark_is_read_as_times_and_closes(shared, settings, tmp_path):
    """ETH stored, BTC traded: the 50/50 benchmark reads ETH's times and closes only, and its
    figure is the one the whole candles give."""
    lake = Lake(tmp_path)
    for base in ("BTC", "ETH"):
        frame = pd.read_parquet(BINANCE / f"{base}_USDT_USDT" / "1m.parquet").iloc[:5_000]
        lake.write_candles("binanceusdm", f"{base}/USDT:USDT", "1m", frame)
    data = runner.load(lake, _ema_cross(["BTC/USDT:USDT"]), settings)
    assert list(data.held["ETH"]) == ["timestamp", "close"]
    whole = lake.read_candle_columns("binanceusdm", "ETH/USDT:USDT", "1m")
    assert np.array_equal(data.held["ETH"]["close"], whole["close"])
    blend = runner.run(_ema_cross(["BTC/USDT:USDT"]), data, settings).benchmarks
    full = runner._benchmarks(data.bars, slice(0, len(data.bars[0])), {**data.held, "ETH": whole})
    assert blend == full and "hold 50/50 BTC/ETH" in blend


@given(gaps=st.lists(st.integers(1, 3 * 3_600_000), max_size=80), start=st.integers(0, 10**13))
def test_hourly_record_rows_equal_the_groupby_last(gaps, start):
    from cryptobot.journal.backtests import HOUR_MS, hour_ends

    stamps = start + np.cumsum(np.array(gaps, dtype=np.int64))
    curve = pd.DataFrame({"timestamp": stamps, "equity": np.arange(len(stamps), dtype=float)})
    want = curve.groupby(stamps // HOUR_MS, sort=True).last()
    got = curve.iloc[hour_ends(stamps)]
    assert np.array_equal(got.to_numpy(), want.to_numpy())
