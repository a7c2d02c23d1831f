"""`cryptobot fetch` with the real ccxt client against the loopback Binance emulator."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.data import catalog
from cryptobot.data.lake import OHLCV, Lake
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator, Faults
from tests.emulator.binance_usdm import EXTRA_MARKETS

DAY = 86_400_000
TF = {"5m": 300_000, "15m": 900_000}
ROOT = Path(__file__).resolve().parents[1]


def expected_top(emu: BinanceEmulator, n: int) -> list[str]:
    """The emulator's busiest perpetuals, computed independently of cryptobot's ranking."""
    _, tickers = emu.tickers({})
    ranked = sorted(
        (t for t in tickers if t["symbol"] not in EXTRA_MARKETS),
        key=lambda t: -float(t["quoteVolume"]),
    )
    return [f"{t['symbol'][:-4]}/USDT:USDT" for t in ranked[:n]]


def expected_bars(emu: BinanceEmulator, symbol: str, tf: str, days: float) -> pd.DataFrame:
    start = emu.now_ms - int(days * DAY)
    start = -(-start // TF[tf]) * TF[tf]
    bars = emu.closed(symbol.split("/")[0], tf)
    bars = bars[bars[:, 0] >= start]
    frame = pd.DataFrame(bars, columns=OHLCV)
    frame["timestamp"] = frame["timestamp"].astype("int64")
    return frame


def assert_lake_matches(emu: BinanceEmulator, data_dir: Path, symbols: list[str], days: float):
    lake = Lake(data_dir)
    for symbol in symbols:
        for tf in TF:
            stored = lake.read_candles("binanceusdm", symbol, tf)
            pd.testing.assert_frame_equal(stored, expected_bars(emu, symbol, tf, days))


FETCH = ("fetch", "--top", "5", "--timeframes", "5m,15m", "--days", "10", "-f", "jsonl")


def test_top5_stores_exactly_the_emulators_closed_bars(emulator, emu_cli: Cli, data_dir: Path):
    result = emu_cli(*FETCH)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    top = expected_top(emulator, 5)
    assert "USDC/USDT:USDT" not in top and len(top) == 5
    assert sorted({r["symbol"] for r in rows}) == sorted(top)  # stablecoin and quarterly skipped
    assert_lake_matches(emulator, data_dir, top, 10)
    # the bar that opened at the emulator's "now" is still forming: never stored
    lake = Lake(data_dir)
    assert lake.last_candle_time("binanceusdm", top[0], "5m") == emulator.now_ms - TF["5m"]
    # N bars cost ceil(N / 1000) requests, with no overlapping pages
    for r in rows:
        assert r["requests"] == -(-r["new"] // 1000), r
    pages = [
        (h.params["symbol"], h.params["interval"], int(h.params["startTime"]))
        for h in emulator.hits
        if h.path == "/fapi/v1/klines"
    ]
    assert len(pages) == len(set(pages)) == sum(r["requests"] for r in rows)
    assert (data_dir / "markets" / "binanceusdm.parquet").exists()


def test_rerun_fetches_nothing_then_only_what_is_new(emulator, emu_cli: Cli, data_dir: Path):
    emu_cli(*FETCH)
    before = emulator.count("/fapi/v1/klines")
    rows = [json.loads(x) for x in emu_cli(*FETCH).stdout.splitlines()]
    assert all(r["new"] == 0 for r in rows)
    assert emulator.count("/fapi/v1/klines") == before  # nothing to ask for
    emulator.now_ms += 3_600_000  # an hour later
    rows = [json.loads(x) for x in emu_cli(*FETCH).stdout.splitlines()]
    assert {(r["dataset"], r["new"], r["requests"]) for r in rows} == {("5m", 12, 1), ("15m", 4, 1)}
    top = expected_top(emulator, 5)
    lake = Lake(data_dir)
    for symbol in top:  # the stored series stays contiguous and duplicate-free
        report = lake.candle_report("binanceusdm", symbol, "5m")
        assert (report.gaps, report.duplicates, report.bars) == (0, 0, 2880 + 12)


def test_faults_on_30_percent_of_requests_change_nothing(emulator, data_dir: Path):
    emulator.faults = Faults(
        rate=0.3,
        kinds=("429", "418", "500", "502", "503", "drop", "malformed"),
        retry_after_s=1,
        paths=("",),
        seed=11,
    )
    env = emulator_env(emulator, data_dir) | {"CRYPTOBOT__FETCH__CONCURRENCY": "1"}
    Cli(env)(*FETCH)
    faults = [h for h in emulator.hits if h.outcome != "ok"]
    assert len(faults) >= 5, "the fault injector did not fire"
    assert not [h for h in emulator.hits if h.outcome.startswith("emulator error")]
    assert_lake_matches(emulator, data_dir, expected_top(emulator, 5), 10)
    # after a 429/418 the client waited at least Retry-After before its next request
    hits = emulator.hits
    waited = [hits[i + 1].t - h.t for i, h in enumerate(hits[:-1]) if h.retry_after]
    assert waited and min(waited) >= 1.0 - 0.02, waited


def test_timeouts_are_retried(emulator, data_dir: Path):
    emulator.faults = Faults(
        rate=0.5, kinds=("slow",), slow_s=1.5, seed=3, paths=("/fapi/v1/klines",)
    )
    quick = {"CRYPTOBOT__EXCHANGES__BINANCEUSDM__TIMEOUT_MS": "1000"}  # slow_s is past it
    Cli(emulator_env(emulator, data_dir) | quick)(
        "fetch", "--symbols", "BTC/USDT:USDT", "--timeframes", "15m", "--days", "30"
    )
    assert emulator.count("/fapi/v1/klines", "slow") >= 1
    assert_lake_matches_one(emulator, data_dir, "BTC/USDT:USDT", "15m", 30)


def assert_lake_matches_one(emu, data_dir, symbol, tf, days):
    stored = Lake(data_dir).read_candles("binanceusdm", symbol, tf)
    pd.testing.assert_frame_equal(stored, expected_bars(emu, symbol, tf, days))


def test_a_run_killed_half_way_resumes_and_completes(emulator, data_dir: Path):
    env = os.environ | emulator_env(emulator, data_dir) | {"CRYPTOBOT__FETCH__CONCURRENCY": "2"}
    cmd = [sys.executable, "-m", "cryptobot", *FETCH]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def kill_midway(served: int) -> None:
        """At the first klines request after some bars were stored (a fixed request count
        raced the client's writes: once it killed before the first one)."""
        if served >= 7 and any((data_dir / "candles").rglob("*.parquet")) and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)

    emulator.on_klines = kill_midway
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    lake = Lake(data_dir)
    partial = sum(len(lake.read_candles(*s)) for s in lake.candle_sets())
    assert 0 < partial < 5 * (2880 + 960)
    emulator.on_klines = None
    Cli(emulator_env(emulator, data_dir))(*FETCH)
    assert_lake_matches(emulator, data_dir, expected_top(emulator, 5), 10)


def test_concurrency_is_bounded(emulator, data_dir: Path):
    emulator.latency_s = 0.05
    env = emulator_env(emulator, data_dir) | {"CRYPTOBOT__FETCH__CONCURRENCY": "2"}
    Cli(env)("fetch", "--top", "6", "--timeframes", "5m,15m", "--days", "3")
    assert emulator.max_in_flight == 2


def test_leverage_brackets_are_stored_and_keys_never_leak(emulator, data_dir: Path):
    env = emulator_env(emulator, data_dir) | {
        "CRYPTOBOT_API_KEY": "key-AAAA-1234",
        "CRYPTOBOT_API_SECRET": "secret-BBBB-5678",
    }
    result = Cli(env)(
        "-v", "fetch", "--symbols", "BTC/USDT:USDT", "--timeframes", "1h", "--days", "1"
    )
    assert emulator.count("/fapi/v1/leverageBracket") == 1
    markets = Lake(data_dir).read_markets("binanceusdm")
    btc = markets["BTC/USDT:USDT"]
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (0.1, 0.001, 0.001, 100)
    assert btc.leverage_tiers[2] == {
        "tier": 3.0,
        "minNotional": 250_000.0,
        "maxNotional": 3_000_000.0,
        "maintenanceMarginRate": 0.01,
        "maxLeverage": 50.0,
        "maintenanceAmount": 1300.0,
    }
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    for secret in ("key-AAAA-1234", "secret-BBBB-5678"):
        assert secret.encode() not in stored
        assert secret not in result.stdout + result.stderr


def test_funding_and_open_interest(emulator, emu_cli: Cli, data_dir: Path):
    emu_cli(
        "fetch",
        "--symbols",
        "BTC/USDT:USDT,ETH/USDT:USDT",
        "--timeframes",
        "1h",
        "--since",
        "2025-03-01",
        "--funding",
        "--open-interest",
    )
    lake = Lake(data_dir)
    funding = lake.read_funding("binanceusdm", "BTC/USDT:USDT")
    expected = [(t // 1000 * 1000, r) for t, r in emulator.funding("BTC") if t >= 1_740_787_200_000]
    assert list(zip(funding.timestamp, funding.funding_rate, strict=True)) == expected
    oi = lake.read_open_interest("binanceusdm", "ETH/USDT:USDT", "1h")
    # Binance keeps 30 days; the fetcher starts one period inside that window so its oldest
    # request is never refused, and ends at the snapshot taken at the exchange's "now"
    assert len(oi) == 30 * 24
    assert oi.timestamp.iloc[-1] == emulator.now_ms
    assert np.all(np.diff(oi.timestamp) == 3_600_000)


def test_an_earlier_since_back_fills_funding_and_open_interest(emulator, data_dir: Path):
    """A second fetch from an earlier date completes funding and OI before what is stored,
    exactly as one fetch from that date would (they used to resume only after the last one)."""
    stored, second_run = {}, {}
    for name, starts in {"twice": ("2025-03-25", "2025-03-01"), "once": ("2025-03-01",)}.items():
        lake_dir = data_dir / name
        lake_dir.mkdir()
        cli = Cli(emulator_env(emulator, lake_dir))
        for since in starts:
            args = ("--symbols", "BTC/USDT:USDT", "--timeframes", "1h", "--since", since)
            out = cli("fetch", *args, "--funding", "--open-interest", "-f", "jsonl").stdout
        second_run[name] = {r["dataset"]: r for r in map(json.loads, out.splitlines())}
        lake = Lake(lake_dir)
        stored[name] = (
            lake.read_funding("binanceusdm", "BTC/USDT:USDT"),
            lake.read_open_interest("binanceusdm", "BTC/USDT:USDT", "1h"),
        )
    # back-filled: 24 days of 8h funding; hourly OI from the oldest Binance keeps (30 days
    # before now, one period in) up to the first hour stored
    march_25, hour = 1_742_860_800_000, 3_600_000
    assert second_run["twice"]["funding"]["new"] == 24 * 3
    oldest_oi = emulator.now_ms - 30 * DAY + hour
    assert second_run["twice"]["open_interest:1h"]["new"] == (march_25 - oldest_oi) // hour
    for twice, once in zip(stored["twice"], stored["once"], strict=True):
        pd.testing.assert_frame_equal(twice, once)


def test_holes_inside_the_window_are_asked_for_again(emulator, emu_cli: Cli, data_dir: Path):
    """A back-fill killed after its first pages (written oldest first), a page that never
    came, a scan's window fetched after a stale lake: each leaves stored bars on both sides of
    a hole, which a later run used to skip for good (it asked only before the first bar and
    after the last). Now the next run over the window fills it, funding's too."""
    sym, now = "BTC/USDT:USDT", emulator.now_ms
    emu_cli("fetch", "--symbols", sym, "--timeframes", "5m", "--days", "1", "--funding")
    lake = Lake(data_dir)
    bars = expected_bars(emulator, sym, "5m", 10)
    early = bars[bars.timestamp < now - 6 * DAY]  # the killed back-fill's first pages
    lake.write_candles("binanceusdm", sym, "5m", early, now_ms=now)
    settled = [(t // 1000 * 1000, r) for t, r in emulator.funding("BTC") if t >= now - 10 * DAY]
    rates = pd.DataFrame(settled, columns=["timestamp", "funding_rate"])
    lake.write_funding("binanceusdm", sym, rates[rates.timestamp < now - 6 * DAY], now_ms=now)
    status = emu_cli("fetch", "--status", "-f", "jsonl").stdout.splitlines()
    assert {r["kind"]: r["gaps"] for r in map(json.loads, status)} == {"candles": 1, "funding": 1}
    short = ("fetch", "--symbols", sym, "--timeframes", "5m", "--days", "1", "--funding")
    rows = {r["dataset"]: r for r in map(json.loads, emu_cli(*short).stdout.splitlines())}
    assert (rows["5m"]["gaps"], rows["funding"]["gaps"]) == (1, 1)  # as --status counts them
    args = ("fetch", "--symbols", sym, "--timeframes", "5m", "--days", "10", "--funding")
    rows = {
        r["dataset"]: r for r in map(json.loads, emu_cli(*args, "-f", "jsonl").stdout.splitlines())
    }
    assert (rows["5m"]["new"], rows["5m"]["gaps"]) == (5 * 288, 0)  # five days between
    pd.testing.assert_frame_equal(lake.read_candles("binanceusdm", sym, "5m"), bars)
    funding = lake.read_funding("binanceusdm", sym)
    assert list(zip(funding.timestamp, funding.funding_rate, strict=True)) == settled
    klines, rates = emulator.count("/fapi/v1/klines"), emulator.count("/fapi/v1/fundingRate")
    emu_cli(*args)  # nothing missing: no bar asked for again, funding after its last only
    assert emulator.count("/fapi/v1/klines") == klines
    assert emulator.count("/fapi/v1/fundingRate") == rates + 1


def test_a_funding_row_without_a_rate_fails_its_own_series_only(emulator, data_dir: Path):
    """ccxt reads an empty rate as None: the run used to die on ``float(None)`` with nothing
    printed and every other series cancelled. Now that series' row says why, with the
    request it made, and the rest are stored."""
    served = emulator.funding_rate

    def blanked(q: dict[str, str]):
        status, rows = served(q)
        if q.get("symbol") == "ETHUSDT" and len(rows) > 1:
            rows[1]["fundingRate"] = ""
        return status, rows

    emulator.funding_rate = blanked
    symbols = "BTC/USDT:USDT,ETH/USDT:USDT"
    args = ("fetch", "--symbols", symbols, "--timeframes", "1h", "--days", "5", "--funding")
    result = Cli(emulator_env(emulator, data_dir))(*args, "-f", "jsonl", ok=False)
    assert result.exit_code == 1 and "1 of 4 series failed" in result.stderr
    rows = {(r["symbol"], r["dataset"]): r for r in map(json.loads, result.stdout.splitlines())}
    bad = rows.pop(("ETH/USDT:USDT", "funding"))
    assert "funding_rate" in bad["error"] and bad["requests"] == 1 and bad["total"] is None
    assert all(r["error"] is None and r["new"] > 0 for r in rows.values())
    lake = Lake(data_dir)
    assert len(lake.read_funding("binanceusdm", "BTC/USDT:USDT")) == 5 * 3
    assert len(lake.read_candles("binanceusdm", "ETH/USDT:USDT", "1h")) == 5 * 24


def test_capped_pages_of_a_4h_contract_fill_the_whole_hole(emulator, data_dir: Path):
    """A page cut at the venue's cap that ends within 8 h of the hole's end stopped the paging
    though a 4-hourly settlement was left there, and no later run saw a hole (review)."""
    h4 = 4 * 3_600_000
    times = [emulator.now_ms // h4 * h4 - i * h4 for i in range(1100)][::-1]
    emulator.funding = lambda base: [(t, 1e-4) for t in times]  # settled every 4 h
    kept = pd.DataFrame({"timestamp": times[:50] + times[1051:], "funding_rate": 1e-4})
    lake = Lake(data_dir)
    lake.write_funding("binanceusdm", "BTC/USDT:USDT", kept, now_ms=emulator.now_ms)
    env = emulator_env(emulator, data_dir) | {
        "CRYPTOBOT__EXCHANGES__BINANCEUSDM__FUNDING_LIMIT": "1500"  # above the cap of 1000
    }
    args = ("--symbols", "BTC/USDT:USDT", "--timeframes", "1d", "--days", "190", "--funding")
    Cli(env)("fetch", *args)
    assert lake.read_funding("binanceusdm", "BTC/USDT:USDT").timestamp.tolist() == times


def test_a_page_with_two_different_bars_for_one_time_is_refused(emulator, data_dir: Path):
    """As ``--import`` refuses such a file: which bar is meant cannot be guessed. The same bar
    twice is harmless."""
    served = emulator.klines

    def doubled(q: dict[str, str], close: float):
        status, rows = served(q)
        if isinstance(rows, list) and len(rows) > 2:
            rows.append([*rows[1][:4], str(close) if close else rows[1][4], *rows[1][5:]])
        return status, rows

    args = ("fetch", "--symbols", "BTC/USDT:USDT", "--timeframes", "1h", "--days", "2")
    for close, code in ((0, 0), (123.0, 1)):
        emulator.klines = lambda q, close=close: doubled(q, close)
        result = Cli(emulator_env(emulator, data_dir / str(code)))(*args, "-f", "jsonl", ok=None)
        assert result.exit_code == code, result.stderr
    (row,) = map(json.loads, result.stdout.splitlines())
    assert "the exchange served two different 1h bars for" in row["error"]


def test_a_page_with_two_different_funding_rates_for_one_time_is_refused(emulator, data_dir):
    """As candle pages are: the later row used to replace the first silently (jitter of
    400 ms put both on one second), and backtests charge funding from it."""
    served = emulator.funding_rate

    def doubled(q: dict[str, str]):
        status, rows = served(q)
        if len(rows) > 2:
            rows.append({**rows[1], "fundingTime": rows[1]["fundingTime"] + 400,
                         "fundingRate": "0.00033"})  # fmt: skip
        return status, rows

    emulator.funding_rate = doubled
    args = ("fetch", "--symbols", "BTC/USDT:USDT", "--timeframes", "1h", "--days", "5")
    result = Cli(emulator_env(emulator, data_dir))(*args, "--funding", "-f", "jsonl", ok=None)
    rows = {r["dataset"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert result.exit_code == 1 and rows["1h"]["error"] is None
    assert "two different funding rates for" in rows["funding"]["error"]
    assert Lake(data_dir).read_funding("binanceusdm", "BTC/USDT:USDT").empty


def test_a_damaged_file_of_another_series_does_not_fail_the_fetch(emu_cli: Cli, data_dir: Path):
    """The DuckDB views, refreshed after every fetch, cannot read a damaged partition: that
    kind's view is skipped with a warning, and the fetch reports what it stored."""
    base = ("fetch", "--timeframes", "1h", "--days", "2", "-f", "jsonl")
    emu_cli(*base, "--symbols", "BTC/USDT:USDT")
    (damaged, *_) = sorted((data_dir / "candles").rglob("*.parquet"))
    damaged.write_bytes(b"garbage")
    result = emu_cli(*base, "--symbols", "ETH/USDT:USDT")
    (row,) = map(json.loads, result.stdout.splitlines())
    assert (row["symbol"], row["new"], row["error"]) == ("ETH/USDT:USDT", 48, None)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: no candles view:") and "fetch --status" in line
    views = "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
    assert ("candles",) not in catalog.query(data_dir, views)  # the old one would fail alike


def test_a_from_after_the_exchanges_clock_is_one_line(emulator, emu_cli: Cli):
    """The machine's clock (2026 here) allows it, the exchange's (2025) does not: nothing
    could be stored, which used to pass as a run with nothing new."""
    result = emu_cli("fetch", "--symbols", "BTC/USDT:USDT", "--from", "2025-12-01", ok=False)
    (line,) = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and "after the exchange's clock" in line


def test_a_funding_page_limit_above_the_venues_cap_still_pages_to_the_end(emulator, data_dir):
    """Binance serves at most 1,000 funding rows a page; a limit of 1,500 made the first
    (full) page look short, and the history stopped there."""
    env = emulator_env(emulator, data_dir) | {
        "CRYPTOBOT__EXCHANGES__BINANCEUSDM__FUNDING_LIMIT": "1500"
    }
    Cli(env)(
        "fetch",
        "--symbols",
        "BTC/USDT:USDT",
        "--timeframes",
        "1d",
        "--since",
        "2023-01-01",
        "--funding",
    )
    stored = Lake(data_dir).read_funding("binanceusdm", "BTC/USDT:USDT")
    served = [t // 1000 * 1000 for t, _ in emulator.funding("BTC") if t >= 1_672_531_200_000]
    assert len(served) > 1000 and stored.timestamp.tolist() == served


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--symbols", "FOO/USDT:USDT"), "lists no contract FOO/USDT:USDT"),
        (("--symbols", "BTCUSDT"), "not a ccxt unified symbol"),
        (("--top", "3", "--timeframes", "7m"), "unknown timeframe '7m'"),
    ],
)
def test_bad_inputs_give_one_line_and_exit_1(emu_cli: Cli, data_dir: Path, args, message):
    result = emu_cli("fetch", *args, ok=False)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not list(data_dir.rglob("candles/**/*.parquet"))


def test_usage_errors_exit_2(emu_cli: Cli):
    assert emu_cli("fetch", ok=False).exit_code == 2
    assert emu_cli("fetch", "--top", "3", "--symbols", "BTC/USDT:USDT", ok=False).exit_code == 2
    assert emu_cli("fetch", "--import", "x.csv", ok=False).exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "2024-13-45"), "malformed date '2024-13-45'"),
        (("--from", "2030-01-01"), "--from 2030-01-01 is in the future (now is 20"),
        (("--from", "2024-01-01", "--days", "3"), "give --from or --days, not both"),
        (("--days", "3", "--from", "2099-01-01T00:00Z"), "give --from or --days, not both"),
    ],
)
def test_a_start_that_cannot_be_meant_is_a_usage_error(emu_cli: Cli, data_dir: Path, args, message):
    """--from in the future fetched nothing and --days lost to --from, both silently."""
    result = emu_cli("fetch", "--top", "3", *args, ok=False)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not list(data_dir.rglob("*.parquet"))
