"""Position-management rules as compiled scalar functions plus the policy they read.

The backtest calls these inside its compiled loop and ``manage`` will call them on live
positions, so a rule means the same thing in both. All are evaluated on *closed* bars: a stop
moved because of bar t applies from bar t+1. Which rules a strategy's trades follow is its
``manage.profiles.<strategy>`` merged over ``manage`` (``ManageSettings.for_strategy``).

- **Take-profit ladder**: close ``pct`` % of the original size with a limit at each ``r``
  multiple of the initial risk (the distance from the entry fill to the initial stop). In whole
  steps of the market (``ladder_lots``): each slice is rounded down to the step, but a slice
  smaller than one step still gets one step while the position has steps left, nearest target
  first (a larger slice's extra steps never take the one a later slice is owed: 5 steps on a
  1/1/1/40/1 % ladder close 1 each), and what is left after the ladder trails (3 steps on a
  25/25/25 ladder: 1, 1, 1 and nothing trails; 2 steps: 1 at 1R, 1 at 2R). A ladder of 100 %
  closes the whole position: its last target takes what the rounding left.
- **Breakeven**: once the best price since entry has reached ``breakeven_after_r`` R (the bar
  the 1R partial fills in, for a ladder starting at that R), the stop moves to the average
  entry price.
- **ATR trailing tiers**: the stop trails the best price by ``atr_mult`` x ATR, the multiple of
  the highest tier whose ``at_r`` the best price has reached; it is applied to the whole
  remaining position and never loosens. Off unless ``trail_rest``. With
  ``trail_weak_atr_mult`` the trail tightens to that multiple on a bar whose trend is not strong
  (``weakening``: ADX(14) below ``strong_trend_adx`` or not rising), and goes back to the tier's
  multiple when it is (the stop itself never moves back).
- **Time stop**: a trade whose best price has not reached ``time_stop_until_r`` R within
  ``time_stop_minutes`` is closed at the next open (a scalp that goes nowhere is dead money;
  momentum is given 72 h unless it reached 2R). Unset, it is ``TIME_STOP_BARS`` bars of the
  timeframe the policy runs on, the strategy's own.
- **Strategy exits** (``exit_on``): per-bar events from the strategy's own bars close the whole
  position at the next open, each with its reason (``manage.exits``): ``regime_change``,
  ``ema_cross``, ``rsi_divergence``.
- **Scale-in, the position-manager rule** (plan 3): a position is a stack of legs, the first
  being the entry. When the newest leg's profit on its own margin (ROE: its price move x the
  leverage) reaches ``trigger_margin_profit_pct`` at a close, at the next open: a new leg is
  added at market with ``add_size_mult`` x the first leg's margin (entry 100 at 10x, 1 unit =
  margin 10: at 110 the add is 10 x 10 / 110 = 0.909 units), ``close_original_frac`` of the
  leg that triggered is closed, and with ``stop_to_breakeven`` that leg's own stop goes to its
  entry price (the other legs keep the position's stop). The new leg triggers the next round
  from its own entry; at most ``max_adds`` rounds. A leg's own stop closes that leg only (a
  BREAKEVEN fill); take-profits take from the oldest leg first; the position's stop, the
  liquidation and every exit at the open close all legs. Quantities are whole steps.
- **Positions without a stop** (opened by hand, or sized by margin with no stop): the R of the
  R-based rules (ladder, breakeven, trail tiers, the time stop's exemption) is
  ``manual_risk_pct`` % of the entry when configured, else the distance to the liquidation
  price, else there is no R and those rules stay off (``position_risk``).
"""

import math
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from cryptobot.core.jit import njit
from cryptobot.core.settings import ExitRule, ManageRules
from cryptobot.fills.model import DIVERGENCE, EMA_CROSS, REGIME
from cryptobot.manage.targets import ladder_lots_into

#: the reason code each strategy exit is booked with (fills and trades)
EXIT_REASONS: dict[ExitRule, int] = {
    "regime_change": REGIME,
    "ema_cross": EMA_CROSS,
    "rsi_divergence": DIVERGENCE,
}

TIME_STOP_BARS = 30

#: the policy as the compiled step reads it (``Policy.rules``): ``scalars`` by the ``P_*``
#: indices, the ladder (R, fraction of the original size), the trail tiers (R, ATR multiple)
#: and the reason code of each strategy exit column
Rules = namedtuple("Rules", ["scalars", "tp_r", "tp_frac", "trail_r", "trail_mult", "exit_kinds"])


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


@njit(cache=True, _nrt=False)
def trail_multiple(r_reached: float, tiers_r: np.ndarray, tiers_mult: np.ndarray) -> float:
    """ATR multiple of the highest tier reached (NaN when none is)."""
    mult = math.nan
    for j in range(tiers_r.shape[0]):
        if r_reached >= tiers_r[j] or (math.isnan(r_reached) and tiers_r[j] <= 0.0):
            mult = tiers_mult[j]
    return mult


@njit(cache=True)
def weakened(mult: float, weak: bool, weak_mult: float) -> float:
    """The trail's multiple on a bar: the tighter weak-trend multiple while the trend weakens
    (only once a tier has started the trail; NaN ``weak_mult``: no such rule)."""
    if weak and weak_mult < mult:  # False for a NaN on either side
        return weak_mult
    return mult


@njit(cache=True)
def time_stopped(limit_bars: float, bars_held: int, r_best: float, until_r: float) -> bool:
    """Whether a trade held ``bars_held`` bars (its entry bar included) is closed by the time
    stop: it has run out its ``limit_bars`` (0: no time stop) without its best price reaching
    ``until_r`` R."""
    return limit_bars > 0 and bars_held >= limit_bars and not r_best >= until_r


@njit(cache=True)
def ladder_lots(qty: float, fracs: np.ndarray, step: float) -> np.ndarray:
    """The quantity of each take-profit slice (``fracs`` of ``qty``, nearest target first) in
    whole ``step``s (0: exact fractions): see the module docstring for the rule."""
    out = np.zeros(fracs.shape[0])
    ladder_lots_into(out, qty, fracs, step)
    return out


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
    ``exit_on_signal`` closes at the next open when the strategy signals the other side;
    ``exit_kinds`` = the reason code of each strategy exit column (``Signals.exits``);
    ``manual_risk_pct``: the R of a position without a stop (``position_risk``).
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
    time_stop_until_r: float = 1.0
    weak_trail_mult: float = math.nan
    exit_kinds: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    manual_risk_pct: float = math.nan

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
        cls, m: ManageRules, bar_minutes: float, exit_on_signal: bool = False
    ) -> "Policy":
        ladder = sorted(m.take_profit_ladder, key=lambda s: s.r)
        tiers = sorted(m.trailing_atr_tiers, key=lambda t: t.at_r) if m.trail_rest else []
        weak = m.trail_weak_atr_mult if m.trail_rest and m.trail_weak_atr_mult else math.nan
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
            time_stop_until_r=m.time_stop_until_r,
            weak_trail_mult=weak,
            exit_kinds=np.array([EXIT_REASONS[e] for e in m.exit_on], dtype=np.int64),
            manual_risk_pct=m.manual_risk_pct or math.nan,
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
                self.time_stop_until_r,
                self.weak_trail_mult,
                self.manual_risk_pct,
            ],
            dtype=np.float64,
        )

    def rules(self) -> Rules:
        """The policy as the compiled step reads it."""
        return Rules(
            self.scalars(),
            np.ascontiguousarray(self.tp_r, dtype=np.float64),
            np.ascontiguousarray(self.tp_frac, dtype=np.float64),
            np.ascontiguousarray(self.trail_r, dtype=np.float64),
            np.ascontiguousarray(self.trail_mult, dtype=np.float64),
            np.ascontiguousarray(self.exit_kinds, dtype=np.int64),
        )

    @property
    def max_fills(self) -> int:
        """Most fills one trade can make: entry, one per target, per add three (the add, the
        cut of the leg that triggered, that leg's own stop), the final exit."""
        return 2 + self.tp_r.shape[0] + 3 * self.scale_max_adds


P_BREAKEVEN_R, P_TIME_BARS, P_EXIT_ON_SIGNAL, P_STOP_DELAY = 0, 1, 2, 3
P_SCALE_TRIGGER, P_SCALE_ADD, P_SCALE_CLOSE, P_SCALE_BE, P_SCALE_MAX = 4, 5, 6, 7, 8
P_TIME_UNTIL_R, P_WEAK_MULT, P_MANUAL_RISK = 9, 10, 11


def time_stop_bars(minutes: float | None, bar_minutes: float) -> int:
    """Bars a trade may go nowhere: the configured minutes rounded up to whole bars, or
    ``TIME_STOP_BARS`` when none are configured (0 minutes: no time stop)."""
    if minutes is None:
        return TIME_STOP_BARS
    return math.ceil(minutes / bar_minutes) if minutes > 0 else 0
