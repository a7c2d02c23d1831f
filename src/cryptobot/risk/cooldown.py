"""Cooldown after a loss: the one rule, for ``signal`` (minutes, the journal's loss time) and
for every backtest driver (bars: the kernel's units loop, the portfolio, the stepwise composer).

The rule, in bars of the signal's timeframe: a losing trade counts from the close of the bar
its exit filled in, and a signal whose bar closes less than ``signal.cooldown_after_loss_min``
after that close is refused. So a signal at bar ``t`` after a loss whose exit filled in bar
``e`` is refused while ``0 <= t - e < cooldown_bars``, and ``e + cooldown_bars`` is the first
signal bar allowed, where ``cooldown_bars`` is the minutes rounded **up** to whole bars
(60 min on 5m bars is 12 bars; 7 min on 5m bars is 2: a cooldown is never shorter than asked).

Why the exit's bar and not its exact minute: a backtest knows an exit only to its bar (a stop
touched somewhere inside it, or a market exit at its open), and it must refuse exactly the
setups ``signal`` refuses on the same history. ``signal`` therefore puts the journal's exit time
on its bar too (``bar_of``), which is at most one bar stricter than counting from the minute.

The functions are plain Python on ints so ``signal`` calls them without loading numba; the
compiled loops call the compiled twin of the same source (``allowed_after`` is a
``core.rules.rule``): one rule.
"""

from cryptobot.core.rules import rule


def cooldown_bars(cooldown_ms: int, bar_ms: int) -> int:
    """The cooldown in whole bars of ``bar_ms``, rounded up (0: no cooldown)."""
    if cooldown_ms <= 0:
        return 0
    return -(-cooldown_ms // bar_ms)


def bar_of(time_ms: int, bar_ms: int) -> int:
    """The index (bars since the epoch) of the bar of ``bar_ms`` holding ``time_ms``."""
    return time_ms // bar_ms


def cooling(signal_bar: int, loss_bar: int, bars: int) -> bool:
    """Whether a signal at ``signal_bar`` falls in the cooldown of a loss whose exit filled in
    ``loss_bar`` (both indices on the same bar grid)."""
    return 0 <= signal_bar - loss_bar < bars


@rule(cache=True, _nrt=False)
def allowed_after(allowed: int, net: float, exit_bar: int, bars: int) -> int:
    """The first signal bar allowed after a trade that closed in ``exit_bar`` with ``net``:
    ``allowed`` (the driver's own rule: after the trade), later by the cooldown after a loss."""
    if net < 0.0 and bars > 0:
        return max(allowed, exit_bar + bars)
    return allowed
