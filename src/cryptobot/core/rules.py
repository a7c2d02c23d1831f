"""Scalar rules written once, run as plain Python where Python calls them and compiled where
compiled code calls them.

The matching model (``fills.model``) is the one set of rules the backtest's compiled loop, the
replay exchange and the paper broker all follow. A command that only places or simulates a few
orders (``trade``, the paper broker) called those rules through numba, and paid for it on every
start: numba's import, its registries and a cache load per rule, ~0.35 s of a ``trade``
process, for a handful of calls that take microseconds either way. A :func:`rule` is the plain
function to Python callers, and numba compiles it (``core.jit.njit``, same options) only when a
compiled function that calls it is compiled: ``core.jit`` tells numba to type a rule as its
compiled dispatcher. Nothing here imports numba.
"""

import functools
from collections.abc import Callable
from typing import Any


class Rule:
    """A plain function (``py_func``, what Python calls run) with its compiled twin made on
    first need (:meth:`compiled`, what compiled callers run)."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = fn
        self._options = options
        self._compiled: Callable[..., Any] | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        return self.py_func(*args)

    def compiled(self) -> Callable[..., Any]:
        """The numba dispatcher of this rule (made once; loaded from numba's cache when there)."""
        if self._compiled is None:
            from cryptobot.core.jit import njit

            self._compiled = njit(**self._options)(self.py_func)
        return self._compiled


def rule(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Decorator: ``fn`` as a :class:`Rule`; ``options`` are numba's ``njit`` options for its
    compiled twin (``@rule(cache=True)``)."""

    def make(py_func: Callable[..., Any]) -> Rule:
        return Rule(py_func, options)

    return make if fn is None else make(fn)


__all__ = ["Rule", "rule"]
