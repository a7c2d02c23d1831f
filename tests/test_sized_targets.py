"""A sized order's targets are what management does for its strategy: the profile's ladder
priced from the entry and the stop, each rung's quantity down to the step. The backtest's
kernel, given the same entry, stop and quantity, fills its take-profits at exactly those
prices and quantities (the trade issue places them as reduce-only orders)."""

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units
from cryptobot.core.config import load_settings
from cryptobot.core.order import Intent
from cryptobot.manage.policy import Policy
from cryptobot.risk import gates
from cryptobot.risk.context import brackets_resolver
from cryptobot.risk.orders import SizingSetup, size_orders
from tests.test_risk_sizing import market

SYM = "ETH/USDT:USDT"
HOUR = 3_600_000
T0 = 1_735_689_600_000


def _sized(strategy: str, side: str, entry: float, stop: float, targets=()):
    settings = load_settings(None, {}, env={})
    risk = settings.risk.model_copy(
        update={"sizing": settings.risk.sizing.model_copy(
            update={"method": "fixed_usd", "risk_usd": 20.0, "include_fees": False})}
    )  # fmt: skip
    setup = SizingSetup(risk, "binance", "cb", 0.0, manage=settings.manage)
    intent = Intent("binanceusdm", SYM, side, entry, stop, tuple(targets), strategy=strategy,
                    signal_id="s1")  # fmt: skip
    (order,) = size_orders([intent], {SYM: market(SYM, taker=0.0)},
                           brackets_resolver("binance", 20, None),
                           gates.AccountState(equity=100_000.0), setup)  # fmt: skip
    assert order.status == "sized", order.reason
    return order, settings


def _kernel_targets(strategy: str, side: str, entry: float, stop: float, qty: float, settings):
    """The kernel's target fills (price, qty) for an entry at ``entry`` (bar 1's open) and a
    market running 4R in the trade's favour over the following bars."""
    sign = 1 if side == "long" else -1
    r = abs(entry - stop)
    path = [entry, entry, *(entry + sign * r * x for x in (0.5, 1.5, 2.5, 3.5, 4.0))]
    n = len(path)
    close = np.array(path, dtype=float)
    frame = pd.DataFrame({"timestamp": T0 + HOUR * np.arange(n), "open": close,
                          "high": close + (r * 0.6 if sign > 0 else 0.0),
                          "low": close - (r * 0.6 if sign < 0 else 0.0),
                          "close": close, "volume": 1e9})  # fmt: skip
    signals = Signals.of(np.r_[sign, np.zeros(n - 1)].astype(np.int8),
                         stop_price=np.full(n, stop))  # fmt: skip
    rules = settings.manage.for_strategy(strategy).model_copy(
        update={"breakeven_after_r": 0.0, "trail_rest": False, "time_stop_minutes": 0,
                "exit_on": []}
    )  # fmt: skip
    policy = Policy.from_settings(rules, 60.0)
    out = run_units(
        symbol_bars(SYM, "1h", frame), signals, qty=qty, policy=policy, costs=Costs(), step=0.001
    )
    fills = out.fills_frame()
    hit = fills[fills.kind == "target"]
    return hit.price.tolist(), hit.qty.tolist()


@pytest.mark.parametrize("strategy", ["bos_fvg_fib", "momentum", "breakout", "manual"])
@pytest.mark.parametrize("side", ["long", "short"])
def test_the_sized_targets_are_the_backtests_take_profits(strategy, side):
    entry = 2000.0
    stop = 1980.0 if side == "long" else 2020.0
    order, settings = _sized(strategy, side, entry, stop, targets=())
    f, i = order.figures, order.intent
    prices, qtys = _kernel_targets(strategy, side, entry, stop, f["qty"], settings)
    ladder = settings.manage.for_strategy(strategy).take_profit_ladder
    assert len(i.targets) == len(ladder) == len(prices)
    assert list(i.targets) == pytest.approx(prices)
    assert f["target_qty"] == pytest.approx(qtys)
    assert f["target_r"] == [s.r for s in sorted(ladder, key=lambda s: s.r)]


def test_the_strategys_own_targets_are_kept_apart():
    order, _ = _sized("bos_fvg_fib", "short", 3500.0, 3560.0, targets=(3440.0, 3380.0))
    assert order.intent.setup_targets == (3440.0, 3380.0)
    assert order.intent.targets == pytest.approx((3440.0, 3380.0, 3320.0))
    data = order.to_json()
    assert data["schema"] == "sized_order/2" and data["setup_targets"] == [3440.0, 3380.0]


def test_a_profile_without_a_ladder_gives_no_targets():
    settings = load_settings(None, {"manage.take_profit_ladder": []}, env={})
    risk = settings.risk
    setup = SizingSetup(risk, "binance", "cb", 0.0, manage=settings.manage)
    intent = Intent("binanceusdm", SYM, "long", 100.0, 95.0, (110.0,), strategy="manual")
    (order,) = size_orders([intent], {SYM: market(SYM)}, brackets_resolver("binance", 20, None),
                           gates.AccountState(equity=10_000.0), setup)  # fmt: skip
    assert order.intent.targets == () and order.figures["target_qty"] == []
    assert order.intent.setup_targets == (110.0,)
