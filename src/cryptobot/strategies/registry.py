"""The strategies by name, with the settings section each one reads. A strategy's module is
imported when it is first asked for: a backtest of one strategy loads its detector alone."""

from importlib import import_module
from typing import Any

from cryptobot.core.errors import ConfigError
from cryptobot.core.settings import Settings
from cryptobot.strategies import NAMES
from cryptobot.strategies.spec import Strategy


def lookup(name: str) -> Strategy:
    """The named strategy; an unknown name, or none, is a clear error."""
    if name not in NAMES:
        raise ConfigError(f"unknown strategy {name or '(none given)'}; choose from "
                          f"{', '.join(NAMES)}")  # fmt: skip
    strategy = import_module(f"cryptobot.strategies.{name}").STRATEGY
    assert strategy.name == name
    return strategy


def resolve(names: list[str], settings: Settings) -> list[tuple[Strategy, Any]]:
    """The named strategies with their parameters; an unknown name, or none, is a clear error."""
    if not names:
        raise ConfigError(f"no strategy given; choose from {', '.join(NAMES)}")
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ConfigError(f"unknown strategy {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    return [(lookup(n), getattr(settings.strategies, n)) for n in names]
