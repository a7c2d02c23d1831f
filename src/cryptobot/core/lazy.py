"""Package surfaces that load on first use.

Each package's ``__init__`` names what it offers, but importing those names eagerly would load
pandas, numba, duckdb or ccxt with ``cryptobot --version`` (bench/bench_startup.py). So an
``__init__`` declares its surface as a table (submodule -> the public names it holds, plus the
submodules that are public as a whole) and each name is imported the first time it is asked
for (PEP 562's module ``__getattr__``)."""

import importlib
import sys
from collections.abc import Callable, Mapping


def surface(
    package: str, *, names: Mapping[str, tuple[str, ...]], modules: tuple[str, ...] = ()
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``: ``names`` maps a submodule to the
    names callers take from it; ``modules`` are submodules offered as namespaces (a compiled
    kernel's array layout, a family of functions read as ``breakers.step``)."""
    home = {name: module for module, held in names.items() for name in held}
    home.update({module: module for module in modules})

    def __getattr__(name: str) -> object:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = importlib.import_module(f"{package}.{module}")
        return loaded if module == name else getattr(loaded, name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(home))

    return sorted(home), __getattr__, __dir__
