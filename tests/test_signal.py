"""``signal``: each context filter on a lake of real candles, the journal, and the pipe."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.core.setup import Setup
from cryptobot.core.signal import Signal
from cryptobot.core.timeutil import iso
from cryptobot.data import catalog
from cryptobot.data.lake import Lake
from cryptobot.strategies.signals import History, decide
from tests.conftest import BINANCE, Cli

EX, SYM = "binanceusdm", "ETH/USDT:USDT"
T0 = 1_744_027_200_000 - 300_000  # the 5m bar opening 2025-04-07 11:55, the newest stored
NOW = T0 + 300_000  # the venue's clock in these tests: the newest stored bar has just closed


@pytest.fixture
def lake(shared, data_dir: Path) -> Lake:
    lake = Lake(data_dir)
    for tf in ("5m", "1h"):
        bars = pq.read_table(BINANCE / f"ETH_USDT_USDT/{tf}.parquet").to_pandas()
        bars = bars[(bars.timestamp <= T0) & (bars.timestamp > T0 - 500 * 3_600_000)]
        lake.write_candles(
            EX,
            SYM,
            tf,
            bars[bars.timestamp + (300_000 if tf == "5m" else 3_600_000) <= T0 + 300_000],
        )
    return lake


def _setup(
    side="long", ts=T0, status="triggered", confidence=3, strategy="bos_fvg_fib", symbol=SYM
):
    entry = 1500.0
    stop = entry - 10 if side == "long" else entry + 10
    return Setup(
        EX,
        symbol,
        strategy,
        "5m",
        side,
        status,
        ts,
        ts - 3_600_000,
        entry,
        stop,
        [entry + (10 if side == "long" else -10)],
        confidence,
        {},
    )


def _only(settings, **changes):
    """Signal settings with every filter off except the ones named."""
    base = {
        "regime_filter": False,
        "htf_bias": False,
        "one_signal_per_symbol": False,
        "cooldown_after_loss_min": 0,
        "funding_extreme": 1.0,
        "max_setup_age_bars": 3,
    }
    return settings.signal.model_copy(update=base | changes)


def test_armed_and_stale_setups_are_not_signals(lake, settings):
    p = _only(settings)
    fresh, old = _setup(ts=T0 - 2 * 300_000), _setup(ts=T0 - 3 * 300_000, side="short")
    armed = _setup(status="armed", ts=T0)
    decisions = decide([fresh, old, armed], lake, p, now=NOW)
    assert [(d.accepted, d.reason) for d in decisions] == [
        (True, "accepted"),
        (False, "stale: 3 bars closed since (limit 3)"),
        (False, "armed: waiting for its trigger"),
    ]


def test_a_setup_whose_bar_has_not_closed_at_the_venues_clock_is_refused(lake, settings):
    """A setup from the future (or of a bar still open) is no signal: accepted, it would stand
    as the symbol's live signal and block every real one (one per symbol)."""
    p = _only(settings, one_signal_per_symbol=True)
    future, open_bar = _setup(ts=NOW + 5 * 365 * 86_400_000), _setup(ts=NOW)
    closed = _setup(ts=T0, strategy="momentum")
    decisions = decide([future, open_bar, closed], lake, p, now=NOW)
    assert [d.accepted for d in decisions] == [False, False, True]
    assert all(d.reason.startswith("not closed yet at the venue's clock") for d in decisions[:2])


def test_a_replay_venue_judges_age_at_its_own_clock(lake, tmp_path):
    """The replay exchange at T decides staleness as of T: the lake holds 200 bars more and the
    wall clock is a year on, yet a setup whose bar closed two bars before T is fresh and one
    closed three bars before is stale (limit 3); one bar later both are stale."""
    bar = 300_000
    t = T0 - 200 * bar  # the replay clock: the bar opening at t - bar has just closed
    setups = tmp_path / "setups.jsonl"
    records = [_setup(ts=t - 3 * bar), _setup(ts=t - 4 * bar, side="short")]
    setups.write_text("".join(json.dumps(s.to_json()) + "\n" for s in records))
    for clock, stale, ages in ((t, [False, True], [2, 3]), (t + bar, [True, True], [3, 4])):
        cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root), "CRYPTOBOT__EXCHANGE": "replay",
                   "CRYPTOBOT__REPLAY__SOURCE_EXCHANGE": EX,
                   "CRYPTOBOT__REPLAY__START": f"'{iso(clock)}'",  # quoted: YAML reads a datetime
                   "CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS": "3"})  # fmt: skip
        out = cli("signal", str(setups), "--all", "-f", "jsonl").stdout.splitlines()
        rows = [json.loads(line) for line in out]
        assert [r["reason"].startswith("stale") for r in rows] == stale, (iso(clock), rows)
        assert [r["age_bars"] for r in rows] == ages
    with duckdb.connect(str(lake.root / catalog.DB_NAME), read_only=True) as con:
        decided = con.execute("SELECT DISTINCT decided_at FROM signal_decisions").fetchall()
    assert decided == [(t + bar,)]  # journaled as decided at the venue's time, not the machine's


def test_offline_signal_judges_at_the_stored_candles_clock(lake, tmp_path):
    setups = tmp_path / "setups.jsonl"
    fresh, stale = _setup(ts=T0 - 2 * 300_000), _setup(ts=T0 - 3 * 300_000, side="short")
    setups.write_text("".join(json.dumps(s.to_json()) + "\n" for s in (fresh, stale)))
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root), "CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS": "3"})
    out = cli("signal", str(setups), "--offline", "--all", "-f", "jsonl").stdout.splitlines()
    assert [json.loads(r)["reason"].startswith("stale") for r in out] == [False, True]


def test_funding_refuses_the_crowded_side(lake, settings):
    lake.write_funding(
        EX, SYM, pd.DataFrame({"timestamp": [T0 - T0 % 3_600_000], "funding_rate": [0.0012]})
    )
    long_, short = decide(
        [_setup("long"), _setup("short")], lake, _only(settings, funding_extreme=0.001), now=NOW
    )
    assert not long_.accepted and long_.reason == "funding: longs are crowded (+0.1200% per period)"
    assert (
        short.accepted
        and short.context["funding_bias"] == 1
        and short.context["funding_rate"] == 0.0012
    )
    mild = decide([_setup("long")], lake, _only(settings, funding_extreme=0.002), now=NOW)[0]
    assert mild.accepted and mild.context["funding_bias"] == -1  # allowed, but it pays


def test_higher_timeframe_bias(lake, settings):
    p = _only(settings, htf_bias=True)
    hourly = lake.read_candles(EX, SYM, "1h")
    from cryptobot.analysis.indicators import ema

    above = hourly.close.iloc[-1] > ema(hourly, p.htf_ema).iloc[-1]
    with_trend, against = ("long", "short") if above else ("short", "long")
    ok, refused = decide([_setup(with_trend), _setup(against)], lake, p, now=NOW)
    assert ok.accepted and ok.context["htf_bias"] == with_trend
    assert not refused.accepted and refused.reason.startswith("htf: 1h close is")
    # no higher-timeframe data: the bias is unknown and does not block
    other = decide([_setup(symbol="SOL/USDT:USDT")], lake, p, now=NOW)[0]
    assert other.context["htf_bias"] == "unknown"


def test_regime_filter_uses_the_strategy_block_list(lake, settings):
    p = _only(settings, regime_filter=True)
    seen = decide([_setup()], lake, p, now=NOW)[0].context["regime"]
    blocked = _only(settings, regime_filter=True, regime_block={"bos_fvg_fib": [seen]})
    d = decide([_setup()], lake, blocked, now=NOW)[0]
    assert not d.accepted and d.reason == f"regime: bos_fvg_fib skips {seen} markets"


def test_cooldown_after_a_loss(lake, settings):
    p = _only(settings, cooldown_after_loss_min=60)
    close = T0 + 300_000
    recent = History(last_loss_ms={SYM: close - 30 * 60_000})
    d = decide([_setup()], lake, p, recent, now=NOW)[0]
    assert not d.accepted and d.reason == f"cooldown: a loss on {SYM} 30 min ago"
    assert decide([_setup()], lake, p, History(last_loss_ms={SYM: close - 61 * 60_000}), now=NOW)[
        0
    ].accepted


def test_one_signal_per_symbol(lake, settings):
    p = _only(settings, one_signal_per_symbol=True)
    weak, strong = _setup(confidence=2), _setup(confidence=4, strategy="momentum")
    a, b = decide([weak, strong], lake, p, now=NOW)
    assert (a.accepted, b.accepted) == (False, True)
    assert a.reason == "one per symbol: a better setup won"
    live = History(live_signal={SYM: "someotherid"})
    assert (
        decide([strong], lake, p, live, now=NOW)[0].reason
        == "one per symbol: a signal is already live"
    )
    assert decide([strong], lake, p, History(live_signal={SYM: strong.id}), now=NOW)[0].accepted


def test_scan_piped_into_signal_journals_every_decision(emulator, emu_cli: Cli, data_dir: Path):
    # a week of 5m bars: bos_fvg_fib triggers a few times a month per symbol (issue 15)
    setups = emu_cli(
        "scan",
        "--top",
        "5",
        "--within",
        "2000",
        "--bars",
        "2000",
        "--min-confidence",
        "0",
        "--strategy",
        "bos_fvg_fib",
        "--format",
        "jsonl",
    ).stdout
    emu_cli.env["CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS"] = "2100"  # let old setups through
    out = emu_cli("signal", "-", "--format", "jsonl", input=setups).stdout
    signals = [Signal.from_record(json.loads(line)) for line in out.splitlines()]
    n = len(setups.splitlines())
    with duckdb.connect(str(data_dir / catalog.DB_NAME), read_only=True) as con:
        rows = con.execute("SELECT accepted, reason FROM signal_decisions").fetchall()
    assert len(rows) == n and sum(a for a, _ in rows) == len(signals)
    assert all(reason for _, reason in rows)
    assert signals and len({s.setup.symbol for s in signals}) == len(signals)  # one per symbol
    record = json.loads(out.splitlines()[0])
    assert record["schema"] == "signal/1" and record["setup_id"] == record["id"]
    assert {"regime", "funding_bias", "htf_bias"} <= set(record["context"])
    # a loss taken through `trade` cooling a symbol down: tests/test_trade_losses.py


def test_signal_refuses_records_that_are_not_setups(cli: Cli, tmp_path: Path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"schema": "market/1"}\n')
    result = cli("signal", str(bad), ok=None)
    assert result.exit_code == 1 and "not a setup/1 record" in result.stderr
