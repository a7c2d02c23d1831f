"""Cooldown after a loss is one rule (``risk.cooldown``): ``signal`` (minutes, the journal's
loss time) refuses exactly the setups the backtest's compiled loop skips after the same loss."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.backtest import kernel
from cryptobot.backtest.bars import symbol_bars
from cryptobot.backtest.engine import Costs, Signals, run_units
from cryptobot.core.config import load_settings
from cryptobot.core.setup import Setup
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data.lake import Lake
from cryptobot.manage.policy import Policy
from cryptobot.risk import cooldown
from cryptobot.strategies.signals import History, decide

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
SYM = "A/USDT:USDT"
LOSS_BAR = 5  # the bar whose low takes the first trade's stop


@pytest.mark.parametrize(
    ("minutes", "tf", "bars"),
    [(60, "5m", 12), (7, "5m", 2), (5, "5m", 1), (0, "5m", 0), (60, "1h", 1), (90, "1h", 2),
     (0.5, "1m", 1), (61, "15m", 5)],
)  # fmt: skip
def test_minutes_round_up_to_whole_bars(minutes, tf, bars):
    assert cooldown.cooldown_bars(round(minutes * 60_000), timeframe_ms(tf)) == bars


@pytest.fixture(scope="module")
def empty_lake(tmp_path_factory) -> Lake:
    """No candles, no funding: only the cooldown can refuse a setup."""
    root: Path = tmp_path_factory.mktemp("lake")
    return Lake(root)


def _units_run(tf: str, bars: int) -> list[int]:
    """The compiled loop on flat bars at 100 with a long signal (stop 95) on every bar; bar
    ``LOSS_BAR`` dips to 94 and stops the first trade out at a loss. Returns the entry bars."""
    bar_ms = timeframe_ms(tf)
    n = LOSS_BAR + bars + 5
    low = np.full(n, 100.0)
    low[LOSS_BAR] = 94.0
    frame = pd.DataFrame({"timestamp": T0 + bar_ms * np.arange(n), "open": 100.0,
                          "high": 100.0, "low": low, "close": 100.0, "volume": 1e6})  # fmt: skip
    sb = symbol_bars(SYM, tf, frame)
    signals = Signals.of(np.ones(n, dtype=np.int8), stop_price=np.full(n, 95.0))
    out = run_units(sb, signals, qty=1.0, policy=Policy.none(), costs=Costs(), cooldown_bars=bars)
    assert out.trades[0, kernel.T_EXIT_BAR] == LOSS_BAR and out.trades[0, kernel.T_NET] < 0
    return [int(b) for b in out.trades[:, kernel.T_ENTRY_BAR]]


def _setup(tf: str, bar: int) -> Setup:
    ts = T0 + timeframe_ms(tf) * bar
    return Setup("binanceusdm", SYM, "bos_fvg_fib", tf, "long", "triggered", ts, ts, 100.0,
                 95.0, [110.0], 3, {})  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    tf=st.sampled_from(["1m", "5m", "15m", "1h", "4h"]),
    minutes=st.one_of(st.just(0.0), st.floats(0.5, 600.0, allow_nan=False)),
    offset=st.floats(0.0, 0.999),
)
def test_signal_refuses_what_the_backtest_skips(empty_lake, tf, minutes, offset):
    """A loss whose exit filled anywhere inside bar ``LOSS_BAR`` (``offset`` of the bar): the
    first setup ``signal`` accepts after it is the first signal the backtest takes."""
    bar_ms = timeframe_ms(tf)
    bars = cooldown.cooldown_bars(round(minutes * 60_000), bar_ms)
    entries = _units_run(tf, bars)
    taken = entries[1] - 1  # the signal bar of the trade after the loss
    assert taken == LOSS_BAR + bars
    p = load_settings(None, {}).signal.model_copy(
        update={"regime_filter": False, "htf_bias": False, "one_signal_per_symbol": False,
                "cooldown_after_loss_min": minutes, "funding_extreme": 1.0,
                "max_setup_age_bars": 10**6}
    )  # fmt: skip
    loss_ms = T0 + bar_ms * LOSS_BAR + math.floor(offset * bar_ms)
    history = History(last_loss_ms={SYM: loss_ms})
    candidates = range(LOSS_BAR, LOSS_BAR + bars + 3)
    now = T0 + bar_ms * (candidates[-1] + 1)  # the last candidate's bar has closed
    decisions = decide([_setup(tf, t) for t in candidates], empty_lake, p, history, now=now)
    accepted = [t for t, d in zip(candidates, decisions, strict=True) if d.accepted]
    assert accepted[0] == taken
    refused = [d.reason for d in decisions if not d.accepted]
    assert len(refused) == bars and all(r.startswith("cooldown: a loss on") for r in refused)


def test_compiled_and_python_rule_agree():
    """The kernel's loop calls the compiled twin of the same source (not a second rule)."""
    compiled = cooldown.allowed_after.compiled()
    for args in [(3, -1.0, 5, 4), (3, 1.0, 5, 4), (9, -1.0, 5, 4), (3, -1.0, 5, 0)]:
        assert compiled(*args) == cooldown.allowed_after(*args)
    assert compiled.py_func is cooldown.allowed_after.py_func
    assert kernel.allowed_after is cooldown.allowed_after
