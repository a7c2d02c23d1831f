"""``ema_cross`` against backtesting.py and vectorbt on real 1m candles (both dev dependencies).

backtesting.py reproduces the reference rules exactly, with and without the ATR stop: a signal
at the close executes at the next open (its default), the stop is set on the trade after its
entry bar, a gap through the stop fills at the open.

vectorbt reproduces them exactly without the stop. With the stop there is one documented
difference, pinned below: vectorbt executes one signal per bar and assumes "any stop signal comes
before any other signal in time" (its ``StopExitPrice`` notes), so when a reversal is due at a
bar's open and the old position's stop is touched later in that same bar, vectorbt exits at the
stop and drops the reversal, while the reference rule executes the reversal at the open first
(the stop is then no longer there). Up to the first such bar both give identical trades.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from tests.backtest_reference import FEE, engine_ema_cross, signal_arrays
from tests.conftest import BINANCE

BARS = 6000
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
STOP = 1.5


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    path = BINANCE / "BTC_USDT_USDT" / "1m.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present")
    return pd.read_parquet(path).iloc[:BARS].reset_index(drop=True)


def bar_of(frame: pd.DataFrame, times: pd.Series) -> np.ndarray:
    return np.searchsorted(frame.timestamp.to_numpy(), times.to_numpy())


def backtesting_py_run(frame: pd.DataFrame, stop_atr: float | None):
    from backtesting import Backtest, Strategy

    cross, atr = signal_arrays(frame)

    class EmaCross(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            for trade in self.trades:  # the stop of a trade entered at this bar's open
                if stop_atr and trade.sl is None and trade.entry_bar == i:
                    sign = 1 if trade.is_long else -1
                    trade.sl = trade.entry_price - sign * stop_atr * atr[i - 1]
            if cross[i] == 0:
                return
            if self.position:
                self.position.close()
            (self.buy if cross[i] > 0 else self.sell)(size=1)

    data = pd.DataFrame(
        {k.title(): frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")},
        index=pd.to_datetime(frame.timestamp, unit="ms"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, EmaCross, cash=1e9, commission=FEE, finalize_trades=False)
        return bt.run(), 1e9


@pytest.mark.parametrize("stop_atr", [None, STOP])
def test_backtesting_py_gives_the_same_trades_and_pnl(candles, stop_atr):
    stats, cash = backtesting_py_run(candles, stop_atr)
    theirs = stats._trades  # closed trades; the one still open is left out
    run = engine_ema_cross(candles, stop_atr)
    ours = run.trades_frame()
    closed = ours[~ours.open]
    assert len(theirs) == len(closed) > 100
    assert theirs.EntryBar.tolist() == bar_of(candles, closed.entry_time).tolist()
    assert theirs.ExitBar.tolist() == bar_of(candles, closed.exit_time).tolist()
    assert np.allclose(theirs.EntryPrice, closed.entry_price, rtol=0, atol=1e-9)
    assert np.allclose(theirs.ExitPrice, closed.exit_price, rtol=0, atol=1e-9)
    assert stats["Equity Final [$]"] - cash == pytest.approx(run.pnl.sum(), abs=0.005)


def vectorbt_run(frame: pd.DataFrame, stop_atr: float | None):
    import vectorbt as vbt

    cross, atr = signal_arrays(frame)
    n = len(frame)
    long_in, short_in = np.zeros(n, bool), np.zeros(n, bool)
    long_in[1:], short_in[1:] = cross[:-1] > 0, cross[:-1] < 0  # executed at the next open
    # NaN: no stop (vectorbt's own default). Passed as an array either way, with the bar's
    # range, so both runs call vectorbt's simulation with the same argument types: it is not
    # cached across processes (cache=False) and took ~11 s of CPU to compile per signature
    sl = np.full(n, np.nan)
    if stop_atr:
        sl[1:] = stop_atr * atr[:-1] / frame.open.to_numpy()[1:]  # a fraction of the fill price
        sl[~(long_in | short_in)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = vbt.Portfolio.from_signals(
            frame.close, entries=long_in, short_entries=short_in, price=frame.open, size=1.0,
            size_type="amount", fees=FEE, upon_opposite_entry="reverse", init_cash=1e9,
            sl_stop=sl, open=frame.open, high=frame.high, low=frame.low,
            stop_entry_price="fillprice",
        )  # fmt: skip
    return pf, pf.trades.records_readable


@pytest.mark.xdist_group("vectorbt")  # one worker imports vectorbt and compiles its kernels once
def test_vectorbt_gives_the_same_trades_and_pnl_without_the_stop(candles):
    pf, theirs = vectorbt_run(candles, None)
    run = engine_ema_cross(candles, None)
    ours = run.trades_frame()
    assert len(theirs) == len(ours) > 100
    assert theirs["Entry Timestamp"].tolist() == bar_of(candles, ours.entry_time).tolist()
    closed = ~ours.open.to_numpy()
    assert (
        theirs["Exit Timestamp"][closed].tolist()
        == bar_of(candles, ours.exit_time[closed]).tolist()
    )
    assert np.allclose(theirs["Avg Exit Price"][closed], ours.exit_price[closed], rtol=0, atol=1e-9)
    assert pf.total_profit() == pytest.approx(run.pnl.sum(), abs=0.005)


@pytest.mark.xdist_group("vectorbt")  # one worker imports vectorbt and compiles its kernels once
def test_vectorbt_with_the_stop_agrees_until_its_stop_first_rule_drops_a_reversal(candles):
    _, theirs = vectorbt_run(candles, STOP)
    ours = engine_ema_cross(candles, STOP).trades_frame()
    entries = bar_of(candles, ours.entry_time)
    agree = 0
    while (
        theirs["Entry Timestamp"].iat[agree] == entries[agree]
        and abs(theirs["Avg Exit Price"].iat[agree] - ours.exit_price.iat[agree]) < 1e-9
    ):
        agree += 1
    assert agree >= 4  # identical trades up to the first conflict
    first = ours.iloc[agree]
    bar = candles.iloc[bar_of(candles, pd.Series([first.exit_time]))[0]]
    # the conflict: our trade left by the reversal at the open, above (long) its stop ...
    assert first.reason == "signal" and first.side == "long"
    assert bar.open > first.stop
    # ... and the same bar then traded through that stop, where vectorbt exited instead
    assert bar.low <= first.stop
    assert theirs["Avg Exit Price"].iat[agree] == pytest.approx(first.stop, abs=1e-6)
    assert conflicts(candles, ours) == 24  # pinned: reversals whose bar also touched the stop


def conflicts(frame: pd.DataFrame, trades: pd.DataFrame) -> int:
    """Trades closed by a reversal at an open whose bar also reached their stop."""
    left = trades[trades.reason == "signal"]
    rows = frame.iloc[bar_of(frame, left.exit_time)]
    long_hit = (left.side.to_numpy() == "long") & (rows.low.to_numpy() <= left.stop.to_numpy())
    short_hit = (left.side.to_numpy() == "short") & (rows.high.to_numpy() >= left.stop.to_numpy())
    return int((long_hit | short_hit).sum())
