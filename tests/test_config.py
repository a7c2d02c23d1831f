"""Configuration: layering, validation messages, secrets."""

import logging
import re
from pathlib import Path

import pytest
import yaml

from cryptobot.core.config import Secrets, default_dict, load_settings, redact
from cryptobot.core.errors import ConfigError
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_load_and_match_the_repo_copy():
    settings = load_settings(env={})
    assert settings.mode == "paper"
    assert settings.exchange == "binanceusdm"
    assert settings.risk.breakers.daily_loss_pct == 3.0
    assert settings.risk.breakers.weekly_loss_pct == 7.0
    assert settings.risk.breakers.monthly_loss_pct == 12.0
    assert settings.risk.sizing.risk_usd == 1.0
    # config/default.yaml links to the packaged file: the documented defaults are the real ones
    assert yaml.safe_load((ROOT / "config" / "default.yaml").read_text()) == default_dict()


def test_there_is_one_default_yaml_the_repo_copy_is_a_link_to_the_packaged_one():
    """Two hand-kept copies drifted; now config/default.yaml is a symlink (git keeps it as one,
    so a fresh clone has it) to the file the package loads."""
    repo_copy = ROOT / "config" / "default.yaml"
    packaged = ROOT / "src" / "cryptobot" / "core" / "default.yaml"
    assert repo_copy.is_symlink()
    assert repo_copy.resolve() == packaged.resolve()


def test_layering_file_then_env_then_flags(tmp_path: Path):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("fetch:\n  days: 7\n  concurrency: 2\nrisk:\n  max_leverage: 10\n")
    env = {"CRYPTOBOT__FETCH__DAYS": "14", "CRYPTOBOT__RISK__MAX_LEVERAGE": "5"}
    settings = load_settings(cfg, overrides={"risk.max_leverage": 3}, env=env)
    assert settings.fetch.concurrency == 2  # file
    assert settings.fetch.days == 14  # env beats file
    assert settings.risk.max_leverage == 3  # flag beats env


def test_local_cryptobot_yaml_is_picked_up(tmp_path: Path):
    (tmp_path / "cryptobot.yaml").write_text("exchange: bybit\n")
    assert load_settings(env={}, cwd=tmp_path).exchange == "bybit"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"risk.breakers.daily_loss_pct": 300},
            "risk.breakers.daily_loss_pct must be above 0 and at most 100, got 300",
        ),
        (
            {"risk.margin_mode": "hedged"},
            "risk.margin_mode must be one of 'isolated' or 'cross', got 'hedged'",
        ),
        ({"fetch.concurrency": 0}, "fetch.concurrency must be between 1 and 32, got 0"),
        ({"risk.breakrs": {}}, "risk.breakrs is not a known setting"),
        ({"mode": "yolo"}, "mode must be one of 'paper' or 'live', got 'yolo'"),
        ({"exchange": "binanc"}, "exchange must be one of 'binanceusdm', 'bybit', 'bitget' or"),
        ({"schedule.daily_report_utc": "25:00"}, "schedule.daily_report_utc must be text"),
    ],
)
def test_validation_names_key_value_and_allowed(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(overrides=override, env={})


def test_env_value_that_is_invalid_is_reported():
    with pytest.raises(ConfigError, match=r"fetch\.days must be"):
        load_settings(env={"CRYPTOBOT__FETCH__DAYS": "-3"})


def test_an_error_names_where_the_bad_value_came_from(tmp_path: Path):
    """A value from the environment (or a flag) that overrides the file is blamed on the
    variable (or the command line), not the file; the file's own errors stay the file's."""
    cfg = tmp_path / "demo.yaml"
    cfg.write_text("fetch:\n  concurrency: 0\n")
    env = {"CRYPTOBOT__BACKTEST__SLIPPAGE_BPS": "nan"}
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg, overrides={"risk.margin_mode": "hedged"}, env=env)
    message = str(caught.value)
    assert "CRYPTOBOT__BACKTEST__SLIPPAGE_BPS: backtest.slippage_bps must be" in message
    assert f"{cfg}: fetch.concurrency must be between 1 and 32, got 0" in message
    assert "the command line: risk.margin_mode must be one of" in message
    assert f"{cfg}: backtest" not in message and "\n" not in message


def test_secrets_in_yaml_are_refused(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("exchanges:\n  binanceusdm:\n    api_key: abc\n")
    with pytest.raises(ConfigError, match="looks like a secret"):
        load_settings(cfg, env={})


def test_broken_yaml_and_missing_file(tmp_path: Path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("fetch: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path):
    """YAML keeps the last of two equal keys without a word; a risk limit read in one place
    and applied from another is worse than a clear refusal."""
    cfg = tmp_path / "twice.yaml"
    cfg.write_text("risk:\n  breakers:\n    daily_loss_pct: 2\n    daily_loss_pct: 5\n")
    with pytest.raises(ConfigError, match=r"at line 4 \(duplicate key 'daily_loss_pct'\)"):
        load_settings(cfg, env={})


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRYPTOBOT_API_KEY", "AKIA-very-secret")
    monkeypatch.setenv("CRYPTOBOT_API_SECRET", "s3cr3t-value")
    secrets = Secrets.from_env()
    assert secrets.has_keys
    assert "AKIA" not in repr(secrets) and "s3cr3t" not in str(secrets.masked())
    assert redact("signature for AKIA-very-secret failed", secrets) == "signature for **** failed"


def test_config_show_masks_and_check_validates(cli, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CRYPTOBOT_API_SECRET", "hunter2-secret")
    result = cli("config", "show")
    assert "hunter2" not in result.stdout
    assert "api_secret: **** (from CRYPTOBOT_API_SECRET)" in result.stdout
    assert yaml.safe_load(result.stdout)["risk"]["breakers"]["daily_loss_pct"] == 3.0

    good = tmp_path / "good.yaml"
    good.write_text("risk:\n  breakers:\n    daily_loss_pct: 2\n")
    assert "ok" in cli("config", "check", str(good)).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk:\n  breakers:\n    daily_loss_pct: 300\n")
    result = cli("config", "check", str(bad), ok=False)
    assert result.exit_code == 1
    assert "daily_loss_pct must be above 0 and at most 100, got 300" in result.stderr
    assert "Traceback" not in result.stderr


def test_users_own_cryptobot_variables_are_not_settings():
    """CRYPTOBOT_CMD in a user's script once stopped every command as an unknown setting."""
    env = {"CRYPTOBOT_CMD": "scan", "CRYPTOBOT_X": "1", "CRYPTOBOT_CONFIG_DIR": "/nowhere"}
    assert load_settings(env=env) == load_settings(env={})


def test_documented_single_underscore_names_still_work(tmp_path: Path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("exchange: bybit\n")
    env = {"CRYPTOBOT_DATA_DIR": "/srv/lake", "CRYPTOBOT_CONFIG": str(cfg)}
    settings = load_settings(env=env, cwd=tmp_path)
    assert (settings.data_dir, settings.exchange) == ("/srv/lake", "bybit")
    assert Secrets.from_env() is not None  # secrets are read apart from the settings


def test_old_style_setting_name_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture):
    env = {"CRYPTOBOT_RISK__MAX_LEVERAGE": "5"}
    # a CLI test before this one in the worker may have left the root logger at ERROR (-q)
    with caplog.at_level(logging.WARNING, logger="cryptobot.core.config"):
        settings = load_settings(env=env)
    assert settings.risk.max_leverage == load_settings(env={}).risk.max_leverage
    assert "CRYPTOBOT__RISK__MAX_LEVERAGE" in caplog.text


def test_unknown_setting_under_the_settings_prefix_is_an_error():
    with pytest.raises(ConfigError, match=r"risk\.max_levrage is not a known setting"):
        load_settings(env={"CRYPTOBOT__RISK__MAX_LEVRAGE": "5"})


@pytest.mark.parametrize("raw", [".nan", "nan", "NaN", ".inf", "-.inf", "inf", "1e999"])
@pytest.mark.parametrize(
    "key",
    ["RISK__BREAKERS__DAILY_LOSS_PCT", "RISK__SIZING__RISK_USD", "FEES__TAKER"],
)
def test_non_finite_numbers_are_refused_from_the_environment(key: str, raw: str):
    with pytest.raises(ConfigError, match="must be a finite number"):
        load_settings(env={f"CRYPTOBOT__{key}": raw})


def test_non_finite_numbers_are_refused_in_a_file_and_in_lists(tmp_path: Path):
    for body in (
        "risk:\n  breakers:\n    weekly_loss_usd: .inf\n",
        "manage:\n  trailing_atr_tiers: [{at_r: .nan, atr_mult: 1}]\n",
        "strategies:\n  momentum:\n    targets_r: [1, .inf]\n",
    ):
        cfg = tmp_path / "nan.yaml"
        cfg.write_text(body)
        with pytest.raises(ConfigError, match="must be a finite number"):
            load_settings(cfg, env={})


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("mode: paper # d\xe9j\xe0\n".encode("latin-1"))
    result = Cli()("config", "check", str(bad), ok=None)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {bad}: not UTF-8 text (byte 15); save it as UTF-8"


def test_log_lines_never_show_a_secret_or_url_credentials(monkeypatch, capsys):
    """A library logging a URL or a request (ccxt on a retry) goes through the redaction too."""
    import logging

    from cryptobot.cli.app import configure_logging

    monkeypatch.setenv("CRYPTOBOT_API_KEY", "k3y-value-123456")
    configure_logging(verbose=False, quiet=False)
    log = logging.getLogger("ccxt.base.exchange")
    log.warning("retry GET https://user:pa55@api.example/x?key=%s", "k3y-value-123456")
    err = capsys.readouterr().err
    assert "k3y-value-123456" not in err and "pa55" not in err
    assert "https://****@api.example/x?key=****" in err
    configure_logging(verbose=False, quiet=False)  # leave logging as the other tests expect


def test_redact_masks_url_credentials_only():
    plain = Secrets(api_key=None, api_secret=None, api_password=None, notify_urls=None)
    assert (
        redact("https://a:b@h/p and http://h:80/p", plain) == "https://****@h/p and http://h:80/p"
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_unknown_exchange_flag_is_a_usage_error(cli: Cli, where: str):
    """``-x okx`` parses as a string: it is refused as a usage error (exit 2) before the
    command does anything, placed before or after the sub-command alike."""
    args = (
        ("-x", "okx", "fetch", "--status")
        if where == "before"
        else ("fetch", "--status", "-x", "okx")
    )
    result = cli(*args, ok=None)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'okx' is not one of binanceusdm, bybit, bitget, replay" in lines[0]


def test_every_problem_of_a_config_file_is_named_on_one_line(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "manage:\n  profiles:\n    breakout:\n      time_stop_minutes: -5\n"
        "      take_profit_ladder: [{r: -1, pct: 25}]\nrisk:\n  max_leverage: .nan\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    message = str(err.value)
    assert "\n" not in message and "more problem" not in message
    for key in ("time_stop_minutes", "take_profit_ladder.0.r", "risk.max_leverage"):
        assert key in message


@pytest.mark.parametrize("value", ["stop_first", "detail"])
def test_the_removed_intrabar_key_is_refused_naming_its_removal(cli: Cli, tmp_path: Path, value):
    """``backtest.intrabar`` was accepted and never read; an old config that sets it now fails
    with one line that says it was removed and what does the job (``--detail``)."""
    path = tmp_path / "old.yaml"
    path.write_text(f"backtest:\n  intrabar: {value}\n")
    result = cli("--config", str(path), "config", "show", ok=None)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "backtest.intrabar was removed" in lines[0] and "--detail 1m" in lines[0]
    assert "intrabar" not in load_settings(env={}).backtest.model_dump()
