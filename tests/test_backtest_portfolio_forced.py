"""A circuit breaker's forced exit is the position step's own input: the portfolio steps its open
positions in time with its checks and closes them at the next open, without living any trade
twice. The forced trade is the trade the kernel lives with that bar as its end, its earlier
fills (a partial, breakeven) stay as they were, and its PnL stops at the close."""

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, candles_of
from cryptobot.backtest.portfolio import PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.fills.model import FORCED, KIND_NAMES
from cryptobot.manage.policy import Policy
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup
from tests.test_backtest_portfolio import HOUR, SYMBOLS, T0, longs, series

LADDER = Policy(np.array([1.0]), np.array([0.25]), np.empty(0), np.empty(0), breakeven_r=1.0)


def portfolio(frames, signals, policy: Policy, costs: Costs):
    settings = load_settings(None, {}, env={})
    risk = settings.risk.model_copy(
        update={
            "sizing": settings.risk.sizing.model_copy(
                update={"method": "fixed_usd", "risk_usd": 10.0}
            ),
            "breakers": settings.risk.breakers.model_copy(update={"daily_loss_pct": 0.5}),
        }
    )
    bars = [symbol_bars(s, "1h", f) for s, f in zip(SYMBOLS, frames, strict=False)]
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="test", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", 0.0),
        markets={s: flag_market(s, MarketFlags(max_leverage=20, step_size=0.01)) for s in SYMBOLS},
        brackets_of=brackets_resolver("binance", 20, None), policy=policy, costs=costs,
        initial_equity=1_000.0,
    )  # fmt: skip
    return bars, run_portfolio(bars, signals, setup)


def rising_then_flat(n: int) -> pd.DataFrame:
    """B: at 100, bar 1 trades up to 106 (1R above an entry of 100 with the stop at 95), then
    flat at 101."""
    frame = series(n)
    frame.loc[1, "high"] = 106.0
    frame.loc[2:, ["open", "high", "low", "close"]] = 101.0
    return frame


@pytest.mark.parametrize("costs", [Costs(), Costs(taker=0.0005, maker=0.0002, slippage_bps=3)])
def test_a_breaker_closes_open_positions_at_the_next_open_as_a_step(costs):
    """A (2 units, stop 95) is stopped at bar 2: -$10, with B's +$4 -0.6 % of the day, past
    the 0.5 % daily limit at bar 2's close. B (2 units, stop 95) took a quarter at 105 in bar 1
    and moved its stop to breakeven; it is closed at bar 3's open, forced. The kernel living B
    with bar 3 as its end books the same row and fills; B's PnL stops at bar 3 and adds up to
    its net."""
    n = 12
    frames = [series(n, {2: 94.0}), rising_then_flat(n)]
    signals = [longs(n, {0: 95.0}), longs(n, {0: 95.0})]
    bars, out = portfolio(frames, signals, LADDER, costs)
    assert [(ts - T0) // HOUR for ts, _ in out.breaker_trips] == [3]
    b = int(np.flatnonzero(out.trade_symbol == 1)[0])
    row = out.trades[b]
    assert (row[kernel.T_REASON], row[kernel.T_EXIT_BAR]) == (FORCED, 3)
    fills = out.fills[out.fills[:, kernel.F_TRADE] == b]
    assert [KIND_NAMES[int(k)] for k in fills[:, kernel.F_KIND]] == [
        "entry", "target", "forced"]  # fmt: skip
    assert fills[:, kernel.F_BAR].tolist() == [1, 1, 3]

    alone_trades = np.zeros((1, len(kernel.TRADE_COLUMNS)))
    alone_fills = np.zeros((10, len(kernel.FILL_COLUMNS)))
    pnl = np.zeros(n)
    entry = kernel.entry_of(bar=1, side=1, qty=row[kernel.T_QTY], price=row[kernel.T_ENTRY_PX],
                            stop=95.0, liq_ratio=row[kernel.T_LIQ] / row[kernel.T_ENTRY_PX],
                            leverage=1.0, step=0.01)  # fmt: skip
    nf = kernel.live_trade(
        candles=candles_of(bars[1]), inputs=signals[1].inputs(), rules=LADDER.rules(),
        costs=costs.array(), entry=entry, end_bar=3,
        books=kernel.Books(pnl, alone_trades, alone_fills), row=0, fills_at=0,
    )  # fmt: skip
    np.testing.assert_array_equal(alone_fills[:nf, 1:], fills[:, 1:])
    same = [c for c in range(len(kernel.TRADE_COLUMNS)) if c != kernel.T_LIQ]
    np.testing.assert_array_equal(alone_trades[0, same], row[same])
    np.testing.assert_array_equal(pnl, out.pnl[1])
    assert out.pnl[1, 4:].tolist() == [0.0] * (n - 4)
    assert out.pnl[1].sum() == pytest.approx(row[kernel.T_NET], abs=1e-12)


def test_a_position_deciding_to_close_at_that_open_keeps_its_own_reason():
    """B's time stop (2 bars) decides at bar 2's close to close at bar 3's open, the open the
    breaker closes everything at: B leaves with its own reason, not "forced"."""
    n = 12
    frames = [series(n, {2: 94.0}), series(n)]
    signals = [longs(n, {0: 95.0}), longs(n, {0: 95.0})]
    timed = Policy(np.empty(0), np.empty(0), np.empty(0), np.empty(0), time_stop_bars=2)
    _, out = portfolio(frames, signals, timed, Costs())
    reasons = [KIND_NAMES[int(r)] for r in out.trades[:, kernel.T_REASON]]
    assert reasons == ["stop", "time_stop"] and len(out.breaker_trips) == 1
    assert out.trades[:, kernel.T_EXIT_BAR].tolist() == [2, 3]


def test_signals_chained_on_one_symbol_book_their_pnl_and_fills_once():
    """Reversals and re-entries on one symbol, stepped at each signal and hourly check: the
    PnL booked bar by bar adds up to the trades' net and every fill belongs to one trade, in
    time order within it."""
    rng = np.random.default_rng(3)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = pd.DataFrame({"timestamp": T0 + HOUR * np.arange(n), "open": close, "high": close *
                          1.01, "low": close * 0.99, "close": close, "volume": 1000.0})  # fmt: skip
    side = np.where(rng.random(n) < 0.1, rng.choice([-1, 1], n), 0).astype(np.int8)
    signals = [Signals.of(side, stop_distance=np.full(n, 2.0))]
    managed = Policy.from_settings(load_settings(None, {}, env={}).manage, 60.0, True)
    _, out = portfolio([frame], signals, managed, Costs(taker=0.0005, slippage_bps=2))
    assert len(out.trades) > 10
    net = out.trades[:, kernel.T_NET].sum()
    assert out.pnl.sum() == pytest.approx(net, rel=1e-9, abs=1e-9)
    order = out.fills[:, kernel.F_TRADE]
    assert (np.diff(order) >= 0).all()
    for k in range(len(out.trades)):
        bars_k = out.fills[order == k, kernel.F_BAR]
        assert (np.diff(bars_k) >= 0).all() and bars_k[0] == out.trades[k, kernel.T_ENTRY_BAR]
