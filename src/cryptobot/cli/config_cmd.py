"""``cryptobot config``: show the effective configuration, check a file."""

from pathlib import Path
from typing import Annotated

import typer

from cryptobot.cli.context import AppContext
from cryptobot.core.config import load_settings, settings_yaml

app = typer.Typer(
    help="Inspect and validate configuration.\n\nExample: cryptobot config check my.yaml",
    no_args_is_help=True,
)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective config (defaults < file < CRYPTOBOT_* env < flags); secrets masked.

    Example: cryptobot --config my.yaml config show
    """
    obj: AppContext = ctx.obj
    typer.echo(settings_yaml(obj.settings), nl=False)
    typer.echo("# secrets (environment / .env only)")
    for name, state in obj.secrets.masked().items():
        typer.echo(f"# {name}: {state}")


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="YAML file to validate.", show_default=False)],
) -> None:
    """Validate a config file layered over the defaults; exit 1 naming the first bad key.

    Example: cryptobot config check config/example.yaml
    """
    load_settings(config_path=file, env={})
    typer.echo(f"{file}: ok")
