"""Imports point downwards (DESIGN.md §2, the README's architecture section): each package
imports only from the layers below its own, never sideways within a layer nor upwards. The
data layer takes nothing from the venues (the two used to import each other), the venues
nothing from risk or management (liquidation is the matching model's, in ``fills/``)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cryptobot"

# bottom first; a package may import from the layers before its own
LAYERS = (
    ("core",),  # plain types, settings, errors
    ("data",),  # the lake, its catalog, importers, fetcher, the market-data source protocol
    ("analysis", "cot", "fills", "journal"),  # indicators, COT, the matching model, the journal
    ("exchange", "manage", "report"),  # venues, position engine and its ladder, pictures
    ("risk",),  # sizing (prices manage's ladder as the order's targets), gates, breakers
    ("strategies",),  # detectors, scanner (reads a venue), signal filters
    ("engine",),  # the composer (its decisions, in order), trade's desk, the executor
    ("backtest",),  # the composer's desks over stored bars: the kernel's, and a venue's
    ("cli",),  # parse, call, render
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def imported(package: str) -> dict[str, set[str]]:
    """Every ``cryptobot.*`` module each file of ``package`` imports, at any depth of the file
    (an import inside a function counts as much as one at the top)."""
    out = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        out[path.relative_to(PACKAGE / package).as_posix()] = {
            n for n in names if n.startswith("cryptobot.")
        }
    return out


def test_every_package_has_its_layer():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(RANK), "add the package to LAYERS (and the README's picture)"


@pytest.mark.parametrize("package", sorted(RANK))
def test_a_package_imports_only_from_the_layers_below_it(package):
    wrong = set()
    for name, modules in imported(package).items():
        for module in modules:
            target = module.split(".")[1]
            if target in RANK and target != package and RANK[target] >= RANK[package]:
                wrong.add(f"{package}/{name}: {module}")
    assert not wrong, sorted(wrong)


# Library code takes its clock and its output streams from the caller (the CLI), so a replayed
# clock drives everything and a library function never writes into a pipe's data.
CLOCK_READS = {
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("time", "localtime"),
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("Timestamp", "now"), ("Timestamp", "utcnow"), ("Timestamp", "today"),
}  # fmt: skip
STREAMS = {("sys", "stdout"), ("sys", "stderr"), ("sys", "__stdout__"), ("sys", "__stderr__")}
# file -> the one wall-clock read it may make, and why
ALLOWED = {"data/catalog.py": {"time.monotonic"}}  # the journal's lock wait (its docstring)


def wall_clock_and_streams(source: str) -> set[str]:
    """What ``source`` reads of the machine's clock or writes to the process's streams: calls
    such as ``time.time()``, ``datetime.now()``, ``pd.Timestamp("now")``, names imported from
    ``time``/``sys`` for that, ``sys.stdout``/``sys.stderr`` and ``print``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.attr) in CLOCK_READS | STREAMS:
                found.add(f"{name}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "sys"):
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if (node.module, a.name) in CLOCK_READS | STREAMS
            )
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "print":
                found.add("print")
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and first.value in ("now", "today"):
                found.add(f"{ast.unparse(node.func)}({first.value!r})")
    return found


def test_the_scan_sees_each_way_of_reading_the_clock():
    source = (
        "import time, sys\nimport pandas as pd\nimport numpy as np\n"
        "from datetime import datetime\nfrom time import monotonic\n"
        "a = time.time()\nb = datetime.now(UTC)\nc = pd.Timestamp.utcnow()\n"
        "d = pd.Timestamp('now')\ne = np.datetime64('today')\nsys.stdout.write('x')\n"
        "print('y', file=sys.stderr)\nf = datetime.datetime.now()\n"
        "ok = datetime.fromtimestamp(0)\nok2 = time.sleep\n"
    )
    assert wall_clock_and_streams(source) == {
        "time.time", "datetime.now", "Timestamp.utcnow", "pd.Timestamp('now')",
        "np.datetime64('today')", "sys.stdout", "sys.stderr", "print", "time.monotonic",
    }  # fmt: skip


def test_library_code_reads_no_wall_clock_and_writes_no_stream():
    """Everything outside ``cli/`` takes the time from its caller (the venue's ``now()``) and
    returns or logs what it has to say; only ``cli/`` renders."""
    wrong = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel == "__main__.py":
            continue
        found = wall_clock_and_streams(path.read_text()) - ALLOWED.get(rel, set())
        if found:
            wrong[rel] = sorted(found)
    assert not wrong, wrong
