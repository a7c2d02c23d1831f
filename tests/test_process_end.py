"""The ``cryptobot`` program ends without the interpreter's module teardown (``cli.app.run``,
core/gc_policy.py ``end_process``) and loses nothing by it: the exit status is the command's,
stdout arrives whole on a pipe, atexit callbacks still run."""

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# the program as the console script runs it, with an atexit callback of the host's own and,
# optionally, a thread still running when the command ends (it says when it is done)
PROBE = """
import atexit, os, sys, threading, time
atexit.register(lambda: print("ATEXIT RAN", file=sys.stderr))
def work():
    time.sleep(3)  # longer than the command
    os.write(2, b"THREAD DONE\\n")
if os.environ.get("PROBE_THREAD"):
    threading.Thread(target=work).start()
from cryptobot.cli.app import run
sys.argv = ["cryptobot", *sys.argv[1:]]
run()
print("NOT REACHED", file=sys.stderr)
"""


def _program(tmp_path: Path, *args: str, probe: bool = False,
             thread: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(SRC), "CRYPTOBOT_DATA_DIR": str(tmp_path)}
    env |= {"PROBE_THREAD": "1"} if thread else {}
    argv = ["-c", PROBE] if probe else ["-m", "cryptobot"]
    return subprocess.run([sys.executable, *argv, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_the_exit_status_is_the_commands(tmp_path: Path):
    version = _program(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout == "cryptobot 0.1.0\n"
    usage = _program(tmp_path, "size", "--risk-usd")
    assert usage.returncode == 2 and usage.stderr.startswith("error: ")
    failed = _program(tmp_path, "backtest", "--strategy", "nope", "--symbols", "BTC/USDT:USDT")
    assert failed.returncode == 1 and "unknown strategy nope" in failed.stderr


def test_stdout_arrives_whole_and_atexit_callbacks_run(tmp_path: Path):
    shown = _program(tmp_path, "config", "show", "-f", "json", probe=True)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["data_dir"] == str(tmp_path)  # ~12 KB, parsed whole
    assert "ATEXIT RAN" in shown.stderr and "NOT REACHED" not in shown.stderr
    failed = _program(tmp_path, "backtest", "--strategy", "nope", "--symbols", "X/USDT", probe=True)
    assert failed.returncode == 1 and "ATEXIT RAN" in failed.stderr


def test_while_another_thread_runs_the_exit_is_pythons_own(tmp_path: Path):
    """A thread still running when the command ends is waited for, as Python's own exit waits
    for it, with the command's status."""
    failed = _program(tmp_path, "backtest", "--strategy", "nope", "--symbols", "X/USDT",
                      probe=True, thread=True)  # fmt: skip
    assert failed.returncode == 1 and "unknown strategy nope" in failed.stderr
    assert "THREAD DONE" in failed.stderr and "ATEXIT RAN" in failed.stderr
