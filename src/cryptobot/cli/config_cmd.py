"""``cryptobot config``: show the effective configuration, check a file."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cryptobot.cli.context import AppContext
from cryptobot.cli.output import to_json
from cryptobot.core.config import load_settings, settings_yaml

app = typer.Typer(
    help="Inspect and validate configuration.\n\nExample: cryptobot config check my.yaml",
    no_args_is_help=True,
)


class ConfigFormat(StrEnum):
    yaml = "yaml"
    json = "json"


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: Annotated[
        ConfigFormat,
        typer.Option("--format", "-f", help="yaml (a config file you can edit) or json."),
    ] = ConfigFormat.yaml,
) -> None:
    """Print the effective config (defaults < file < CRYPTOBOT__* env < flags); secrets masked.

    The output is itself a valid config file (JSON is YAML). Which secrets are set is said in
    comments (yaml) or on stderr (json), never their values.

    Example: cryptobot --config my.yaml config show --format json
    """
    obj: AppContext = ctx.obj
    secrets = [f"# {name}: {state}" for name, state in obj.secrets.masked().items()]
    if fmt is ConfigFormat.json:
        typer.echo(to_json(obj.settings.model_dump(mode="json"), indent=2))
        typer.echo("\n".join(["# secrets (environment / .env only)", *secrets]), err=True)
        return
    typer.echo(settings_yaml(obj.settings), nl=False)
    typer.echo("\n".join(["# secrets (environment / .env only)", *secrets]))


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="YAML file to validate.", show_default=False)],
) -> None:
    """Validate a config file layered over the defaults; exit 1 naming the first bad key.

    Example: cryptobot config check config/example.yaml
    """
    load_settings(config_path=file, env={})
    typer.echo(f"{file}: ok")
