"""`fetch --crowd` with the real ccxt client against the loopback emulator: open interest,
global and top-trader long/short ratios, taker buy/sell volume and Fear & Greed, each within the
history its source keeps, incremental, idempotent, retried through 429s."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.data import crowd
from cryptobot.data.lake import Lake
from tests.conftest import Cli, emulator_env
from tests.emulator import BinanceEmulator, Faults

DAY, HOUR = 86_400_000, 3_600_000
NOW = 1_715_344_440_000  # 2024-05-10T12:34Z: inside BTC/ETH history and the Fear & Greed file
SYMBOLS = "BTC/USDT:USDT,ETH/USDT:USDT"
SERIES = (
    "long_short",
    "open_interest",
    "taker_volume",
    "top_long_short_accounts",
    "top_long_short_positions",
)
EX = "binanceusdm"


@pytest.fixture
def emu(shared: Path):
    with BinanceEmulator(shared, now_ms=NOW) as emulator:
        yield emulator


def crowd_cli(emu: BinanceEmulator, data_dir: Path) -> Cli:
    fng = {"CRYPTOBOT__FETCH__FEAR_GREED_URL": f"{emu.url}/fng/"}
    return Cli(emulator_env(emu, data_dir) | fng)


def _rows(result) -> dict[tuple[str | None, str], dict]:
    return {(r["symbol"], r["dataset"]): r for r in map(json.loads, result.stdout.splitlines())}


def _fetch(cli: Cli, *flags: str, ok: bool | None = True):
    return cli("fetch", "--crowd", "--symbols", SYMBOLS, *flags, "-f", "jsonl", ok=ok)


def test_one_run_stores_every_crowd_series_within_its_history(emu, data_dir: Path):
    rows = _rows(_fetch(crowd_cli(emu, data_dir), "--days", "40"))
    assert set(rows) == {
        *((s, d) for s in SYMBOLS.split(",") for d in ("funding", *(f"{k}:1h" for k in SERIES))),
        (None, "fear_greed:1d"),
    }  # no candles: --crowd fetches them only with --timeframes
    assert all(r["error"] is None for r in rows.values())
    lake = Lake(data_dir)
    newest = NOW // HOUR * HOUR
    oldest = NOW - 30 * DAY + HOUR  # Binance keeps 30 days: the oldest hour it still serves
    for symbol in SYMBOLS.split(","):
        base = symbol.split("/")[0]
        ratios = lake.read_series("long_short", EX, symbol, "1h")
        assert ratios.timestamp.iloc[0] == -(-oldest // HOUR) * HOUR
        assert ratios.timestamp.iloc[-1] == newest  # the snapshot at the exchange's clock
        assert np.all(np.diff(ratios.timestamp) == HOUR)
        expected = [round(emu.long_share(t, 0.0), 4) for t in ratios.timestamp]
        assert np.allclose(ratios.long_account, expected)
        assert np.allclose(
            ratios.long_short_ratio, ratios.long_account / ratios.short_account, 1e-3
        )
        top = lake.read_series("top_long_short_positions", EX, symbol, "1h")
        assert np.allclose(
            top.long_account, [round(emu.long_share(t, 2.0), 4) for t in top.timestamp]
        )
        taker = lake.read_series("taker_volume", EX, symbol, "1h")
        assert taker.timestamp.iloc[-1] == newest - HOUR  # the last period closed by now
        bars = emu.bars(base, "5m")
        hour = int(taker.timestamp.iloc[-5])
        real = bars[(bars[:, 0] >= hour) & (bars[:, 0] < hour + HOUR), 5].sum()
        stored = taker.iloc[-5]
        assert stored.buy_volume + stored.sell_volume == pytest.approx(real, rel=1e-6)
    fear = lake.read_series("fear_greed", "alternative_me")
    source = pq.read_table(emu.data_dir / "sentiment/fear_greed_alternative_me_daily.parquet")
    real = source.to_pandas().set_index("timestamp").value
    assert len(fear) == 40  # Fear & Greed keeps its history: --days is the only limit
    assert fear.value.tolist() == real.loc[fear.timestamp].astype(float).tolist()
    assert fear.timestamp.iloc[-1] == NOW // DAY * DAY  # today's value, published at 00:00


def test_a_rerun_is_free_and_a_later_one_adds_only_what_is_new(emu, data_dir: Path):
    cli = crowd_cli(emu, data_dir)
    _fetch(cli)
    before = len(emu.hits)
    again = _rows(_fetch(cli))
    assert all(r["new"] == 0 for r in again.values())
    statistics = [h for h in emu.hits[before:] if h.path.startswith("/futures/data/")]
    assert statistics == []  # the snapshot at "now" is stored: nothing to ask
    emu.now_ms = NOW + DAY + 5 * HOUR
    later = _rows(_fetch(cli))
    for symbol in SYMBOLS.split(","):
        for kind in SERIES:
            row = later[(symbol, f"{kind}:1h")]
            assert (row["new"], row["requests"]) == (29, 1), (kind, row)
    assert later[(None, "fear_greed:1d")]["new"] == 1
    lake = Lake(data_dir)
    oi = lake.read_series("open_interest", EX, "BTC/USDT:USDT", "1h")
    assert (
        np.all(np.diff(oi.timestamp) == HOUR)
        and oi.timestamp.iloc[-1] == (NOW + 29 * HOUR) // HOUR * HOUR
    )


def test_429s_on_the_crowd_endpoints_are_retried_and_change_nothing(
    emu, data_dir: Path, tmp_path: Path
):
    calm = tmp_path / "calm"
    calm.mkdir()
    _fetch(crowd_cli(emu, calm))
    emu.faults = Faults(
        rate=0.3, kinds=("429",), retry_after_s=0, paths=("/futures/data/", "/fng/"), first=2
    )
    rows = _rows(_fetch(crowd_cli(emu, data_dir)))
    assert all(r["error"] is None for r in rows.values())
    refused = {h.path for h in emu.hits if h.outcome == "429"}
    assert "/fng/" in refused and any(p.startswith("/futures/data/") for p in refused)
    for path in sorted(calm.rglob("*.parquet")):
        if "markets" in path.parts:
            continue
        twin = data_dir / path.relative_to(calm)
        pd.testing.assert_frame_equal(
            pq.read_table(twin).to_pandas(), pq.read_table(path).to_pandas()
        )


def test_a_dead_index_fails_its_row_only(emu, data_dir: Path):
    emu.faults = Faults(rate=1.0, kinds=("503",), paths=("/fng/",))
    result = _fetch(crowd_cli(emu, data_dir), ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 1 of 13 series failed; see the error column"
    )
    rows = _rows(result)
    assert "failed after 12 tries" in rows[(None, "fear_greed:1d")]["error"]
    assert sum(r["new"] for r in rows.values() if r["error"] is None) > 0


def test_readers_see_only_what_was_known(emu, data_dir: Path):
    _fetch(crowd_cli(emu, data_dir))
    lake = Lake(data_dir)
    at = NOW // HOUR * HOUR - 3 * HOUR  # a bar closing three hours ago
    taker = crowd.read_taker_volume(lake, exchange=EX, symbol="BTC/USDT:USDT", period="1h", end=at)
    stored = lake.read_series("taker_volume", EX, "BTC/USDT:USDT", "1h")
    # the period [at - 1h, at) is known at its close, "at"; the one starting at "at" is not
    assert taker.timestamp.iloc[-1] == at
    assert taker.buy_volume.iloc[-1] == stored.set_index("timestamp").buy_volume[at - HOUR]
    ratios = crowd.read_long_short(
        lake, exchange=EX, symbol="BTC/USDT:USDT", period="1h", traders="top_accounts", end=at
    )
    assert ratios.timestamp.iloc[-1] == at
    fear = crowd.read_fear_greed(lake, start=NOW - 3 * DAY)
    assert fear.timestamp.tolist() == [NOW // DAY * DAY - k * DAY for k in (2, 1, 0)]


def test_replay_serves_the_lake_offline_and_asks_no_index(tmp_path: Path):
    from tests.conftest import sample_market_config

    config = sample_market_config(tmp_path, days=2)
    config.write_text(config.read_text() + "\nfetch:\n  fear_greed_url: http://127.0.0.1:9/fng/\n")
    out = Cli()("--config", str(config), "fetch", "--crowd", "--symbols", "BTC/USDT:USDT").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["dataset"] for r in rows} == {"funding", "open_interest:1h"}
    assert all(r["error"] is None for r in rows)


@pytest.mark.parametrize("kind", ["429", "malformed", "503"])
def test_the_index_honours_retry_after_and_survives_bad_answers(emu, kind: str):
    import asyncio

    from cryptobot.exchange.fear_greed import FearGreedSource
    from cryptobot.exchange.retry import RetryPolicy

    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    emu.faults = Faults(kinds=(kind,), retry_after_s=3, paths=("/fng/",), first=2)
    source = FearGreedSource(
        f"{emu.url}/fng/", retry=RetryPolicy(base_delay_s=0.01, sleep=sleep), timeout_s=2
    )
    page = asyncio.run(
        source.page("fear_greed", symbol=None, period="1d", since=NOW - 3 * DAY, limit=99, now=NOW)
    )
    assert page.timestamp.tolist() == [NOW // DAY * DAY - k * DAY for k in (2, 1, 0)]
    assert len(waited) == 2
    if kind == "429":
        assert min(waited) >= 3  # the server's Retry-After, above the 0.01 s back-off
