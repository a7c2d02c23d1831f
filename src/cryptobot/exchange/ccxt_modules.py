"""ccxt's packages with each exchange's module loaded when that exchange is first asked for.

ccxt's package ``__init__`` files import every exchange they ship, one line each (``from
ccxt.binance import binance``: 104 in ``ccxt``, 104 again in ``ccxt.async_support``, 76 in
``ccxt.pro``). A ``trade`` or ``fetch`` process talks to one venue and paid ~0.7 s of its start
for the other 103 (upstream ccxt#29573). Here a package's ``__init__`` runs as ccxt wrote it but
for those lines; a name they would have bound is imported on first use (``ccxt_async.bitget``),
from the same module, so it is the same class. A source of another shape (a future ccxt that
loads lazily itself, or one without sources) is imported as it is.

ccxt is imported through :func:`package` and nowhere else in cryptobot.
"""

import importlib
import importlib.util
import re
import sys
import types

#: ``from <package>.<name> import <name>``: the line that loads one exchange eagerly
_EXCHANGE_LINE = re.compile(
    r"^from (?P<package>ccxt(?:\.\w+)?)\.(?P<name>\w+) import (?P=name)\b.*$", re.MULTILINE
)


def package(name: str) -> types.ModuleType:
    """The ccxt package ``name`` (``ccxt``, ``ccxt.async_support``, ``ccxt.pro``), its exchanges
    loaded on first use; the module already imported, if it is."""
    if name in sys.modules:
        return sys.modules[name]
    parent, _, child = name.rpartition(".")
    if parent:
        package(parent)
    spec = importlib.util.find_spec(name)
    source = spec.loader.get_source(name) if spec and spec.loader else None
    lazy, code = deferred(source or "", package=name)
    if not lazy or "__getattr__" in code:
        return importlib.import_module(name)
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _LazyPackage
    module.__dict__["_deferred"] = lazy
    sys.modules[name] = module
    try:  # ccxt's own source, less its exchange lines
        exec(compile(code, spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def deferred(source: str, *, package: str) -> tuple[dict[str, str], str]:
    """``source`` without its lines that import one of ``package``'s own submodules' namesake
    (the exchange lines), blanked so line numbers stay; and those names, each with its module."""
    lazy: dict[str, str] = {}

    def blank(line: re.Match) -> str:
        if line["package"] != package:
            return line[0]
        lazy[line["name"]] = f"{package}.{line['name']}"
        return ""

    return lazy, _EXCHANGE_LINE.sub(blank, source)


class _LazyPackage(types.ModuleType):
    """A ccxt package whose exchange classes are imported when first read."""

    def __getattr__(self, attr: str) -> object:  # only for a name not bound yet
        module = self.__dict__.get("_deferred", {}).get(attr)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        return getattr(importlib.import_module(module), attr)  # bound by __setattr__ below

    def __setattr__(self, attr: str, value: object) -> None:
        """The import system binds a loaded submodule to its package under the submodule's name:
        for an exchange that is the name ccxt binds to the exchange's class (``binanceusdm``
        loads ``binance`` for its base class), so the class is bound instead."""
        lazy = self.__dict__.get("_deferred", {})
        if isinstance(value, types.ModuleType) and value.__name__ == lazy.get(attr):
            value = getattr(value, attr)
        super().__setattr__(attr, value)
