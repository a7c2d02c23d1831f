"""``cryptobot size`` and ``cryptobot risk`` end to end: real Parquet markets, real DuckDB."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cryptobot.core.setup import Setup
from cryptobot.core.signal import Signal
from cryptobot.core.timeutil import parse_time
from cryptobot.data.lake import Lake
from tests.conftest import Cli
from tests.test_risk_liquidation import btc_brackets
from tests.test_risk_sizing import market

BTC_FLAGS = ("--symbol", "BTC/USDT:USDT", "--side", "long", "--entry", "95000")
SIZED = (*BTC_FLAGS, "--stop", "94200", "--risk-usd", "10", "--target", "96600", "--equity", "2000")


def _tiers() -> list[dict]:
    """Binance's BTCUSDT brackets as ``fetch`` stores them (ccxt tiers + maintenance amount)."""
    return [
        {
            "tier": b.tier,
            "minNotional": b.floor,
            "maxNotional": b.cap,
            "maintenanceMarginRate": b.mmr,
            "maxLeverage": b.max_leverage,
            "maintenanceAmount": b.maint_amount,
        }
        for b in btc_brackets()
    ]


@pytest.fixture
def cli(data_dir: Path) -> Cli:
    """Binance's BTCUSDT (min notional $100, its bracket table) and ETHUSDT rules, stored."""
    btc = market(min_notional=100.0, tiers=_tiers())
    eth = market("ETH/USDT:USDT", min_notional=20.0, max_leverage=100.0, maint_margin_rate=0.005)
    Lake(data_dir).write_markets("binanceusdm", [btc, eth])
    return Cli({"CRYPTOBOT_DATA_DIR": str(data_dir)})


def records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_stored_market_rules_and_brackets_are_used(cli: Cli):
    """Binance's $100 minimum refuses the $1 BTC order; $10 risk on 800 points is sized."""
    (small,) = records(cli("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd", "1"))
    assert small["status"] == "refused" and "min notional $100" in small["reason"]
    result = cli("size", *SIZED, "--format", "jsonl")
    (order,) = records(result)
    # 10 / (800 + 0.0005 x 189,200) = 0.011178 -> 0.011 BTC = $1,045; budget 10% of $2,000 ->
    # ceil(1045 / 200) = 6x; bracket 1 of the stored table (0.4%, up to 125x).
    assert order["status"] == "sized" and order["schema"] == "sized_order/2"
    assert (order["qty"], order["leverage"], order["bracket_tier"]) == (0.011, 6.0, 1)
    assert order["risk_usd"] == pytest.approx(0.011 * 894.6)
    # the targets are the ladder manage runs (the base profile's 25 % at 1R/2R/3R), the
    # one given by flag is kept as the trader's own
    assert order["target_r"] == [1.0, 2.0, 3.0] and order["setup_targets"] == [96600.0]
    assert order["targets"] == [95800.0, 96600.0, 97400.0]
    assert order["target_qty"] == [0.002, 0.002, 0.002]  # 25 % of 0.011 in whole steps
    assert order["client_order_id"].startswith("cb-") and len(order["client_order_id"]) == 27
    assert all(v.startswith("pass") for v in order["gates"].values())
    again = records(cli("size", *SIZED))
    assert again[0]["client_order_id"] == order["client_order_id"]  # deterministic


def test_explain_goes_to_stderr_and_stdout_stays_data(cli: Cli):
    result = cli("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd", "10", "--explain")
    assert "rounded down to the step 0.001: 0.011" in result.stderr
    assert "gate duplicate_order: pass" in result.stderr
    assert "liquidation (binance, isolated, bracket 1" in result.stderr
    assert len(records(result)) == 1
    table = cli("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd", "10", "--format", "table")
    assert "0.0111782 -> 0.011" in table.stdout and "13/13 pass" in table.stdout


def _signal(symbol: str, entry: float, stop: float, minute: int) -> dict:
    ts = parse_time("2025-06-01T12:00Z") + minute * 60_000
    setup = Setup(
        "binanceusdm",
        symbol,
        "momentum",
        "1h",
        "long",
        "triggered",
        ts,
        ts,
        entry,
        stop,
        [entry + 2 * (entry - stop)],
        4,
        {"atr": (entry - stop) / 1.5},
    )
    return Signal(setup, {"regime": "trending"}).to_json()


def test_a_pipe_of_signals_is_gated_as_one_batch(cli: Cli, tmp_path: Path):
    """Four signals, three positions allowed: the fourth is refused by the concurrency gate,
    as if the first three had been placed."""
    lines = [_signal(f"C{i}/USDT:USDT", 10.0 + i, 9.5 + i, i) for i in range(4)]
    stdin = "".join(json.dumps(r) + "\n" for r in lines)
    out = tmp_path / "orders.parquet"
    flags = ("--risk-usd", "1", "--equity", "500", "--step", "0.1", "--min-notional", "5")
    cli("size", "-", *flags, "-o", str(out), input=stdin)
    rows = pq.read_table(out).to_pylist()
    assert [r["status"] for r in rows] == ["sized", "sized", "sized", "refused"]
    assert rows[3]["reason"].startswith("max_concurrent_positions: 3 open, cap 3")
    assert rows[0]["signal_id"] == lines[0]["setup_id"]
    assert isinstance(rows[0]["ts"], int) and json.loads(rows[0]["gates"])
    # the same signals read back from the Parquet file of setups give the same orders
    setups = tmp_path / "setups.jsonl"
    setups.write_text(stdin)
    again = records(cli("size", str(setups), *flags))
    assert [r["client_order_id"] for r in again] == [r["client_order_id"] for r in rows]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*BTC_FLAGS, "--risk-usd", "1"), "fixed_usd sizing needs a stop"),
        ((*BTC_FLAGS, "--stop", "95000", "--risk-usd", "1"), "the stop equals the entry"),
        ((*BTC_FLAGS, "--stop", "96000", "--risk-usd", "1"), "must be below the entry"),
        (
            ("--symbol", "NOPE/USDT:USDT", "--side", "long", "--entry", "1", "--stop", "0.9"),
            "NOPE/USDT:USDT is not among the stored binanceusdm markets",
        ),
        ((*BTC_FLAGS, "--stop", "94000", "--risk-pct", "1"), "needs the account equity"),
        (("missing.jsonl",), "missing.jsonl does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli: Cli, args, message):
    result = cli("size", *args, ok=False)
    assert result.exit_code == 1, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*BTC_FLAGS, "--stop", "94000", "--risk-usd", "1", "--risk-pct", "1"), "give one of"),
        (("--side", "long"), "missing --symbol, --entry (or give a SOURCE of signals)"),
        ((), "missing --symbol, --side, --entry"),
        (("x.jsonl", *BTC_FLAGS), "give either a SOURCE of signals or --symbol"),
        ((*BTC_FLAGS, "--stop", "94000", "--risk-pct", "150", "--equity", "100"), "at most 100"),
        ((*BTC_FLAGS, "--margin-pct", "100.5", "--equity", "100"), "at most 100"),
    ],
)
def test_missing_or_clashing_flags_are_usage_errors_exit_2(cli: Cli, args, message):
    result = cli("size", *args, ok=False)
    assert result.exit_code == 2 and not result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert message in line and line.endswith("(see cryptobot size --help)")


def test_a_bad_record_on_stdin_is_one_line(cli: Cli):
    bad = json.dumps({"schema": "setup/1", "symbol": "BTC/USDT:USDT"}) + "\n"
    result = cli("size", "-", input=bad, ok=False)
    assert result.exit_code == 1 and "setup/1 record without" in result.stderr


def test_a_tripped_breaker_refuses_every_order_until_reset(cli: Cli):
    """With a 10 % daily limit, -8 % trips only the week: halted until the manual reset."""
    cli = Cli(cli.env | {"CRYPTOBOT__RISK__BREAKERS__DAILY_LOSS_PCT": "10"})
    cli("risk", "equity", "1000")
    (tripped,) = records(cli("risk", "equity", "920", "--format", "jsonl"))
    assert tripped["mode"] == "halted" and "weekly loss limit" in tripped["reason"]
    assert "flatten_all" in tripped["actions"]
    (order,) = records(cli("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd", "10"))
    assert order["status"] == "refused"
    assert order["reason"].startswith("circuit_breaker: halted: weekly loss limit")
    status = cli("risk", "status", "--format", "jsonl")
    assert records(status)[0]["mode"] == "halted"
    (released,) = records(cli("risk", "reset", "--format", "jsonl"))
    assert released["mode"] == "active"
    (order,) = records(cli("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd", "10"))
    assert order["status"] == "sized"


def test_a_weekly_reset_leaves_the_daily_block_of_the_same_loss(cli: Cli):
    """-8 % at once breaches the week and the 3 % day: the reset starts new budgets, but the
    24 h daily block runs on and still refuses orders."""
    cli("risk", "equity", "1000")
    cli("risk", "equity", "920")
    (after,) = records(cli("risk", "reset", "--format", "jsonl"))
    assert after["mode"] == "blocked" and "outlasts the weekly reset" in after["reason"]
    assert after["until"] is not None
    (order,) = records(cli("size", *BTC_FLAGS, "--stop", "94200", "--risk-usd", "10"))
    assert order["reason"].startswith("circuit_breaker: blocked: daily loss limit")


def test_correlated_exposure_uses_return_correlations_from_the_lake(shared, data_dir: Path):
    """Real BTC and ETH hourly candles (March 2025): their returns correlate far above the 0.8
    threshold, so an ETH long after a BTC long counts against the correlated-exposure cap."""
    from cryptobot.core.config import load_settings
    from cryptobot.risk import gates
    from cryptobot.risk.correlation import return_correlations

    lake = Lake(data_dir)
    end = parse_time("2025-04-01")
    for base in ("BTC", "ETH"):
        bars = pq.read_table(shared / f"candles/binance/{base}_USDT_USDT/1h.parquet").to_pandas()
        lake.write_candles(
            "binanceusdm",
            f"{base}/USDT:USDT",
            "1h",
            bars[(bars.timestamp < end) & (bars.timestamp >= end - 40 * 86_400_000)],
        )
    pair = frozenset(("BTC/USDT:USDT", "ETH/USDT:USDT"))
    corr = return_correlations(lake, "binanceusdm", ["BTC/USDT:USDT", "ETH/USDT:USDT"], 30)
    assert 0.8 < corr[pair] < 1.0
    risk = load_settings().risk
    account = gates.AccountState(
        equity=1000.0,
        positions=(gates.OpenPosition("BTC/USDT:USDT", "long", 900.0, 90.0),),
        correlations=corr,
    )
    eth = gates.OrderProposal("ETH/USDT:USDT", "long", 1800.0, 800.0, 10, 5.0, "cb-eth", 100)
    verdicts = {v.gate: v for v in gates.check(eth, account, risk)}
    assert not verdicts["correlated_exposure"].passed  # 900 + 800 > 150% of 1,000
    assert verdicts["total_exposure"].passed and verdicts["symbol_exposure"].passed


def test_setups_from_a_parquet_file(cli: Cli, tmp_path: Path):
    """`scan -o setups.parquet` then `size setups.parquet`: Parquet rows parse as setups."""
    import pyarrow as pa

    ts = parse_time("2025-06-01T12:00Z")
    setup = Setup(
        "binanceusdm",
        "ETH/USDT:USDT",
        "bos_fvg_fib",
        "5m",
        "short",
        "triggered",
        ts,
        ts,
        3500.0,
        3560.0,
        [3440.0, 3380.0],
        4,
        {"bos_level": 3520.0},
    )
    path = tmp_path / "setups.parquet"
    pq.write_table(pa.Table.from_pylist([setup.to_row()]), path)
    (order,) = records(cli("size", str(path), "--risk-pct", "0.5", "--equity", "5000"))
    # 0.5% of $5,000 = $25; 25 / (60 + 0.0005 x 7,060) = 0.3935 -> 0.393 ETH
    assert order["status"] == "sized" and order["qty"] == 0.393
    assert order["setup_targets"] == [3440.0, 3380.0] and order["signal_id"] == setup.id


def test_markets_fetched_through_ccxt_from_the_emulator_drive_the_sizing(emulator, data_dir):
    """`fetch` (real ccxt client, loopback emulator, keys set so brackets are fetched) stores
    BTCUSDT's rules and Binance's bracket table; a $3,000 risk on a 1,000-point stop is 3 BTC =
    $285,000 notional: bracket 3 (1%, maintenance amount 1,300, max 50x)."""
    from tests.conftest import emulator_env

    env = emulator_env(emulator, data_dir) | {
        "CRYPTOBOT_API_KEY": "key-test",
        "CRYPTOBOT_API_SECRET": "secret-test",
        "CRYPTOBOT__RISK__GATES__MAX_ORDER_NOTIONAL_USD": "1000000",
    }
    cli = Cli(env)
    cli("fetch", "--symbols", "BTC/USDT:USDT", "--timeframes", "1h", "--days", "1")
    requests = emulator.count("/fapi/v1/klines")
    (order,) = records(
        cli(
            "size",
            *BTC_FLAGS,
            "--stop",
            "94000",
            "--risk-usd",
            "3000",
            "--taker-fee",
            "0",
            "--equity",
            "400000",
        )
    )
    assert emulator.count("/fapi/v1/klines") == requests  # size never calls the exchange
    assert order["qty"] == 3.0 and order["status"] == "sized"
    assert (order["bracket_tier"], order["mmr"], order["maint_amount"]) == (3, 0.01, 1300.0)
    # margin budget 10% of $400,000: ceil(285,000 / 40,000) = 8x, isolated margin $35,625;
    # LP = (35,625 + 1,300 - 285,000) / (3 x 0.01 - 3) = 83,526.94 (notional 250,581: bracket 3)
    assert order["leverage"] == 8.0
    assert order["liquidation_price"] == pytest.approx(248_075 / 2.97)
