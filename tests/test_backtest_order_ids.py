"""A backtest's client order ids are the live path's: each trade carries the id ``size`` gives
the setup behind its signal (``scan | size``), each fill the id of the order leg it filled, on
real ETH/USDT:USDT candles of 2024-2025 (momentum: its setups are anchored before their bar,
so an id made from the signal's own bar would differ)."""

from dataclasses import replace
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.backtest import runner
from cryptobot.core.config import load_settings
from cryptobot.core.order import Intent
from cryptobot.data.lake import Lake
from cryptobot.risk.orders import RESENT_LEGS, fill_order_ids, leg_of_order, leg_order_id
from cryptobot.strategies.registry import lookup
from cryptobot.strategies.scanner import detect_all
from tests.venues import market

SYMBOL = "ETH/USDT:USDT"
HOUR = 3_600_000
START = 1_704_067_200_000  # 2024-01-01
INTENT = Intent("binanceusdm", SYMBOL, "long", 3_500.0, 3_400.0)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    from cryptobot.data.importer import read_candle_file
    from tests.conftest import BINANCE

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles)")
    candles = read_candle_file(path)
    lake = Lake(tmp_path_factory.mktemp("ids") / "lake")  # 4h: built from these 1h
    lake.write_candles("sim", SYMBOL, "1h", candles[candles.timestamp >= START])
    lake.write_markets("sim", [market(SYMBOL, tick_size=None)])
    return lake


def test_trades_and_fills_carry_the_ids_size_gives_the_same_setups(lake: Lake):
    settings = load_settings(None, {}, env={})
    req = runner.Request(strategy="momentum", symbols=[SYMBOL], exchange="sim", risk_usd=5.0,
                         breakers=False)  # fmt: skip
    data = runner.load(lake, req, settings)
    result = runner.run(req, data, settings)
    trades, fills = result.trades, result.fills
    assert len(trades) >= 5
    params = runner.strategy_params(req, settings)
    setups = detect_all("sim", [SYMBOL], data.frames, [(lookup("momentum"), params)],
                        benchmark=settings.scan.benchmark)  # fmt: skip
    prefix = settings.execution.client_order_prefix
    live = {
        (s.ts, s.side): Intent.from_setup(s).client_order_id(prefix)
        for s in setups
        if s.status == "triggered" and s.timeframe == data.timeframe
    }
    anchored_before = 0
    for t in trades.itertuples():
        signal_ts = t.entry_time - HOUR  # the signal's bar; its market entry at the next open
        assert t.client_order_id == live[signal_ts, t.side]
        anchored_before += any(
            s.ts == signal_ts and s.anchor_ts != s.ts and s.side == t.side for s in setups
        )
    assert anchored_before > 0  # the anchor matters: the signal's own bar would not do
    assert trades.client_order_id.is_unique
    # each fill: the entry is the sized order; its exits are its legs
    by_trade = dict(enumerate(result.trades.sort_values("entry_time").client_order_id))
    assert fills.client_order_id.notna().all()
    for f in fills.itertuples():
        cid = by_trade.get(f.trade)
        assert cid is not None and f.client_order_id.startswith(cid)
        if f.kind == "entry":
            assert f.client_order_id == cid
        elif f.kind in ("stop", "breakeven", "trail"):
            assert f.client_order_id == leg_order_id(cid, "sl")
    assert (fills.client_order_id.str.len() <= 36).all()  # every venue's limit
    again = runner.run(req, data, settings)
    assert again.fills.client_order_id.tolist() == fills.client_order_id.tolist()


def test_the_stepwise_composer_records_the_same_ids(lake: Lake):
    from cryptobot.backtest.stepwise import drive

    settings = load_settings(None, {}, env={})
    backtest = settings.backtest.model_copy(update={"funding_fallback_rate": 0.0})
    settings = settings.model_copy(update={"backtest": backtest})
    req = runner.Request(strategy="momentum", symbols=[SYMBOL], exchange="sim", risk_usd=5.0,
                         breakers=False, end=START + 4000 * HOUR)  # fmt: skip
    data = runner.load(lake, req, settings)
    fast = runner.run(req, data, settings)
    step = runner.run(req, data, settings, drive=partial(drive, lake=lake))
    assert len(fast.trades) >= 2
    assert step.trades.client_order_id.tolist() == fast.trades.client_order_id.tolist()
    # its fills carry the ids of the venue's orders: each one of its trade's legs, a stop that
    # moved before it filled under that leg's next number (tests/test_engine_stepwise.py
    # compares each fill's leg with the fast path's)
    by_trade = dict(enumerate(step.trades.sort_values("entry_time").client_order_id))
    legs = set()
    for f in step.fills.itertuples():
        cid = by_trade[f.trade]
        assert f.client_order_id.startswith(cid) and len(f.client_order_id) <= 36
        legs.add(leg_of_order(f.client_order_id)[len(cid) :])
        if f.kind == "entry":
            assert f.client_order_id == cid
    assert {"", "-sl", "-tp1"} <= legs <= {"", "-sl", "-close", *(f"-tp{n}" for n in range(1, 5))}
    assert any(leg_of_order(i) != i for i in step.fills.client_order_id)  # a stop sent again


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.text("abclos_-9", min_size=1, max_size=4),
    signal=st.text(min_size=1, max_size=20),
    leg=st.sampled_from(RESENT_LEGS),
    sent=st.integers(1, 99),
    rung=st.sampled_from(["tp1", "tp4", "add1", "add12", "out3"]),
)
def test_a_leg_sent_again_is_numbered_and_still_that_leg(prefix, signal, leg, sent, rung):
    """A venue refuses an id it has seen, so the stop and a close are numbered from their second
    order on (the live path's ids: -sl2, -sl3..): each a new id, each naming the leg its fills
    belong to. A rung of the ladder or of the scale-ins is one order: its number is the rung's."""
    cid = replace(INTENT, signal_id=signal).client_order_id(prefix)
    first = leg_order_id(cid, leg)
    again = leg_order_id(cid, leg, sent=sent)
    assert again == (first if sent == 1 else f"{first}{sent}")
    assert leg_of_order(again) == first and leg_of_order(cid) == cid
    assert leg_of_order(leg_order_id(cid, rung)) == leg_order_id(cid, rung)
    with pytest.raises(ValueError, match="is sent once"):
        leg_order_id(cid, rung, sent=2)
    if len(prefix) <= 2:
        assert len(again) <= 36


def test_legs_are_numbered_per_trade_in_ladder_order():
    ids = fill_order_ids(
        order_ids=["cb-a", "cb-b"],
        trades=[0, 0, 0, 1, 1, 0, 1],
        kinds=["entry", "target", "target", "entry", "target", "trail", "liquidation"],
    )
    assert ids == ["cb-a", "cb-a-tp1", "cb-a-tp2", "cb-b", "cb-b-tp1", "cb-a-sl", None]
