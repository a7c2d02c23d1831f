"""``cryptobot scan`` end to end: the real ccxt client against the loopback emulator, the
replay exchange over the synthetic sample market, the journal, and the setup record."""

import asyncio
import json
from pathlib import Path

import duckdb
import pytest

from cryptobot.core.errors import DataError
from cryptobot.core.setup import Setup
from cryptobot.strategies.scanner import seconds_to_next_close, watch
from tests.conftest import Cli, sample_market_config

ROOT = Path(__file__).resolve().parents[1]
NOW_ISO = "2025-04-07T12:00:00Z"


def _setups(stdout: str) -> list[Setup]:
    return [Setup.from_record(json.loads(line)) for line in stdout.splitlines()]


def _journal(data_dir: Path) -> list[tuple]:
    with duckdb.connect(str(data_dir / "cryptobot.duckdb"), read_only=True) as con:
        return con.execute("SELECT id, status, first_seen FROM setups ORDER BY id").fetchall()


def test_scan_against_the_emulator_journals_once(emulator, emu_cli: Cli, data_dir: Path):
    args = ("scan", "--top", "5", "--strategy", "bos_fvg_fib", "--within", "300")
    args += ("--min-confidence", "0", "--format", "jsonl")
    first = _setups(emu_cli(*args).stdout)
    assert first, "300 closed 5m bars of five busy symbols hold setups"
    symbols = {s.symbol for s in first}
    assert symbols <= {
        "BTC/USDT:USDT",
        "ETH/USDT:USDT",
        "SOL/USDT:USDT",
        "XRP/USDT:USDT",
        "BNB/USDT:USDT",
        "DOGE/USDT:USDT",
        "ADA/USDT:USDT",
    }
    now_ms = emulator.now_ms
    for s in first:
        assert s.exchange == "binanceusdm" and s.strategy == "bos_fvg_fib"
        assert s.ts + 300_000 <= now_ms  # closed bars only
        assert s.risk > 0 and s.r_targets == [1.0, 2.0, 3.0]
        assert 0 <= s.confidence <= 5
    assert [s.status for s in first].count("armed") <= 2 * len(symbols)
    stored = _journal(data_dir)
    assert len(stored) == len(first)
    # a re-scan over the same bars: same setups, no new rows, fetched nothing new
    klines_before = len([h for h in emulator.hits if "klines" in h.path])
    again = _setups(emu_cli(*args).stdout)
    assert [s.id for s in again] == [s.id for s in first]
    assert _journal(data_dir) == stored
    assert len([h for h in emulator.hits if "klines" in h.path]) == klines_before


def test_newest_first_and_within_filters(emulator, emu_cli: Cli):
    def bos(*extra: str) -> list[Setup]:
        pair = ("--symbols", "ETH/USDT:USDT,BTC/USDT:USDT", "--strategy", "bos_fvg_fib")
        return _setups(emu_cli("scan", *pair, *extra, "--format", "jsonl").stdout)

    wide = bos("--within", "300", "--min-confidence", "0")
    assert [s.ts for s in wide] == sorted((s.ts for s in wide), reverse=True)
    narrow = bos("--min-confidence", "0")
    last_bar = emulator.now_ms - 300_000
    assert all(s.status == "armed" or s.ts == last_bar for s in narrow)
    assert {s.id for s in narrow} <= {s.id for s in wide}
    strict = bos("--within", "300", "--min-confidence", "4")
    assert all(s.confidence >= 4 for s in strict)
    assert len(strict) <= len(wide)


ETH_BOS = ("scan", "--symbols", "ETH/USDT:USDT", "--strategy", "bos_fvg_fib")
EVERYTHING = ("--within", "300", "--min-confidence", "0")


def test_offline_uses_only_what_is_stored(emulator, emu_cli: Cli):
    emu_cli(*ETH_BOS, "--format", "jsonl")
    hits = len(emulator.hits)
    out = emu_cli(*ETH_BOS, "--offline", *EVERYTHING, "--format", "jsonl")
    assert len(emulator.hits) == hits  # no request at all
    assert all(s.symbol == "ETH/USDT:USDT" for s in _setups(out.stdout))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--symbols", "ETH/USDT:USDT", "--strategy", "nope"), "unknown strategy nope"),
        (("--symbols", "ETH/USDT:USDT", "--strategy", " , "), "no strategy given"),
        (("--symbols", "FOO/USDT:USDT"), "lists no contract FOO/USDT:USDT"),
        (("--symbols", "ETH/USDT:USDT", "--offline"), "has no candles"),
    ],
)
def test_user_errors_are_one_line(emulator, emu_cli: Cli, data_dir: Path, args, message):
    result = emu_cli("scan", *args, ok=None)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (data_dir / "cryptobot.duckdb").exists() or _journal(data_dir) == []


def test_offline_notes_and_unstored_symbols(emulator, emu_cli: Cli):
    """Offline: a symbol not in the lake is a missing download; an empty scan says so."""
    emu_cli(*ETH_BOS, "--format", "jsonl")
    result = emu_cli("scan", "--symbols", "SOL/USDT:USDT", "--offline", ok=None)
    assert result.exit_code == 1
    assert "no candles stored for SOL/USDT:USDT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    quiet = emu_cli(*ETH_BOS, "--offline", "--min-confidence", "5", "--format", "jsonl")
    assert quiet.stdout == "" and "0 setups at" in quiet.stderr


def test_table_output_names_the_columns(emulator, emu_cli: Cli):
    out = emu_cli(*ETH_BOS, *EVERYTHING, "--format", "table").stdout
    for column in ("symbol", "strategy", "status", "side", "entry", "stop", "targets", "conf"):
        assert column in out


@pytest.mark.slow
def test_scan_on_the_replayed_synthetic_market(tmp_path: Path):
    config = sample_market_config(tmp_path, days=12)
    cli = Cli()
    out = cli(
        "--config",
        str(config),
        "scan",
        "--top",
        "30",
        "--within",
        "500",
        "--min-confidence",
        "0",
        "--format",
        "jsonl",
    ).stdout
    setups = _setups(out)
    assert {s.strategy for s in setups} == {"bos_fvg_fib", "momentum", "breakout"}
    assert all(s.exchange == "synthetic" for s in setups)
    assert len({s.symbol for s in setups}) > 10
    # the table's header on the same market: three symbols show it as well as thirty (the
    # full scan above is the one whose setups are checked)
    table = cli("--config", str(config), "scan", "--top", "3", "--format", "table").stdout
    assert "setups at 2026-01-01T00:00:00Z" in table


def test_setup_record_round_trips():
    setup = Setup(
        "binanceusdm",
        "BTC/USDT:USDT",
        "momentum",
        "1h",
        "short",
        "triggered",
        1_744_027_200_000,
        1_744_023_600_000,
        80_000.0,
        80_900.0,
        [79_100.0, 78_200.0],
        4,
        {"adx": 31.5, "rules": ["rsi", "adx"]},
    )
    record = setup.to_json()
    assert record["schema"] == "setup/1" and record["ts"] == NOW_ISO
    assert Setup.from_record(json.loads(json.dumps(record))) == setup
    assert Setup.from_record(setup.to_row()) == setup
    assert setup.r_targets == [1.0, 2.0]
    with pytest.raises(DataError, match="not a setup/1 record"):
        Setup.from_record({**record, "schema": "signal/1"})
    with pytest.raises(DataError, match="without 'stop'"):
        Setup.from_record({k: v for k, v in record.items() if k != "stop"})
    with pytest.raises(DataError, match="side must be one of"):
        Setup.from_record({**record, "side": "up"})
    with pytest.raises(DataError, match="stop must be above the entry"):
        Setup.from_record({**record, "stop": 79_000.0})


def test_watch_rescans_at_each_close_and_survives_a_failure():
    calls, waits = [], []

    async def once() -> int:
        calls.append(1)
        if len(calls) == 2:
            from cryptobot.core.errors import ExchangeFailure

            raise ExchangeFailure("exchange down")
        return 1_000 * len(calls)

    async def wait(as_of):
        waits.append(as_of)

    asyncio.run(watch(once, wait, cycles=3))
    assert len(calls) == 3 and waits == [1_000, None]
    # 12:03:30 on a 5m chart: the bar closes at 12:05:00, plus the grace period
    assert seconds_to_next_close(1_744_027_410_000, "5m", grace_s=2) == pytest.approx(92.0)
