"""What a strategy is, as the drivers (scan, backtest, the composer) read it: its detector and
timeframes, plus the attributes that say how it differs from the rest, so no driver keeps a
list of strategy names with special cases. Kept free of pandas: a backtest of a strategy with
``bar_entries`` loads this module and its own, nothing heavier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cryptobot.core.setup import Setup
    from cryptobot.strategies.base import SymbolData


@dataclass(frozen=True)
class BarEntries:
    """A strategy's entries over a symbol's whole bar array: ``side`` +1/-1 at the closes that
    enter (the entry is the next open), 0 elsewhere; ``stop_distance`` per bar, the stop's
    distance from the entry fill (None: no stop)."""

    side: np.ndarray
    stop_distance: np.ndarray | None = None


@dataclass(frozen=True)
class Reference:
    """A fixed definition of the strategy that two independent engines can reproduce to the
    cent: with no sizing asked for, a backtest trades ``units`` base units, without management
    or margin, paying ``taker_fee`` per fill and nothing else (funding only when ``funding``),
    its stop live ``stop_delay_bars`` after the entry bar."""

    units: float = 1.0
    funding: bool = False
    taker_fee: float = 0.0004
    stop_delay_bars: int = 1


@dataclass(frozen=True)
class Strategy:
    """A named detector and the timeframes it reads, with what sets it apart:

    - ``context``: for a detector that reads more than candles, a loader the drivers call once
      per symbol with ``(lake=, settings=, exchange=, symbol=, params=, start=, end=)``; its
      result reaches the detector as ``SymbolData.context[name]``. The detector stays pure.
    - ``bar_entries``: ``(bars, params) -> BarEntries`` over a symbol's ``(n, 6)`` array (open,
      high, low, close, volume, ATR(14)), for a rule simple enough to vectorise; a backtest
      reads it instead of building a setup per bar (a million bars in milliseconds). The
      detector must give setups at the same bars (one rule, two shapes).
    - ``exits_on_signal``: its signals are also its exits (an opposite signal closes the
      position and opens the other way), so no filter may drop one.
    - ``any_timeframe``: it runs on whatever timeframe the run asks for (``--timeframe``
      replaces its ``timeframe`` parameter); otherwise its timeframes are its own.
    - ``reads_benchmark``: it measures each symbol against the benchmark (``scan.benchmark``,
      relative strength), so a backtest loads the benchmark's candles of its timeframes too
      (``SymbolData.benchmark``).
    - ``reference``: its fixed definition (``Reference``) a run without sizing follows.
    - ``stop_param``: for a strategy whose entries may come without a stop, the parameter that
      gives them one (None in its settings: no stop, so no entry can be sized by its risk).
    """

    name: str
    timeframes: Callable[[Any], list[str]]
    detect: Callable[[SymbolData, Any], list[Setup]]
    context: Callable[..., Any] | None = None
    bar_entries: Callable[[np.ndarray, Any], BarEntries] | None = None
    exits_on_signal: bool = False
    any_timeframe: bool = False
    reads_benchmark: bool = False
    reference: Reference | None = None
    stop_param: str | None = None
