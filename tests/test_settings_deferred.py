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


PLUGIN_CODE = """
import os, sys
from pydantic import BaseModel
from cryptobot.core.config import load_settings
load_settings(None, {}, env={})
during = "spyplugin" in sys.modules
after_env = os.environ.get("PYDANTIC_DISABLE_PLUGINS", "unset")
class Other(BaseModel):  # anyone else's model in the same process still gets the plugin
    x: int = 0
Other(x=1)
print(during, after_env, "spyplugin" in sys.modules)
"""


def test_settings_validator_is_built_without_pydantic_plugins(tmp_path: Path):
    """An installed pydantic plugin (found through its entry point, as pydantic finds them)
    is not loaded for cryptobot's settings, the user's own PYDANTIC_DISABLE_PLUGINS is put
    back as it was, and the next model built in the process still sees the plugin."""
    site = tmp_path / "site"
    dist = site / "spyplugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: spyplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pydantic]\nspy = spyplugin:plugin\n")
    (site / "spyplugin.py").write_text(
        "class Plugin:\n"
        "    def new_schema_validator(self, *args, **kwargs):\n"
        "        return None, None, None\n"
        "plugin = Plugin()\n"
    )
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CRYPTOBOT", "PYDANTIC_DISABLE"))}  # fmt: skip
    base["PYTHONPATH"] = os.pathsep.join([str(SRC), str(site)])
    for given, expected in ((None, "unset"), ("other", "other")):
        env = base if given is None else {**base, "PYDANTIC_DISABLE_PLUGINS": given}
        argv = [sys.executable, "-W", "ignore", "-c", PLUGIN_CODE]
        done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["False", expected, "True"]
