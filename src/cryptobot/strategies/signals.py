"""Setups -> signals: the context filters, in the order they are applied.

1. ``armed`` setups are not instructions yet (they wait for their trigger).
2. Expiry: a setup is stale once ``max_setup_age_bars`` bars of its timeframe have closed
   after its own by ``now``, the caller's clock: the venue's (``Exchange.now``), so a replayed
   run judges a setup as it would have been judged then, whatever the wall clock says.
3. Regime (``regime_filter``): the regime of the setup's timeframe at its bar
   (``analysis.regime``) must not be one its strategy skips (``regime_block``).
4. Funding: with the newest stored funding rate at or before the setup's close, a long is
   refused when the rate is >= ``funding_extreme`` (longs are crowded and pay) and a short when
   it is <= -``funding_extreme``; below that the rate only sets ``funding_bias`` (+1 it pays
   this side, -1 it costs this side, 0 none known).
5. Higher-timeframe bias (``htf_bias``): on the newest closed bar of ``htf[timeframe]`` the
   close against its EMA(``htf_ema``) must agree with the side; unknown bias (no data) passes
   and says so.

   Rules 3-5 are ``strategies.filters``' rules, read here at the setup's bar
   and by ``backtest`` over every bar (one rule each, the same warm-up: the last
   ``filters.REGIME_BARS`` / ``filters.htf_bars`` stored bars, counted in bars).
6. Cooldown: no signal on a symbol within ``cooldown_after_loss_min`` of a losing trade's close
   (the journal's round trips, derived from ``trade``'s fills: ``journal.roundtrips``), counted
   in bars of the setup's timeframe from the close of the bar the exit filled in, as the
   backtest counts it (``risk.cooldown``: one rule).
7. COT (``cot.signal_filter``): a long is refused under a BEARISH weekly COT bias of its base
   asset and a short under a BULLISH one, seeing only reports published by the setup's close
   (``cot.bias.BiasBook``); assets without COT data, or whose newest report is older than
   ``cot.max_report_age_days``, pass with ``cot_bias: none`` and say why (``cot_reason``).
8. One signal per symbol (``one_signal_per_symbol``): the best setup of a symbol in the batch
   (confidence, then newest) wins, and none while an accepted signal of that symbol is still
   live in the journal.

Every decision, accepted or not, is returned with its reason so the journal keeps them all.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryptobot.core.settings import CotBiasSettings, SignalSettings
from cryptobot.core.setup import Setup
from cryptobot.core.signal import Signal
from cryptobot.core.timeframes import bar_open, timeframe_ms
from cryptobot.core.timeutil import iso
from cryptobot.cot.bias import BiasBook
from cryptobot.data.lake import Lake
from cryptobot.journal.setups import record_decisions, signal_history
from cryptobot.risk import cooldown
from cryptobot.strategies import filters


@dataclass
class Decision:
    setup: Setup
    accepted: bool
    reason: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def signal(self) -> Signal:
        return Signal(self.setup, self.context)


@dataclass(frozen=True)
class History:
    """What the filters know beyond the setups: per symbol, the last losing trade's close and
    whether an accepted signal is still live (both from the journal)."""

    last_loss_ms: dict[str, int] = field(default_factory=dict)
    live_signal: dict[str, str] = field(default_factory=dict)  # symbol -> setup id


def decide(
    setups: list[Setup],
    lake: Lake,
    p: SignalSettings,
    history: History | None = None,
    *,
    now: int,
    cot: CotBiasSettings | None = None,
) -> list[Decision]:
    """Each setup's decision at ``now`` (ms, the venue's clock)."""
    history = history or History()
    book = BiasBook(lake.root, cot) if cot is not None and cot.signal_filter else None
    decisions = [_filter(s, lake, p, history, book, now) for s in setups]
    if p.one_signal_per_symbol:
        _one_per_symbol(decisions, history)
    return decisions


def decide_and_record(
    setups: list[Setup],
    lake: Lake,
    p: SignalSettings,
    *,
    now: int,
    cot: CotBiasSettings | None = None,
) -> list[Decision]:
    """Decide with what the journal knows (losses, live signals) at ``now`` (the venue's
    clock), then journal every decision as made then."""
    losses, live = signal_history(lake.root, now, symbols={s.symbol for s in setups})
    decisions = decide(setups, lake, p, History(losses, live), now=now, cot=cot)
    record_decisions(lake.root, decisions, now, p.max_setup_age_bars)
    return decisions


def _filter(
    s: Setup, lake: Lake, p: SignalSettings, history: History, book: BiasBook | None, now: int
) -> Decision:
    if s.status != "triggered":
        return Decision(s, False, "armed: waiting for its trigger")
    tf_ms = timeframe_ms(s.timeframe)
    if now < s.ts + tf_ms:  # a bar still open (or from the future) at the venue's clock
        return Decision(s, False, f"not closed yet at the venue's clock {iso(now)}")
    age = (now - (s.ts + tf_ms)) // tf_ms  # bars closed after the setup's bar by now
    context: dict[str, Any] = {"age_bars": int(age)}
    if age >= p.max_setup_age_bars:
        limit = p.max_setup_age_bars
        return Decision(s, False, f"stale: {age} bars closed since (limit {limit})", context)
    checks = (_regime, _funding, _htf, _cooldown)
    for check in checks:
        refusal = check(s, lake, p, history, context)
        if refusal:
            return Decision(s, False, refusal, context)
    refusal = _cot(s, book, context) if book is not None else None
    if refusal:
        return Decision(s, False, refusal, context)
    return Decision(s, True, "accepted", context)


def _regime(s: Setup, lake: Lake, p: SignalSettings, _h, context: dict) -> str | None:
    if not p.regime_filter:
        return None
    frame = _last_bars(lake, s, s.timeframe, s.ts, filters.REGIME_BARS)
    label = str(filters.regime_labels(frame)[-1]) if len(frame) else "unknown"
    context["regime"] = label
    if filters.refuses(filters.regime_mask(label, blocked=p.regime_block.get(s.strategy, [])),
                       s.side):  # fmt: skip
        return f"regime: {s.strategy} skips {label} markets"
    return None


def _funding(s: Setup, lake: Lake, p: SignalSettings, _h, context: dict) -> str | None:
    close = s.ts + timeframe_ms(s.timeframe)
    rate = float(filters.funding_known(lake.read_funding(s.exchange, s.symbol), close))
    if math.isnan(rate):
        context["funding_bias"] = 0
        return None
    sign = 1 if s.side == "long" else -1
    context["funding_rate"] = rate
    context["funding_bias"] = int(-np.sign(rate) * sign)  # positive funding: longs pay
    if filters.refuses(filters.funding_mask(rate, extreme=p.funding_extreme), s.side):
        return f"funding: {s.side}s are crowded ({rate:+.4%} per period)"
    return None


def _htf(s: Setup, lake: Lake, p: SignalSettings, _h, context: dict) -> str | None:
    higher = p.htf.get(s.timeframe)
    if not p.htf_bias or higher is None:
        return None
    close = s.ts + timeframe_ms(s.timeframe)
    frame = _last_bars(lake, s, higher, close - timeframe_ms(higher), filters.htf_bars(p.htf_ema))
    bias = int(filters.htf_bias(frame, close, timeframe=higher, period=p.htf_ema))
    if bias == 0:
        context["htf_bias"] = "unknown"
        return None
    context["htf_bias"] = "long" if bias > 0 else "short"
    if filters.refuses(filters.bias_mask(bias), s.side):
        return f"htf: {higher} close is {'above' if bias > 0 else 'below'} its EMA({p.htf_ema})"
    return None


def _cot(s: Setup, book: BiasBook, context: dict) -> str | None:
    reading = book.at(s.symbol.split("/")[0], s.ts + timeframe_ms(s.timeframe))
    context["cot_bias"] = reading.label  # "none" (no report, or too old) never refuses
    context["cot_reason"] = reading.reason
    against = {"long": "BEARISH", "short": "BULLISH"}[s.side]
    return f"cot: {reading.reason}" if reading.label == against else None


def _cooldown(s: Setup, _lake, p: SignalSettings, history: History, context: dict) -> str | None:
    """The backtest's rule (``risk.cooldown``): the loss counts from the close of the bar of
    the setup's timeframe its exit filled in, the minutes rounded up to whole bars."""
    loss = history.last_loss_ms.get(s.symbol)
    if loss is None:
        return None
    bar_ms = timeframe_ms(s.timeframe)
    bars = cooldown.cooldown_bars(round(p.cooldown_after_loss_min * 60_000), bar_ms)
    if cooldown.cooling(cooldown.bar_of(s.ts, bar_ms), cooldown.bar_of(loss, bar_ms), bars):
        minutes = (s.ts + bar_ms - loss) / 60_000
        return f"cooldown: a loss on {s.symbol} {minutes:.0f} min ago"
    return None


def _one_per_symbol(decisions: list[Decision], history: History) -> None:
    best: dict[str, Decision] = {}
    for d in decisions:
        if not d.accepted:
            continue
        if (
            d.setup.symbol in history.live_signal
            and history.live_signal[d.setup.symbol] != d.setup.id
        ):
            d.accepted, d.reason = False, "one per symbol: a signal is already live"
            continue
        rival = best.get(d.setup.symbol)
        if rival is None or (d.setup.confidence, d.setup.ts) > (
            rival.setup.confidence,
            rival.setup.ts,
        ):
            if rival is not None:
                rival.accepted, rival.reason = False, "one per symbol: a better setup won"
            best[d.setup.symbol] = d
        else:
            d.accepted, d.reason = False, "one per symbol: a better setup won"


def _last_bars(lake: Lake, s: Setup, timeframe: str, last_open: int, count: int) -> pd.DataFrame:
    """The last ``count`` stored bars of ``timeframe`` up to the one opening at ``last_open``,
    counted in bars (a hole in the history reaches further back), as the backtest's whole
    series has them before that bar (``filters``: the same warm-up)."""
    tf_ms = timeframe_ms(timeframe)
    end = bar_open(last_open, tf_ms)
    start = end - (count - 1) * tf_ms
    frame = lake.read_candles(s.exchange, s.symbol, timeframe, start, end)
    if len(frame) < count:
        first = lake.first_candle_time(s.exchange, s.symbol, timeframe)
        if first is not None and first < start:  # a hole inside the window: read further back
            frame = lake.read_candles(s.exchange, s.symbol, timeframe, None, end).tail(count)
    return frame.reset_index(drop=True)
