"""Per-strategy management profiles: ``manage.profiles.<strategy>`` merged key by key over
``manage``, validated like every setting (a bad one is one line and exit 1, from ``config
check`` and from ``backtest``), picked by one function for every caller."""

from pathlib import Path

import pytest
import yaml

from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.core.settings import ManageRules

DEFAULTS = load_settings(None, {}, env={})


def rules(strategy: str, settings=DEFAULTS) -> ManageRules:
    return settings.manage.for_strategy(strategy)


def test_the_shipped_profiles_are_the_plans():
    breakout, bos, momentum = rules("breakout"), rules("bos_fvg_fib"), rules("momentum")
    assert [(s.r, s.pct) for s in breakout.take_profit_ladder] == [(1, 25), (2, 25), (3, 25)]
    assert breakout.breakeven_after_r == 1.0
    assert [(t.at_r, t.atr_mult) for t in breakout.trailing_atr_tiers] == [(2.0, 2.0)]
    assert (breakout.trail_weak_atr_mult, breakout.time_stop_minutes) == (1.0, 30)
    assert breakout.exit_on == ["regime_change"]
    assert [s.r for s in bos.take_profit_ladder] == [1, 2, 3]
    assert sum(s.pct for s in bos.take_profit_ladder) == 100
    assert (bos.trail_rest, bos.time_stop_minutes, bos.exit_on) == (False, 0, [])
    assert [(t.at_r, t.atr_mult) for t in momentum.trailing_atr_tiers] == [
        (1.0, 1.2), (2.0, 1.0), (3.0, 0.8)
    ]  # fmt: skip
    assert (momentum.time_stop_minutes, momentum.time_stop_until_r) == (72 * 60, 2.0)
    assert momentum.exit_on == ["ema_cross", "rsi_divergence"]
    cot = rules("cot_crowd")  # plan 3's manager: +100 % on margin -> add, close half, breakeven
    assert (cot.scale_in.enabled, cot.scale_in.trigger_margin_profit_pct) == (True, 100)
    assert (cot.scale_in.close_original_frac, cot.scale_in.stop_to_breakeven) == (0.5, True)
    assert cot.time_stop_minutes == 0
    base = ManageRules.model_validate(
        DEFAULTS.manage.model_dump(include=set(ManageRules.model_fields))
    )
    assert rules("ema_cross") == rules("any other name") == base  # no profile: the base


def test_a_profile_key_replaces_the_base_and_the_rest_is_inherited(tmp_path: Path):
    """Keys merge one by one (nested sections too); a list is replaced whole; the base still
    reaches every key a profile leaves unset."""
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(
        "manage:\n"
        "  breakeven_after_r: 0.5\n"
        "  profiles:\n"
        "    momentum:\n"
        "      time_stop_minutes: 120\n"
        "      scale_in: {enabled: true}\n"
        "    bos_fvg_fib:\n"
        "      take_profit_ladder: [{r: 1.5, pct: 50}]\n"
    )
    settings = load_settings(cfg, env={})
    momentum = rules("momentum", settings)
    assert momentum.time_stop_minutes == 120
    assert momentum.trailing_atr_tiers == rules("momentum").trailing_atr_tiers  # shipped, kept
    assert momentum.breakeven_after_r == 0.5  # from the base
    assert momentum.scale_in.enabled and momentum.scale_in.max_adds == 3  # nested: merged
    assert rules("breakout", settings).breakeven_after_r == 1.0  # its profile sets it
    ladder = rules("bos_fvg_fib", settings).take_profit_ladder
    assert [(s.r, s.pct) for s in ladder] == [(1.5, 50)]


def test_a_command_line_value_beats_every_profile():
    manage = DEFAULTS.manage.overriding(time_stop_minutes=15)
    assert {manage.for_strategy(s).time_stop_minutes for s in
            ("breakout", "bos_fvg_fib", "momentum", "ema_cross")} == {15}  # fmt: skip
    assert manage.for_strategy("momentum").time_stop_until_r == 2.0  # the rest untouched


BAD = [
    ("manage:\n  profiles:\n    momentum:\n      trail_weak_atr_mult: .nan\n",
     "manage.profiles.momentum.trail_weak_atr_mult must be a finite number, got nan"),
    ("manage:\n  profiles:\n    breakout:\n      trailing_atr_tiers: [{at_r: 2, atr_mult: -2}]\n",
     "manage.profiles.breakout.trailing_atr_tiers.0.atr_mult must be greater than 0, got -2"),
    ("manage:\n  profiles:\n    momentum:\n      time_stop_minute: 60\n",
     "manage.profiles.momentum.time_stop_minute is not a known setting"),
    ("manage:\n  profiles:\n    scalper:\n      time_stop_minutes: 60\n",
     "manage.profiles.scalper is not a known setting"),
    ("manage:\n  profiles:\n    breakout:\n      exit_on: [rsi_divergence]\n",
     "manage.profiles.breakout.exit_on.0 must be one of 'regime_change', got 'rsi_divergence'"),
    ("manage:\n  profiles:\n    bos_fvg_fib:\n"
     "      take_profit_ladder: [{r: 1, pct: 60}, {r: 2, pct: 60}]\n",
     "manage.profiles.bos_fvg_fib.take_profit_ladder must be slices adding up to at most 100 %"),
    ("manage:\n  profiles:\n    momentum:\n      breakeven_after_r: null\n",
     "manage.profiles.momentum.breakeven_after_r must be a valid number, got None"),
    ("manage:\n  profiles:\n    momentum:\n      time_stop_until_r: -1\n",
     "manage.profiles.momentum.time_stop_until_r must be greater than 0, got -1"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_profile_is_one_clear_line_and_exit_1(cli, tmp_path: Path, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="^" + str(cfg).replace(".", r"\.")):
        load_settings(cfg, env={})
    result = cli("config", "check", str(cfg), ok=False)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    run = cli("-c", str(cfg), "backtest", "--strategy", "momentum", "--symbols",
              "BTC/USDT:USDT", ok=False)  # fmt: skip
    assert run.exit_code == 1 and message in run.stderr and "Traceback" not in run.stderr


def test_config_show_prints_profiles_that_load_back(cli, tmp_path: Path):
    """Only the keys a profile sets are shown (no nulls standing for "inherited"), so the
    printed configuration is a valid configuration."""
    shown = yaml.safe_load(cli("config", "show").stdout)
    profiles = shown["manage"]["profiles"]
    assert set(profiles) == {"breakout", "bos_fvg_fib", "momentum", "cot_crowd"}
    assert None not in profiles["momentum"].values()
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump({"manage": shown["manage"]}))
    assert "ok" in cli("config", "check", str(copy)).stdout
    assert load_settings(copy, env={}).manage == DEFAULTS.manage
