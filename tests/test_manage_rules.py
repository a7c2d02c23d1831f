"""Each strategy's management profile on small hand-built bars whose fills are worked out in the
docstrings: the configured profiles (``manage.profiles``) through ``Policy.from_settings`` and
the compiled loop, the ATR pinned to 1 (or set bar by bar) so every level is exact."""

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units, trades_frame
from cryptobot.backtest.kernel import ATR
from cryptobot.backtest.portfolio import PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.manage.exits import BOTH, EXIT_LONGS, EXIT_SHORTS
from cryptobot.manage.policy import Policy
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup
from tests.conftest import BINANCE
from tests.test_backtest_fills import T0, candles, long_at

SYMBOL = "X/USDT:USDT"
DEFAULTS = load_settings(None, {}, env={})
TIMEFRAMES = {"breakout": ("1m", 1), "bos_fvg_fib": ("5m", 5), "momentum": ("1h", 60)}


def managed(strategy: str, rows, *, stop: float, qty: float = 4.0, side: int = 1,
            events: dict[tuple[int, int], int] | None = None, weak: list[int] = (),
            atr: float | list[float] = 1.0, step: float = 0.0, settings=DEFAULTS):  # fmt: skip
    """A position entered at bar 1's open (signal at bar 0's close), managed by ``strategy``'s
    profile; ``events`` = {(bar, exit column): bits}, ``weak`` = the bars whose trend weakens."""
    tf, minutes = TIMEFRAMES[strategy]
    policy = Policy.from_settings(settings.manage.for_strategy(strategy), minutes)
    sb = symbol_bars(SYMBOL, tf, candles(rows, step_ms=minutes * 60_000))
    sb.bars[:, ATR] = atr
    n = len(rows)
    exits = np.zeros((n, policy.exit_kinds.shape[0]), np.uint8)
    for (bar, column), bits in (events or {}).items():
        exits[bar, column] = bits
    flags = np.isin(np.arange(n), list(weak))
    signal = np.zeros(n, np.int8)
    signal[0] = side
    stops = np.where(np.arange(n) == 0, stop, np.nan)
    signals = Signals.of(signal, stop_price=stops, exits=exits, weak=flags)
    run = run_units(sb, signals, qty=qty, policy=policy, costs=Costs(), step=step)
    fills = run.fills_frame()
    fills["bar"] = (fills.time - T0) // (minutes * 60_000)
    return fills, run.trades_frame().iloc[0]


def fills_of(fills) -> list[tuple[str, int, float, float]]:
    """(kind, bar, price, qty) of each fill."""
    return list(zip(fills.kind, fills.bar, fills.price.round(9), fills.qty.round(9), strict=True))


def flat(n: int, price: float = 100.0, wick: float = 0.5):
    return [(price, price + wick, price - wick, price)] * n


# --- breakout (scalping plan 1) ---------------------------------------------------------------

BREAKOUT_RUN = [
    (100, 100, 100, 100),  # 0: signal, stop 98 (R = 2)
    (100, 101, 99.5, 100.5),  # 1: entry at 100
    (100.5, 102.2, 100.3, 102),  # 2: 1R target 102 (1 of 4); best 1.1R: breakeven at 100
    (102, 104.1, 101.8, 104),  # 3: 2R target 104; best 2.05R: trail 104.1 - 2 ATR = 102.1
    (104, 104.5, 103.6, 104.2),  # 4: best 104.5: 102.5 strong (2 ATR), 103.5 weak (1 ATR)
    (104.2, 104.3, 103.2, 103.4),  # 5: takes the weak trail 103.5, not the strong 102.5
    (103.4, 103.4, 102.4, 102.6),  # 6: takes the strong trail 102.5
]


@pytest.mark.parametrize(("weak", "exit_bar", "exit_price"), [((), 6, 102.5), ((4,), 5, 103.5)])
def test_breakout_partials_breakeven_and_a_trail_from_2r_by_2_or_1_atr(weak, exit_bar, exit_price):
    """A quarter at 1R and at 2R; from 2R the rest trails by 2 ATR while the trend is strong
    and by 1 ATR on a bar whose trend weakens (bar 4 here)."""
    fills, trade = managed("breakout", BREAKOUT_RUN, stop=98.0, weak=weak)
    assert fills_of(fills) == [
        ("entry", 1, 100.0, 4.0),
        ("target", 2, 102.0, 1.0),
        ("target", 3, 104.0, 1.0),
        ("trail", exit_bar, exit_price, 2.0),
    ]
    assert trade.reason == "trail"


def test_breakout_does_not_trail_before_2r_even_while_the_trend_weakens():
    """Best 1.9R (103.8): the 1R quarter fills and the stop goes to breakeven, but no trail
    (the base profile would trail 1.5 ATR from the entry): back at 99.5 the rest leaves at 100."""
    rows = [(100, 100, 100, 100), (100, 101, 99.5, 100.5), (100.5, 103.8, 100.2, 103.5),
            (103.5, 103.6, 99.5, 99.8)]  # fmt: skip
    fills, trade = managed("breakout", rows, stop=98.0, weak=range(4))
    assert fills_of(fills) == [
        ("entry", 1, 100.0, 4.0),
        ("target", 2, 102.0, 1.0),
        ("breakeven", 3, 100.0, 3.0),
    ]
    assert trade.mfe_r == pytest.approx(1.9)


@pytest.mark.parametrize("side", [1, -1])
def test_breakout_regime_change_exits_everything_at_the_next_open(side):
    """The regime turned (bar 3's close): out at bar 4's open with reason regime_change. An
    event for the other side only (bar 2) leaves the position alone."""
    rows = flat(6)
    rows[4] = (100.3, 100.5, 99.5, 100)
    other = EXIT_SHORTS if side > 0 else EXIT_LONGS
    fills, trade = managed("breakout", rows, stop=100 - side * 2, side=side,
                           events={(2, 0): other, (3, 0): BOTH})  # fmt: skip
    assert fills_of(fills)[-1] == ("regime_change", 4, 100.3, 4.0)
    assert (trade.reason, trade.bars_held) == ("regime_change", 4)


def test_breakout_time_stop_after_30_minutes_unless_1r_was_reached():
    """1m bars going nowhere: 30 bars lived (1..30), out at bar 31's open. A trade that touched
    1R (bar 5) is left to its other exits."""
    fills, trade = managed("breakout", flat(40), stop=98.0)
    assert fills_of(fills)[-1] == ("time_stop", 31, 100.0, 4.0)
    assert (trade.reason, trade.bars_held) == ("time_stop", 31)
    rows = [*flat(5), (100, 102, 99.9, 101), *flat(34, price=101)]
    _, trade = managed("breakout", rows, stop=98.0)
    assert trade.reason == "open"


# --- bos_fvg_fib (plan 2) ---------------------------------------------------------------------

BOS_RUN = [
    (100, 100, 100, 100),  # 0: signal, stop 98 (structural, R = 2)
    (100, 100.5, 99.5, 100),  # 1: entry at 100
    (100, 102.1, 99.9, 102),  # 2: 1R target (a third); breakeven
    (102, 105, 101.9, 104.8),  # 3: 2R target (a third); best 2.5R
    (104.8, 104.8, 99.9, 100.2),  # 4: back below 104 and 100
]


def test_bos_fvg_fib_thirds_and_no_trail_unless_configured():
    """3 units (steps of 1) in thirds. No trail by default: after 2.5R the last third leaves at
    breakeven (100). Configured (``trail_rest: true`` in its profile, then the base tiers: 1 ATR
    from 2R) it trails at 105 - 1 = 104."""
    fills, _ = managed("bos_fvg_fib", BOS_RUN, stop=98.0, qty=3.0, step=1.0)
    assert fills_of(fills) == [
        ("entry", 1, 100.0, 3.0),
        ("target", 2, 102.0, 1.0),
        ("target", 3, 104.0, 1.0),
        ("breakeven", 4, 100.0, 1.0),
    ]
    trailing = load_settings(None, {"manage.profiles.bos_fvg_fib.trail_rest": True}, env={})
    fills, _ = managed("bos_fvg_fib", BOS_RUN, stop=98.0, qty=3.0, step=1.0, settings=trailing)
    assert fills_of(fills)[-1] == ("trail", 4, 104.0, 1.0)


def test_bos_fvg_fib_ladder_covers_the_whole_position_in_whole_steps():
    """1 unit in 0.1 steps over thirds: 0.3 at 1R, 0.3 at 2R and the rest, 0.4, at 3R; nothing
    is left to a stop."""
    rows = [*BOS_RUN[:3], (102, 106.5, 101.9, 106)]
    fills, trade = managed("bos_fvg_fib", rows, stop=98.0, qty=1.0, step=0.1)
    assert [(k, q) for k, _, _, q in fills_of(fills)] == [
        ("entry", 1.0), ("target", 0.3), ("target", 0.3), ("target", 0.4)
    ]  # fmt: skip
    assert trade.reason == "target"


# --- momentum (plan 5) ------------------------------------------------------------------------


@pytest.mark.parametrize(("peak", "mult"), [(101.8, 1.2), (103.3, 1.0), (104.8, 0.8)])
def test_momentum_trail_tightens_with_the_r_reached(peak, mult):
    """Stop 1.5 ATR (R = 1.5). Best 1.2R / 2.2R / 3.2R: the trail is 1.2 / 1.0 / 0.8 ATR below
    it, and the rest leaves there when the price falls back."""
    rows = [(100, 100, 100, 100), (100, 100.5, 99.8, 100.2), (100.2, peak, 100.1, peak - 0.1),
            (peak - 0.1, peak - 0.1, 99, 99.5)]  # fmt: skip
    fills, _ = managed("momentum", rows, stop=98.5)
    assert fills_of(fills)[-1][:3] == ("trail", 3, pytest.approx(peak - mult))


def test_momentum_trail_never_loosens_when_the_atr_widens():
    """Trail 101.6 - 1.2 ATR = 100.4 at 1R; then the ATR jumps to 5: 1.2 x 5 and, past 2R,
    1.0 x 5 below the best would be 95.7 and 98.1, looser: the stop stays at 100.4."""
    rows = [(100, 100, 100, 100), (100, 100.5, 99.8, 100.2), (100.2, 101.6, 100.1, 101.5),
            (101.5, 101.7, 101.0, 101.2), (101.2, 103.1, 101.1, 103),
            (103, 103, 100.2, 100.3)]  # fmt: skip
    fills, _ = managed("momentum", rows, stop=98.5, atr=[1, 1, 1, 5, 5, 5])
    assert fills_of(fills) == [
        ("entry", 1, 100.0, 4.0),
        ("target", 2, 101.5, 1.0),
        ("target", 4, 103.0, 1.0),
        ("trail", 5, 100.4, 2.0),
    ]


@pytest.mark.parametrize(("column", "reason"), [(0, "ema_cross"), (1, "rsi_divergence")])
@pytest.mark.parametrize("side", [1, -1])
def test_momentum_exits_on_the_opposite_cross_and_rsi_divergence(column, reason, side):
    """An event against the position at bar 3's close closes it at bar 4's open, booked with
    the exit's own reason; the same event for the other side does nothing."""
    bit = EXIT_LONGS if side > 0 else EXIT_SHORTS
    fills, trade = managed("momentum", flat(8), stop=100 - side * 1.5, side=side,
                           events={(2, column): BOTH ^ bit, (3, column): bit})  # fmt: skip
    assert fills_of(fills)[-1] == (reason, 4, 100.0, 4.0)
    assert trade.reason == reason


def test_momentum_time_stop_is_72_hours_unless_2r_was_reached():
    """1h bars: 72 bars lived, out at bar 73's open. Reaching 1R (a quarter taken at 101.5,
    then holding at 101 above the 1.2 ATR trail) no longer spares it; reaching 2R does."""
    _, trade = managed("momentum", flat(90), stop=98.5)
    assert (trade.reason, trade.bars_held) == ("time_stop", 73)
    start = [(100, 100, 100, 100), (100, 100.2, 99.9, 100)]
    one_r = [*start, (101.6, 101.6, 101, 101), *[(101, 101, 101, 101)] * 87]
    _, trade = managed("momentum", one_r, stop=98.5)
    assert (trade.reason, trade.bars_held) == ("time_stop", 73)
    assert trade.mfe_r == pytest.approx(1.6 / 1.5)
    two_r = [*start, (103.2, 103.2, 102.5, 102.5), *[(102.5, 102.5, 102.5, 102.5)] * 87]
    _, trade = managed("momentum", two_r, stop=98.5)
    assert trade.reason == "open"


# --- ema_cross sized by risk ------------------------------------------------------------------


def sized_ema_cross(**fields) -> runner.Request:
    return runner.Request(strategy="ema_cross", symbols=[SYMBOL], exchange="binanceusdm",
                          timeframe="1h", params={"stop_atr": 1.5}, **fields)  # fmt: skip


def test_ema_cross_sized_by_risk_is_managed_with_its_stop_live_on_the_entry_bar():
    """With --risk-usd the reference strategy gets the configured management (its profile,
    else the base) besides its exit on the opposite cross, and its stop is live on the entry
    bar: entered at 100 with the stop at 98, bar 1 trades down to 97 and the stop fills there,
    in bar 1 (not at bar 2's open 95)."""
    policy = runner.policy_for(sized_ema_cross(risk_usd=1.0), DEFAULTS, "1h")
    assert policy.exit_on_signal and policy.stop_delay_bars == 0
    assert policy.tp_r.tolist() == [1.0, 2.0, 3.0] and policy.trail_r.size == 4
    reference = runner.policy_for(runner.with_defaults(sized_ema_cross()), DEFAULTS, "1h")
    assert (reference.tp_r.size, reference.trail_r.size, reference.stop_delay_bars) == (0, 0, 1)
    rows = [(100, 100, 100, 100), (100, 100.5, 97, 97.5), (95, 96, 94, 95)]
    sb = symbol_bars(SYMBOL, "1h", candles(rows))
    risk = DEFAULTS.risk
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="ema_cross", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", 0.0),
        markets={SYMBOL: flag_market(SYMBOL, MarketFlags(max_leverage=20))},
        brackets_of=brackets_resolver("binance", 20, None), policy=policy, costs=Costs(),
        initial_equity=10_000.0, use_breakers=False,
    )  # fmt: skip
    out = run_portfolio([sb], [long_at(3, stop=98.0)], setup)
    trade = trades_frame(sb, out.trades).iloc[0]
    assert (trade.reason, trade.exit_price, trade.exit_time) == ("stop", 98.0, trade.entry_time)


@pytest.fixture(scope="module")
def btc_hourly_lake(tmp_path_factory) -> Lake:
    path = BINANCE / "BTC_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real market data)")
    lake = Lake(tmp_path_factory.mktemp("ema") / "data")
    frame = pd.read_parquet(path)
    lake.write_candles("binanceusdm", SYMBOL, "1h", frame[frame.timestamp >= 1_704_067_200_000])
    return lake


def test_ema_cross_on_real_candles_is_managed_only_when_sized_by_risk(btc_hourly_lake):
    """Real BTC 1h from 2024: sized by risk, ema_cross trades take partial profits and trail;
    its reference definition (no sizing flags) still has neither."""
    sized = sized_ema_cross(risk_usd=1.0, breakers=False)
    result = runner.run(sized, runner.load(btc_hourly_lake, sized, DEFAULTS), DEFAULTS)
    assert {"target", "trail", "signal"} <= set(result.fills.kind)
    reference = runner.with_defaults(sized_ema_cross())
    plain = runner.run(reference, runner.load(btc_hourly_lake, reference, DEFAULTS), DEFAULTS)
    assert set(plain.fills.kind) <= {"entry", "signal", "stop"}
