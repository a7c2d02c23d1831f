"""The typer command line: parse flags, call the library, render. No trading logic here.

``app.run`` is the program (``app.main`` the command line, ending in ``SystemExit``); each
sub-command's module loads only when it runs, so ``cryptobot --version`` imports none of
pandas, ccxt or numba."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(__name__, names={"app": ("main", "run")})
