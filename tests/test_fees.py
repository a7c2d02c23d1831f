"""One fee: each market's own (load_markets) where it states one, else ``fees.taker``, read by
``size`` and ``backtest`` alike; a fee forced on a backtest (``--fee``) is what its sizing
counts too, not only what its fills charge."""

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.fills.costs import Costs
from tests.conftest import Cli
from tests.test_risk_sizing import market
from tests.venues import market as venue_market

ENTRY, STOP = 100.0, 90.0
FLAGS = (
    "--side",
    "long",
    "--entry",
    "100",
    "--stop",
    "90",
    "--risk-usd",
    "10",
    "--equity",
    "10000",
)


@pytest.fixture
def lake_dir(data_dir: Path) -> Path:
    """A market stating no taker fee and one stating 0.04 %."""
    plain = market("A/USDT:USDT", taker=None)
    own = market("B/USDT:USDT", taker=0.0004)
    Lake(data_dir).write_markets("binanceusdm", [plain, own])
    return data_dir


def _sized(lake_dir: Path, symbol: str, *extra: str, fee: str = "0.001") -> dict:
    env = {"CRYPTOBOT_DATA_DIR": str(lake_dir), "CRYPTOBOT__FEES__TAKER": fee}
    result = Cli(env)("size", "--symbol", symbol, *FLAGS, *extra, "--format", "jsonl")
    (order,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert order["status"] == "sized", order["reason"]
    return order


def _rate(order: dict) -> float:
    """The taker rate the sizing counted: fees in at the entry and out at the stop."""
    return order["fees_usd"] / (order["qty"] * (ENTRY + STOP))


def test_size_takes_the_markets_own_fee_else_the_configured_default(lake_dir: Path):
    assert _rate(_sized(lake_dir, "A/USDT:USDT")) == pytest.approx(0.001)
    assert _rate(_sized(lake_dir, "A/USDT:USDT", fee="0.0007")) == pytest.approx(0.0007)
    assert _rate(_sized(lake_dir, "B/USDT:USDT")) == pytest.approx(0.0004)
    # --fee is every market's
    assert _rate(_sized(lake_dir, "B/USDT:USDT", "--fee", "0.002")) == pytest.approx(0.002)


def test_the_old_backtest_fee_keys_name_their_new_place(tmp_path: Path):
    path = tmp_path / "old.yaml"
    path.write_text("backtest:\n  taker_fee: 0.0004\n")
    with pytest.raises(Exception, match=r"backtest\.taker_fee was removed: it is `fees\.taker`"):
        load_settings(path, env={})


SYMBOL = "ETH/USDT:USDT"


@pytest.fixture(scope="module")
def eth_lake(tmp_path_factory) -> Lake:
    from cryptobot.data.importer import read_candle_file
    from tests.conftest import BINANCE

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles for the backtest)")
    candles = read_candle_file(path)[-3000:].reset_index(drop=True)
    lake = Lake(tmp_path_factory.mktemp("fees") / "lake")
    lake.write_candles("sim", SYMBOL, "1h", candles)
    lake.write_markets("sim", [venue_market(SYMBOL, taker=0.0002, tick_size=None)])
    return lake


def test_backtest_fee_reaches_the_sizing_as_a_market_stating_it_would(eth_lake: Lake):
    """``--fee 0.3 %`` on a market stating 0.02 %: the run equals one on a market that states
    0.3 % itself, trade for trade (quantities included: the sizing counted 0.3 %), and differs
    from the market's own 0.02 %."""
    settings = load_settings(None, {}, env={})
    base = runner.Request(strategy="ema_cross", symbols=[SYMBOL], exchange="sim",
                          timeframe="1h", risk_usd=5.0, params={"stop_atr": 2.0},
                          breakers=False)  # fmt: skip
    data = runner.load(eth_lake, base, settings)
    forced = replace(base, costs=replace(Costs.from_settings(settings), taker=0.003),
                     market_fees=False)  # fmt: skip
    stated = replace(data, markets={SYMBOL: venue_market(SYMBOL, taker=0.003, tick_size=None)})
    a = runner.run(forced, data, settings).trades
    b = runner.run(base, stated, settings).trades
    own = runner.run(base, data, settings).trades
    assert len(a) > 20
    columns = ["entry_time", "qty", "entry_price", "fees", "net", "risk_usd"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert not own["qty"].equals(a["qty"])
    # $5 at risk after fees: a stop-out at 0.3 % fees loses about the budget, not more
    stops = a[a.reason == "stop"]
    assert len(stops) and (stops.net >= -5.0 * 1.05).all()
