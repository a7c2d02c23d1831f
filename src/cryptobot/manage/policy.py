"""Position-management rules as compiled scalar functions plus the policy they read.

The backtest calls these inside its compiled loop and ``manage`` will call them on live
positions, so a rule means the same thing in both. All are evaluated on *closed* bars: a stop
moved because of bar t applies from bar t+1.

- **Take-profit ladder**: close ``pct`` % of the original size with a limit at each ``r``
  multiple of the initial risk (the distance from the entry fill to the initial stop).
- **Breakeven**: once the best price since entry has reached ``breakeven_after_r`` R, the stop
  moves to the average entry price.
- **ATR trailing tiers**: the stop trails the best price by ``atr_mult`` x ATR, the multiple of
  the highest tier whose ``at_r`` the best price has reached (1.5 → 1.2 → 1.0 → 0.8 by
  default); it is applied to the whole remaining position and never loosens. Off unless
  ``trail_rest``.
- **Time stop**: a trade that has not reached ``breakeven_after_r`` R within
  ``time_stop_minutes`` is closed at the next open (a scalp that goes nowhere is dead money).
  Unset (the default), it is ``TIME_STOP_BARS`` bars of the timeframe the policy runs on, the
  strategy's own: 30 minutes for a 1m scalp, 30 hours for 1h momentum, not 30 minutes for both.
- **Scale-in** (plan 3): when the open profit on margin reaches ``trigger_margin_profit_pct``,
  add ``add_size_mult`` x the position at market, close ``close_original_frac`` of the position
  as it was before the add, and move the stop to the new average entry; at most ``max_adds``.
"""

import math
from dataclasses import dataclass

import numpy as np

from cryptobot.core.jit import njit
from cryptobot.core.settings import ManageSettings

TIME_STOP_BARS = 30


@njit(cache=True)
def r_multiple(side: int, entry: float, risk: float, price: float) -> float:
    """How many initial risks ``price`` is in profit (NaN without a risk)."""
    if not risk > 0.0:
        return math.nan
    return side * (price - entry) / risk


@njit(cache=True)
def tighter(side: int, stop: float, candidate: float) -> float:
    """The tighter of two stops: a stop only ever moves towards the profit side."""
    if math.isnan(candidate):
        return stop
    if math.isnan(stop):
        return candidate
    return max(stop, candidate) if side > 0 else min(stop, candidate)


@njit(cache=True)
def trail_multiple(r_reached: float, tiers_r: np.ndarray, tiers_mult: np.ndarray) -> float:
    """ATR multiple of the highest tier reached (NaN when none is)."""
    mult = math.nan
    for j in range(tiers_r.shape[0]):
        if r_reached >= tiers_r[j] or (math.isnan(r_reached) and tiers_r[j] <= 0.0):
            mult = tiers_mult[j]
    return mult


@njit(cache=True)
def trail_stop(side: int, best: float, atr: float, mult: float) -> float:
    if math.isnan(atr) or math.isnan(mult):
        return math.nan
    return best - side * mult * atr


@njit(cache=True)
def margin_profit_pct(side: int, entry: float, price: float, leverage: float) -> float:
    """Open profit as a percentage of the initial margin (notional / leverage)."""
    return side * (price - entry) / entry * leverage * 100.0


@dataclass(frozen=True)
class Policy:
    """The management settings as the arrays and numbers the compiled loop reads.

    NaN switches a rule off. ``stop_delay_bars`` = bars after the entry bar before the stop is
    live (0: from the entry bar itself, which a stop placed with the entry is);
    ``exit_on_signal`` closes at the next open when the strategy signals the other side.
    """

    tp_r: np.ndarray
    tp_frac: np.ndarray
    trail_r: np.ndarray
    trail_mult: np.ndarray
    breakeven_r: float = math.nan
    time_stop_bars: int = 0
    exit_on_signal: bool = False
    stop_delay_bars: int = 0
    scale_trigger_pct: float = math.nan
    scale_add_mult: float = 1.0
    scale_close_frac: float = 0.5
    scale_to_breakeven: bool = True
    scale_max_adds: int = 0

    @classmethod
    def none(cls, exit_on_signal: bool = False, stop_delay_bars: int = 0) -> "Policy":
        """No management at all: the position lives until its stop, a signal or the end."""
        empty = np.empty(0)
        return cls(
            empty,
            empty,
            empty,
            empty,
            exit_on_signal=exit_on_signal,
            stop_delay_bars=stop_delay_bars,
        )

    @classmethod
    def from_settings(
        cls, m: ManageSettings, bar_minutes: float, exit_on_signal: bool = False
    ) -> "Policy":
        ladder = sorted(m.take_profit_ladder, key=lambda s: s.r)
        tiers = sorted(m.trailing_atr_tiers, key=lambda t: t.at_r) if m.trail_rest else []
        s = m.scale_in
        return cls(
            tp_r=np.array([x.r for x in ladder], dtype=np.float64),
            tp_frac=np.array([x.pct / 100.0 for x in ladder], dtype=np.float64),
            trail_r=np.array([t.at_r for t in tiers], dtype=np.float64),
            trail_mult=np.array([t.atr_mult for t in tiers], dtype=np.float64),
            breakeven_r=m.breakeven_after_r if m.breakeven_after_r > 0 else math.nan,
            time_stop_bars=time_stop_bars(m.time_stop_minutes, bar_minutes),
            exit_on_signal=exit_on_signal,
            scale_trigger_pct=s.trigger_margin_profit_pct if s.enabled else math.nan,
            scale_add_mult=s.add_size_mult,
            scale_close_frac=s.close_original_frac,
            scale_to_breakeven=s.stop_to_breakeven,
            scale_max_adds=s.max_adds if s.enabled else 0,
        )

    def scalars(self) -> np.ndarray:
        """The scalar rules in the order the compiled loop reads them (``P_*`` indices)."""
        return np.array(
            [
                self.breakeven_r,
                self.time_stop_bars,
                float(self.exit_on_signal),
                self.stop_delay_bars,
                self.scale_trigger_pct,
                self.scale_add_mult,
                self.scale_close_frac,
                float(self.scale_to_breakeven),
                self.scale_max_adds,
            ],
            dtype=np.float64,
        )

    @property
    def max_fills(self) -> int:
        """Most fills one trade can make: entry, one per target, two per add, final exit."""
        return 2 + self.tp_r.shape[0] + 2 * self.scale_max_adds


P_BREAKEVEN_R, P_TIME_BARS, P_EXIT_ON_SIGNAL, P_STOP_DELAY = 0, 1, 2, 3
P_SCALE_TRIGGER, P_SCALE_ADD, P_SCALE_CLOSE, P_SCALE_BE, P_SCALE_MAX = 4, 5, 6, 7, 8


def time_stop_bars(minutes: float | None, bar_minutes: float) -> int:
    """Bars a trade may go nowhere: the configured minutes rounded up to whole bars, or
    ``TIME_STOP_BARS`` when none are configured (0 minutes: no time stop)."""
    if minutes is None:
        return TIME_STOP_BARS
    return math.ceil(minutes / bar_minutes) if minutes > 0 else 0
