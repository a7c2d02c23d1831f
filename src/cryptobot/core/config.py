"""Loading the effective configuration: defaults < YAML file < CRYPTOBOT__* env < flags.

Settings in the environment are spelt ``CRYPTOBOT__SECTION__KEY`` (two underscores after
``CRYPTOBOT``, as freqtrade does): users keep their own ``CRYPTOBOT_SOMETHING`` variables in
scripts, and a single-underscore prefix made every such variable a fatal "unknown setting".
Only the documented names below are read with one underscore.

Secrets are not part of :class:`Settings`; :class:`Secrets` reads them from the environment
(after ``.env``) and only ever shows them masked.
"""

import copy
import functools
import logging
import os
import re
import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cryptobot.core.errors import ConfigError
from cryptobot.core.settings import ExchangeSettings, Settings

ENV_PREFIX = "CRYPTOBOT__"
#: Single-underscore names that set a setting (documented long before the prefix changed).
ENV_ALIASES = {"CRYPTOBOT_DATA_DIR": "data_dir"}
SECRET_ENV = {
    "api_key": "CRYPTOBOT_API_KEY",
    "api_secret": "CRYPTOBOT_API_SECRET",
    "api_password": "CRYPTOBOT_API_PASSWORD",
    "notify_urls": "CRYPTOBOT_NOTIFY_URLS",
}
_SECRET_WORDS = re.compile(r"(secret|password|passphrase|api_?key|token|private_?key)", re.I)
LOCAL_CONFIG = "cryptobot.yaml"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Secrets:
    """Credentials from the environment. ``repr`` and :meth:`masked` never reveal them."""

    api_key: str | None = None
    api_secret: str | None = None
    api_password: str | None = None
    notify_urls: str | None = None

    @classmethod
    def from_env(cls) -> "Secrets":
        return cls(**{name: os.environ.get(env) or None for name, env in SECRET_ENV.items()})

    @property
    def has_keys(self) -> bool:
        return bool(self.api_key and self.api_key.strip() and self.api_secret
                    and self.api_secret.strip())  # fmt: skip

    def values(self) -> list[str]:
        found = (self.api_key, self.api_secret, self.api_password, self.notify_urls)
        return [v for v in found if v]

    def masked(self) -> dict[str, str]:
        return {
            name: (f"**** (from {SECRET_ENV[name]})" if getattr(self, name) else "not set")
            for name in SECRET_ENV
        }

    def __repr__(self) -> str:
        return f"Secrets({self.masked()})"


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A mapping that names a key twice is refused: YAML would silently keep the last value,
    and a trader would run with a limit other than the one they read in the file. libyaml's
    parser when PyYAML has it: the pure-Python one took 0.02 s of every command's start."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)


def default_dict() -> dict[str, Any]:
    """The embedded defaults, a fresh copy for the caller to merge into (parsed once a
    process: 4 ms of YAML for each settings load of a loop, a copy takes 0.3 ms)."""
    return copy.deepcopy(_defaults())


@functools.cache
def _defaults() -> dict[str, Any]:
    text = resources.files("cryptobot.core").joinpath("default.yaml").read_text()
    return _parse_yaml(text)


def load_settings(
    config_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the effective settings; raises :class:`ConfigError` with a precise message."""
    env = dict(os.environ if env is None else env)
    data = default_dict()
    path = _config_file(config_path, env, cwd or Path.cwd())
    if path is not None:
        _merge(data, _read_yaml(path), str(path))
    origins: dict[str, str] = {}
    _merge(data, _env_overrides(env, origins=origins), "the environment")
    _merge(data, _unflatten(overrides or {}), "the command line")
    origins.update(dict.fromkeys(overrides or {}, "the command line"))
    return validate(data, source=str(path) if path else "the configuration", origins=origins)


def load_dotenv_file(cwd: Path | None = None) -> None:
    """Read ``.env`` into the environment without overriding what is already set (python-dotenv
    loads only when there is one: 0.005 s of every command's start otherwise)."""
    path = (cwd or Path.cwd()) / ".env"
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


#: pydantic's switch for its plugins (``pydantic.plugin._loader``)
PLUGINS_OFF = "PYDANTIC_DISABLE_PLUGINS"


@contextmanager
def pydantic_plugins_off() -> Iterator[None]:
    """pydantic looks for plugins when it builds a validator: it imports ``importlib.metadata``
    and reads the entry points of every installed package (0.02-0.04 s of each command's start).
    The settings are cryptobot's own and no plugin has anything to do with them, so their
    validator is built with plugins off (as typer builds its parameters' validators); the
    user's own setting of the variable comes back afterwards."""
    before = os.environ.get(PLUGINS_OFF)
    os.environ[PLUGINS_OFF] = "__all__"
    try:
        yield
    finally:
        if before is None:
            del os.environ[PLUGINS_OFF]
        else:
            os.environ[PLUGINS_OFF] = before


def validate(
    data: dict[str, Any], source: str = "the configuration", origins: dict[str, str] | None = None
) -> Settings:
    """``data`` as Settings. ``origins``: where a dotted key's value came from when not from
    ``source`` (an environment variable's name, the command line): an error names the place
    the user must fix, not the file the value only overrode."""
    try:
        with pydantic_plugins_off():  # the first call builds the validator (``defer_build``)
            return Settings.model_validate(data)
    except ValidationError as exc:
        # every problem named, on one line: fixing one at a time and re-running is tedious;
        # the first few of a flood (a YAML alias bomb's thousands of items) and their count
        by_origin: dict[str, dict[str, None]] = {}
        errors = exc.errors()
        for e in errors[:MAX_PROBLEMS]:
            origin = _origin(e["loc"], origins or {}, source)
            by_origin.setdefault(origin, {})[describe_error(e)] = None
        parts = [f"{origin}: {'; '.join(problems)}" for origin, problems in by_origin.items()]
        more = f" (and {len(errors) - MAX_PROBLEMS} more)" if len(errors) > MAX_PROBLEMS else ""
        raise ConfigError("; ".join(parts) + more) from None


def _origin(loc: tuple[Any, ...], origins: dict[str, str], source: str) -> str:
    """Where the value at ``loc`` (or the section holding it) was set; ``source`` otherwise."""
    for end in range(len(loc), 0, -1):
        found = origins.get(".".join(str(p) for p in loc[:end]))
        if found is not None:
            return found
    return source


#: settings that existed once, and what replaces them: an old config names its key in the error
REMOVED = {
    "backtest.taker_fee": "it is `fees.taker` now (size and backtest read the same default)",
    "backtest.maker_fee": "it is `fees.maker` now (size and backtest read the same default)",
    "backtest.intrabar": "it was never read; a bar touching both stop and target fills the stop "
    "first, and `cryptobot backtest --detail 1m` replays such bars through stored 1m candles "
    "(delete the key)",
}


MAX_PROBLEMS = 10  # a config error names at most this many problems

#: a value as an error line shows it: a few items and characters of each (a YAML alias bomb
#: under a known key expands to gigabytes in a plain repr)
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 3, 6, 6, 80


def describe_error(err: dict[str, Any]) -> str:
    """One pydantic error as ``key must be ..., got value``."""
    key = ".".join(str(p) for p in err["loc"])
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        if key in REMOVED:
            return f"{key} was removed: {REMOVED[key]}"
        return f"{key} is not a known setting (check the spelling; see `cryptobot config show`)"
    if kind == "missing":
        return f"{key} is required"
    bounds = {
        "greater_than_equal": f"at least {ctx.get('ge')}",
        "greater_than": f"greater than {ctx.get('gt')}",
        "less_than_equal": f"at most {ctx.get('le')}",
        "less_than": f"less than {ctx.get('lt')}",
    }
    if kind in bounds:
        allowed = _range_phrase(err["loc"]) or bounds[kind]
    elif kind == "literal_error":
        allowed = f"one of {ctx.get('expected')}"
    elif kind == "string_pattern_mismatch":
        allowed = f"text matching {ctx.get('pattern')}"
    else:
        allowed = err["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
    return f"{key} must be {allowed}, got {_SHORT.repr(got)}"


def _range_phrase(loc: tuple[Any, ...]) -> str | None:
    """``between 0 and 100`` (``above 0 and at most 100`` for an open end) when the field at
    ``loc`` has both a lower and an upper bound."""
    model: Any = Settings
    info = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None:  # a dict of sections (exchanges.<id>): skip the key
            model = ExchangeSettings
            continue
        info = fields.get(part)
        if info is None:
            return None
        model = info.annotation
    limits: dict[str, Any] = {}
    for meta in info.metadata if info else []:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(meta, name, None) is not None:
                limits[name] = getattr(meta, name)
    low = limits.get("ge", limits.get("gt"))
    high = limits.get("le", limits.get("lt"))
    if low is None or high is None:
        return None
    if "gt" in limits or "lt" in limits:
        above = f"above {_num(low)}" if "gt" in limits else f"at least {_num(low)}"
        below = f"below {_num(high)}" if "lt" in limits else f"at most {_num(high)}"
        return f"{above} and {below}"
    return f"between {_num(low)} and {_num(high)}"


def _num(value: float) -> str:
    return f"{value:g}"


def _config_file(explicit: str | Path | None, env: dict[str, str], cwd: Path) -> Path | None:
    chosen = explicit or env.get("CRYPTOBOT_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    local = cwd / LOCAL_CONFIG
    return local if local.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = _parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or ""
        what = f" ({problem})" if problem.startswith("duplicate key") else ""
        raise ConfigError(f"{path}: not valid YAML{where}{what}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    _refuse_secrets(data, str(path))
    return data


def _refuse_secrets(data: dict[str, Any], source: str, prefix: str = "") -> None:
    for key, value in data.items():
        if _SECRET_WORDS.search(str(key)):
            raise ConfigError(
                f"{source}: {prefix}{key} looks like a secret; secrets are read only from the"
                f" environment or .env ({', '.join(SECRET_ENV.values())})"
            )
        if isinstance(value, dict):
            _refuse_secrets(value, source, f"{prefix}{key}.")


def _merge(base: dict[str, Any], extra: dict[str, Any], source: str) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source)
        else:
            base[key] = copy.deepcopy(value)


def _env_overrides(env: dict[str, str], *, origins: dict[str, str]) -> dict[str, Any]:
    """``CRYPTOBOT__RISK__MAX_LEVERAGE=5`` -> ``{"risk": {"max_leverage": 5}}``; other
    ``CRYPTOBOT_*`` names belong to the user (an old-style setting name gets a warning).
    ``origins`` gets each dotted key's variable name."""
    flat: dict[str, Any] = {}
    for name, raw in env.items():
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
        elif name.startswith(ENV_PREFIX):
            path = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        else:
            if name.startswith("CRYPTOBOT_") and "__" in name:
                _log.warning(
                    "%s is ignored: settings in the environment are spelt %s (two underscores)",
                    name,
                    ENV_PREFIX + name.removeprefix("CRYPTOBOT_"),
                )
            continue
        try:
            flat[path] = yaml.safe_load(raw) if raw != "" else None
            origins[path] = name
        except yaml.YAMLError:
            raise ConfigError(f"{name}: value {raw!r} is not a valid YAML scalar") from None
    return _unflatten(flat)


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+(:[^/@\s]*)?@")
_SIGNATURE = re.compile(r"(?i)(\bsignature=)[^&\s]+")


def redact(text: str, secrets: Secrets) -> str:
    """Remove any secret value from a message before it is shown or stored, the credentials
    of any URL written with them (``https://user:key@host``) and a signed request's signature
    (good for another call while its receive window lasts)."""
    for value in secrets.values():
        text = text.replace(value, "****")
    return _SIGNATURE.sub(r"\1****", _URL_CREDENTIALS.sub("****@", text))


def settings_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
