"""Fixtures: the loopback emulator, real shared data, and a CLI runner pointed at both."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from cryptobot.cli.app import app
from tests.bars import walk_bars as walk_bars  # the test modules' one import
from tests.emulator import BinanceEmulator
from tests.emulator.binance_usdm import SHARED

BINANCE = SHARED / "candles" / "binance"
ROOT = Path(__file__).resolve().parents[1]

# CI draws the same examples on every run (a red CI is a change's, not a lucky draw's); a
# developer's runs keep drawing new ones, which is how the ladder's owed step was found
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """On several workers, numba's cache is filled first, once (``tests/warm_kernels.py``:
    workers that start together would each compile every kernel). Beside it the tests are
    collected once with bytecode writing on, which leaves pytest's assert-rewritten modules
    cached: where ``PYTHONDONTWRITEBYTECODE`` is set (this CI host) every worker rewrote all
    of them again (a collection took 11.7 s of CPU, 5.3 s with the cache)."""
    workers = getattr(config.option, "numprocesses", None)
    if workers and not hasattr(config, "workerinput") and not config.option.collectonly:
        writable = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        collect = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT, env=writable, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        subprocess.run([sys.executable, "-m", "tests.warm_kernels"], cwd=ROOT, timeout=600,
                       check=False)  # fmt: skip
        try:
            collect.wait(timeout=300)
        except subprocess.TimeoutExpired:
            collect.kill()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the CPUs this process may use. A worker spends part
    of its time waiting (child processes, loopback sockets, fsync, a venue's timeouts): on 2
    CPUs, 3 workers ran the suite in 488 s where 2 took 602 s (``--maxprocesses`` caps it)."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(trylast=True)  # after xdist has named each item's group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first, those allowed the longest ``timeout`` first of all:
    xdist hands the collected tests out in this order, so a long test started last would hold
    the whole suite up while the other workers sit idle. And a group (``xdist_group``) that
    xdist failed to name fails: its tests would be spread over the workers and each would
    rebuild what the group shares (pytest 9.2 with xdist 3.8 did so silently)."""
    if getattr(config.option, "loadgroup", False):
        for item in items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
                item.runtest = _group_lost  # type: ignore[method-assign]

    def allowed_s(item: pytest.Item) -> float:
        mark = item.get_closest_marker("timeout")
        return float(mark.args[0]) if mark and mark.args else 0.0

    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, -allowed_s(item)))


def _group_lost() -> None:
    pytest.fail("xdist did not group this test under --dist loadgroup: pytest 9.2 breaks it "
                "(pytest-xdist#1386); pyproject pins pytest <9.2")  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's CRYPTOBOT_* variables, ./cryptobot.yaml or .env."""
    for name in list(os.environ):
        if name.startswith("CRYPTOBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def shared() -> Path:
    if not BINANCE.is_dir():
        pytest.skip("../shared/data is not present (real market data for fidelity tests)")
    return SHARED


@pytest.fixture
def emulator(shared: Path) -> Iterator[BinanceEmulator]:
    with BinanceEmulator(shared) as emu:
        yield emu


def emulator_env(emu: BinanceEmulator, data_dir: Path) -> dict[str, str]:
    """Environment that points the real ccxt client at the emulator, fast retries. The
    timeout is ample (the emulator shares its process with the command, and a loaded machine
    can hold an answer past a second); a test of timeouts sets its own."""
    return {
        "CRYPTOBOT__EXCHANGES__BINANCEUSDM__API_BASE": emu.url,
        "CRYPTOBOT__EXCHANGES__BINANCEUSDM__ENABLE_RATE_LIMIT": "false",
        "CRYPTOBOT__EXCHANGES__BINANCEUSDM__TIMEOUT_MS": "10000",
        "CRYPTOBOT__RETRY__BASE_DELAY_S": "0.01",
        "CRYPTOBOT__RETRY__MAX_DELAY_S": "0.05",
        "CRYPTOBOT__RETRY__ATTEMPTS": "12",
        "CRYPTOBOT_DATA_DIR": str(data_dir),
    }


class Cli:
    """``cryptobot`` run in-process with typer's CliRunner; stdout and stderr kept apart."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env or {}
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, ok: bool | None = True):
        result = self.runner.invoke(app, list(args), env=self.env, input=input)
        if ok is True:
            assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
        return result


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def cli(data_dir: Path) -> Cli:
    return Cli({"CRYPTOBOT_DATA_DIR": str(data_dir)})


@pytest.fixture
def emu_cli(emulator: BinanceEmulator, data_dir: Path) -> Cli:
    return Cli(emulator_env(emulator, data_dir))


@pytest.fixture
def settings():
    """The packaged defaults (the autouse fixture keeps the developer's config out)."""
    from cryptobot.core.config import load_settings

    return load_settings()


def sample_market_config(tmp_path: Path, days: int) -> Path:
    """The demo's config pointed at a fresh synthetic sample market of ``days`` days under
    ``tmp_path`` (data dir ``tmp_path/demo``)."""
    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "sample-market"
    subprocess.run(
        [
            sys.executable,
            str(root / "examples/make_sample_market.py"),
            str(source),
            "--days",
            str(days),
        ],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "demo.yaml"
    config.write_text(
        (root / "examples/demo.yaml")
        .read_text()
        .replace("demo-data/sample-market", str(source))
        .replace("data_dir: demo-data", f"data_dir: {tmp_path / 'demo'}")
    )
    (tmp_path / "demo").mkdir()
    return config
