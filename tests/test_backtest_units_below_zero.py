"""A units-mode run (no margin, no risk engine) can lose more than the account holds: it says
so, and ends there when the config asks (``backtest.units_below_zero: end``)."""

import json

import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.data.lake import Lake
from tests.conftest import BINANCE, Cli

UNITS = 5.0  # BTC on a 1000 USDT account: a few bad 1m trades take it below zero
BTC = "BTC/USDT:USDT"


@pytest.fixture
def lake(shared, tmp_path) -> Lake:
    lake = Lake(tmp_path / "data")
    frame = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1m.parquet").iloc[:5000]
    lake.write_candles("binanceusdm", BTC, "1m", frame)
    return lake


def _run(lake: Lake, settings, below_zero: str) -> runner.Result:
    backtest = settings.backtest.model_copy(update={"units_below_zero": below_zero})
    settings = settings.model_copy(update={"backtest": backtest})
    req = runner.Request(
        strategy="ema_cross", symbols=[BTC], exchange="binanceusdm", timeframe="1m", units=UNITS
    )
    return runner.run(req, runner.load(lake, req, settings), settings)


def test_continue_says_so_and_keeps_every_bar(lake, settings):
    assert settings.backtest.units_below_zero == "continue"
    result = _run(lake, settings, "continue")
    assert len(result.equity) == 5000 and result.equity.equity.min() < 0
    (note,) = result.notes
    assert note.startswith("equity fell to -") and "carries on" in note


def test_end_stops_at_the_first_close_below_zero(lake, settings):
    full = _run(lake, settings, "continue").equity
    result = _run(lake, settings, "end")
    ruin = int((full.equity <= 0).to_numpy().argmax())
    curve = result.equity
    assert len(curve) == ruin + 2  # up to the ruin bar, and the next open's forced exits
    pd.testing.assert_frame_equal(curve.iloc[: ruin + 1], full.iloc[: ruin + 1])
    assert (curve.equity.iloc[:ruin] > 0).all() and curve.equity.iloc[ruin] <= 0
    trades = result.trades
    ruin_ts = int(curve.timestamp.iat[ruin])
    assert len(trades) and (trades.entry_time <= ruin_ts).all() and not trades.open.any()
    assert result.summary["end_equity"] == pytest.approx(curve.equity.iat[-1])
    assert result.summary["trades"] == len(trades)
    (note,) = result.notes
    assert "the run ends there" in note


def test_the_cli_prints_the_note(lake):
    args = ("backtest", "--strategy", "ema_cross", "--symbols", BTC, "--timeframe", "1m")
    res = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root)})(
        *args, "--units", str(UNITS), "--format", "json", "--no-journal"
    )
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout, parse_constant=_refuse)[0]  # strict JSON; portfolio first
    assert summary["end_equity"] < 0 and summary["cagr_pct"] is None  # 3.5 days: no CAGR
    stderr = " ".join(res.stderr.split())  # the console wraps long lines
    assert "equity fell to -" in stderr and "carries on" in stderr


def _refuse(name: str):
    raise AssertionError(f"{name} is not JSON")


def test_the_journal_records_how_the_run_was_made(lake):
    """The flags that change a run's figures are in its journal record (``fee`` None: each
    market's own fees)."""
    from cryptobot.journal.backtests import runs

    args = ("backtest", "--strategy", "ema_cross", "--symbols", BTC, "--timeframe", "1m")
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root)})
    res = cli(*args, "--units", str(UNITS), "--fee", "0.001", "--slippage-bps", "3",
              "--no-funding", "--no-breakers", "--no-signal-filters", "-f", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = cli(*args, "--units", str(UNITS), "-f", "json")
    assert res.exit_code == 0, res.stderr
    first, second = (r["request"] for r in runs(lake.root))
    assert {
        "stepwise": False, "signal_filters": False, "funding": False, "breakers": False,
        "fee": 0.001, "slippage_bps": 3.0,
    }.items() <= first.items()  # fmt: skip
    assert {"stepwise": False, "signal_filters": True, "funding": True, "breakers": True,
            "fee": None}.items() <= second.items()  # fmt: skip
    assert second["slippage_bps"] >= 0
