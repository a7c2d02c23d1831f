"""The strategies by name, with the settings section each one reads."""

from typing import Any

from cryptobot.core.errors import ConfigError
from cryptobot.core.settings import Settings
from cryptobot.strategies import NAMES, bos_fvg_fib, breakout, cot_crowd, momentum
from cryptobot.strategies.base import Strategy

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (bos_fvg_fib.STRATEGY, momentum.STRATEGY, breakout.STRATEGY, cot_crowd.STRATEGY)
}
assert tuple(STRATEGIES) == NAMES


def resolve(names: list[str], settings: Settings) -> list[tuple[Strategy, Any]]:
    """The named strategies with their parameters; an unknown name, or none, is a clear error."""
    if not names:
        raise ConfigError(f"no strategy given; choose from {', '.join(STRATEGIES)}")
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise ConfigError(
            f"unknown strategy {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}"
        )
    return [(STRATEGIES[n], getattr(settings.strategies, n)) for n in names]
