"""Issue 13's acceptance: secrets never appear in the journal, logs, errors or ``--dry-run``
output, checked the way an auditor would: the real ``cryptobot`` program run in its own process
with ``-v`` (DEBUG logs on stderr) and live keys in its environment, against the emulator with
faults on every trading path (retries, lost answers, refusals: the paths that log and raise),
and one run that fails (its traceback printed); then every byte it printed and every file it
left in the data dir grepped for the key, the secret and a request signature not masked."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import emulator_env
from tests.emulator import BinanceEmulator
from tests.emulator.faults import Faults
from tests.test_ccxt_trading import KEY, SECRET
from tests.test_trade_live import BTCID, btc_order

SRC = Path(__file__).resolve().parents[1] / "src"
BTC = "BTC/USDT:USDT"
SIGNED = re.compile(r"signature=(?!\*\*\*\*)", re.IGNORECASE)  # a signature not masked


@pytest.fixture
def emu(shared: Path):
    with BinanceEmulator(shared) as server:
        server.engine.spec(BTCID)
        yield server


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cryptobot", "-v", *args],
        env=os.environ | env | {"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow  # ten real processes
def test_a_live_session_at_debug_level_leaks_no_secret_anywhere(emu: BinanceEmulator,
                                                                 tmp_path: Path):  # fmt: skip
    data = tmp_path / "data"
    data.mkdir()
    env = emulator_env(emu, data) | {
        "CRYPTOBOT_API_KEY": KEY, "CRYPTOBOT_API_SECRET": SECRET, "CRYPTOBOT__MODE": "live",
    }  # fmt: skip
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(btc_order(emu).to_record()) + "\n")
    emu.faults = Faults(kinds=("429", "500", "drop"), paths=("/fapi/v1/order",
                        "/fapi/v1/algoOrder"), rate=0.35, seed=11, retry_after_s=0)  # fmt: skip
    runs = [
        _run(env, "trade", str(orders), "--live", "--dry-run", "-f", "json"),
        _run(env, "trade", str(orders), "--live", "--taker", "-f", "json"),
        _run(env, "trade", "--status", "--live", "-f", "json"),
        _run(env, "trade", "--reconcile", "--live", "-f", "json"),
        _run(env, "trade", "--close", BTC, "--live", "-f", "json"),
        _run(env, "journal", "orders", "-f", "json"),
        _run(env, "journal", "events", "-f", "jsonl"),
        _run(env, "config", "show", "-f", "json"),
        _run(env | {"CRYPTOBOT__MODE": "paper"}, "trade", str(orders), "--live"),  # refused
    ]
    emu.faults = Faults(kinds=("drop",), paths=("/fapi/v2/", "/fapi/v3/"), rate=1.0)
    runs.append(_run(env, "trade", "--status", "--live"))  # fails: its traceback at -v
    printed = "\n".join(r.stdout + r.stderr for r in runs)
    assert [r.returncode for r in runs[:-2]] == [0] * 8, printed[-3000:]
    assert runs[-2].returncode != 0 and "mode: live" in runs[-2].stderr
    assert runs[-1].returncode == 1 and "Traceback" in runs[-1].stderr
    assert runs[-1].stderr.rstrip().splitlines()[-1].startswith("error: ")
    assert "DEBUG" in printed or "debug" in printed.lower()  # the logs were there to be read
    assert json.loads(runs[1].stdout)[0]["status"] == "placed"
    for secret in (KEY, SECRET):
        assert secret not in printed
    assert not SIGNED.search(printed)  # signature=**** where a URL is shown whole
    stored = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".duckdb") for p in stored)
    for path in stored:
        raw = path.read_bytes()
        assert KEY.encode() not in raw and SECRET.encode() not in raw, path
        assert not SIGNED.search(raw.decode("latin-1")), path


def test_a_signed_url_in_an_error_or_a_log_line_loses_its_query_and_signature():
    import ccxt

    from cryptobot.core.config import Secrets, redact
    from cryptobot.exchange.retry import describe

    url = "http://127.0.0.1:1/fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=ab12cd"
    text = describe(ccxt.NetworkError(f"binanceusdm GET {url}"))
    assert text == "NetworkError: binanceusdm GET http://127.0.0.1:1/fapi/v1/order"
    line = redact(
        f"retrying {url} (SIGNATURE=ff00)", Secrets(api_key="key-1234", api_secret="secret-5678")
    )
    assert "ab12cd" not in line and "ff00" not in line and "signature=****" in line
