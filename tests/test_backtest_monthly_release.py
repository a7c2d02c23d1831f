"""The backtest plays the trader's manual reset of a monthly stop at the start of the next month
(README, backtest): hand-made hourly bars at 100 from Wednesday 2025-01-01, one symbol."""

from tests.test_backtest_portfolio import longs, run, series, trades_of

JAN_HOURS = 31 * 24
LIMITS = {"daily_loss_pct": 50.0, "weekly_loss_pct": 50.0, "monthly_loss_pct": 10.0}


def test_a_monthly_stop_releases_at_the_next_month_and_not_before():
    """$150 at risk on $1,000 (stop 85, 10 units): the bar-12 dip to 80 stops the trade out at 85,
    a 15 % month that trips the 10 % monthly limit. The signal at bar 100 (January) is refused;
    the one on 2025-02-01 01:00 (stop 70: 5 units, within the exposure gate) enters at the
    next open: the stop did not outlive its month."""
    n = JAN_HOURS + 30
    feb = JAN_HOURS + 1
    out = run(
        [series(n, {12: 80.0})],
        [longs(n, {10: 85.0, 100: 85.0, feb: 70.0})],
        equity=1_000.0,
        risk_usd=150.0,
        breakers=LIMITS,
        gates={"max_risk_per_trade_pct": 20.0},
        sizing={"margin_pct": 50.0},
    )
    trades = trades_of(out)
    assert len(out.breaker_trips) == 1 and "monthly" in out.breaker_trips[0][1]
    assert trades.entry_bar.tolist() == [11, feb + 1]
    assert trades.net.iloc[0] == -150.0
    assert sum(out.refused.values()) == 1


def test_a_monthly_stop_holds_for_the_rest_of_its_month():
    """The same loss with signals only inside January: every later one is refused."""
    n = JAN_HOURS
    out = run(
        [series(n, {12: 80.0})],
        [longs(n, {10: 85.0, 100: 85.0, 500: 85.0, JAN_HOURS - 3: 85.0})],
        equity=1_000.0,
        risk_usd=150.0,
        breakers=LIMITS,
        gates={"max_risk_per_trade_pct": 20.0},
        sizing={"margin_pct": 50.0},
    )
    assert trades_of(out).entry_bar.tolist() == [11]
    assert sum(out.refused.values()) == 3
