"""The composer (``engine.composer``) decides the sequence of a close once for both desks: the
bars lived first, the account stated, the breaker fed at a moment that matters and a trip's
close-all at the next open, then the signals that may open in symbol order, each sized with
the positions entered before it; a position's end frees its symbol, later after a loss.

A desk here is a small real one (it keeps its positions and answers at once, or awaited as a
venue's would be); the sizing, gates and breakers are the library's own. The fast path and the
venue desk both drive this composer (tests/test_engine_stepwise*.py compare their results), and
neither desk module may feed the breaker, size, or judge the cooldown itself."""

import ast
import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from cryptobot.core.config import load_settings
from cryptobot.engine.composer import NO_PRICE, Composer, Lane, Rules, answer, answer_async
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup

HOUR = 3_600_000
T0 = 1_704_067_200_000
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
SRC = Path(__file__).resolve().parents[1] / "src" / "cryptobot"


class Signals:
    """A symbol's signal arrays: longs at ``at`` with a stop ``distance`` below the fill."""

    def __init__(self, n: int, at: tuple[int, ...], distance: float = 2.0) -> None:
        self.side = np.zeros(n, np.int8)
        self.side[list(at)] = 1
        self.stop_price = np.full(n, np.nan)
        self.stop_distance = np.full(n, distance)
        self.anchor = None


class Desk:
    """Opens what it is sent at the price given, holds it until told to close; records the
    composer's calls in the order they came."""

    def __init__(self, composer: Composer, *, equity: float = 10_000.0,
                 prices: dict[int, float] | None = None,
                 refuse: str | None = None) -> None:  # fmt: skip
        self.c, self.equity, self.refuse = composer, equity, refuse
        self.prices = prices or {}
        self.calls: list[tuple] = []
        self.open: set[int] = set()

    def live_to(self, t):
        self.calls.append(("live_to", t))

    def account_at(self, t):
        self.calls.append(("account_at", t))
        return int(self.c.stamps[t]) + HOUR, self.equity

    def close_all_at(self, at):
        self.calls.append(("close_all_at", at))
        for i in sorted(self.open):
            self.c.released(i, signal_bar=at - 1, net=-1.0, exit_bar=at)
        self.open.clear()

    def price_at_send(self, i, t):
        self.calls.append(("price_at_send", i, t))
        return self.prices.get(i, 100.0)

    def send(self, i, t, order, price):
        self.calls.append(("send", i, t))
        if self.refuse is not None:
            return self.refuse
        qty = float(order.figures["qty"])
        self.c.entered(i, side=1, notional=qty * price, leverage=float(order.figures["leverage"]))
        self.open.add(i)
        return None


class AwaitedDesk(Desk):
    """The same desk answering as a venue does: every call awaited."""

    async def _later(self, name, *args):
        await asyncio.sleep(0)
        return getattr(Desk, name)(self, *args)

    def __getattribute__(self, name):
        if name in ("live_to", "account_at", "close_all_at", "price_at_send", "send"):
            return lambda *args: self._later(name, *args)
        return object.__getattribute__(self, name)


def composer(signals, *, n=48, end=None, breakers=True, cooldown=0):
    """$10 of risk per trade on a 10,000 account, the shipped gates and breakers."""
    risk = load_settings().risk.overriding(sizing={"method": "fixed_usd", "risk_usd": 10.0})
    markets = {s: flag_market(s, MarketFlags(max_leverage=20, step_size=0.01)) for s in SYMBOLS}
    rules = Rules(exchange="binanceusdm", strategy="momentum", risk=risk, markets=markets,
                  brackets_of=brackets_resolver("binance", 20, None), use_breakers=breakers,
                  cooldown_bars=cooldown)  # fmt: skip
    lanes = [Lane(s, "1h", sg) for s, sg in zip(SYMBOLS, signals, strict=True)]
    sizing = [SizingSetup(risk, "binance", "cb", 0.0)] * len(lanes)
    stamps = T0 + HOUR * np.arange(n, dtype=np.int64)
    return Composer(rules=rules, lanes=lanes, sizing=sizing, stamps=stamps, start=0,
                    end=n if end is None else end)  # fmt: skip


def test_a_close_lives_the_bars_then_states_the_account_then_sends_in_symbol_order():
    c = composer([Signals(48, (5,)), Signals(48, (5,))])
    desk = Desk(c)
    answer(c.close(5), desk)
    assert desk.calls == [("live_to", 5), ("account_at", 5), ("price_at_send", 0, 5),
                          ("send", 0, 5), ("price_at_send", 1, 5), ("send", 1, 5)]  # fmt: skip
    # the second was sized seeing the first: both held, in the order they entered
    assert [p.symbol for p in c.positions()] == list(SYMBOLS)
    assert not c.refused


def test_a_held_symbol_takes_no_signal_and_a_loss_cools_it_down():
    c = composer([Signals(48, (5, 6, 9, 12)), Signals(48, ())], breakers=False, cooldown=3)
    desk = Desk(c)
    answer(c.close(5), desk)
    desk.calls.clear()
    answer(c.close(6), desk)  # still held: only the bar is lived
    assert desk.calls == [("live_to", 6)]
    c.released(0, signal_bar=7, net=-5.0, exit_bar=7)  # a loss in bar 7: bars 7..9 cool down
    desk.open.clear()
    desk.calls.clear()
    answer(c.close(9), desk)
    assert desk.calls == [("live_to", 9)]
    answer(c.close(12), desk)
    assert ("send", 0, 12) in desk.calls and c.positions()[0].symbol == SYMBOLS[0]


def test_a_closes_without_signal_or_hour_asks_nothing_more_than_the_bars():
    """Breakers off and no signal: no account, no breaker; the moments are the signal bars and
    the window's last close."""
    c = composer([Signals(48, (5,)), Signals(48, (7,))], breakers=False, end=40)
    desk = Desk(c)
    answer(c.close(6), desk)
    assert desk.calls == [("live_to", 6)]
    assert list(c.moments()) == [5, 7, 39]


def test_the_window_ends_with_every_position_closed_at_the_next_open_and_no_entry():
    c = composer([Signals(48, (38, 39)), Signals(48, ())], end=40)
    desk = Desk(c)
    answer(c.close(38), desk)
    desk.calls.clear()
    answer(c.close(39), desk)  # the last close: its signal has no open to enter at
    assert desk.calls == [("live_to", 39), ("close_all_at", 40)]
    assert not c.positions()


def test_a_trip_closes_everything_at_the_next_open_before_any_signal_is_sized():
    """A daily loss beyond the limit at a signal close: the trip is recorded once, every
    position closes at the next open, a free symbol's signal of that close is sized after the
    trip and refused by the breaker, and the closed symbol's (held when the close began) is
    not considered at all."""
    c = composer([Signals(48, (3, 5)), Signals(48, (5,))])
    desk = Desk(c)
    answer(c.close(3), desk)
    assert len(c.positions()) == 1
    desk.equity = 9_000.0  # -10 % on the day
    desk.calls.clear()
    answer(c.close(5), desk)
    assert desk.calls == [("live_to", 5), ("account_at", 5), ("close_all_at", 6),
                          ("price_at_send", 1, 5)]  # fmt: skip
    assert [now for now, _ in c.trips] == [T0 + 6 * HOUR]
    assert not c.positions() and c.refused == {"circuit_breaker": 1}


def test_a_desk_that_refuses_or_quotes_no_price_is_counted_and_its_symbol_stays_free():
    c = composer([Signals(48, (5, 6)), Signals(48, (5,))], breakers=False)
    desk = Desk(c, prices={1: math.nan}, refuse="venue: margin is insufficient")
    answer(c.close(5), desk)
    assert c.refused == {"venue: margin is insufficient": 1, NO_PRICE: 1}
    assert ("send", 1, 5) not in desk.calls and not c.positions()
    desk.refuse = None
    answer(c.close(6), desk)
    assert [p.symbol for p in c.positions()] == [SYMBOLS[0]]


@pytest.mark.parametrize("equity", [10_000.0, 9_000.0])
def test_the_sequence_is_the_same_answered_at_once_or_awaited(equity):
    """One sequence under both desks: the same calls, the same decisions."""
    runs = []
    for kind in (Desk, AwaitedDesk):
        c = composer([Signals(48, (3, 5, 9)), Signals(48, (3, 7))])
        desk = kind(c)
        for t in range(12):
            if t == 4:
                desk.equity = equity
            if kind is Desk:
                answer(c.close(t), desk)
            else:
                asyncio.run(answer_async(c.close(t), desk))
        runs.append((desk.calls, dict(c.refused), c.trips, c.positions()))
    assert runs[0] == runs[1]


DECISIONS = {"size_orders", "allowed_after", "manual_reset", "AccountState", "feed"}


@pytest.mark.parametrize("desk", ["backtest/portfolio.py", "backtest/stepwise.py"])
def test_no_desk_decides_what_the_composer_decides(desk):
    """The desks answer the composer's calls; neither sizes, builds the gates' account, judges
    the cooldown or feeds the breaker (``breakers.step``) itself."""
    tree = ast.parse((SRC / desk).read_text())
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
            if isinstance(f, ast.Attribute) and f.attr == "step":
                called.add(f"{ast.unparse(f.value)}.step")
    assert not called & (DECISIONS | {"breakers.step"}), sorted(called & DECISIONS)
