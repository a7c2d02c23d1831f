"""Position management, shared by backtest and live: the policy (``policy``: the rules as
numbers), the position state machine (``step``: one compiled step per bar or price event, the
one the backtest kernel runs) and its plain-Python face (``position.Position``)."""

from cryptobot.manage.policy import Policy
from cryptobot.manage.position import Action, Bar, BarInputs, Position, PositionError

__all__ = ["Action", "Bar", "BarInputs", "Policy", "Position", "PositionError"]
