"""Invariants of the engine on random markets (hypothesis draws the seed and the settings):
the books balance, a stop caps the loss at the planned risk when prices do not gap, the past
does not depend on the future, and a tripped breaker lets no entry through while it holds."""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units, trades_frame
from cryptobot.backtest.portfolio import PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.manage.policy import Policy
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup

HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MINUTES = 60_000 * np.arange(4)


def market(seed: int, n: int, gaps: bool, vol: float = 0.01) -> pd.DataFrame:
    """A random walk of 1h bars; without ``gaps`` every bar opens at the previous close."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    if gaps:
        open_ = open_ * np.exp(rng.normal(0, vol, n))
    wick = np.abs(rng.normal(0, vol, (2, n)))
    return pd.DataFrame(
        {"timestamp": T0 + HOUR * np.arange(n), "open": open_,
         "high": np.maximum(open_, close) * (1 + wick[0]),
         "low": np.minimum(open_, close) * (1 - wick[1]), "close": close,
         "volume": rng.uniform(100, 1000, n)}
    )  # fmt: skip


def funding(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    times = T0 + 8 * HOUR * np.arange(n // 8 + 1)
    return pd.DataFrame({"timestamp": times, "funding_rate": rng.normal(0, 0.0005, len(times))})


def random_signals(seed: int, n: int, rate: float) -> Signals:
    rng = np.random.default_rng(seed + 2)
    side = np.where(rng.random(n) < rate, rng.choice([-1, 1], n), 0).astype(np.int8)
    return Signals.of(side, stop_distance=rng.uniform(0.5, 4.0, n))


def managed(scale_in: bool) -> Policy:
    """The configured management (ladder, breakeven, ATR tiers, time stop) on 1h bars."""
    policy = Policy.from_settings(load_settings(None, {}).manage, 60.0, exit_on_signal=True)
    if not scale_in:
        return policy
    return replace(policy, scale_trigger_pct=20.0, scale_max_adds=2)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(30, 300),
    manage=st.booleans(),
    scale_in=st.booleans(),
    slippage=st.sampled_from([0.0, 5.0]),
    detail_1m=st.booleans(),
    step=st.sampled_from([0.0, 0.01, 0.25]),
)
def test_the_books_balance(seed, n, manage, scale_in, slippage, detail_1m, step):
    """Whatever happens (gaps, slippage, funding, ladders, scale-ins, reversals): the PnL booked
    bar by bar adds up to the trades' net, the trades' fees to the fills' fees, and every fill
    of a 2-unit position is a whole number of the market's step."""
    frame = market(seed, n, gaps=True)
    detail = None
    if detail_1m:  # 1m bars inside each hour: a flat path at the hour's open, high, low, close
        steps = np.repeat(frame[["open", "high", "low", "close"]].to_numpy(), 4, axis=0)
        detail = pd.DataFrame(
            {"timestamp": np.repeat(frame.timestamp.to_numpy(), 4) + np.tile(MINUTES, n),
             "open": steps[:, 0], "high": steps.max(1), "low": steps.min(1), "close": steps[:, 3]}
        )  # fmt: skip
    sb = symbol_bars("X/USDT:USDT", "1h", frame, funding=funding(seed, n), detail=detail)
    policy = managed(scale_in) if manage else Policy.none(exit_on_signal=True)
    costs = Costs(taker=0.0005, maker=0.0002, slippage_bps=slippage, liquidation_fee=0.0125)
    run = run_units(
        sb,
        random_signals(seed, n, 0.08),
        qty=2.0,
        policy=policy,
        costs=costs,
        leverage=10.0,
        step=step,
    )
    trades, fills = run.trades_frame(), run.fills_frame()
    assert math.isclose(run.pnl.sum(), trades.net.sum(), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(fills.fee.sum(), trades.fees.sum(), rel_tol=1e-9, abs_tol=1e-12)
    assert (trades.exit_time[~trades.open] >= trades.entry_time[~trades.open]).all()
    assert trades.open.sum() <= 1  # one position at a time per symbol
    if step:
        lots = fills.qty.to_numpy() / step
        np.testing.assert_allclose(lots, np.round(lots), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(30, 300), manage=st.booleans())
def test_without_gaps_a_stop_caps_the_loss_at_the_planned_risk(seed, n, manage):
    """Every bar opens at the previous close and there is no slippage: a long's exits are never
    below its first stop (breakeven and the trail only move it up), so the price loss of a trade
    is at most qty x |entry - stop|."""
    sb = symbol_bars("X/USDT:USDT", "1h", market(seed, n, gaps=False))
    policy = managed(False) if manage else Policy.none()
    trades = run_units(
        sb, random_signals(seed, n, 0.1), qty=3.0, policy=policy, costs=Costs(taker=0.0004)
    )
    trades = trades.trades_frame()
    assert (trades.gross >= -trades.risk * trades.qty - 1e-9).all()
    assert (trades.net >= -trades.risk * trades.qty - trades.fees - 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(40, 300), cut=st.floats(0.2, 0.9))
def test_cutting_the_future_changes_nothing_before_the_cut(seed, n, cut):
    """The run over the first m bars books the same PnL on each of them as the run over all
    bars, and the trades that ended before the last of them are the same trades."""
    m = int(n * cut)
    frame = market(seed, n, gaps=True)
    fund = funding(seed, n)
    sig = random_signals(seed, n, 0.08)
    policy, costs = managed(True), Costs(taker=0.0005, slippage_bps=3.0)
    full = run_units(
        symbol_bars("X", "1h", frame, funding=fund), sig, qty=1.0, policy=policy, costs=costs
    )
    part_sig = Signals(sig.side[:m], sig.stop_price[:m], sig.stop_distance[:m], sig.exits[:m],
                       sig.weak[:m])  # fmt: skip
    part = run_units(
        symbol_bars("X", "1h", frame.iloc[:m], funding=fund),
        part_sig,
        qty=1.0,
        policy=policy,
        costs=costs,
    )
    np.testing.assert_allclose(part.pnl, full.pnl[:m], rtol=0, atol=1e-9)
    before = part.trades_frame()
    before = before[~before.open & (before.exit_time < frame.timestamp.iat[m - 1])]
    after = full.trades_frame().iloc[: len(before)]
    pd.testing.assert_frame_equal(
        before.reset_index(drop=True), after.reset_index(drop=True), check_dtype=len(before) > 0
    )


def block_end(trip_ms: int, reason: str, daily_hours: float) -> int:
    """When entries may start again after a trip (without the recovery's half size)."""
    if "weekly" in reason:
        day = datetime.fromtimestamp(trip_ms / 1000, UTC).date()
        monday = day + timedelta(days=7 - day.weekday())
        return int(datetime(monday.year, monday.month, monday.day, tzinfo=UTC).timestamp() * 1000)
    return trip_ms + int(daily_hours * HOUR)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(100, 400))
@example(seed=6533437, n=238)  # a weekly trip over a daily block, reset on Monday (found here)
def test_no_entry_goes_through_a_tripped_breaker_and_no_position_outlives_the_trip(seed, n):
    """Three volatile symbols, 2 % of equity at risk per trade, tight limits (daily 2 %,
    weekly 4 %): whatever the breaker trips on, no entry fills between the trip and the end
    of its block, and every position open at the trip is closed at the next open."""
    base = load_settings(None, {}).risk
    risk = base.model_copy(
        update={
            "sizing": base.sizing.model_copy(update={"method": "pct_equity", "risk_pct": 2.0}),
            "gates": base.gates.model_copy(update={"max_risk_per_trade_pct": 5.0}),
            "breakers": base.breakers.model_copy(
                update={"daily_loss_pct": 2.0, "weekly_loss_pct": 4.0, "monthly_loss_pct": 50.0}
            ),
        }
    )
    symbols = [f"{c}/USDT:USDT" for c in "ABC"]
    bars = [symbol_bars(s, "1h", market(seed + j, n, True, 0.02)) for j, s in enumerate(symbols)]
    signals = [random_signals(seed + 10 * j, n, 0.05) for j in range(3)]
    signals = [
        Signals.of(sg.side, stop_distance=b.bars[:, 5] * 1.5)
        for sg, b in zip(signals, bars, strict=True)
    ]
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="test", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", 0.0005),
        markets={s: flag_market(s, MarketFlags(max_leverage=20, step_size=0.001)) for s in symbols},
        brackets_of=brackets_resolver("binance", 20, None), policy=Policy.none(),
        costs=Costs(taker=0.0005), initial_equity=1_000.0,
    )  # fmt: skip
    out = run_portfolio(bars, signals, setup)
    frames = [trades_frame(b, out.trades[out.trade_symbol == i]) for i, b in enumerate(bars)]
    trades = pd.concat(frames, ignore_index=True)
    for trip, reason in out.breaker_trips:
        end = block_end(trip, reason, risk.breakers.daily_block_hours)
        entered = trades.entry_time.between(trip, end - 1)
        assert not entered.any(), (reason, trades[entered])
        spans = (trades.entry_time < trip) & (trades.open | (trades.exit_time > trip))
        assert not spans.any(), (reason, trades[spans])
