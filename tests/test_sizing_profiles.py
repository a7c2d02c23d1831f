"""Per-strategy risk profiles (``risk.profiles.<strategy>``): plan 3's default sizing - 10 % of
the balance as isolated margin at 20x BTC / 40x ETH - worked by hand, the gates it meets, the
stop against the liquidation price, one lookup for ``size``, the backtest and the composer,
flags beating profiles, and bad profiles refused like every setting.

The worked example (Binance's formula, ``risk/liquidation.py``; a market without a bracket
table gets one bracket at mmr = 0.5 / max leverage, here 0.5 / 125 = 0.004 and 0.5 / 100 =
0.005): balance 1000 USDT.

* BTC at 60000, step 0.001: margin 10 % = 100, x 20 = 2000 notional = 0.0333.. BTC, rounded
  down to 0.033 (1980 notional, 99 margin); liquidation of the isolated long
  (99 - 0.033 x 60000) / (0.033 x 0.004 - 0.033) = 57228.92, 4.62 % away.
* ETH at 3000, step 0.001: 100 x 40 = 4000 notional = 1.3333.. ETH, rounded down to 1.333
  (3999 notional, 99.975 margin); liquidation (99.975 - 3999) / (1.333 x 0.005 - 1.333) =
  2939.70, 2.01 % away: a stop must sit above 2939.70 x 1.005 (the 0.5 % buffer) = 2954.40.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, trades_frame
from cryptobot.backtest.portfolio import PortfolioSetup, run_portfolio
from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.core.order import Intent
from cryptobot.manage.policy import Policy
from cryptobot.risk import gates
from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
from cryptobot.risk.orders import SizingSetup, size_orders
from tests.conftest import Cli

DEFAULTS = load_settings(None, {}, env={})
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
MARKETS = {
    BTC: flag_market(BTC, MarketFlags(max_leverage=125, step_size=0.001)),
    ETH: flag_market(ETH, MarketFlags(max_leverage=100, step_size=0.001)),
}
BRACKETS = brackets_resolver("binance", 20, None)
MARKET_FLAGS = {BTC: ("--max-leverage", "125"), ETH: ("--max-leverage", "100")}


def sized(*intents: Intent, risk=DEFAULTS.risk, equity: float = 1000.0):
    setup = SizingSetup(risk, "binance", "cb", taker_fee=0.0005)
    return size_orders(intents, MARKETS, BRACKETS, gates.AccountState(equity=equity), setup)


def intent(symbol: str, entry: float, stop: float | None, strategy: str = "cot_crowd") -> Intent:
    side = "long" if stop is None or stop < entry else "short"
    return Intent("binanceusdm", symbol, side, entry, stop, strategy=strategy)


def binance_isolated_liquidation(*, qty: float, entry: float, margin: float, mmr: float) -> float:
    """The long's liquidation price by Binance's formula, worked independently of the code."""
    return (margin - qty * entry) / (qty * mmr - qty)


def test_plan_3_btc_worked_example():
    (order,) = sized(intent(BTC, 60000, 58000))
    f = order.figures
    assert order.status == "sized", order.reason
    assert (f["method"], f["margin_mode"], f["leverage"]) == ("margin_pct", "isolated", 20)
    assert f["qty_raw"] == pytest.approx(2000 / 60000)
    assert f["qty"] == 0.033  # rounded down to the step, never up
    assert f["notional"] == pytest.approx(1980) and f["margin"] == pytest.approx(99)
    liq = binance_isolated_liquidation(qty=0.033, entry=60000, margin=99, mmr=0.004)
    assert liq == pytest.approx(57228.92, abs=0.01)
    assert f["liquidation_price"] == pytest.approx(liq)
    assert f["liquidation_distance_pct"] == pytest.approx(4.618, abs=0.001)
    # the loss at the stop: 0.033 x 2000 + fees 0.0005 x 0.033 x (60000 + 58000)
    assert f["risk_usd"] == pytest.approx(66 + 1.947)
    assert order.steps[0] == "risk.profiles.cot_crowd: margin_pct, isolated, leverage 20x, cap 40x"


def test_plan_3_eth_at_40x_and_its_stop_against_liquidation():
    (order,) = sized(intent(ETH, 3000, 2960))
    f = order.figures
    assert order.status == "sized", order.reason
    assert (f["leverage"], f["qty"]) == (40, 1.333)
    assert f["notional"] == pytest.approx(3999) and f["margin"] == pytest.approx(99.975)
    liq = binance_isolated_liquidation(qty=1.333, entry=3000, margin=99.975, mmr=0.005)
    assert liq == pytest.approx(2939.70, abs=0.01)
    assert f["liquidation_price"] == pytest.approx(liq)
    # within the 0.5 % buffer above liquidation, and beyond it: refused, with the figures
    for stop, where in ((2950, "inside the buffer before liquidation at"),
                        (2930, "beyond the liquidation price")):  # fmt: skip
        (refused,) = sized(intent(ETH, 3000, stop))
        assert refused.status == "refused"
        assert refused.reason.startswith(f"the stop {stop:,} is {where} 2,939.70")
        assert refused.figures["liquidation_price"] == pytest.approx(liq)  # still shown


def test_the_gates_the_plan_meets_and_why_the_profile_raises_them():
    """Plan 3's exposure is what it is: 10 % x 20x = 200 % of the balance in BTC. Measured as
    notional, as every other order is, the base 100 % per-symbol (and 150 % correlated) caps
    refuse it, the 1 % risk-per-trade cap refuses a stop 3.3 % away at 20x, and the base 20x
    cap refuses ETH at 40x; the profile raises those caps for cot_crowd's orders only."""
    plan_3 = {"method": "margin_pct", "margin_pct": 10, "leverage": 20}
    base_only = DEFAULTS.risk.overriding(sizing=plan_3)
    (btc,) = sized(intent(BTC, 60000, 58000, strategy="manual"), risk=base_only)
    assert btc.status == "refused"
    rejected = {g for g, v in btc.gates.items() if v.startswith("REJECT")}
    assert rejected == {"max_risk_per_trade", "symbol_exposure", "correlated_exposure"}
    assert btc.gates["symbol_exposure"] == (
        "REJECT: exposure (100% of equity) $1,980.00 > $1,000.00"
    )
    eth_40x = DEFAULTS.risk.overriding(sizing={**plan_3, "leverage": 40})
    (eth,) = sized(intent(ETH, 3000, 2960, strategy="manual"), risk=eth_40x)
    assert eth.reason == "needs 40x leverage but the cap is 20x (config)"
    # cot_crowd: one BTC and one ETH entry in one batch, then no second BTC (one per symbol)
    orders = sized(intent(BTC, 60000, 58000), intent(ETH, 3000, 2960), intent(BTC, 60100, 58000))
    assert [o.status for o in orders] == ["sized", "sized", "refused"]
    assert orders[1].gates["total_exposure"] == (
        "pass: exposure (600% of equity) $5,979.00 <= $6,000.00"
    )
    assert orders[2].gates["one_position_per_symbol"] == f"REJECT: a {BTC} position is open"


def test_other_strategies_keep_the_base_sizing():
    (order,) = sized(intent(BTC, 60000, 59000, strategy="bos_fvg_fib"))
    assert order.figures["method"] == "fixed_usd"
    assert order.figures["risk_usd"] <= 1.0
    assert not any(s.startswith("risk.profiles") for s in order.steps)
    assert DEFAULTS.risk.for_order(strategy="momentum", asset="BTC") is DEFAULTS.risk


@pytest.mark.parametrize("name", ["model_dump", "__class__", "", "cot_crowd "])
def test_a_strategy_name_that_is_no_profile_gets_the_base(name: str):
    """Records carry any text as their strategy: it never reaches an attribute of the model."""
    assert DEFAULTS.risk.for_order(strategy=name, asset="BTC") is DEFAULTS.risk


@settings(max_examples=60, deadline=None)
@given(
    equity=st.floats(50, 1e6),
    entry=st.floats(0.5, 2e5),
    symbol=st.sampled_from([BTC, ETH]),
    stop_pct=st.floats(0.1, 10),
)
def test_plan_3_sizing_invariants(equity: float, entry: float, symbol: str, stop_pct: float):
    """Whatever the balance and prices: whole steps, never more than 10 % of the balance as
    margin, the asset's leverage, and a sized order's stop always before its liquidation."""
    stop = entry * (1 - stop_pct / 100)
    (order,) = sized(intent(symbol, entry, stop), equity=equity)
    f = order.figures
    steps = f["qty"] / 0.001
    assert abs(steps - round(steps)) < 1e-6
    assert f["margin"] <= equity * 0.10 * (1 + 1e-9)
    assert f["leverage"] == (20 if symbol == BTC else 40)
    if order.status == "sized":
        assert f["liquidation_price"] * 1.005 < stop
        assert f["risk_usd"] <= f["margin"] + f["fees_usd"]


def test_size_cli_worked_example_and_flags_beat_the_profile():
    cli = Cli()
    base = ("size", "--symbol", BTC, "--side", "long", "--entry", "60000", "--stop", "58000",
            "--equity", "1000", "--step", "0.001", *MARKET_FLAGS[BTC], "--no-journal",
            "-f", "jsonl")  # fmt: skip
    (row,) = [json.loads(x) for x in cli(*base, "--strategy", "cot_crowd").stdout.splitlines()]
    assert (row["status"], row["qty"], row["leverage"], row["margin_mode"]) == (
        "sized", 0.033, 20, "isolated"
    )  # fmt: skip
    assert row["liquidation_price"] == pytest.approx(57228.92, abs=0.01)
    assert row["strategy"] == "cot_crowd"
    out = cli(*base, "--strategy", "cot_crowd", "--risk-usd", "1", "--margin-mode", "cross")
    (flagged,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert (flagged["method"], flagged["margin_mode"]) == ("fixed_usd", "cross")
    assert flagged["risk_usd"] <= 1.0


def test_size_cli_refuses_a_strategy_it_does_not_know_or_cannot_apply(tmp_path: Path):
    cli = Cli()
    base = ("size", "--symbol", BTC, "--side", "long", "--entry", "60000", "--equity", "1000",
            "--no-journal")  # fmt: skip
    bad = cli(*base, "--strategy", "cot_crwd", ok=False)
    assert bad.exit_code == 2 and "cot_crwd" in bad.output
    records = tmp_path / "none.jsonl"
    records.write_text("")
    clash = cli("size", str(records), "--strategy", "cot_crowd", "--no-journal", ok=False)
    assert clash.exit_code == 2 and "--strategy names the strategy" in clash.output


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("risk:\n  profiles:\n    cot_crwd: {margin_mode: isolated}\n", "cot_crwd"),
        ("risk:\n  profiles:\n    cot_crowd: {breakers: {daily_loss_pct: 50}}\n", "breakers"),
        ("risk:\n  profiles:\n    cot_crowd: {sizing: {leverage_by_asset: {btc: 20}}}\n", "btc"),
        ("risk:\n  profiles:\n    cot_crowd: {sizing: {leverage_by_asset: {ETH: 400}}}\n", "ETH"),
        ("risk:\n  profiles:\n    cot_crowd: {max_leverage: .nan}\n", "max_leverage"),
        ("risk:\n  profiles:\n    cot_crowd: {sizing: {method: margin}}\n", "method"),
        ("risk:\n  profiles:\n    cot_crowd: {gates: {max_symbol_exposure_pct: true}}\n", "gates"),
    ],
)
def test_bad_profiles_are_config_errors(tmp_path: Path, yaml_text: str, where: str):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError, match=where):
        load_settings(cfg, env={})


def test_a_user_profile_merges_key_by_key_and_null_drops_the_shipped_one(tmp_path: Path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(
        "risk:\n  profiles:\n"
        "    cot_crowd: {sizing: {leverage_by_asset: {ETH: 25}}}\n"
        "    momentum: {sizing: {method: pct_equity, risk_pct: 1}}\n"
    )
    mine = load_settings(cfg, env={}).risk
    eth = mine.for_order(strategy="cot_crowd", asset="ETH")
    assert (eth.sizing.method, eth.sizing.margin_pct, eth.sizing.leverage) == ("margin_pct", 10, 25)
    assert mine.for_order(strategy="cot_crowd", asset="BTC").sizing.leverage == 20
    assert mine.for_order(strategy="momentum", asset="BTC").sizing.risk_pct == 1
    cfg.write_text("risk:\n  profiles:\n    cot_crowd: null\n")
    dropped = load_settings(cfg, env={}).risk
    assert dropped.for_order(strategy="cot_crowd", asset="ETH") is dropped


def test_the_backtest_sizes_each_strategy_by_its_profile():
    """The portfolio driver (and the stepwise composer, which sizes through the same
    ``size_orders``) gives cot_crowd entries plan 3's size: flat hourly bars at 100, a long on
    each symbol at bar 1 filled at bar 2's open, on a 1000 balance: 1000 x 10 % x 20 / 100 =
    20 BTC-units and x 40 / 100 = 40 ETH-units, isolated, liquidation from the sized margin."""
    n, t0, hour = 6, 1_735_689_600_000, 3_600_000
    frame = pd.DataFrame({"timestamp": t0 + hour * np.arange(n), "open": 100.0, "high": 100.0,
                          "low": 100.0, "close": 100.0, "volume": 1000.0})  # fmt: skip
    side = np.zeros(n, dtype=np.int8)
    side[1] = 1
    stop = np.full(n, math.nan)
    stop[1] = 98.7  # inside the 40x liquidation (98.0) with its buffer
    risk = DEFAULTS.risk
    markets = {s: flag_market(s, MarketFlags(max_leverage=100, step_size=0.01)) for s in (BTC, ETH)}
    setup = PortfolioSetup(
        exchange="binanceusdm", strategy="cot_crowd", risk=risk,
        sizing=SizingSetup(risk, "binance", "cb", 0.0), markets=markets,
        brackets_of=brackets_resolver("binance", 20, None), policy=Policy.none(), costs=Costs(),
        initial_equity=1000.0,
    )  # fmt: skip
    bars = [symbol_bars(s, "1h", frame) for s in (BTC, ETH)]
    signals = [Signals.of(side.copy(), stop_price=stop.copy()) for _ in bars]
    out = run_portfolio(bars, signals, setup)
    qty = {sb.symbol: trades_frame(sb, out.trades[out.trade_symbol == i])["qty"].tolist()
           for i, sb in enumerate(out.bars)}  # fmt: skip
    assert qty == {BTC: [20.0], ETH: [40.0]}, out.refused
    liq = {sb.symbol: trades_frame(sb, out.trades[out.trade_symbol == i])["liquidation_price"][0]
           for i, sb in enumerate(out.bars)}  # fmt: skip
    # mmr 0.005 (0.5 / 100): (100 - 2000) / (20 x 0.005 - 20) and (100 - 4000) / (40 x 0.005 - 40)
    assert liq[BTC] == pytest.approx(1900 / 19.9)
    assert liq[ETH] == pytest.approx(3900 / 39.8)
