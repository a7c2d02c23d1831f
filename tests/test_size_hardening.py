"""The holes a hostile tester found in ``size``: a missing data dir, targets on the losing
side, armed setups, numbers given as text or too large to mean anything, and -q."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.core.setup import check_targets
from cryptobot.core.timeutil import parse_time
from cryptobot.data.lake import Lake
from tests.conftest import Cli, walk_bars
from tests.test_records_and_flags import FLAGS, _batch, _jsonl
from tests.test_size_cli import BTC_FLAGS, records

MARKET = ("--tick", "0.1", "--step", "0.001", "--min-qty", "0.001", "--min-notional", "5")
ORDER = (*BTC_FLAGS, "--stop", "94200", "--risk-usd", "1", *MARKET)


@pytest.fixture
def bare(tmp_path: Path, monkeypatch) -> Cli:
    """An empty working directory and no data dir anywhere: the default ./data is missing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRYPTOBOT_DATA_DIR", raising=False)
    return Cli()


def test_a_data_dir_given_must_exist_like_for_risk_status(tmp_path: Path):
    missing = str(tmp_path / "nonexist")
    sized = Cli()("--data-dir", missing, "size", *ORDER, ok=False)
    status = Cli()("--data-dir", missing, "risk", "status", ok=False)
    assert sized.exit_code == status.exit_code == 1 and sized.stdout == ""
    assert sized.stderr == status.stderr and f"data dir {missing} does not exist" in sized.stderr
    by_env = Cli({"CRYPTOBOT_DATA_DIR": missing})("size", *ORDER, ok=False)
    assert by_env.exit_code == 1 and by_env.stderr == sized.stderr


def test_without_the_default_data_dir_the_breaker_is_unknown_and_refuses(bare: Cli):
    (order,) = records(bare("size", *ORDER, "--format", "jsonl"))
    assert order["status"] == "refused"
    assert order["reason"].startswith("circuit_breaker: n/a: no journal (data dir data does not")
    assert order["gates"]["circuit_breaker"].startswith("REJECT: n/a: no journal")
    assert not Path("data").exists()  # nothing created


def test_no_journal_accepts_sizing_blind_to_the_breaker_and_says_so(bare: Cli):
    (order,) = records(bare("size", *ORDER, "--no-journal", "--format", "jsonl"))
    assert order["status"] == "sized" and order["qty"] > 0
    assert order["gates"]["circuit_breaker"] == (
        "pass: n/a: no journal (data dir data does not exist)"
    )


def test_no_journal_never_skips_a_journal_that_exists(cli: Cli):
    cli = Cli(cli.env | {"CRYPTOBOT__RISK__BREAKERS__DAILY_LOSS_PCT": "10"})
    cli("risk", "equity", "1000")
    cli("risk", "equity", "920")  # trips the weekly halt
    (order,) = records(cli("size", *ORDER, "--no-journal", "--format", "jsonl"))
    assert order["status"] == "refused" and order["reason"].startswith("circuit_breaker: halted")


@pytest.mark.parametrize(
    ("side", "entry", "stop", "target", "where"),
    [
        ("long", "95000", "94200", "94000", "above"),
        ("long", "95000", "94200", "95000", "above"),
        ("short", "2.9997", "3.0034", "3.5", "below"),
    ],
)
def test_a_target_on_the_losing_side_is_refused_from_flags(
    cli: Cli, side, entry, stop, target, where
):
    args = ("--symbol", "X/USDT:USDT", "--side", side, "--entry", entry, "--stop", stop)
    result = cli("size", *args, "--target", target, *FLAGS, ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert f"a target must be {where} the entry ({float(target):g} vs {float(entry):g})" in (
        result.stderr
    )


def test_a_short_record_with_targets_above_its_entry_is_refused_by_signal_and_size(cli: Cli):
    lines = _batch({"side": "short", "entry": 2.9997, "stop": 3.0034, "targets": [3.5, 10.0]})
    setups = [{**line, "schema": "setup/1"} for line in lines]
    for command, batch in (("signal", setups), ("size", lines)):
        extra = FLAGS if command == "size" else ()
        result = cli(command, "-", *extra, input=_jsonl(batch), ok=False)
        assert result.exit_code == 1 and "stdin line 5" in result.stderr
        assert "a target must be below the entry (3.5 vs 2.9997)" in result.stderr


def test_an_armed_setup_becomes_a_refused_order_that_says_so(cli: Cli):
    lines = _batch({"status": "armed"})
    orders = records(cli("size", "-", *FLAGS, input=_jsonl(lines)))
    assert [o["symbol"] for o in orders] == [line["symbol"] for line in lines]
    armed = orders[4]
    assert armed["status"] == "refused" and armed["setup_status"] == "armed"
    assert armed["reason"] == "armed: waiting for its trigger (run through `signal`)"
    others = orders[:4] + orders[5:]
    assert not any("armed" in o["reason"] for o in others)
    assert {o["setup_status"] for o in others} == {"triggered"}


@pytest.mark.parametrize("text", ["1_0", " 12.5 ", "12.5", "1e1"])
def test_a_number_given_as_a_json_string_is_refused(cli: Cli, text):
    lines = _batch({"entry": text})
    result = cli("size", "-", *FLAGS, input=_jsonl(lines), ok=False)
    assert result.exit_code == 1 and "entry must be a number" in result.stderr
    assert "(text, not a number)" in result.stderr


def test_csv_cells_spelled_as_numbers_are_numbers_and_others_are_not(cli: Cli, tmp_path: Path):
    good = tmp_path / "good.csv"
    lines = _batch({})
    _write_csv(good, lines)
    assert len(records(cli("size", str(good), *FLAGS))) == 10
    bad = tmp_path / "bad.csv"
    _write_csv(bad, _batch({"entry": "1_0"}))
    result = cli("size", str(bad), *FLAGS, ok=False)
    assert result.exit_code == 1 and "row 5" in result.stderr and "'1_0'" in result.stderr


def _write_csv(path: Path, lines: list[dict]) -> None:
    import csv

    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(lines[0]))
        writer.writeheader()
        for line in lines:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v
                             for k, v in line.items()})  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--entry", "1e308", "--stop", "94200", "--risk-usd", "1"), "entry must be at most 1e+12"),
        (("--entry", "95000", "--stop", "94200", "--risk-usd", "1e308"), "risk_usd must be at"),
        (("--entry", "95000", "--stop", "94200", "--risk-pct", "1", "--equity", "1e308"), "equity"),
        (
            ("--entry", "1e-300", "--stop", "9.99999999e-301", "--risk-usd", "1", "--fee", "0"),
            "the order overflows",
        ),
    ],
)
def test_absurd_amounts_are_refused_with_short_figures(cli: Cli, args, message):
    result = cli("size", "--symbol", "BTC/USDT:USDT", "--side", "long", *args, *MARKET, ok=False)
    assert result.exit_code == 1 and message in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert len(line) < 200 and "$inf" not in line


@pytest.mark.parametrize("fee", ["1", "0.011", "-0.0001"])
def test_a_fee_rate_beyond_the_configs_range_is_a_usage_error(cli: Cli, fee):
    """``--fee 1`` (100 % a fill) is a typo, as ``fees.taker: 1`` is in the config."""
    args = ("--entry", "95000", "--stop", "94200", "--risk-usd", "1", "--fee", fee)
    result = cli("size", "--symbol", "BTC/USDT:USDT", "--side", "long", *args, *MARKET, ok=False)
    assert result.exit_code == 2
    assert "--fee" in result.stderr or "--taker-fee" in result.stderr


@pytest.mark.parametrize("command", ["size", "signal"])
def test_quiet_silences_skip_warnings_in_size_and_signal_alike(cli: Cli, command):
    lines = _batch({"entry": float("nan")})
    extra = FLAGS
    if command == "signal":
        lines = [{**line, "schema": "setup/1"} for line in lines]
        extra = ("--offline",)  # judged at the stored candles' clock: the hour after the setups
        bars = walk_bars(parse_time(lines[0]["ts"]), 2, step=3_600_000)
        lake = Lake(Path(cli.env["CRYPTOBOT_DATA_DIR"]))
        lake.write_candles("binanceusdm", "C0/USDT:USDT", "1h", bars)
    loud = cli(command, "-", *extra, "--skip-bad", input=_jsonl(lines))
    quiet = cli(command, "-", *extra, "--skip-bad", "-q", input=_jsonl(lines))
    assert "skipped stdin line 5" in " ".join(loud.stderr.split())
    assert quiet.stderr == "" and quiet.stdout == loud.stdout


@pytest.mark.parametrize("flag", ["--symbol", "--entry", "--risk-usd"])
def test_a_flag_without_its_value_points_at_the_sub_commands_help(cli: Cli, flag):
    result = cli("size", *BTC_FLAGS[:2], flag, ok=False)
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line == f"error: Option '{flag}' requires an argument (see cryptobot size --help)"


@given(
    side=st.sampled_from(["long", "short"]),
    entry=st.floats(min_value=1e-8, max_value=1e9),
    target=st.floats(min_value=1e-8, max_value=1e9),
)
def test_check_targets_accepts_exactly_the_profit_side(side, entry, target):
    profit = target > entry if side == "long" else target < entry
    try:
        check_targets(symbol="X", side=side, entry=entry, targets=[target])
    except DataError as exc:
        assert not profit and "a target must be" in str(exc)
    else:
        assert profit


# ---- a stop the tick puts onto the entry: size refuses what trade would refuse (one rule)
@pytest.mark.parametrize(
    ("side", "entry", "stop", "on"),
    [("long", "95000.7", "95000.2", "95001"), ("short", "95000.2", "95000.7", "95000")],
)
def test_a_stop_the_tick_puts_past_the_entry_is_refused_as_trade_refuses_it(
    cli: Cli, side, entry, stop, on
):
    flags = (
        "--symbol",
        "BTC/USDT:USDT",
        "--side",
        side,
        "--entry",
        entry,
        "--stop",
        stop,
        "--risk-usd",
        "1",
        "--tick",
        "1",
        "--step",
        "0.001",
        "--min-notional",
        "0",
    )
    order = json.loads(cli("size", "--no-journal", *flags, "-f", "json").stdout)[0]
    assert order["status"] == "refused" and order["targets"] == []
    assert order["reason"] == (
        f"stop on the entry's tick: the stop {stop} on the tick 1 is {on}, at the entry {entry} "
        "or past it (the venue's tick is coarser than the order)"
    )


@given(
    long=st.booleans(),
    entry=st.floats(1e-4, 1e6),
    gap=st.floats(1e-9, 0.5),
    tick=st.sampled_from([1e-5, 0.001, 0.01, 0.1, 0.5, 1.0, 5.0]),
)
def test_a_stop_passed_by_the_rule_lies_on_the_losing_side_once_on_the_tick(long, entry, gap, tick):
    from cryptobot.manage.ticks import on_tick
    from cryptobot.risk.orders import level_past_entry

    sign = 1 if long else -1
    stop = entry * (1 - sign * gap)
    why = level_past_entry(side="long" if long else "short", entry=entry, stop=stop, targets=(),
                           tick=tick)  # fmt: skip
    on = on_tick(sign, stop, tick, True)
    assert (why is None) == ((entry - on) * sign > 0), (why, on)
