"""`fetch --liquidations --watch`: Binance's forceOrder stream through ccxt pro and a loopback
WebSocket server into the lake, a dropped connection, duplicates re-sent, a bad message, SIGTERM,
two recorders at once; and the per-period totals a strategy reads (unknown where nobody watched).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.core.errors import ExchangeFailure
from cryptobot.data import catalog
from cryptobot.data.lake import Lake
from cryptobot.data.liquidations import (
    liquidation_totals,
    read_coverage,
    read_liquidations,
    record,
    write_span,
)
from cryptobot.data.status import lake_status
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator
from tests.emulator.binance_ws import LiquidationStream, forceorder_messages, recorded_message

ROOT = Path(__file__).resolve().parents[1]
EX = "binanceusdm"
MINUTE = 60_000


def _stream(n: int) -> list[dict]:
    """The recorded message as it is, then ``n`` more in its shape from a minute ago."""
    return [recorded_message(), *forceorder_messages(n, int(time.time() * 1000) - MINUTE)]


def _env(emu: BinanceEmulator, ws: LiquidationStream, data_dir: Path) -> dict[str, str]:
    return emulator_env(emu, data_dir) | {"CRYPTOBOT__EXCHANGES__BINANCEUSDM__WS_BASE": ws.url}


def _expected(messages: list[dict]) -> pd.DataFrame:
    """What the lake must hold: each message once, read independently of the recorder."""
    rows = [
        {
            "timestamp": m["o"]["T"],
            "symbol": f"{m['o']['s'][:-4]}/USDT:USDT",
            "side": m["o"]["S"].lower(),
            "price": float(m["o"]["ap"]),
            "quantity": float(m["o"]["z"]),
        }
        for m in messages
    ]
    return pd.DataFrame(rows).sort_values("timestamp", kind="stable").reset_index(drop=True)


@pytest.fixture
def emu(shared: Path):
    with BinanceEmulator(shared) as emulator:
        yield emulator


def test_a_dropped_connection_is_reconnected_and_re_sent_rows_are_stored_once(emu, data_dir: Path):
    messages = _stream(40)
    with LiquidationStream(messages, drop_after=15, overlap=6, burst=5) as ws:
        args = ("fetch", "--liquidations", "--watch", "--max-messages", "47", "-f", "json")
        result = Cli(_env(emu, ws, data_dir))(*args)
        assert ws.connections == [["!forceOrder@arr"], ["!forceOrder@arr"]]
    (row,) = json.loads(result.stdout)
    assert row == row | {"received": 47, "new": 41, "duplicates": 6, "reconnects": 1}
    assert row["rejected"] == 0 and "reconnecting" in result.stderr
    lake = Lake(data_dir)
    stored = read_liquidations(lake, exchange=EX)
    pd.testing.assert_frame_equal(stored[list(_expected(messages))], _expected(messages))
    # the recorded Binance message, as it was sent: a SELL order closes a long
    first = stored.iloc[0]
    assert (first.symbol, first.side, first.liquidated) == ("BTC/USDT:USDT", "sell", "long")
    assert (first.price, first.quantity) == (9910.12345678, 0.014)
    assert (data_dir / "liquidations/binanceusdm/2019-09-09.parquet").exists()  # one file a day
    spans = read_coverage(lake, exchange=EX)
    assert len(spans) == 2 and spans.symbols.tolist() == ["*", "*"]
    assert spans.end.iloc[0] <= spans.timestamp.iloc[1]  # the drop ended the first span
    (status,) = [r for r in lake_status(lake) if r["kind"] == "liquidations"]
    assert (status["bars"], status["gaps"], status["problems"]) == (41, 1, None)
    sql = "SELECT count(*), count(DISTINCT symbol) FROM liquidations WHERE exchange = ?"
    assert catalog.query(data_dir, sql, [EX]) == [(41, 4)]  # the DuckDB view over the days


def test_a_bad_message_is_rejected_and_the_recording_goes_on(emu, data_dir: Path):
    messages = _stream(10)
    messages[4]["o"]["ap"] = "NaN"
    messages[7]["o"]["z"] = "0"
    with LiquidationStream(messages) as ws:
        args = ("fetch", "--liquidations", "--watch", "--max-messages", "11", "-f", "json")
        (row,) = json.loads(Cli(_env(emu, ws, data_dir))(*args).stdout)
    assert (row["received"], row["new"], row["rejected"]) == (11, 9, 2)
    stored = read_liquidations(Lake(data_dir), exchange=EX)
    good = [m for i, m in enumerate(messages) if i not in (4, 7)]
    pd.testing.assert_frame_equal(stored[list(_expected(good))], _expected(good))


def test_symbols_narrow_the_stream(emu, data_dir: Path):
    messages = _stream(12)
    btc = [m for m in messages if m["o"]["s"] == "BTCUSDT"]
    with LiquidationStream(messages) as ws:
        args = ("fetch", "--liquidations", "--watch", "--symbols", "BTC/USDT:USDT", "--for", "3")
        (row,) = json.loads(Cli(_env(emu, ws, data_dir))(*args, "-f", "json").stdout)
        assert ws.connections == [["btcusdt@forceOrder"]]
    assert row["new"] == len(btc) == 4
    lake = Lake(data_dir)
    assert set(read_liquidations(lake, exchange=EX).symbol) == {"BTC/USDT:USDT"}
    assert read_coverage(lake, exchange=EX).symbols.tolist() == ["BTC/USDT:USDT"]
    assert read_coverage(lake, exchange=EX, symbol="ETH/USDT:USDT").empty


def _recorder(data_dir: Path, emu: BinanceEmulator, ws: LiquidationStream, *flags: str):
    env = os.environ | _env(emu, ws, data_dir) | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    args = [sys.executable, "-m", "cryptobot", "fetch", "--liquidations", "--watch", *flags]
    return subprocess.Popen(
        [*args, "-f", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_recorder_cleanly_with_every_row_stored(
    emu, data_dir: Path, sig: signal.Signals
):
    messages = _stream(20)
    with LiquidationStream(messages) as ws:
        proc = _recorder(data_dir, emu, ws)
        try:
            _wait_for(lambda: ws.sent == len(messages))
            time.sleep(0.3)  # received, not yet flushed (flushes are 5 s apart)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    (row,) = json.loads(out)
    assert (row["received"], row["new"]) == (21, 21)
    assert len(read_liquidations(Lake(data_dir), exchange=EX)) == 21


def test_two_recorders_at_once_store_each_liquidation_once(emu, data_dir: Path):
    """A cron rotation overlaps the old recorder and the new one on purpose."""
    messages = _stream(30)
    with LiquidationStream(messages, burst=3) as one, LiquidationStream(messages, burst=8) as two:
        procs = [_recorder(data_dir, emu, ws, "--max-messages", "31") for ws in (one, two)]
        outputs = [p.communicate(timeout=100) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rows = [json.loads(out)[0] for out, _ in outputs]
    assert sum(r["new"] for r in rows) == 31
    assert sum(r["duplicates"] for r in rows) == 31
    stored = read_liquidations(Lake(data_dir), exchange=EX)
    pd.testing.assert_frame_equal(stored[list(_expected(messages))], _expected(messages))
    assert len(read_coverage(Lake(data_dir), exchange=EX)) == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--liquidations",), "record the stream with --liquidations --watch"),
        (("--watch",), "--watch records the liquidation stream: add --liquidations"),
        (("--liquidations", "--for", "5"), "record the stream with --liquidations --watch"),
        (("--top", "3", "--for", "5"), "--for and --max-messages bound a --watch"),
        (("--liquidations", "--watch", "--top", "3"), "--liquidations records the stream only"),
        (("--liquidations", "--watch", "--for", "nan"), "--for"),
        (("--liquidations", "--watch", "--max-messages", "0"), "--max-messages"),
    ],
)
def test_flags_that_do_not_fit_a_recording_are_usage_errors(cli: Cli, flags, message: str):
    result = cli("fetch", *flags, ok=False)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_symbol_or_a_replayed_market_is_one_line(emu, data_dir: Path, tmp_path):
    from tests.conftest import sample_market_config

    with LiquidationStream(_stream(2)) as ws:
        result = Cli(_env(emu, ws, data_dir))(
            "fetch", "--liquidations", "--watch", "--symbols", "FOO/USDT:USDT", ok=False
        )
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: binanceusdm lists no contract FOO/USDT:USDT"
    config = sample_market_config(tmp_path, days=2)
    replayed = Cli()("--config", str(config), "fetch", "--liquidations", "--watch", ok=False)
    assert replayed.exit_code == 1
    assert replayed.stderr.strip() == "error: replay streams no liquidations (a live venue does)"


# ---- the recorder's bookkeeping and what a strategy reads ---------------------------------------


class ScriptedVenue:
    """A venue whose stream is a script of batches and drops, on a clock the test moves."""

    id = EX

    def __init__(self, script: list, clock: list[int]) -> None:
        self.script, self.clock = script, clock

    async def watch_liquidations(self, symbols: list[str]) -> list[dict]:
        await asyncio.sleep(0)
        if not self.script:
            await asyncio.Event().wait()  # a quiet market: nothing more comes
        at, item = self.script.pop(0)
        self.clock[0] = at
        if item == "drop":
            raise ExchangeFailure("liquidation stream: connection closed")
        return item


def _liq(t: int, side: str, price: float = 100.0, qty: float = 1.0) -> dict:
    return {
        "timestamp": t,
        "symbol": "BTC/USDT:USDT",
        "side": side,
        "price": price,
        "quantity": qty,
    }


T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def test_totals_per_period_count_each_side_and_are_unknown_where_nobody_watched(tmp_path: Path):
    clock = [T0 + 10_000]
    script = [
        (T0 + 30_000, [_liq(T0 + 29_000, "buy", price=90.0)]),  # the span starts at 0:30
        (T0 + 65_000, [_liq(T0 + 61_000, "sell"), _liq(T0 + 62_000, "sell", qty=2.0)]),
        (T0 + 130_000, [_liq(T0 + 125_000, "buy", price=110.0)]),
        (T0 + 200_000, "drop"),  # down from 3:20 ...
        (T0 + 320_000, [_liq(T0 + 318_000, "sell")]),  # ... to 5:20, the next message
    ]
    lake = Lake(tmp_path)
    result = asyncio.run(
        record(
            ScriptedVenue(script, clock),
            lake,
            symbols=[],
            stop=asyncio.Event(),
            now_ms=lambda: clock[0],
            max_messages=5,
            backoff=lambda n: 0.0,
        )
    )
    assert (result.received, result.new, result.reconnects) == (5, 5, 1)
    totals = liquidation_totals(
        lake, exchange=EX, symbol="BTC/USDT:USDT", period="1m", start=T0, end=T0 + 6 * MINUTE
    )
    assert totals.timestamp.tolist() == [T0 + k * MINUTE for k in range(1, 7)]
    got = totals.set_index(totals.timestamp // MINUTE - T0 // MINUTE)
    assert np.isnan(got.loc[1, "short_count"])  # 0:00-1:00: watched from 0:30 only
    assert (got.loc[2, "long_count"], got.loc[2, "long_usd"]) == (2, 300.0)  # longs liquidated
    assert (got.loc[2, "short_count"], got.loc[3, "short_usd"]) == (0, 110.0)
    assert got.loc[3, "long_count"] == 0  # watched, and calm: zero, not unknown
    assert got.loc[[4, 5, 6], "long_count"].isna().all()  # the drop; 5:20 to 6:00 not whole
    spans = read_coverage(lake, exchange=EX)
    assert spans[["timestamp", "end"]].values.tolist() == [
        [T0 + 30_000, T0 + 200_000],
        [T0 + 320_000, T0 + 320_000],
    ]
    events = read_liquidations(lake, exchange=EX, start=T0 + MINUTE, end=T0 + 3 * MINUTE)
    assert events.liquidated.tolist() == ["long", "long", "short"]
    assert events.notional.tolist() == [100.0, 200.0, 110.0]


def test_a_liquidation_stamped_after_the_clock_is_rejected(tmp_path: Path):
    clock = [T0]
    script = [(T0, [_liq(T0 + 2 * MINUTE, "buy"), _liq(T0 - 1000, "buy")])]
    result = asyncio.run(
        record(
            ScriptedVenue(script, clock),
            Lake(tmp_path),
            symbols=[],
            stop=asyncio.Event(),
            now_ms=lambda: clock[0],
            max_messages=2,
        )
    )
    assert (result.new, result.rejected) == (1, 1)


def test_two_recorders_starting_in_the_same_millisecond_keep_a_span_each(data_dir: Path):
    """Spans are told apart by their recorder, not by their start alone: the second recorder's
    span used to replace the first one's (and its end), losing what the first watched."""
    lake = Lake(data_dir)
    write_span(lake, EX, recorder="a", start=1_000, end=9_000, symbols=[])
    write_span(lake, EX, recorder="b", start=1_000, end=2_000, symbols=[])
    write_span(lake, EX, recorder="a", start=1_000, end=10_000, symbols=[])  # a extends its own
    spans = read_coverage(lake, exchange=EX).sort_values("recorder")
    assert spans[["timestamp", "end", "recorder"]].values.tolist() == [
        [1_000, 10_000, "a"],
        [1_000, 2_000, "b"],
    ]
