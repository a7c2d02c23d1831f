"""The typer command line: parse flags, call the library, render. No trading logic here.

``app.main`` is the entry point; each sub-command's module loads only when it runs, so
``cryptobot --version`` imports none of pandas, ccxt or numba."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(__name__, names={"app": ("main",)})
