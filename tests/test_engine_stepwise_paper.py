"""The composer over the paper broker (its account in a DuckDB journal) fed the replayed bars as
its price feed, under the caller's clock: the same trades, fills, fees and equity as over the
replay exchange (and so as the fast path: tests/test_engine_stepwise.py), on 300 real ETH 1h
bars with the ladder, breakeven, the trail and scale-ins in play. Each close's venue calls run
in one ``PaperBroker.batch`` (one journal session per bar, not one per call), the journal held
open for the run (``PaperBroker.held``) or opened for each session's load and store; the speed
of each is printed (``-s``), never asserted."""

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

BARS = 300


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


def _request(settings, bars: int):
    """ema_cross by risk with scale-ins over the lake's first ``bars`` bars; no made-up funding."""
    backtest = settings.backtest.model_copy(update={"funding_fallback_rate": 0.0})
    manage = settings.manage.overriding(scale_in=SCALE_IN)
    settings = settings.model_copy(update={"backtest": backtest, "manage": manage})
    req = runner.Request(symbols=[SYMBOL], exchange="sim", timeframe="1h", strategy="ema_cross",
                         risk_usd=3.0, params={"stop_atr": 2.0},
                         end=START + bars * 3_600_000)  # fmt: skip
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


@pytest.mark.timeout(600)  # a journal session per bar: slow on a loaded machine, never timed
def test_the_paper_broker_as_the_venue_equals_the_replay_exchange(lake, settings, tmp_path):  # noqa: F811
    req, settings = _request(settings, BARS)
    data = runner.load(lake, req, settings)
    replay = runner.run(req, data, settings, drive=partial(drive, lake=lake))
    paper = _paper_run(req, data, settings, lake=lake, root=tmp_path, held=True)
    assert len(replay.trades) >= 10 and replay.trades.adds.sum() >= 3
    assert {"scale_in", "target", "trail"} <= set(replay.fills.kind)
    pd.testing.assert_frame_equal(paper.trades, replay.trades)
    pd.testing.assert_frame_equal(paper.fills, replay.fills)
    pd.testing.assert_frame_equal(paper.equity, replay.equity)
    assert paper.notes == replay.notes
    # the account is in the journal, as a restart would find it
    stored = journal.fills(tmp_path, "paper", symbol=SYMBOL, since=None)
    assert len(stored) == len(paper.fills)
    # with the ids the composer sent: the live path's for each sized order and leg
    assert sorted(f.client_order_id for f in stored) == sorted(paper.fills.client_order_id)
    assert paper.fills.client_order_id.str.contains("-add1").any()
    np.testing.assert_allclose([f.fee for f in stored], paper.fills.fee, rtol=1e-12)
    ledger = journal.load(tmp_path, "paper").ledger
    books = ledger.deposited + ledger.realized_pnl - ledger.fees + ledger.funding
    assert np.isclose(ledger.wallet, books, rtol=1e-12)


@pytest.mark.timeout(600)
def test_a_journal_opened_by_each_session_books_the_same(lake, settings, tmp_path):  # noqa: F811
    """Without ``held`` (a broker beside other processes: the journal opened for each cycle's
    load and store), over the first 100 bars: the same run, and the same stored account."""
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
