"""Imports point downwards (DESIGN.md §2): the data layer takes nothing from the exchange layer
above it (the two used to import each other), and the venues take nothing from the layers that
compose them (backtest, strategies, management, the CLI)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cryptobot"


def imported(package: str) -> dict[str, set[str]]:
    """Every ``cryptobot.*`` module each file of ``package`` imports, at any depth of the file
    (an import inside a function counts as much as one at the top)."""
    out = {}
    for path in sorted((PACKAGE / package).glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        out[path.name] = {n for n in names if n.startswith("cryptobot.")}
    return out


@pytest.mark.parametrize(
    ("package", "above"),
    [
        ("data", ("cryptobot.exchange",)),
        ("fills", ("cryptobot.exchange", "cryptobot.backtest", "cryptobot.manage")),
        ("journal", ("cryptobot.exchange", "cryptobot.backtest")),
        ("exchange", ("cryptobot.backtest", "cryptobot.strategies", "cryptobot.manage",
                      "cryptobot.cli")),
    ],
)  # fmt: skip
def test_a_layer_imports_nothing_from_the_layers_above_it(package, above):
    wrong = {
        f"{package}/{name}: {module}"
        for name, modules in imported(package).items()
        for module in modules
        if module.startswith(above)
    }
    assert not wrong, sorted(wrong)
