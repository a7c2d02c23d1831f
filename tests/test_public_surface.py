"""Each package names what it offers (``__all__`` in its ``__init__``, with a docstring saying
what the package is for and what it does not do), callers in other packages import only those
names, and naming them costs no start-up time (they load on first use)."""

import ast
import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptobot.core.lazy import surface

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cryptobot"
PACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
HEAVY = ("pandas", "numpy", "numba", "ccxt", "pyarrow", "duckdb", "talib", "matplotlib",
         "pydantic")  # fmt: skip


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_names_its_surface(name: str):
    package = importlib.import_module(f"cryptobot.{name}")
    assert package.__doc__ and len(package.__doc__.split()) > 15, f"{name}: say what it is for"
    assert package.__all__, f"{name}: no __all__"
    assert set(package.__all__) <= set(dir(package))
    for public in package.__all__:
        assert getattr(package, public) is not None, f"cryptobot.{name}.{public}"


def test_the_surface_refuses_a_name_it_does_not_offer():
    _, getattr_, dir_ = surface("cryptobot.core", names={"errors": ("DataError",)})
    from cryptobot.core.errors import DataError

    assert getattr_("DataError") is DataError and "DataError" in dir_()
    with pytest.raises(AttributeError, match="has no attribute 'Lake'"):
        getattr_("Lake")


def test_importing_every_package_loads_no_heavy_library():
    """``import cryptobot.data`` (and every other package) is free until a name is used: the
    CLI's start-up (bench/bench_startup.py) never pays for a surface."""
    probe = (
        "import sys\n"
        + "".join(f"import cryptobot.{name}\n" for name in PACKAGES)
        + "print(' '.join(sys.modules))"
    )
    env = os.environ | {"PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, check=True, timeout=120)  # fmt: skip
    loaded = set(done.stdout.split())
    heavy = {m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")}
    assert not heavy, sorted(heavy)


def _cross_package_imports() -> list[tuple[str, str, str, str]]:
    """(file, package imported from, its submodule or '', name) for every ``from cryptobot.X...
    import name`` in a package other than X."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        home = rel.parts[0] if len(rel.parts) > 1 else ""
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            parts = node.module.split(".")
            if parts[0] != "cryptobot" or len(parts) < 2 or parts[1] in (home, "__init__"):
                continue
            sub = ".".join(parts[2:])
            out.extend((rel.as_posix(), parts[1], sub, a.name) for a in node.names)
    return out


def test_callers_outside_a_package_use_its_public_names():
    """A name taken across packages is in that package's ``__all__`` (or comes from a submodule
    the package offers whole, like ``manage.step``'s array layout)."""
    wrong = []
    for file, package, sub, name in _cross_package_imports():
        offered = importlib.import_module(f"cryptobot.{package}").__all__
        if not (name in offered or (sub and sub in offered)) or name.startswith("_"):
            wrong.append(f"{file}: cryptobot.{package}{'.' + sub if sub else ''}.{name}")
    assert not wrong, wrong


# Public functions with more than MAX_POSITIONAL positional parameters, each a debt with its
# reason; all are paid, and the list stays empty: the rest goes after a ``*``. (Compiled
# kernels and rules, ``core.rules``, are exempt: numba takes no keywords.)
MAX_POSITIONAL = 5
KNOWN: dict[str, str] = {}


def test_no_new_function_takes_many_positional_parameters():
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/"):  # typer reads the command functions' signatures
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any("jit" in d or d.startswith("rule") for d in decorators):
                continue  # numba calls compiled code (and a rule's compiled twin) positionally
            if node.name.startswith("_") and node.name != "__init__":
                continue
            args = [a.arg for a in node.args.posonlyargs + node.args.args]
            if len([a for a in args if a not in ("self", "cls")]) > MAX_POSITIONAL:
                found.add(f"{rel}:{node.name}")
    assert found <= set(KNOWN), sorted(found - set(KNOWN))
    assert not set(KNOWN) - found, f"paid off, drop from KNOWN: {sorted(set(KNOWN) - found)}"


@pytest.mark.parametrize(
    ("module", "name"),
    [("cryptobot.risk.context", "MarketFlags"), ("cryptobot.backtest.runner", "Dataset"),
     ("cryptobot.backtest.runner", "Result")],
)  # fmt: skip
def test_records_of_many_fields_are_built_by_keyword(module, name):
    """Eight or more fields of the same types: a positional call that swaps two of them still
    builds, wrongly (a step for a tick), so these are keyword-only."""
    cls = getattr(importlib.import_module(module), name)
    assert all(f.kw_only for f in dataclasses.fields(cls))
    with pytest.raises(TypeError):
        cls(*[None] * len(dataclasses.fields(cls)))
