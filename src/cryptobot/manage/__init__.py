"""Position management, shared by backtest and live: the policy (``policy``: the rules as
numbers), the position state machine (``step``: one compiled step per bar or price event, the
one the backtest kernel runs; its array layout is its interface) and its plain-Python face
(``position.Position``); the take-profit rungs a sized order carries are its ladder priced
(``targets``).

It says what to do with a position (move the stop, take a partial, add, close); placing the
orders is the caller's, and fills are ``fills/``'s."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "exits": ("EXIT_LONGS", "EXIT_SHORTS", "regime_exits", "weakening"),
        "policy": ("Policy", "Rules", "r_multiple"),
        "position": ("Action", "Bar", "BarInputs", "Position", "PositionError"),
        "targets": ("Rung", "ladder_targets", "rung_quantities"),
        "ticks": ("on_tick",),
    },
    modules=("step",),
)
