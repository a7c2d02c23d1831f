"""What every command receives: global options, and the settings loaded on first use."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptobot.core.errors import CryptobotError

if TYPE_CHECKING:  # pydantic and the schema load with the first command that reads settings
    from cryptobot.core.config import Secrets
    from cryptobot.core.settings import Settings


@dataclass
class AppContext:
    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False
    quiet: bool = False
    _settings: "Settings | None" = None

    @property
    def settings(self) -> "Settings":
        """Loaded lazily so ``config check FILE`` works even when the default config is broken
        (and so ``--version`` or ``--help`` never import pydantic)."""
        from cryptobot.core.config import load_dotenv_file, load_settings

        if self._settings is None:
            load_dotenv_file()
            self._settings = load_settings(self.config_path, self.overrides)
        return self._settings

    @property
    def secrets(self) -> "Secrets":
        from cryptobot.core.config import Secrets, load_dotenv_file

        load_dotenv_file()
        return Secrets.from_env()

    def data_dir(self, create: bool) -> Path:
        """The lake root. Writers create it when its parent exists; readers need it to exist,
        so a mistyped path is reported instead of silently starting an empty lake."""
        path = Path(self.settings.data_dir).expanduser()
        if path.is_dir():
            return path
        if create and path.parent.is_dir():
            path.mkdir()
            return path
        raise CryptobotError(
            f"data dir {path} does not exist; fix --data-dir/CRYPTOBOT_DATA_DIR"
            + (f" or create {path.parent} first" if create else " or fetch some data first")
        )
