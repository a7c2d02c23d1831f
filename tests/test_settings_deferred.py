"""The settings schema builds its validators on first use (core/settings.py ``defer_build``):
importing it builds none, and validation through ``Settings`` and through a lone section (a
strategy's parameters) still refuses what it refused before."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

CODE = """
import math
from pydantic import ValidationError
from cryptobot.core import settings
from cryptobot.core.config import ConfigError, load_settings
sections = [c for c in vars(settings).values()
            if isinstance(c, type) and issubclass(c, settings.Section)]
built_at_import = [c.__name__ for c in sections if c.__pydantic_complete__]
loaded = load_settings(None, {}, env={})
try:
    load_settings(None, {"risk": {"daily_loss_pct": math.nan}}, env={})
    nan = "accepted"
except ConfigError as exc:
    nan = "refused" if "daily_loss_pct" in str(exc) else str(exc)
params = type(loaded.strategies.momentum)
try:
    params.model_validate({**loaded.strategies.momentum.model_dump(), "bogus": 1})
    extra = "accepted"
except ValidationError:
    extra = "refused"
print(len(sections) > 20, built_at_import, nan, extra, loaded.risk.max_leverage > 0)
"""


def test_no_validator_is_built_at_import_and_validation_is_unchanged(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOBOT")}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run([sys.executable, "-c", CODE], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "[]", "refused", "refused", "True"]
