"""The portfolio driver applies the risk engine's gates and circuit breakers in time order:
small hand-made hourly series on several symbols, one equity, expected decisions worked out in
the docstrings (fees and slippage are zero so the figures stay round)."""

import math

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, trades_frame
from cryptobot.backtest.portfolio import PortfolioRun, PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.manage.policy import Policy
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup

HOUR = 3_600_000
T0 = 1_735_689_600_000  # Wednesday 2025-01-01 00:00 UTC
SYMBOLS = ("A/USDT:USDT", "B/USDT:USDT", "C/USDT:USDT")


def series(n: int, dips: dict[int, float] | None = None) -> pd.DataFrame:
    """Flat 1h bars at 100; ``dips`` = {bar: low} for bars that trade down and close at 100."""
    low = np.full(n, 100.0)
    for bar, value in (dips or {}).items():
        low[bar] = value
    return pd.DataFrame(
        {"timestamp": T0 + HOUR * np.arange(n), "open": 100.0, "high": 100.0, "low": low,
         "close": 100.0, "volume": 1000.0}
    )  # fmt: skip


def longs(n: int, at: dict[int, float]) -> Signals:
    """Long signals at the given bars, each with its stop price."""
    side = np.zeros(n, dtype=np.int8)
    stop = np.full(n, math.nan)
    for bar, price in at.items():
        side[bar], stop[bar] = 1, price
    return Signals.of(side, stop_price=stop)


def run(
    frames, signals, equity: float, risk_usd: float, cooldown_bars: int = 0, **risk_changes
) -> PortfolioRun:
    settings = load_settings(None, {})
    risk = settings.risk.model_copy(
        update={"sizing": settings.risk.sizing.model_copy(
            update={"method": "fixed_usd", "risk_usd": risk_usd})}
    )  # fmt: skip
    for section, changes in risk_changes.items():
        risk = risk.model_copy(update={section: getattr(risk, section).model_copy(update=changes)})
    bars = [symbol_bars(s, "1h", f) for s, f in zip(SYMBOLS, frames, strict=False)]
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="test", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", 0.0),
        markets={s: flag_market(s, MarketFlags(max_leverage=20, step_size=0.01)) for s in SYMBOLS},
        brackets_of=brackets_resolver("binance", 20, None), policy=Policy.none(), costs=Costs(),
        initial_equity=equity, cooldown_bars=cooldown_bars,
    )  # fmt: skip
    return run_portfolio(bars, signals, setup)


def trades_of(out: PortfolioRun) -> pd.DataFrame:
    parts = [trades_frame(sb, out.trades[out.trade_symbol == i]) for i, sb in enumerate(out.bars)]
    frame = pd.concat(parts, ignore_index=True)
    frame["entry_bar"] = (frame.entry_time - T0) // HOUR
    frame["exit_bar"] = np.where(frame.open, -1, (frame.exit_time - T0) // HOUR)
    return frame.sort_values(["entry_bar", "symbol"], ignore_index=True)


@pytest.mark.parametrize(
    ("gate", "changes"),
    [
        ("max_concurrent_positions", {"max_concurrent_positions": 2}),
        # $10 at a stop 5 away is 2 units = $200 of notional each; 5 % of $10,000 is $500
        ("total_exposure", {"max_total_exposure_pct": 5.0}),
    ],
)
def test_a_gate_refuses_the_order_that_would_pass_its_limit_and_frees_up_when_a_trade_ends(
    gate, changes
):
    """A, B and C all signal at bar 0: A and B are taken (in symbol order), C is refused by the
    gate. A is stopped out at bar 3 (low 94 < stop 95); C's next signal, at bar 5, fills at bar
    6's open because only B is open by then."""
    n = 12
    frames = [series(n, {3: 94.0}), series(n), series(n)]
    signals = [longs(n, {0: 95.0}), longs(n, {0: 95.0}), longs(n, {0: 95.0, 5: 95.0})]
    out = run(frames, signals, 10_000.0, 10.0, gates=changes)
    assert dict(out.refused) == {gate: 1}
    t = trades_of(out)
    assert t[["symbol", "entry_bar", "exit_bar", "qty"]].values.tolist() == [
        ["A/USDT:USDT", 1, 3, 2.0],
        ["B/USDT:USDT", 1, -1, 2.0],
        ["C/USDT:USDT", 6, -1, 2.0],
    ]
    assert t.net.iat[0] == pytest.approx(-10.0)  # 2 x (95 - 100): the risk taken, no more


def test_a_daily_trip_flattens_open_positions_blocks_entries_then_allows_half_size():
    """On $1,000 with $40 of risk per trade: A is 8 units (stop 95), B 2 units (stop 80). A's
    stop at bar 2 loses $40 = 4 % > the 3 % daily limit: the hourly check at bar 2's close trips
    the breaker, which closes B at bar 3's open. B's signal at bar 5 is refused (blocked 24 h,
    until bar 26's close); its signal at bar 30 is taken in recovery at half size (1 unit)."""
    n = 40
    frames = [series(n, {2: 94.0}), series(n)]
    signals = [longs(n, {0: 95.0}), longs(n, {0: 80.0, 5: 80.0, 30: 80.0})]
    out = run(frames, signals, 1_000.0, 40.0, gates={"max_risk_per_trade_pct": 5.0})
    t = trades_of(out)
    assert t[["symbol", "entry_bar", "exit_bar", "qty", "reason"]].values.tolist() == [
        ["A/USDT:USDT", 1, 2, 8.0, "stop"],
        ["B/USDT:USDT", 1, 3, 2.0, "forced"],
        ["B/USDT:USDT", 31, -1, 1.0, "open"],
    ]
    assert dict(out.refused) == {"circuit_breaker": 1}
    assert [(ts - T0) // HOUR for ts, _ in out.breaker_trips] == [3]
    assert "daily" in out.breaker_trips[0][1]


def test_a_weekly_trip_halts_until_the_reset_of_the_next_iso_week():
    """A loses $80 of $1,000 (8 %) at bar 2 on Wednesday 1 January - 10 units, stop 92; a 50 %
    margin budget keeps the leverage low enough for the stop to sit before the liquidation
    price. B holds 2 units (stop 60); margins $500 + $200 stay within what reserve cash leaves.
    Past the 7 % weekly limit the breaker halts and flattens (B closed at bar 3's open). B's
    signals on Thursday and Sunday are refused; the trader's reset is played at the first check
    of Monday 6 January (bar 120), so B's signal at bar 121 is taken."""
    n = 130
    frames = [series(n, {2: 91.0}), series(n)]
    signals = [longs(n, {0: 92.0}), longs(n, {0: 60.0, 30: 60.0, 100: 60.0, 121: 60.0})]
    out = run(
        frames, signals, 1_000.0, 80.0,
        gates={"max_risk_per_trade_pct": 10.0}, sizing={"margin_pct": 50.0},
    )  # fmt: skip
    t = trades_of(out)
    assert t[["symbol", "entry_bar", "exit_bar", "reason"]].values.tolist() == [
        ["A/USDT:USDT", 1, 2, "stop"],
        ["B/USDT:USDT", 1, 3, "forced"],
        ["B/USDT:USDT", 122, -1, "open"],
    ]
    assert t.net.iat[0] == pytest.approx(-80.0)
    assert dict(out.refused) == {"circuit_breaker": 2}
    assert "weekly" in out.breaker_trips[0][1]


def test_a_distance_stop_is_sized_from_the_signal_close_and_placed_from_the_fill():
    """A 5-point ATR stop: sizing sees 100 - 5 = 95 ($10 -> 2 units); the entry fills at bar
    1's open, 102, so the stop goes to 97, exactly as the fixed-units path places it."""
    frame = series(6)
    frame.loc[1:, ["open", "high", "low", "close"]] = 102.0
    side = np.zeros(6, dtype=np.int8)
    side[0] = 1
    signals = Signals.of(side, stop_distance=np.full(6, 5.0))
    t = trades_of(run([frame], [signals], 10_000.0, 10.0)).iloc[0]
    assert (t.qty, t.entry_price, t.stop) == (2.0, 102.0, 97.0)


def test_after_a_loss_the_symbol_cools_down_for_the_configured_bars():
    """A is stopped out at bar 3 with a loss; with a 3-bar cooldown its signals at bars 4 and 5
    are skipped and the one at bar 6 is taken (fills at bar 7)."""
    n = 10
    signals = [longs(n, {0: 95.0, 4: 95.0, 5: 95.0, 6: 95.0})]
    t = trades_of(run([series(n, {3: 94.0})], signals, 10_000.0, 10.0, cooldown_bars=3))
    assert t[["entry_bar", "exit_bar"]].values.tolist() == [[1, 3], [7, -1]]
