"""ccxt's packages load each exchange on first use, and give the classes plain ccxt gives.

Each check runs in a fresh interpreter: the test process has imported ccxt whole already."""

import json
import subprocess
import sys
import textwrap

from cryptobot.exchange.ccxt_modules import deferred, package


def _fresh(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_exchange_loads_alone_and_a_base_class_bound_by_the_import_is_the_class():
    got = _fresh("""
        import json, sys
        from cryptobot.exchange.ccxt_modules import package
        a = package("ccxt.async_support")
        before = sorted(m for m in sys.modules if m.startswith("ccxt.async_support.")
                        and not m.startswith("ccxt.async_support.base"))
        usdm = a.binanceusdm
        after = sorted(m for m in sys.modules if m.startswith("ccxt.async_support.")
                       and not m.startswith("ccxt.async_support.base"))
        print(json.dumps({"before": before, "after": after,
                          "base_is_class": isinstance(a.binance, type),
                          "subclass": issubclass(usdm, a.binance),
                          "errors": package("ccxt").ExchangeError.__module__,
                          "same_ccxt": __import__("ccxt") is package("ccxt")}))
    """)
    assert got["before"] == []
    assert got["after"] == ["ccxt.async_support.binance", "ccxt.async_support.binanceusdm"]
    assert got["base_is_class"] and got["subclass"] and got["same_ccxt"]
    assert got["errors"] == "ccxt.base.errors"


def test_every_exchange_of_every_package_is_its_own_class():
    got = _fresh("""
        import json
        from cryptobot.exchange.ccxt_modules import package
        out = {}
        for name in ("ccxt", "ccxt.async_support", "ccxt.pro"):
            p = package(name)
            listed = p.exchanges
            out[name] = [len(listed), [x for x in listed
                         if not (isinstance(getattr(p, x), type)
                                 and getattr(p, x).__module__ == f"{name}.{x}"
                                 and getattr(p, x).__name__ == x)]]
        try:
            package("ccxt").no_such_exchange
        except AttributeError as exc:
            out["missing"] = str(exc)
        print(json.dumps(out))
    """)
    for name in ("ccxt", "ccxt.async_support", "ccxt.pro"):
        count, wrong = got[name]
        assert count > 50 and wrong == [], name
    assert "no_such_exchange" in got["missing"]


def test_only_a_packages_own_exchange_lines_are_deferred_and_lines_keep_their_numbers():
    source = "\n".join([
        "from ccxt.base.errors import BaseError  # noqa: F401",
        "from ccxt.base import errors",
        "from ccxt.async_support.binance import binance                # noqa: F401",
        "from ccxt.async_support.base.exchange import Exchange",
        "from ccxt.binance import binance",
        "from ccxt.async_support.bitget import bitgetx",
        "exchanges = ['binance']",
    ])  # fmt: skip
    lazy, code = deferred(source, package="ccxt.async_support")
    assert lazy == {"binance": "ccxt.async_support.binance"}
    lines = code.split("\n")
    assert len(lines) == 7 and lines[2] == ""
    assert [i for i, line in enumerate(lines) if line != source.split("\n")[i]] == [2]


def test_a_module_of_another_shape_is_imported_as_it_is():
    assert package("json") is sys.modules["json"]
    assert deferred("import os\n", package="ccxt") == ({}, "import os\n")
