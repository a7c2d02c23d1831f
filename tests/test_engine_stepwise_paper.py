"""The composer over the paper broker (its account in a DuckDB journal) fed the replayed bars as
its price feed, under the caller's clock: the same trades, fills, fees and equity as over the
replay exchange (and so as the fast path: tests/test_engine_stepwise*.py), on real candles:
ema_cross on ETH 1h (160 bars) with the ladder, breakeven, the trail and scale-ins in play;
momentum on ETH 1h (targets, the ATR trail, stops and a daily breaker trip) and bos_fvg_fib on
ETH 5m/15m (its structural stop, the ladder, breakeven) in short windows where those rules fire
(the detectors read the whole history; only the trading window is short). Each close's venue
calls run in one ``PaperBroker.batch`` (one journal session per bar, not one per call), the
journal held open for the run (``PaperBroker.held``) or opened for each session's load and
store; the speed of each is printed (``-s``), never asserted."""

import asyncio
import time
from contextlib import nullcontext
from functools import partial

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.backtest.stepwise import drive, replayed, run_stepwise
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.liquidation import venue_of
from cryptobot.journal import paper as journal
from tests.test_engine_stepwise import START, SYMBOL, lake  # noqa: F401
from tests.test_engine_stepwise_scale_in import SCALE_IN
from tests.test_engine_stepwise_strategies import real_lake

# ema_cross's first signal comes some 45 bars into the lake: its runs trade from bar 40 on
FIRST, BARS = 40, 200


def paper_drive(bars, signals, setup, start, end, *, lake, root, held=True):  # noqa: F811
    """``backtest.stepwise.drive`` with the paper broker as the venue: its prices and feed are a
    replay exchange of ``lake`` on the same clock; its account lives in ``root``'s journal,
    held open for the run (``held``) or opened by each session."""
    clock = ReplayClock(int(bars[0].timestamps[start]))
    cap = setup.risk.for_order(strategy=setup.strategy).max_leverage
    sim = SimSetup(costs=setup.costs, initial_balance=setup.initial_equity,
                   timeframe=bars[0].timeframe, venue=venue_of(setup.exchange),
                   max_leverage=cap)  # fmt: skip
    prices = ReplayExchange(lake, setup.exchange, clock, setup=sim)
    broker = PaperBroker(prices, journal_dir=root, setup=sim, clock=prices, feed=prices.bars)
    with broker.held() if held else nullcontext():
        return asyncio.run(run_stepwise(venue=broker, pace=replayed(clock), bars=bars,
                                        signals=signals, setup=setup, start=start, end=end,
                                        cycle=broker.batch))  # fmt: skip


def _request(settings, bars: int, *, first: int = FIRST):
    """ema_cross by risk with scale-ins over the lake's bars ``first`` to ``bars`` (the
    detector reads the history before); no made-up funding."""
    backtest = settings.backtest.model_copy(update={"funding_fallback_rate": 0.0})
    manage = settings.manage.overriding(scale_in=SCALE_IN)
    settings = settings.model_copy(update={"backtest": backtest, "manage": manage})
    req = runner.Request(symbols=[SYMBOL], exchange="sim", timeframe="1h", strategy="ema_cross",
                         risk_usd=3.0, params={"stop_atr": 2.0},
                         start=START + first * 3_600_000, end=START + bars * 3_600_000)  # fmt: skip
    return req, settings


def _paper_run(req, data, settings, *, lake, root, held: bool):  # noqa: F811
    """The run over the paper broker, its speed printed."""
    began = time.perf_counter()
    run = runner.run(req, data, settings,
                     drive=partial(paper_drive, lake=lake, root=root, held=held))  # fmt: skip
    took = time.perf_counter() - began
    bars = len(run.equity)
    how = "held open" if held else "opened per session"
    print(f"\npaper broker, journal {how}: {bars} bars in {took:.2f} s ({bars / took:,.1f} bars/s)")
    return run


def _assert_same(paper, replay, root) -> None:
    """The paper run is the replay run, and its account is in the journal as a restart would
    find it, with the ids the composer sent (the live path's for each sized order and leg)."""
    pd.testing.assert_frame_equal(paper.trades, replay.trades)
    pd.testing.assert_frame_equal(paper.fills, replay.fills)
    pd.testing.assert_frame_equal(paper.equity, replay.equity)
    assert paper.notes == replay.notes and paper.breaker_trips == replay.breaker_trips
    stored = journal.fills(root, "paper", symbol=SYMBOL, since=None)
    assert len(stored) == len(paper.fills)
    assert sorted(f.client_order_id for f in stored) == sorted(paper.fills.client_order_id)
    np.testing.assert_allclose([f.fee for f in stored], paper.fills.fee, rtol=1e-12)
    ledger = journal.load(root, "paper").ledger
    books = ledger.deposited + ledger.realized_pnl - ledger.fees + ledger.funding
    assert np.isclose(ledger.wallet, books, rtol=1e-12)


@pytest.mark.timeout(600)  # a journal session per bar: slow on a loaded machine, never timed
def test_the_paper_broker_as_the_venue_equals_the_replay_exchange(lake, settings, tmp_path):  # noqa: F811
    req, settings = _request(settings, BARS)
    data = runner.load(lake, req, settings)
    replay = runner.run(req, data, settings, drive=partial(drive, lake=lake))
    paper = _paper_run(req, data, settings, lake=lake, root=tmp_path, held=True)
    assert len(replay.trades) >= 10 and replay.trades.adds.sum() >= 3
    assert {"scale_in", "target", "trail", "breakeven"} <= set(replay.fills.kind)
    _assert_same(paper, replay, tmp_path)
    assert paper.fills.client_order_id.str.contains("-add1").any()


@pytest.mark.timeout(600)
def test_a_journal_opened_by_each_session_books_the_same(lake, settings, tmp_path):  # noqa: F811
    """Without ``held`` (a broker beside other processes: the journal opened for each cycle's
    load and store), over bars 40 to 100: the same run, and the same stored account."""
    req, settings = _request(settings, 100)
    data = runner.load(lake, req, settings)
    replay = runner.run(req, data, settings, drive=partial(drive, lake=lake))
    held = _paper_run(req, data, settings, lake=lake, root=tmp_path / "held", held=True)
    opened = _paper_run(req, data, settings, lake=lake, root=tmp_path / "opened", held=False)
    assert len(replay.trades) >= 3
    for paper in (held, opened):
        pd.testing.assert_frame_equal(paper.fills, replay.fills)
        pd.testing.assert_frame_equal(paper.equity, replay.equity)
    assert journal.load(tmp_path / "held", "paper") == journal.load(tmp_path / "opened", "paper")


HOUR, M5 = 3_600_000, 300_000
BOS_START = 1_704_067_200_000  # 2024-01-01: ETH 5m bars from here, 15m from 60 days earlier


@pytest.fixture(scope="module")
def bos_lake(tmp_path_factory):
    """ETH 5m bars of 2024 up to the last window below, its 15m context and funding."""
    return real_lake(tmp_path_factory.mktemp("bos") / "lake", symbols=[SYMBOL],
                     timeframes=["5m", "15m"], start=BOS_START, bars=20_600)  # fmt: skip


# (strategy, window as bars from its lake's start, daily loss limit in $, what fires there)
WINDOWS = {
    "momentum-targets-trail": ("momentum", HOUR, (10_420, 10_445), None, {"target", "trail"}),
    "momentum-stops-breaker": ("momentum", HOUR, (9_230, 9_340), 2.0, {"stop"}),
    "bos_fvg_fib-ladder-stop": ("bos_fvg_fib", M5, (20_400, 20_550), None, {"target", "stop"}),
    "bos_fvg_fib-breakeven": ("bos_fvg_fib", M5, (18_690, 18_712), None, {"target", "breakeven"}),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", list(WINDOWS))
def test_the_scan_strategies_on_paper_equal_the_replay_exchange(case, lake, bos_lake, settings,  # noqa: F811
                                                               tmp_path):  # fmt: skip
    """momentum and bos_fvg_fib by risk, each under its own management profile, over a short
    window where its rules fire (asserted: a window that stops firing proves nothing)."""
    strategy, bar_ms, (first, last), daily_loss, fired = WINDOWS[case]
    here = lake if strategy == "momentum" else bos_lake
    start = START if strategy == "momentum" else BOS_START
    backtest = settings.backtest.model_copy(update={"funding_fallback_rate": 0.0})
    risk = settings.risk
    if daily_loss is not None:
        breakers = risk.breakers.model_copy(update={"daily_loss_usd": daily_loss})
        risk = risk.model_copy(update={"breakers": breakers})
    settings = settings.model_copy(update={"backtest": backtest, "risk": risk})
    req = runner.Request(symbols=[SYMBOL], exchange="sim", strategy=strategy, risk_usd=3.0,
                         timeframe="1h" if strategy == "momentum" else None,
                         start=start + first * bar_ms, end=start + last * bar_ms)  # fmt: skip
    data = runner.load(here, req, settings)
    replay = runner.run(req, data, settings, drive=partial(drive, lake=here))
    paper = _paper_run(req, data, settings, lake=here, root=tmp_path, held=True)
    assert len(replay.trades) >= 1 and fired <= set(replay.fills.kind), set(replay.fills.kind)
    if daily_loss is not None:
        assert len(replay.breaker_trips) >= 1
    _assert_same(paper, replay, tmp_path)
