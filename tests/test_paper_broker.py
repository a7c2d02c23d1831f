"""The paper broker: the trading interface on live prices with its account in the DuckDB journal.
Real processes (``tests/paper_worker.py``) restart it, kill it between an order and its fill,
kill it at random mid-run and race two of it on one account; in-process tests compare it with
the replay exchange on real candles and check that nothing reaches the price venue."""

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from cryptobot.core.errors import ConfigError, CryptobotError
from cryptobot.data.lake import Lake
from cryptobot.exchange.errors import InsufficientMargin, TradingError
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs
from tests.venues import HOUR, SYMBOL, T0, lake_of, market, run

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "paper_worker.py"
ENV = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
SETUP = SimSetup(costs=Costs(taker=0.0005, maker=0.0002, slippage_bps=2), timeframe="1h")


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """48 hourly bars of a deterministic walk around 100, funding every 8 hours."""
    rng = np.random.default_rng(7)
    close = np.round(100 * np.cumprod(1 + rng.normal(0, 0.004, 48)), 1)
    open_ = np.round(np.r_[100.0, close[:-1]], 1)
    candles = pd.DataFrame(
        {"timestamp": T0 + HOUR * np.arange(48), "open": open_,
         "high": np.maximum(open_, close) + 0.3, "low": np.minimum(open_, close) - 0.3,
         "close": close, "volume": 800.0}
    )  # fmt: skip
    funding = pd.DataFrame({"timestamp": T0 + 8 * HOUR * np.arange(6), "funding_rate": 0.0002})
    return lake_of(tmp_path / "lake", candles, funding=funding)


def worker(lake: Lake, journal: Path, *args: object, **popen) -> subprocess.Popen:
    command = [sys.executable, str(WORKER), str(lake.root), str(journal), *map(str, args)]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)  # fmt: skip


def finish(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def status(lake: Lake, journal: Path, now: int) -> dict:
    return finish(worker(lake, journal, "status", now))[-1]


def stored_orders(journal: Path) -> list[dict]:
    with duckdb.connect(str(journal / "cryptobot.duckdb"), read_only=True) as con:
        cur = con.execute("SELECT * FROM paper_orders")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def assert_consistent(state: dict, orders: list[dict]) -> None:
    """The books balance, every order's fills add up to what it says it filled, and the fills
    add up to the position."""
    b = state["balance"]
    flows = b["deposited"] + b["realized_pnl"] - b["fees"] + b["funding"]
    assert math.isclose(b["wallet"], flows, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(b["total"], flows + b["unrealized_pnl"], rel_tol=1e-9, abs_tol=1e-9)
    fills = state["fills"]
    assert len({f["id"] for f in fills}) == len(fills)
    for order in orders:
        mine = [f["amount"] for f in fills if f["client_order_id"] == order["client_order_id"]]
        assert math.isclose(sum(mine), order["filled"], abs_tol=1e-9), order
    net = sum(f["amount"] * (1 if f["side"] == "buy" else -1) for f in fills)
    held = sum(p["contracts"] * (1 if p["side"] == "long" else -1) for p in state["positions"])
    assert math.isclose(net, held, abs_tol=1e-9)


def test_the_account_survives_a_restart_and_the_fill_comes_when_the_clock_passes(lake, tmp_path):
    """One process places a market order at 01:00 and exits; the next one, started at 02:00
    (bar 1 closed), finds it filled at bar 1's open with its fee, and the position open."""
    journal = tmp_path / "journal"
    placed = finish(worker(lake, journal, "place", T0 + HOUR, "entry-1", "buy", 2.0))[0]
    assert placed["placed"]["status"] == "open"
    before = status(lake, journal, T0 + HOUR)
    assert [o["client_order_id"] for o in before["open"]] == ["entry-1"] and not before["fills"]
    after = status(lake, journal, T0 + 2 * HOUR)
    bar1 = lake.read_candles("sim", SYMBOL, "1h").iloc[1]
    (fill,) = after["fills"]
    assert fill["client_order_id"] == "entry-1" and fill["timestamp"] == T0 + HOUR
    assert fill["price"] == pytest.approx(min(bar1.high, bar1.open * 1.0002))
    assert after["positions"][0]["contracts"] == 2.0 and after["open"] == []
    assert_consistent(after, stored_orders(journal))
    assert status(lake, journal, T0 + 2 * HOUR) == after  # reading again books nothing twice


def test_kill_9_between_an_order_and_its_fill_leaves_a_consistent_account(lake, tmp_path):
    """The process is killed (SIGKILL) after the order was stored and before any bar closed.
    The next process sees the order once, fills it once when its bar has closed, and the
    account balances."""
    journal = tmp_path / "journal"
    proc = worker(lake, journal, "place", T0 + HOUR, "k-1", "buy", 1.5, "--hold")
    assert json.loads(proc.stdout.readline())["placed"]["status"] == "open"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    later = status(lake, journal, T0 + 3 * HOUR)
    orders = stored_orders(journal)
    assert [(o["client_order_id"], o["status"]) for o in orders] == [("k-1", "closed")]
    assert [f["client_order_id"] for f in later["fills"]] == ["k-1"]
    assert_consistent(later, orders)
    again = finish(worker(lake, journal, "place", T0 + 3 * HOUR, "k-1", "buy", 1.5))
    assert again == [{"refused": "DuplicateClientOrderId"}]  # a retry never trades twice


def test_kill_9_at_a_random_moment_of_a_busy_run_never_half_books_a_call(lake, tmp_path):
    """A process places, rests and cancels orders hour after hour and is killed at a random
    moment; whatever it was doing, the stored account is whole: every order's fills, the
    position and the money agree, and a new process carries on from there."""
    journal = tmp_path / "journal"
    proc = worker(lake, journal, "churn", T0 + HOUR, 40)
    seen = 0
    while seen < 4:
        line = json.loads(proc.stdout.readline())
        seen = line.get("i", seen)
    time.sleep(random.uniform(0.0, 0.4))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    state = status(lake, journal, T0 + 46 * HOUR)
    orders = stored_orders(journal)
    assert len(orders) >= 8 and state["fills"]
    assert_consistent(state, orders)


@pytest.mark.slow
def test_two_processes_on_one_account_take_turns(lake, tmp_path):
    """Two processes place 15 orders each at once: all 30 are stored, with 30 distinct ids. Both
    sending the same 15 client order ids: each id is placed once, the other gets a refusal."""
    journal = tmp_path / "journal"
    procs = [worker(lake, journal, "spam", T0 + HOUR, prefix, 15) for prefix in ("a", "b")]
    assert [finish(p)[-1]["placed"] for p in procs] == [15, 15]
    orders = stored_orders(journal)
    assert len(orders) == 30 and len({o["id"] for o in orders}) == 30
    same = [worker(lake, journal, "spam", T0 + HOUR, "same", 15) for _ in range(2)]
    results = [finish(p)[-1] for p in same]
    assert sum(r["placed"] for r in results) == 15
    assert sum(r["duplicates"] for r in results) == 15
    state = status(lake, journal, T0 + HOUR)
    assert len(state["open"]) == 45
    assert_consistent(state, stored_orders(journal))


def test_a_refused_order_changes_nothing_stored(lake, tmp_path):
    journal = tmp_path / "journal"
    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + HOUR), setup=SETUP)
    broker = PaperBroker(prices, journal_dir=journal, setup=SETUP)
    run(broker.create_order(symbol=SYMBOL, type="limit", side="buy", amount=1.0, price=90.0))
    before = stored_orders(journal), _table(journal, "paper_accounts")
    for bad in (dict(amount=float("nan")), dict(amount=1e6), dict(symbol="NOPE/USDT:USDT")):
        with pytest.raises(CryptobotError):
            run(broker.create_order(**(dict(symbol=SYMBOL, type="market", side="buy",
                                            amount=1.0) | bad)))  # fmt: skip
    with pytest.raises(InsufficientMargin):
        run(broker.create_order(symbol=SYMBOL, type="market", side="buy", amount=1e6))
    assert (stored_orders(journal), _table(journal, "paper_accounts")) == before


def test_paper_tables_of_another_version_are_refused_not_misread(lake, tmp_path):
    journal = tmp_path / "journal"
    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + HOUR), setup=SETUP)
    broker = PaperBroker(prices, journal_dir=journal, setup=SETUP)
    run(broker.fetch_balance())
    with duckdb.connect(str(journal / "cryptobot.duckdb")) as con:
        assert con.execute("SELECT version FROM paper_schema").fetchall() == [(1,)]
        con.execute("UPDATE paper_schema SET version = 99")
    with pytest.raises(CryptobotError, match="version 99; this cryptobot reads version 1"):
        run(broker.fetch_balance())


def test_a_bad_account_name_is_refused(lake, tmp_path):
    """(A bad bar from the feed is stepped over: ``test_venue_hostile``.)"""
    prices = ReplayExchange(lake, "sim", ReplayClock(T0 + HOUR), setup=SETUP)
    with pytest.raises(ConfigError, match="paper account"):
        PaperBroker(prices, journal_dir=tmp_path, setup=SETUP, account="../etc")


class ReadOnlyPrices(ReplayExchange):
    """A price venue that fails the test if any trading call reaches it."""

    def __getattribute__(self, name: str):
        trading = {"create_order", "cancel_order", "set_leverage", "set_margin_mode",
                   "fetch_balance", "fetch_positions", "fetch_open_orders", "fetch_order",
                   "fetch_my_trades"}  # fmt: skip
        if name in trading:
            raise AssertionError(f"the paper broker called {name} on the price venue")
        return super().__getattribute__(name)


def test_paper_fills_equal_the_replay_exchanges_on_real_candles_and_never_reach_the_venue(
    tmp_path,
):
    """The same bracket (entry, stop, two take-profits) sent to the paper broker (on 1h candles
    of a price venue) and to the replay exchange (on the same stored candles) at the same clock:
    the same fills, fees, funding and money. The price venue only ever served market data."""
    from tests.conftest import BINANCE, SHARED

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles)")
    from cryptobot.data.importer import read_candle_file

    candles = read_candle_file(path)
    candles = candles[candles.timestamp >= 1_704_067_200_000].reset_index(drop=True)[:400]
    funding = pd.read_parquet(SHARED / "funding" / "binance" / "ETH_USDT_USDT.parquet")
    eth = market("ETH/USDT:USDT", tick_size=0.01)
    lake = lake_of(tmp_path / "lake", candles, markets=[eth], funding=funding,
                   symbol="ETH/USDT:USDT")  # fmt: skip
    start = int(candles.timestamp[30])
    clock = ReplayClock(start)
    setup = SimSetup(costs=Costs(taker=0.0005, slippage_bps=3), timeframe="1h", leverage=5)
    paper = PaperBroker(ReadOnlyPrices(lake, "sim", clock, setup=setup), journal_dir=tmp_path / "j",
                        setup=setup)  # fmt: skip
    replay = ReplayExchange(lake, "sim", clock, setup=setup)
    last = float(candles.close[29])
    bracket = [
        dict(type="market", side="buy", amount=1.0),
        dict(type="stop_market", side="sell", amount=1.0, reduce_only=True,
             trigger_price=round(last * 0.98, 2)),
        dict(type="take_profit", side="sell", amount=0.5, reduce_only=True,
             price=round(last * 1.01, 2)),
        dict(type="take_profit", side="sell", amount=0.5, reduce_only=True,
             price=round(last * 1.03, 2)),
    ]  # fmt: skip
    for venue in (paper, replay):
        for i, request in enumerate(bracket):
            run(venue.create_order(symbol="ETH/USDT:USDT", client_order_id=f"o{i}", **request))
    for _ in range(300):
        clock.advance(HOUR)
        if not run(replay.fetch_positions()) and not run(replay.fetch_open_orders()):
            break
    paper_fills, replay_fills = run(paper.fetch_my_trades()), run(replay.fetch_my_trades())
    assert len(replay_fills) >= 2
    assert paper_fills == replay_fills
    assert run(paper.fetch_balance()) == run(replay.fetch_balance())
    assert run(paper.fetch_balance()).funding != 0.0
    assert run(paper.fetch_open_orders()) == [] and run(paper.fetch_positions()) == []


def test_the_factory_trades_on_paper_unless_replay_and_refuses_live(tmp_path, monkeypatch):
    from cryptobot.core.config import Secrets, load_settings
    from cryptobot.exchange.factory import open_venue

    settings = load_settings(overrides={"data_dir": str(tmp_path)})
    venue = open_venue(settings)
    assert isinstance(venue, PaperBroker) and venue.account == "paper"
    assert venue.setup.costs == Costs.from_settings(settings)
    assert venue.setup.initial_balance == settings.paper.initial_balance
    with pytest.raises(ConfigError, match="mode: live"):
        open_venue(settings, live=True)
    live = load_settings(overrides={"data_dir": str(tmp_path), "mode": "live"})
    with pytest.raises(ConfigError, match="CRYPTOBOT_API_KEY"):
        open_venue(live, Secrets(), live=True)
    with pytest.raises(ConfigError, match="missing: --live"):
        open_venue(live, Secrets(api_key="k", api_secret="s"), live=False)
    lake_of(tmp_path / "lake", pd.DataFrame(
        {"timestamp": T0 + HOUR * np.arange(3), "open": 1.0, "high": 1.0, "low": 1.0,
         "close": 1.0, "volume": 1.0}))  # fmt: skip
    replayed = load_settings(
        overrides={"exchange": "replay", "replay.source_dir": str(tmp_path / "lake"),
                   "replay.source_exchange": "sim", "data_dir": str(tmp_path)}
    )  # fmt: skip
    venue = open_venue(replayed)
    assert isinstance(venue, ReplayExchange) and venue.setup.timeframe is None
    with pytest.raises(TradingError):
        run(venue.create_order(symbol=SYMBOL, type="market", side="buy", amount=1e9))


def _table(journal: Path, name: str) -> list[tuple]:
    with duckdb.connect(str(journal / "cryptobot.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT * FROM {name}").fetchall()


def test_a_broker_on_a_live_venues_prices_waits_in_real_time(lake, tmp_path):
    """The default paper venue prices off a live exchange, whose ``wait`` is a real sleep: a
    trade run then lets go of the journal over each wait, so ``risk equity``, ``size`` and
    ``journal`` get in. The broker took any clock with a ``wait`` for a replayed one and held
    the journal for a whole maker-first run (a hostile pass's find)."""

    class Live(ReplayExchange):
        def waits_in_real_time(self) -> bool:
            return True

    setup = SimSetup(costs=Costs(), timeframe="1h")
    clock = ReplayClock(T0)
    on = {
        "live prices": Live(lake, "sim", clock, setup=setup),
        "replayed prices": ReplayExchange(lake, "sim", clock, setup=setup),
    }
    waits = {name: PaperBroker(prices, journal_dir=tmp_path, setup=setup).waits_in_real_time()
             for name, prices in on.items()}  # fmt: skip
    assert waits == {"live prices": True, "replayed prices": False}
    replayed = PaperBroker(on["replayed prices"], journal_dir=tmp_path, setup=setup, clock=clock)
    assert replayed.waits_in_real_time() is False  # a bare replay clock
