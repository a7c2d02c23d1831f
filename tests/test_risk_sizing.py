"""Sizing: the plans' worked cases with their arithmetic, and the invariants under hypothesis."""

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.errors import DataError
from cryptobot.core.market import Market
from cryptobot.fills.brackets import fallback
from cryptobot.risk.ladder import LeverageContext, ladder_decision
from cryptobot.risk.sizing import SizeRequest, ceil_to_step, floor_to_step, size_position
from tests.test_risk_liquidation import btc_brackets

DEFAULTS = load_settings()


def market(
    symbol="BTC/USDT:USDT",
    step=0.001,
    min_qty=0.001,
    min_notional=5.0,
    taker=0.0005,
    max_leverage=125.0,
    maint_margin_rate=None,
    tiers=(),
) -> Market:
    """A linear USDT perpetual with the given rules (tick 0.1, maker 0.02%)."""
    base = symbol.split("/")[0]
    return Market(
        symbol,
        base + "USDT",
        base,
        "USDT",
        "USDT",
        "swap",
        True,
        True,
        1.0,
        0.1,
        step,
        min_qty,
        min_notional,
        max_leverage,
        0.0002,
        taker,
        maint_margin_rate,
        list(tiers),
    )


def policy(settings, **sizing):
    """The packaged risk settings with some sizing fields changed."""
    risk = settings.risk
    extra = {k: sizing.pop(k) for k in list(sizing) if k in ("max_leverage", "margin_mode")}
    return risk.model_copy(update={"sizing": risk.sizing.model_copy(update=sizing), **extra})


def test_one_dollar_risk_on_a_btc_long_rounds_down_to_the_step(settings):
    """Plan 2: $1 at risk, long 95,000, stop 94,200. Without fees: 1 / 800 = 0.00125 BTC,
    rounded DOWN to the 0.001 step = 0.001 BTC, risking $0.80 (never $1.60 for 0.002)."""
    risk = policy(settings, method="fixed_usd", risk_usd=1.0, include_fees=False)
    s = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_200, (95_800, 96_600)),
        market(),
        btc_brackets(),
        risk,
    )
    assert s.refused is None
    assert s.qty_raw == pytest.approx(0.00125) and s.qty == 0.001
    assert s.risk_usd == pytest.approx(0.80)
    assert s.notional == pytest.approx(95.0)
    assert [t.r for t in s.targets] == [1.0, 2.0]
    # With taker fees in and out: 800 + 0.0005 x (95,000 + 94,200) = 894.60 per BTC;
    # 1 / 894.60 = 0.001118 -> 0.001; risk 0.80 + 0.0946 = $0.8946 <= $1.
    fees = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_200),
        market(),
        btc_brackets(),
        policy(settings, include_fees=True),
    )
    assert fees.qty == 0.001 and fees.risk_usd == pytest.approx(0.8946)


def test_the_exchange_minimum_is_refused_with_figures_not_silently_used(settings):
    """Binance's BTCUSDT minimum notional is $100: 0.001 BTC at 95,000 is $95, so the minimum
    order is 0.002 BTC (0.0010526 rounded up), risking 2 x 894.60 / 1000 = $1.79 - 79% above the
    $1 target, beyond the 10% tolerance: refused, never enlarged."""
    s = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_200),
        market(min_notional=100.0),
        btc_brackets(),
        policy(settings),
    )
    assert s.qty == 0
    assert "min notional $100" in s.refused and "needs 0.002" in s.refused
    assert "$1.7892" in s.refused and "79% above" in s.refused


def test_the_exchange_minimum_is_used_within_the_tolerance(settings):
    """$0.95 target, 0.001 step, no fees, 1,000-point stop: 0.00095 rounds down to 0 but the
    0.001 minimum risks $1.00: 5.3% over, within 10% - used, and the step says so."""
    risk = policy(settings, risk_usd=0.95, include_fees=False)
    s = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_000),
        market(min_notional=0.0),
        btc_brackets(),
        risk,
    )
    assert s.refused is None and s.qty == 0.001
    assert any("raised to the exchange minimum" in line for line in s.steps)


def test_position_manager_ten_percent_margin_at_20x(settings):
    """Plan 3: $100 account, 10% margin = $10 at 20x -> $200 notional, BTC short at 95,000:
    200 / 95,000 = 0.0021053 -> 0.002 BTC (step 0.001) = $190 notional, $9.50 margin.
    Liquidation (isolated, 0.4% bracket): (9.5 + 190) / (0.002 x 1.004) = 99,352.59, nearer
    than the naive 99,750."""
    risk = policy(settings, method="margin_pct", margin_pct=10.0, leverage=20)
    s = size_position(
        SizeRequest("BTC/USDT:USDT", "short", 95_000, None, equity=100.0),
        market(),
        btc_brackets(),
        risk,
    )
    assert s.refused is None
    assert s.qty == 0.002 and s.notional == pytest.approx(190) and s.margin == pytest.approx(9.5)
    assert round(s.liquidation_price, 2) == 99_352.59 < 99_750
    assert s.risk_usd is None  # no stop given: nothing to measure the risk against


def test_eth_at_40x(settings):
    """$50 account, 10% margin at 40x = $200 notional; ETH long at 3,500: 0.05714 -> 0.057 ETH
    (step 0.001), $199.50 notional, $4.99 margin. The 40x leverage needs a config cap >= 40."""
    risk = policy(settings, method="margin_pct", margin_pct=10.0, leverage=40, max_leverage=50)
    eth = market("ETH/USDT:USDT", min_notional=20.0)
    brackets = fallback(125)
    s = size_position(
        SizeRequest("ETH/USDT:USDT", "long", 3_500, 3_460, equity=50.0, leverage=40),
        eth,
        brackets,
        risk,
    )
    assert s.refused is None and s.qty == 0.057 and s.leverage == 40
    assert s.margin == pytest.approx(0.057 * 3500 / 40)
    # LP (fallback bracket 0.5/125 = 0.4%) = (4.9875 - 199.5) / (0.057 x 0.004 - 0.057)
    # = 3,426.20, 2.1% away; the 3,460 stop keeps clear of it and its 0.5% buffer (3,443.34).
    assert round(s.liquidation_price, 2) == 3_426.20
    refused = size_position(
        SizeRequest("ETH/USDT:USDT", "long", 3_500, 3_440, equity=50.0, leverage=40),
        eth,
        brackets,
        risk,
    )
    assert "is inside the buffer before liquidation at 3,426.20" in refused.refused


def test_pct_of_equity_and_the_lowest_leverage_within_the_margin_budget(settings):
    """Plan 1: 0.5% of $1,000 = $5 at risk; BTC long 95,000 stop 94,525 (0.5%), no fees:
    5 / 475 = 0.010526 -> 0.010 BTC = $950 notional. Margin budget 10% of equity = $100, so
    the lowest whole leverage is ceil(950 / 100) = 10x."""
    risk = policy(settings, method="pct_equity", risk_pct=0.5, include_fees=False)
    s = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_525, equity=1000.0),
        market(),
        btc_brackets(),
        risk,
    )
    assert s.risk_target_usd == pytest.approx(5.0)
    assert s.qty == 0.010 and s.leverage == 10 and s.margin == pytest.approx(95.0)
    tight = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_990, equity=1000.0),
        market(),
        btc_brackets(),
        risk,
    )
    assert "cap is 20x (config)" in tight.refused  # 0.5 BTC = $47,500 would need 475x


def test_recovery_mode_halves_the_target(settings):
    risk = policy(settings, risk_usd=10.0, include_fees=False)
    full = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_000), market(), btc_brackets(), risk
    )
    half = size_position(
        SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_000, size_mult=0.5),
        market(),
        btc_brackets(),
        risk,
    )
    assert (full.qty, half.qty) == (0.01, 0.005)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SizeRequest("BTC/USDT:USDT", "long", 95_000, 95_000), "stop equals the entry"),
        (SizeRequest("BTC/USDT:USDT", "long", 95_000, 96_000), "must be below the entry"),
        (SizeRequest("BTC/USDT:USDT", "short", 95_000, 94_000), "must be above the entry"),
        (SizeRequest("BTC/USDT:USDT", "long", 95_000, None), "needs a stop"),
        (SizeRequest("BTC/USDT:USDT", "long", 95_000, 94_000, equity=-5), "equity must be"),
        (SizeRequest("BTC/USDT:USDT", "long", -1, 94_000), "entry must be positive"),
    ],
)
def test_bad_requests_are_clear_errors(settings, request_, message):
    with pytest.raises(DataError, match=message):
        size_position(request_, market(), btc_brackets(), settings.risk)


def test_decimal_rounding_does_not_lose_a_step():
    assert floor_to_step(0.3, 0.1) == 0.3  # 0.3 / 0.1 is 2.9999999999999996 in binary
    assert floor_to_step(0.0029999, 0.001) == 0.002
    assert ceil_to_step(0.0010526, 0.001) == 0.002
    assert floor_to_step(12.7, None) == 12.7


@settings(max_examples=400, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    entry=st.floats(0.001, 200_000),
    stop_pct=st.floats(0.05, 20),
    target=st.floats(0.1, 500),
    step_exp=st.integers(-6, 2),
    min_notional=st.sampled_from([0.0, 5.0, 100.0]),
    fees=st.booleans(),
    equity=st.one_of(st.none(), st.floats(10, 1e7)),
)
def test_risk_never_exceeds_the_target_and_qty_is_a_step_multiple(
    side, entry, stop_pct, target, step_exp, min_notional, fees, equity
):
    step = float(Decimal(10) ** step_exp)
    stop = entry * (1 - stop_pct / 100) if side == "long" else entry * (1 + stop_pct / 100)
    assume(stop != entry)
    risk = policy(DEFAULTS, risk_usd=target, include_fees=fees)
    m = market(step=step, min_qty=step, min_notional=min_notional)
    s = size_position(
        SizeRequest("X/USDT:USDT", side, entry, stop, equity=equity), m, fallback(125), risk
    )
    units = Decimal(repr(s.qty)) / Decimal(repr(step))
    assert units == units.to_integral_value()
    if s.refused is not None and s.qty == 0:
        return
    assert s.qty > 0
    raised = any("raised to the exchange minimum" in line for line in s.steps)
    limit = target * (1 + risk.sizing.min_size_tolerance_pct / 100) if raised else target
    assert s.risk_usd <= limit * (1 + 1e-9)
    if not raised:
        assert s.qty <= s.qty_raw * (1 + 1e-12)


def test_ladder_steps_up_with_the_account_and_dynamic_leverage_moves_the_cap(settings):
    ladder = settings.risk.leverage_ladder.model_copy(update={"enabled": True})
    only_ladder = settings.risk.model_copy(update={"leverage_ladder": ladder})
    below = ladder_decision(only_ladder, LeverageContext(equity=55, start_equity=50))
    assert (below.risk_pct, below.max_leverage) == (None, None)  # +10%: below the first step
    step2 = ladder_decision(only_ladder, LeverageContext(equity=80, start_equity=50))
    assert (step2.risk_pct, step2.max_leverage) == (0.75, 8)  # +60%: the +50% step
    dynamic = settings.risk.dynamic_leverage.model_copy(update={"enabled": True})
    risk = only_ladder.model_copy(update={"dynamic_leverage": dynamic})
    bold = ladder_decision(
        risk,
        LeverageContext(
            equity=80, start_equity=50, peak_equity=80, confidence=5, volatility_pct=0.4
        ),
    )
    assert bold.max_leverage == 10  # +1x confidence, +1x low volatility
    burnt = ladder_decision(
        risk, LeverageContext(equity=80, start_equity=50, peak_equity=80, recent_loss=True)
    )
    assert burnt.max_leverage == 7
    drawdown = ladder_decision(risk, LeverageContext(equity=80, start_equity=50, peak_equity=90))
    assert drawdown.max_leverage == 2  # 11% below the peak > 5%
    off = ladder_decision(settings.risk, LeverageContext(equity=500, start_equity=50))
    assert (off.risk_pct, off.max_leverage) == (None, None)
