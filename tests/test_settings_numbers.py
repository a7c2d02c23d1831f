"""A number setting takes numbers only: YAML's true/false/yes/no are booleans, which pydantic
would silently read as 1 and 0 (``daily_loss_pct: false`` was a 0 % limit)."""

import pytest

from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError


@pytest.mark.parametrize("raw", ["false", "true", "yes", "no", "on", "off"])
@pytest.mark.parametrize(
    "key",
    [
        "RISK__BREAKERS__DAILY_LOSS_PCT",
        "RISK__BREAKERS__MONTHLY_LOSS_PCT",
        "RISK__BREAKERS__DAILY_LOSS_USD",  # a number or null
        "RISK__BREAKERS__RECOVERY_SIZE_MULT",
        "RISK__MAX_LEVERAGE",
        "SCAN__TOP",  # an int
    ],
)
def test_a_boolean_is_not_a_number_anywhere_in_the_settings(key, raw):
    name = key.lower().replace("__", ".")
    with pytest.raises(ConfigError, match=rf"{name} must be a number .*, got (True|False)"):
        load_settings(env={f"CRYPTOBOT__{key}": raw})


def test_a_boolean_in_a_list_of_numbers_is_refused_too(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategies:\n  bos_fvg_fib:\n    fib_levels: [0.5, yes]\n")
    with pytest.raises(ConfigError, match=r"fib_levels\.1 must be a number"):
        load_settings(cfg, env={})


def test_numbers_written_as_integers_floats_or_text_still_load():
    env = {
        "CRYPTOBOT__RISK__BREAKERS__DAILY_LOSS_PCT": "2",
        "CRYPTOBOT__RISK__BREAKERS__WEEKLY_LOSS_PCT": "6.5",
        "CRYPTOBOT__RISK__BREAKERS__DAILY_LOSS_USD": "null",
        "CRYPTOBOT__SCAN__TOP": "12",
    }
    risk_settings = load_settings(env=env)
    assert risk_settings.risk.breakers.daily_loss_pct == 2.0
    assert risk_settings.risk.breakers.weekly_loss_pct == 6.5
    assert risk_settings.risk.breakers.daily_loss_usd is None
    assert risk_settings.scan.top == 12
    assert risk_settings.exchanges["binanceusdm"].sandbox is False  # booleans stay booleans
