"""The 2-of-4 trigger, table-driven: 0..4 extremes under each bias, NEUTRAL, missing data."""

import itertools
import math

import pytest

from cryptobot.core.config import load_settings
from cryptobot.strategies.cot_crowd import INDICATORS, CrowdReading, trigger

P = load_settings().strategies.cot_crowd  # 2 of 4; spike 3x; greed 80/fear 20; funding 0.001
CALM = {"liq": 1.0, "fear_greed": 50.0, "funding": 0.0001, "long_short_ratio": 1.0}
EXTREME = {  # the crowd against each bias
    "BEARISH": {"liq": 4.0, "fear_greed": 85.0, "funding": 0.0015, "long_short_ratio": 2.5},
    "BULLISH": {"liq": 4.0, "fear_greed": 12.0, "funding": -0.0015, "long_short_ratio": 0.35},
}


def reading(bias: str, firing: tuple[str, ...], rest: str = "calm") -> CrowdReading:
    def value(name: str, key: str):
        if name in firing:
            return EXTREME[bias][key]
        return None if rest == "missing" else CALM[key]

    liq = value("liquidation_spike", "liq")
    return CrowdReading(
        long_liquidation_spike=liq if bias == "BULLISH" else 1.0,
        short_liquidation_spike=liq if bias == "BEARISH" else 1.0,
        fear_greed=value("fear_greed", "fear_greed"),
        funding=value("funding", "funding"),
        long_short_ratio=value("long_short_ratio", "long_short_ratio"),
    )


CASES = [
    (bias, combo, rest)
    for bias in ("BEARISH", "BULLISH")
    for k in range(5)
    for combo in itertools.combinations(INDICATORS, k)
    for rest in ("calm", "missing")
]


@pytest.mark.parametrize(("bias", "firing", "rest"), CASES)
def test_two_of_four_under_each_bias(bias: str, firing: tuple[str, ...], rest: str) -> None:
    got = trigger(bias=bias, bias_reason="why", crowd=reading(bias, firing, rest), p=P)
    expected_side = ("short" if bias == "BEARISH" else "long") if len(firing) >= 2 else None
    assert got.side == expected_side
    assert set(got.fired) == set(firing)
    absent = set(INDICATORS) - set(firing) if rest == "missing" else set()
    assert set(got.missing) == absent  # no data counts as not firing
    if expected_side:
        assert got.reason.startswith(f"{expected_side}: why; crowd against it: ")
    else:
        assert got.reason.startswith(f"no entry: {len(firing)} of 2 crowd extremes")


@pytest.mark.parametrize("bias", ["BEARISH", "BULLISH"])
def test_extremes_on_the_bias_side_do_not_count(bias: str) -> None:
    other = "BULLISH" if bias == "BEARISH" else "BEARISH"
    crowd = reading(other, INDICATORS)  # the crowd agrees with the bias: no contrarian entry
    got = trigger(bias=bias, bias_reason="why", crowd=crowd, p=P)
    assert got.side is None and got.fired == {}


def test_neutral_gives_nothing_even_with_four_extremes() -> None:
    got = trigger(bias="NEUTRAL", bias_reason="50th", crowd=reading("BEARISH", INDICATORS), p=P)
    assert got.side is None and got.reason == "no entry: COT bias NEUTRAL (50th)"


def test_nan_and_inf_count_as_missing() -> None:
    crowd = CrowdReading(
        short_liquidation_spike=math.nan, fear_greed=math.inf, funding=0.002, long_short_ratio=3.0
    )
    got = trigger(bias="BEARISH", bias_reason="why", crowd=crowd, p=P)
    assert got.side == "short" and set(got.fired) == {"funding", "long_short_ratio"}
    assert set(got.missing) == {"liquidation_spike", "fear_greed"}


def test_thresholds_are_inclusive() -> None:
    crowd = CrowdReading(fear_greed=80.0, funding=0.001)
    assert trigger(bias="BEARISH", bias_reason="r", crowd=crowd, p=P).side == "short"
    crowd = CrowdReading(fear_greed=20.0, long_short_ratio=0.5)
    assert trigger(bias="BULLISH", bias_reason="r", crowd=crowd, p=P).side == "long"


def test_safety_open_position_and_margin() -> None:
    crowd = reading("BEARISH", INDICATORS)
    base = {"bias": "BEARISH", "bias_reason": "r", "crowd": crowd, "p": P}
    assert trigger(**base, position_open=True).reason.endswith("a position on this asset is open")
    short = trigger(**base, free_margin=9.0, margin_needed=10.0)
    assert short.side is None and "10 margin needed, 9 free" in short.reason
    assert trigger(**base, free_margin=10.0, margin_needed=10.0).side == "short"


def test_required_extremes_is_configurable() -> None:
    three = P.model_copy(update={"required_extremes": 3})
    crowd = reading("BEARISH", ("fear_greed", "funding"))
    assert trigger(bias="BEARISH", bias_reason="r", crowd=crowd, p=three).side is None
