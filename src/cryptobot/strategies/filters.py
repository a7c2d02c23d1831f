"""The signal filters as rules over bars: one rule each, read at one bar by ``signal`` (the
setup's) and over every bar of a symbol by ``backtest``, so both refuse the same entries.

Each rule uses only what is known at a bar's close:

- **regime** (``signal.regime_filter``): ``analysis.regime`` of the bar's timeframe at the bar,
  refusing both sides where the strategy skips that regime (``signal.regime_block``);
- **funding**: the newest stored rate at or before the close refuses longs when it is >=
  ``signal.funding_extreme`` and shorts when it is <= minus that (the crowded side pays);
- **htf** (``signal.htf_bias``): the newest *closed* bar of the higher timeframe
  (``signal.htf``) by the close, its close against its EMA(``signal.htf_ema``): above refuses
  shorts, below refuses longs; fewer than ``htf_ema`` bars stored is no bias (nothing refused);
- **cot** (``cot.signal_filter``): the weekly COT bias published by the close
  (``cot.bias.BiasBook``): BULLISH refuses shorts, BEARISH longs.

A rule gives, per bar, the sides it refuses as a mask (``LONG``/``SHORT`` bits). The backtest
zeroes an entry that any rule refuses and counts it under the first one, in ``FILTERS`` order,
which is the order ``signal`` checks them in (its cooldown, which sits between htf and cot there,
depends on the trades and is applied by the backtest's drivers, ``risk.cooldown``).

**Warm-up.** The regime's ADX and the bias's EMA are recursive: a value depends, a little, on
where the bars it was computed over began. The backtest computes them over the whole stored
series; ``signal`` reads the last ``REGIME_BARS`` (``htf_bars(period)``) stored bars up to the
setup, counted in bars, not in time, so a hole in the history does not shorten them. That
is long enough for the seed's weight to fall below a float's resolution (ADX: Wilder's 13/14
per bar over 1,000 bars, as ``scan``'s warm-up; EMA(p): ((p-1)/(p+1))^n < 2^-60), so both read
the same value, and a series shorter than that is read whole by both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cryptobot.core.timeframes import timeframe_ms

if TYPE_CHECKING:
    import pandas as pd

    from cryptobot.core.settings import Settings
    from cryptobot.data.lake import Lake

LONG, SHORT = 1, 2  # bits of a mask of refused sides
BOTH = LONG | SHORT
FILTERS = ("regime", "funding", "htf", "cot")  # signal's order of the per-bar rules

#: bars a regime label is computed over: the ADX warm-up plus the volatility percentile's
#: window (``vol_lookback`` 200 of ``vol_period`` 20 returns)
REGIME_BARS = 1000 + 200 + 20 + 1


def htf_bars(period: int) -> int:
    """Bars an EMA(``period``) is computed over so its seed (the mean of its first ``period``
    closes) weighs less than 2^-60 of the value: where two reads that start at different bars
    agree to the last bit (EMA(50): 1,090 bars)."""
    if period <= 1:
        return 1
    return period + math.ceil(60 * math.log(2) / math.log((period + 1) / (period - 1)))


def side_bits(side: np.ndarray | int | str) -> np.ndarray:
    """The mask bit of each side: +1 / "long" -> ``LONG``, -1 / "short" -> ``SHORT``, 0 -> 0."""
    if isinstance(side, str):
        side = 1 if side == "long" else -1
    side = np.asarray(side)
    return np.where(side > 0, LONG, np.where(side < 0, SHORT, 0)).astype(np.uint8)


def refuses(mask: np.ndarray | int, side: np.ndarray | int | str) -> np.ndarray:
    """Whether ``mask`` refuses ``side`` (per bar, or one bar)."""
    return (np.asarray(mask, dtype=np.uint8) & side_bits(side)) != 0


# ---- the rules ----------------------------------------------------------------------------
def regime_mask(labels: np.ndarray | str, *, blocked: Iterable[str]) -> np.ndarray:
    """Both sides refused where the regime label is one the strategy skips."""
    labels = np.asarray(labels, dtype=object)
    hit = np.zeros(labels.shape, dtype=bool)
    for label in blocked:
        hit |= labels == label
    return np.where(hit, BOTH, 0).astype(np.uint8)


def regime_labels(frame: pd.DataFrame) -> np.ndarray:
    """``analysis.regime``'s label per bar of ``frame`` (``unknown`` in its warm-up)."""
    from cryptobot.analysis.regime import regime

    return regime(frame).to_numpy(dtype=object)


def funding_known(funding: pd.DataFrame, closes: np.ndarray) -> np.ndarray:
    """Per close time, the newest stored funding rate at or before it (NaN: none yet)."""
    closes = np.asarray(closes, dtype=np.int64)
    if funding is None or not len(funding):
        return np.full(closes.shape, np.nan)
    times = funding["timestamp"].to_numpy(dtype=np.int64)
    rates = funding["funding_rate"].to_numpy(dtype=np.float64)
    i = np.searchsorted(times, closes, side="right") - 1
    return np.where(i >= 0, rates[np.maximum(i, 0)], np.nan)


def funding_mask(rates: np.ndarray | float, *, extreme: float) -> np.ndarray:
    """Longs refused where the rate is >= ``extreme``, shorts where it is <= -``extreme``."""
    rates = np.asarray(rates, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # NaN (no rate known) refuses nothing
        longs, shorts = rates >= extreme, rates <= -extreme
    return (np.where(longs, LONG, 0) | np.where(shorts, SHORT, 0)).astype(np.uint8)


def htf_bias(htf: pd.DataFrame, closes: np.ndarray, *, timeframe: str, period: int) -> np.ndarray:
    """Per close time, the bias of the newest bar of ``htf`` (bars of ``timeframe``) closed by
    then: +1 its close above its EMA(``period``), -1 at or below, 0 unknown (fewer than
    ``period`` bars of it stored by then)."""
    from cryptobot.analysis.ta import talib

    closes = np.asarray(closes, dtype=np.int64)
    if htf is None or len(htf) < period:
        return np.zeros(closes.shape, dtype=np.int8)
    price = htf["close"].to_numpy(dtype=np.float64)
    ends = htf["timestamp"].to_numpy(dtype=np.int64) + timeframe_ms(timeframe)
    i = np.searchsorted(ends, closes, side="right") - 1
    k = np.maximum(i, 0)
    above = price[k] > talib.EMA(price, period)[k]
    return np.where(i >= period - 1, np.where(above, 1, -1), 0).astype(np.int8)


def bias_mask(bias: np.ndarray | int) -> np.ndarray:
    """The side against a bias refused: +1 refuses shorts, -1 longs, 0 nothing."""
    bias = np.asarray(bias)
    return np.where(bias > 0, SHORT, np.where(bias < 0, LONG, 0)).astype(np.uint8)


# ---- a backtest's filters -----------------------------------------------------------------
@dataclass(frozen=True)
class BarFilters:
    """Per bar of one symbol, the sides each applied rule refuses at that close."""

    masks: Mapping[str, np.ndarray]

    def first_refusal(self, side: np.ndarray) -> np.ndarray:
        """Per bar, 1 + the index in ``FILTERS`` of the first rule refusing the side signalled
        there; 0 where none does (or nothing is signalled)."""
        bits = side_bits(side)
        out = np.zeros(len(bits), dtype=np.uint8)
        for k, name in enumerate(FILTERS):
            mask = self.masks.get(name)
            if mask is not None:
                out[(out == 0) & ((mask & bits) != 0)] = k + 1
        return out


@dataclass(frozen=True)
class EntryFilters:
    """What a backtest applies to a strategy's entries: the rules applied (in ``FILTERS``
    order), each symbol's masks, and what the run should be told about missing data."""

    applied: tuple[str, ...] = ()
    symbols: Mapping[str, BarFilters] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def first_refusal(self, symbol: str, side: np.ndarray) -> np.ndarray:
        found = self.symbols.get(symbol)
        return found.first_refusal(side) if found else np.zeros(len(side), dtype=np.uint8)


def entry_filters(*, lake: Lake, settings: Settings, exchange: str, strategy: str,
                  timeframe: str, frames: Mapping[str, pd.DataFrame],
                  end: int | None) -> EntryFilters:  # fmt: skip
    """The rules of ``settings.signal`` (and ``cot.signal_filter``) over every bar of each
    symbol's ``frames`` (its stored bars of ``timeframe``), reading funding, higher-timeframe
    candles and COT reports from ``lake`` as ``signal`` reads them (stored data only: a higher
    timeframe that is not stored is an unknown bias there too), up to ``end``."""
    p = settings.signal
    blocked = p.regime_block.get(strategy, [])
    higher = p.htf.get(timeframe) if p.htf_bias else None
    book = _cot_book(lake, settings)
    applied = [name for name, on in (("regime", p.regime_filter and bool(blocked)),
                                      ("funding", True), ("htf", higher is not None),
                                      ("cot", book is not None)) if on]  # fmt: skip
    notes: list[str] = []
    if settings.cot.signal_filter and book is None:
        notes.append("cot.signal_filter is on but no COT reports are stored; none applied")
    tf_ms = timeframe_ms(timeframe)
    symbols = {}
    for symbol, frame in frames.items():
        closes = frame["timestamp"].to_numpy(dtype=np.int64) + tf_ms
        masks = {}
        if "regime" in applied:
            masks["regime"] = regime_mask(regime_labels(frame), blocked=blocked)
        funding = lake.read_funding(exchange, symbol)
        if not len(funding):
            notes.append(f"{symbol}: no funding stored; the funding filter refuses nothing")
        masks["funding"] = funding_mask(funding_known(funding, closes), extreme=p.funding_extreme)
        if higher is not None:
            htf = lake.read_candles(exchange, symbol, higher, None, end)
            if len(htf) < p.htf_ema:
                notes.append(_htf_missing(symbol=symbol, timeframe=timeframe, higher=higher,
                                          stored=len(htf), needed=p.htf_ema))  # fmt: skip
            masks["htf"] = bias_mask(htf_bias(htf, closes, timeframe=higher, period=p.htf_ema))
        if book is not None:
            asset = symbol.split("/")[0]
            masks["cot"] = bias_mask(book.sides(asset, closes))
            note = book.gap_note(asset, closes)  # bars without a usable report pass
            if note:
                notes.append(note)
        symbols[symbol] = BarFilters(masks)
    return EntryFilters(tuple(applied), symbols, tuple(notes))


def _htf_missing(*, symbol: str, timeframe: str, higher: str, stored: int, needed: int) -> str:
    """What a user reads when the higher timeframe's candles are missing or too few: which
    timeframe, why it matters (no bias: the filter refuses nothing, as in ``signal``) and what
    to fetch."""
    have = "none is stored" if stored == 0 else f"only {stored} are stored"
    return (
        f"{symbol}: the higher-timeframe filter reads {needed} {higher} candles "
        f"(signal.htf.{timeframe}, EMA {needed}) and {have}, so it refuses nothing; run "
        f"`cryptobot fetch --symbols {symbol} --timeframes {higher}` (or set "
        "signal.htf_bias: false)"
    )


def _cot_book(lake: Lake, settings: Settings):
    """The COT bias book when ``cot.signal_filter`` is on and reports are stored, else None."""
    if not settings.cot.signal_filter:
        return None
    from cryptobot.cot.bias import BiasBook  # COT data loads only for a filter that uses it

    book = BiasBook(lake.root, settings.cot)
    return None if book.frame.empty else book


def counts(codes: Sequence[np.ndarray]) -> dict[str, int]:
    """Entries refused by each rule, summed over ``codes`` (``first_refusal``'s per bar)."""
    total = np.zeros(len(FILTERS) + 1, dtype=np.int64)
    for c in codes:
        total += np.bincount(c, minlength=len(FILTERS) + 1)
    return {name: int(total[k + 1]) for k, name in enumerate(FILTERS)}
