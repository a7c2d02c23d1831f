"""Metrics against hand-computed values, and ``cryptobot backtest`` end to end on real candles."""

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import metrics
from cryptobot.data.lake import Lake
from cryptobot.journal import backtests as journal
from cryptobot.risk.context import MarketFlags, flag_market
from tests.backtest_reference import plain_ema_cross
from tests.conftest import BINANCE, Cli

DAY = 86_400_000


def test_metrics_equal_hand_computed_values_on_a_small_curve():
    """Daily equity 100, 110, 99, 108.9, 118.8 (returns +10 %, -10 %, +10 %, +9.0909 %)."""
    values = [100.0, 110.0, 99.0, 108.9, 118.8]
    equity = pd.DataFrame({"timestamp": np.arange(5) * DAY, "equity": values})
    trades = pd.DataFrame(
        {"net": [10.0, -11.0, 9.9, 9.9], "r": [1.0, -1.1, 0.99, 0.99], "fees": 0.5,
         "funding": [-0.2, 0.1, 0.0, -0.1], "open": False, "reason": "stop",
         "entry_time": np.arange(4) * DAY, "exit_time": np.arange(4) * DAY + DAY // 2}
    )  # fmt: skip
    s = metrics.summary(equity, trades, exposure=0.5)
    r = np.array([0.1, -0.1, 0.1, 118.8 / 108.9 - 1])
    assert s["total_return_pct"] == pytest.approx(18.8)
    assert math.isnan(s["cagr_pct"]) and math.isnan(s["calmar"])  # 4 days: no CAGR
    assert s["max_drawdown_pct"] == pytest.approx(10.0)  # 110 -> 99
    assert s["max_drawdown_days"] == pytest.approx(2.0)  # day 1 peak, recovered on day 3
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    assert s["sortino"] == pytest.approx(r.mean() / math.sqrt(0.01 / 4) * math.sqrt(365))
    assert s["win_rate_pct"] == 75.0
    assert s["profit_factor"] == pytest.approx(29.8 / 11.0)
    assert s["expectancy_usd"] == pytest.approx(18.8 / 4)
    assert s["avg_r"] == pytest.approx(1.88 / 4)
    assert s["fees_usd"] == 2.0
    assert (s["funding_paid_usd"], s["funding_received_usd"]) == (pytest.approx(0.3), 0.1)
    assert s["trades_per_day"] == 1.0 and s["avg_hold_hours"] == 12.0
    assert s["exposure_pct"] == 50.0 and s["liquidations"] == 0
    assert metrics.buy_and_hold_pct([100, 150]) == 50.0
    assert metrics.blend_pct(np.array([100, 150]), np.array([100, 90])) == 20.0


def test_cagr_and_calmar_from_a_few_months_on():
    """CAGR compounds over the calendar span once it is MIN_CAGR_DAYS long (not before)."""
    for days, reported in ((89, False), (90, True), (365, True)):
        equity = pd.DataFrame(
            {"timestamp": np.array([0, days // 2, days]) * DAY, "equity": [100.0, 90.0, 121.0]}
        )
        s = metrics.summary(equity, pd.DataFrame())
        if reported:
            assert s["cagr_pct"] == pytest.approx((1.21 ** (365 / days) - 1) * 100)
            assert s["calmar"] == pytest.approx(s["cagr_pct"] / 10.0)
        else:
            assert math.isnan(s["cagr_pct"]) and math.isnan(s["calmar"])
    assert s["total_return_pct"] == pytest.approx(21.0)


def test_a_curve_through_zero_reports_no_ratios_and_a_sweep_ranks_it_last():
    """Daily 100, 60, -40, -60 (a --units run): -60 after -40 would read as a 50 % gain."""
    for values in ([100.0, 60.0, -40.0, -60.0], [100.0, 60.0, 0.0, 130.0]):
        equity = pd.DataFrame({"timestamp": np.arange(4) * 100 * DAY, "equity": values})
        s = metrics.summary(equity, pd.DataFrame())
        assert all(math.isnan(s[k]) for k in ("sharpe", "sortino", "cagr_pct", "calmar")), s
        assert s["max_drawdown_pct"] >= 100.0 and s["total_return_pct"] == pytest.approx(
            values[-1] - 100.0
        )
    from cryptobot.backtest import sweep

    table = pd.DataFrame({"sharpe": [math.nan, 0.5], "max_drawdown_pct": [160.0, 20.0],
                          "total_return_pct": [60.0, 10.0]})  # recovered after zero  # fmt: skip
    assert sweep.ruined(table) == 1
    for objective in ("sharpe", "total_return_pct", "max_drawdown_pct"):
        assert list(sweep.better_first(table, objective)["max_drawdown_pct"]) == [20.0, 160.0]


def test_exposure_of_a_trade_closed_after_the_window():
    """A window that ends before the data closes its trades at the next open, after its last
    bar: they count as held to that bar (this raised IndexError in walk-forward windows)."""
    stamps = np.arange(10) * DAY
    trades = pd.DataFrame(
        {"entry_time": [2 * DAY, 8 * DAY], "exit_time": [4 * DAY, 10 * DAY], "open": False}
    )
    assert metrics.exposure(trades, stamps) == pytest.approx(0.5)  # bars 2-4 and 8-9


@pytest.fixture
def lake_dir(tmp_path, shared):
    root = tmp_path / "data"
    root.mkdir()
    lake = Lake(root)
    frame = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1m.parquet").iloc[:5000]
    lake.write_candles("binanceusdm", "BTC/USDT:USDT", "1m", frame)
    for sym in ("BTC", "ETH"):
        hourly = pd.read_parquet(BINANCE / f"{sym}_USDT_USDT" / "1h.parquet")
        lake.write_candles(
            "binanceusdm", f"{sym}/USDT:USDT", "1h", hourly[hourly.timestamp >= 1_704_067_200_000]
        )
    return root, frame


def test_backtest_ema_cross_cli_matches_the_reference_and_records_the_run(lake_dir, tmp_path):
    root, frame = lake_dir
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(root)})
    out = tmp_path / "runs" / "ema.parquet"
    out.parent.mkdir()  # -o into a missing directory is an error
    res = cli("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe",
              "1m", "--stop-atr", "1.5", "-o", str(out), "--format", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)[0]
    trades = pd.read_parquet(out)
    expected, _, pnl = plain_ema_cross(frame, 1.5)
    assert summary["trades"] == len(trades) == len(expected)
    assert summary["end_equity"] - 1000 == pytest.approx(pnl, abs=0.005)
    equity = pd.read_parquet(out.with_suffix("").with_suffix(".equity.parquet"))
    assert len(equity) == len(frame)
    assert pd.read_parquet(out.with_suffix("").with_suffix(".fills.parquet")).kind.iat[0] == "entry"
    (run,) = journal.runs(root)
    assert run["strategy"] == "ema_cross" and run["summary"]["trades"] == len(expected)
    stored = journal.read_run(root, run["run_id"], "trades")  # the -o file's trades, by run
    assert stored["net"].to_pylist() == trades.net.tolist()
    assert set(stored["run_id"].to_pylist()) == {run["run_id"]}


def test_quiet_backtest_prints_only_its_records(lake_dir):
    """-q leaves the summary on stdout and nothing on stderr (no benchmarks, totals, journal)."""
    root, _ = lake_dir
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(root)})
    args = ("backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe",
            "1m", "--format", "jsonl")  # fmt: skip
    loud, quiet = cli(*args), cli(*args, "-q")
    assert "buy and hold" in loud.stderr and quiet.stderr == ""
    assert [json.loads(x)["scope"] for x in quiet.stdout.splitlines()] == [
        "portfolio",
        "BTC/USDT:USDT",
    ]


def test_backtest_momentum_portfolio_sweep_and_walk_forward(lake_dir):
    root, _ = lake_dir
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(root)})
    base = ("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT,ETH/USDT:USDT",
            "--time-stop", "0", "--format", "json")  # fmt: skip
    res = cli(*base, "--risk-usd", "5")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["scope"] for r in rows] == ["portfolio", "BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert rows[0]["trades"] == rows[1]["trades"] + rows[2]["trades"] > 5
    assert "built them from 1h" in res.stderr  # 4h confirmation resampled
    sweep = cli(*base, "--sweep", "ema_fast=5:9:4", "--sweep", "ema_slow=21,30", "--jobs", "2")
    assert sweep.exit_code == 0, sweep.stderr
    table = json.loads(sweep.stdout)
    assert len(table) == 4 and {(r["ema_fast"], r["ema_slow"]) for r in table} == {
        (5, 21), (5, 30), (9, 21), (9, 30)}  # fmt: skip
    sharpe = [r["sharpe"] for r in table if r["sharpe"] is not None]
    assert sharpe == sorted(sharpe, reverse=True)
    wf = cli(*base, "--walk-forward", "--train", "180d", "--test", "60d", "--sweep", "ema_fast=5,9")
    assert wf.exit_code == 0, wf.stderr
    windows = json.loads(wf.stdout)
    assert len(windows) >= 3 and "walk_forward_efficiency_pct" in wf.stderr


@pytest.mark.parametrize(("flags", "taker"), [((), 0.001), (("--fee", "0.0002"), 0.0002)])
def test_fills_pay_the_stored_market_fees_unless_a_fee_is_given(lake_dir, tmp_path, flags, taker):
    """load_markets says BTC costs 0.1 % taker here: the backtest charges that on its market
    and stop fills (the config's 0.05 % is for markets that state none); --fee overrides."""
    root, _ = lake_dir
    btc = replace(flag_market("BTC/USDT:USDT", MarketFlags(step_size=0.001)), taker=0.001)
    Lake(root).write_markets("binanceusdm", [btc])
    out = tmp_path / "fees.parquet"
    res = Cli({"CRYPTOBOT_DATA_DIR": str(root)})(
        "backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe", "1m",
        "--stop-atr", "1.5", "--risk-usd", "0.8", "--slippage-bps", "0", "-o", str(out), *flags,
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    fills = pd.read_parquet(out.with_suffix("").with_suffix(".fills.parquet"))
    taken = fills[fills.kind.isin(["entry", "stop", "signal"])]
    assert len(taken) > 10
    np.testing.assert_allclose(taken.fee, taker * taken.qty * taken.price, rtol=1e-9)


def test_units_walk_forward_windows_end_inside_the_data(lake_dir):
    """ema_cross in units holds a position across most window ends: forced out at the next
    open, after the window's last bar."""
    root, _ = lake_dir
    res = Cli({"CRYPTOBOT_DATA_DIR": str(root)})(
        "backtest", "--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe", "1h",
        "--units", "0.01", "--walk-forward", "--train", "60d", "--test", "30d",
        "--sweep", "fast=5,9", "--format", "json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    windows = json.loads(res.stdout)
    assert len(windows) >= 5 and all(w["oos_trades"] > 0 for w in windows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--strategy", "nope", "--symbols", "BTC/USDT:USDT"), "unknown strategy nope"),
        (
            ("--strategy", "nope", "--symbols", "BTC/USDT:USDT", "--timeframe", "1m"),
            "unknown strategy nope",
        ),
        (("--strategy", "nope", "--top", "2"), "unknown strategy nope"),
        (("--strategy", "", "--symbols", "BTC/USDT:USDT"), "unknown strategy (none given)"),
        (
            ("--strategy", "ema_cross", "--symbols", "BTC/USDT:USDT", "--timeframe", "7m"),
            "unknown timeframe '7m'",
        ),
        (
            ("--strategy", "momentum", "--symbols", "DOGE/USDT:USDT"),
            "no candles stored for DOGE/USDT:USDT (1h)",
        ),
        (
            (
                "--strategy",
                "momentum",
                "--symbols",
                "BTC/USDT:USDT",
                "--train",
                "9x",
                "--walk-forward",
            ),
            "bad duration",
        ),
    ],
)
def test_bad_requests_are_one_line_and_exit_1(lake_dir, args, message):
    root, _ = lake_dir
    res = Cli({"CRYPTOBOT_DATA_DIR": str(root)})("backtest", *args, ok=None)
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and message in errors[0]  # warnings may precede the one error line
