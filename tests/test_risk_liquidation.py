"""Liquidation prices against the exchanges' documented formulas and worked examples."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.fills.brackets import Bracket, bracket_for, fallback, from_tiers
from cryptobot.fills.liquidation import liquidation_price, margin_left_pct
from cryptobot.risk.bracket_files import read_file
from tests.emulator.binance_usdm import BTC_BRACKETS

# Binance's documented BTCUSDT brackets (notional cap, maintenance margin rate, max leverage),
# the table the test emulator serves; the maintenance amounts are derived by Binance's formula.
BTC_TABLE = BTC_BRACKETS


def btc_brackets() -> list[Bracket]:
    floors = [0, *(cap for cap, _, _ in BTC_TABLE[:-1])]
    tiers = [
        {"minNotional": f, "maxNotional": cap, "maintenanceMarginRate": mmr, "maxLeverage": lev}
        for f, (cap, mmr, lev) in zip(floors, BTC_TABLE, strict=True)
    ]
    return from_tiers(tiers)


def test_maintenance_amounts_follow_binances_formula():
    # The FAQ: "Maintenance Amount on Level 3 = 250,000 * (1% - 0.5%) + 50 USDT = 1,300 USDT",
    # and level 2 = 50,000 * (0.5% - 0.4%) + 0 = 50.
    b = btc_brackets()
    assert [x.maint_amount for x in b[:3]] == pytest.approx([0, 50, 1300])
    # ... and the FAQ's "a 264,000 USDT position is in the 1% bracket".
    assert bracket_for(b, 264_000).mmr == 0.01


@pytest.mark.parametrize(
    ("mode", "other_mm", "other_upnl", "expected"),
    [("cross", 71200.81144, -56354.57, 1153.26), ("isolated", 0.0, 0.0, 1114.78)],
)
def test_binance_faq_eth_example(mode, other_mm, other_upnl, expected):
    """Binance's worked example: wallet balance 1,535,443.01 USDT, a 3683.979 ETH long at
    1456.84 in the 10% bracket (maintenance amount 135,365); cross also has other contracts with
    71,200.81144 maintenance margin and -56,354.57 unrealised PnL."""
    eth = [Bracket(6, 0.0, math.inf, 0.10, 5, 135_365.0)]
    liq = liquidation_price(
        "long",
        3683.979,
        1456.84,
        balance=1_535_443.01,
        brackets=eth,
        venue="binance",
        taker_fee=0.0,
        other_maintenance=other_mm,
        other_upnl=other_upnl,
    )
    assert round(liq.price, 2) == expected


@pytest.mark.parametrize(
    ("mode", "other_mm", "other_upnl", "expected"),
    [("cross", 356512.508, -448192.89, 26316.89), ("isolated", 0.0, 0.0, 18778.73)],
)
def test_binance_faq_btc_example(mode, other_mm, other_upnl, expected):
    """The same FAQ's BTCUSDT case: 109.488 BTC long at 32,481.98, 2.5% bracket, amount 16,300."""
    btc = [Bracket(4, 0.0, math.inf, 0.025, 20, 16_300.0)]
    liq = liquidation_price(
        "long",
        109.488,
        32_481.98,
        balance=1_535_443.01,
        brackets=btc,
        venue="binance",
        taker_fee=0.0,
        other_maintenance=other_mm,
        other_upnl=other_upnl,
    )
    assert round(liq.price, 2) == expected


def test_position_manager_example_is_nearer_than_the_naive_five_percent():
    """$100 account, $10 margin at 20x, BTC short at 95,000 -> notional $200, qty 200/95,000.
    Isolated: LP = (WB + cum - side*qty*EP) / (qty*MMR - side*qty)
               = (10 + 0 + 200) / (qty * 0.004 + qty) = 210 * 95,000 / 200.8 = 99,352.59.
    The naive "20x = 5% away" says 99,750: maintenance margin brings liquidation 0.42% nearer."""
    qty = 200 / 95_000
    liq = liquidation_price("short", qty, 95_000, balance=10.0, brackets=btc_brackets())
    assert liq.price == pytest.approx(210 / (1.004 * qty))
    assert round(liq.price, 2) == 99_352.59
    assert liq.price < 95_000 * 1.05
    assert liq.bracket.tier == 1


def test_eth_at_40x():
    """ETH long at 3,500, 40x isolated, a 0.5% bracket: LP = EP * (1 - 1/40) / (1 - 0.005)
    = 3,500 * 0.975 / 0.995 = 3,429.65 (naive: 3,412.50)."""
    qty = 1.0
    eth = [Bracket(1, 0.0, math.inf, 0.005, 50, 0.0)]
    liq = liquidation_price("long", qty, 3500, balance=3500 / 40, brackets=eth)
    assert liq.price == pytest.approx(3500 * 0.975 / 0.995)
    assert round(liq.price, 2) == 3429.65


def test_a_long_whose_liquidation_falls_in_a_lower_bracket():
    """6 BTC long at 50,000 (notional 300,000: bracket 3, 1%, amount 1,300), 5x isolated
    (WB 60,000). Bracket 3 gives (60,000 + 1,300 - 300,000) / (0.06 - 6) = 40,185.19, a notional
    of 241,111 - inside bracket 2, not 3. Bracket 2 (0.5%, amount 50) gives
    (60,000 + 50 - 300,000) / (0.03 - 6) = 40,192.63, notional 241,156: consistent."""
    b = btc_brackets()
    assert bracket_for(b, 300_000).tier == 3
    liq = liquidation_price("long", 6, 50_000, balance=60_000, brackets=b)
    assert liq.bracket.tier == 2
    assert liq.price == pytest.approx(239_950 / 5.97)
    assert round(liq.price, 2) == 40_192.63


def test_a_short_whose_liquidation_falls_in_a_higher_bracket():
    """4.8 BTC short at 50,000 (240,000: bracket 2), 5x isolated (WB 48,000). Bracket 2 gives
    (48,000 + 50 + 240,000) / (0.024 + 4.8) = 59,712.89 (notional 286,622: bracket 3), so
    bracket 3: (48,000 + 1,300 + 240,000) / (0.048 + 4.8) = 59,674.09 (286,436: consistent)."""
    liq = liquidation_price("short", 4.8, 50_000, balance=48_000, brackets=btc_brackets())
    assert liq.bracket.tier == 3
    assert round(liq.price, 2) == 59_674.09


def test_bitget_isolated_formula_counts_the_closing_fee():
    """Bitget: LP = (margin - qty*EP*dir) / (qty*(MMR + taker - dir)). 0.01 BTC long at 60,000,
    margin 30 (20x), MMR 0.4%, taker 0.06%: (30 - 600) / (0.01 * (0.0046 - 1)) = 57,263.41."""
    b = [Bracket(1, 0.0, math.inf, 0.004, 125, 0.0)]
    liq = liquidation_price(
        "long", 0.01, 60_000, balance=30, brackets=b, venue="bitget", taker_fee=0.0006
    )
    assert round(liq.price, 2) == 57_263.41
    short = liquidation_price(
        "short", 0.01, 60_000, balance=30, brackets=b, venue="bitget", taker_fee=0.0006
    )
    assert short.price == pytest.approx((30 + 600) / (0.01 * (0.0046 + 1)))


def test_bitget_short_can_liquidate_on_a_tier_boundary():
    """Bitget's tier rate applies to the whole position, so the requirement jumps at a tier
    floor. 1 unit short at 900 with 300 margin: tier 1 (1%) solves to 1,188 (outside it), tier 2
    (30%) to 923 (outside it); at 1,000 the tier-2 requirement (300) exceeds the equity (200)."""
    tiers = [Bracket(1, 0.0, 1000.0, 0.01, 50, 0.0), Bracket(2, 1000.0, math.inf, 0.30, 2, 0.0)]
    liq = liquidation_price("short", 1.0, 900, balance=300, brackets=tiers, venue="bitget")
    assert liq.price == 1000.0 and liq.bracket.tier == 2


def test_a_fully_margined_long_cannot_be_liquidated():
    liq = liquidation_price("long", 1.0, 100.0, balance=100.0, brackets=btc_brackets())
    assert liq.price is None


def test_an_under_margined_position_is_liquidated_at_its_entry():
    """600 BTC at 90,000 (54M notional: 10% bracket) with 1% margin is below maintenance."""
    liq = liquidation_price("short", 600, 90_000, balance=540_000, brackets=btc_brackets())
    assert liq.price == 90_000 and liq.bracket.mmr == 0.1


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    entry=st.floats(100, 200_000),
    qty=st.floats(0.001, 500),
    leverage=st.integers(1, 100),
    venue=st.sampled_from(["binance", "bitget"]),
)
def test_at_the_liquidation_price_the_margin_equals_the_requirement(
    side, entry, qty, leverage, venue
):
    """The defining identity, on Binance's real table: at LP the margin balance equals the
    maintenance margin of LP's own bracket (plus Bitget's closing fee)."""
    b = btc_brackets()
    leverage = min(leverage, bracket_for(b, qty * entry).max_leverage)  # what sizing allows
    fee = 0.0006 if venue == "bitget" else 0.0
    margin = qty * entry / leverage
    liq = liquidation_price(
        side, qty, entry, balance=margin, brackets=b, venue=venue, taker_fee=fee
    )
    if liq.price is None:
        assert side == "long"
        return
    s = 1 if side == "long" else -1
    notional = qty * liq.price
    assert liq.bracket.holds(notional) or notional == pytest.approx(liq.bracket.floor)
    equity = margin + s * qty * (liq.price - entry)
    required = liq.bracket.maintenance_margin(notional) + fee * notional
    if venue == "binance" or notional != liq.bracket.floor:
        assert equity == pytest.approx(required, rel=1e-7, abs=1e-6 * entry * qty)
    assert (liq.price < entry) if side == "long" else (liq.price > entry)
    assert (
        margin_left_pct(side, qty, entry, balance=margin, price=liq.price, brackets=b)
        == pytest.approx(0.0, abs=1e-4)
        or venue == "bitget"
    )


def test_fallback_brackets_follow_binances_tier_one_rule():
    assert fallback(125)[0].mmr == 0.004
    assert fallback(50)[0].mmr == 0.01
    assert fallback(20)[0].mmr == 0.025


def test_brackets_file_in_ccxt_and_binance_shapes(tmp_path):
    import json

    ccxt_shape = {
        "BTC/USDT:USDT": [
            {
                "tier": 1,
                "minNotional": 0,
                "maxNotional": 50000,
                "maintenanceMarginRate": 0.004,
                "maxLeverage": 125,
                "info": {"cum": "0.0"},
            },
            {
                "tier": 2,
                "minNotional": 50000,
                "maxNotional": 250000,
                "maintenanceMarginRate": 0.005,
                "maxLeverage": 100,
                "info": {"cum": "50.0"},
            },
        ]
    }
    raw = [
        {
            "symbol": "BTCUSDT",
            "brackets": [
                {
                    "bracket": 1,
                    "initialLeverage": 125,
                    "notionalCap": 50000,
                    "notionalFloor": 0,
                    "maintMarginRatio": 0.004,
                    "cum": 0.0,
                },
                {
                    "bracket": 2,
                    "initialLeverage": 100,
                    "notionalCap": 250000,
                    "notionalFloor": 50000,
                    "maintMarginRatio": 0.005,
                    "cum": 50.0,
                },
            ],
        }
    ]
    for name, data in (("ccxt.json", ccxt_shape), ("raw.json", raw)):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        b = from_tiers(read_file(path, "BTC/USDT:USDT", "BTCUSDT"))
        assert [(x.floor, x.cap, x.mmr, x.max_leverage, x.maint_amount) for x in b] == [
            (0, 50000, 0.004, 125, 0),
            (50000, 250000, 0.005, 100, 50),
        ]
