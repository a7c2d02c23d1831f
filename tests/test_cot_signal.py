"""``signal`` with the COT filter: longs refused under BEARISH, shorts under BULLISH, only
reports published by the setup's close seen."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryptobot.core.config import load_settings
from cryptobot.core.setup import Setup
from cryptobot.cot.bias import BiasBook
from cryptobot.data.lake import Lake
from cryptobot.strategies.signals import decide
from tests.conftest import Cli, walk_bars
from tests.cot_server import COT

TFF = sorted((COT / "tff_futures_only").glob("*.zip"))
pytestmark = pytest.mark.skipif(not TFF, reason="../shared/data/cot is not present")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def lake(cli: Cli, data_dir: Path) -> Lake:
    for path in TFF:
        cli("cot", "fetch", "--import", str(path), "-f", "jsonl")
    return Lake(data_dir)


def _setup(symbol: str, side: str, when: str) -> Setup:
    entry = 100.0
    stop = 99.0 if side == "long" else 101.0
    target = 102.0 if side == "long" else 98.0  # a target on the profit side
    ts = _ms(when) - 300_000  # the 5m bar closing at ``when``
    return Setup(
        "binanceusdm", symbol, "momentum", "5m", side, "triggered", ts, ts, entry, stop, [target], 3
    )


OCT14 = _ms("2023-10-14")  # the venue's clock: the setups' bar has just closed


def _pair(symbol: str, first: str, second: str) -> list[Setup]:
    return [_setup(symbol, first, "2023-10-14"), _setup(symbol, second, "2023-10-14")]


def _params(settings, **cot):
    p = settings.signal.model_copy(
        update={"regime_filter": False, "htf_bias": False, "one_signal_per_symbol": False,
                "cooldown_after_loss_min": 0, "funding_extreme": 1.0, "max_setup_age_bars": 3}
    )  # fmt: skip
    return p, settings.cot.model_copy(update={"signal_filter": True, **cot})


def test_bullish_btc_refuses_shorts_and_keeps_longs(lake: Lake, settings) -> None:
    p, cot = _params(settings)
    long_, short = decide(_pair("BTC/USDT:USDT", "long", "short"), lake, p, cot=cot, now=OCT14)
    assert long_.accepted and long_.context["cot_bias"] == "BULLISH"
    assert not short.accepted
    assert short.reason == (
        "cot: BTC BULLISH: asset managers' net long at the 90th percentile of 156 weeks"
    )


def test_bearish_refuses_longs(lake: Lake, settings) -> None:
    p, cot = _params(settings, bullish_at=99.0, bearish_at=95.0)  # 90th percentile -> BEARISH
    long_, short = decide(_pair("BTC/USDT:USDT", "long", "short"), lake, p, cot=cot, now=OCT14)
    assert not long_.accepted and long_.reason.startswith("cot: BTC BEARISH")
    assert short.accepted


def test_neutral_unknown_and_off_pass(lake: Lake, settings) -> None:
    p, cot = _params(settings)
    eth = decide([_setup("ETH/USDT:USDT", "short", "2023-10-14")], lake, p, cot=cot, now=OCT14)[0]
    sol = decide([_setup("SOL/USDT:USDT", "short", "2023-10-14")], lake, p, cot=cot, now=OCT14)[0]
    assert eth.accepted and eth.context["cot_bias"] == "NEUTRAL"  # ETH: < 156 weeks of reports
    assert sol.accepted and sol.context["cot_bias"] == "none"
    off = decide(
        [_setup("BTC/USDT:USDT", "short", "2023-10-14")], lake, p, cot=settings.cot, now=OCT14
    )[0]
    assert off.accepted and "cot_bias" not in off.context


def test_the_book_sees_a_delayed_monday_report_only_after_1530_eastern(lake, settings) -> None:
    cot = settings.cot.model_copy(update={"bias_window": 26})
    book = BiasBook(lake.root, cot)
    friday = book.at("BTC", _ms("2022-11-25T21:00"))
    before = book.at("BTC", _ms("2022-11-28T20:29"))
    after = book.at("BTC", _ms("2022-11-28T20:30"))
    assert friday == before != after  # 2022-11-15 until Monday 15:30 EST, then 2022-11-22
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root), "CRYPTOBOT__COT__BIAS_WINDOW": "26"})
    rows = cli("cot", "--asset", "BTC", "--as-of", "2022-11-28T20:30Z", "-f", "jsonl").stdout
    assert json.loads(rows)["reason"] == after.reason


def test_signal_command_applies_the_filter(lake: Lake, tmp_path: Path) -> None:
    setups = tmp_path / "setups.jsonl"
    short = _setup("BTC/USDT:USDT", "short", "2023-10-14")
    setups.write_text(json.dumps(short.to_json()) + "\n")
    env = {"CRYPTOBOT_DATA_DIR": str(lake.root), "CRYPTOBOT__COT__SIGNAL_FILTER": "true",
           "CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS": "1000000"}  # fmt: skip
    lake.write_candles("binanceusdm", "BTC/USDT:USDT", "5m", walk_bars(OCT14 - 600_000, 2))
    out = Cli(env)("signal", str(setups), "--offline", "--all", "-f", "jsonl").stdout
    row = json.loads(out)
    assert row["accepted"] is False and row["reason"].startswith("cot: BTC BULLISH")


def test_backtest_applies_the_same_filter(lake: Lake, tmp_path: Path) -> None:
    """momentum on real BTC 1h candles of 2023 (CME asset managers: BULLISH most of the year):
    with the filter every short under a BULLISH bias is gone, the longs stay."""
    import pandas as pd

    from tests.conftest import BINANCE

    if not BINANCE.is_dir():
        pytest.skip("../shared/data is not present")
    hourly = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1h.parquet")
    hourly = hourly[hourly.timestamp.between(_ms("2023-01-01"), _ms("2023-10-16"))]
    lake.write_candles("binanceusdm", "BTC/USDT:USDT", "1h", hourly)
    trades = {}
    for flag in ("false", "true"):
        out = tmp_path / f"bt-{flag}.parquet"
        env = {"CRYPTOBOT_DATA_DIR": str(lake.root), "CRYPTOBOT__COT__SIGNAL_FILTER": flag}
        Cli(env)("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT",
                 "--from", "2023-01-01", "-o", str(out), "-f", "jsonl")  # fmt: skip
        trades[flag] = pd.read_parquet(out)
    off, on = trades["false"], trades["true"]
    book = BiasBook(lake.root, load_settings().cot)
    entry_ms = off["entry_time"].astype("int64")  # the signal bar's close, in ms
    bias = book.sides("BTC", entry_ms.to_numpy())
    against = ((off["side"] == "short") & (bias == 1)) | ((off["side"] == "long") & (bias == -1))
    assert against.sum() > 0  # the test means something: trades the filter must remove
    kept = off[~against.to_numpy()]
    assert (
        on[["side", "entry_time"]]
        .reset_index(drop=True)
        .equals(kept[["side", "entry_time"]].reset_index(drop=True))
    )
