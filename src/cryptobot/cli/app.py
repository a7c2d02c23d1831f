"""The ``cryptobot`` command: global options, sub-commands, and the one error handler."""

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from typer.core import TyperGroup
from typer.exceptions import TyperException

from cryptobot import __version__
from cryptobot.cli import backtest, config_cmd, cot, fetch, risk_cmd, scan, signal, size
from cryptobot.cli.context import AppContext
from cryptobot.core.config import Secrets, redact
from cryptobot.core.errors import CryptobotError

stderr = Console(stderr=True)


class _Group(TyperGroup):
    """Turns errors a user can fix into one line on stderr and exit 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CryptobotError as exc:
            _fail(ctx, str(exc))
        except (BrokenPipeError, typer.Exit, typer.Abort, TyperException):
            raise  # usage errors (exit 2) and deliberate exits are typer's to render
        except KeyboardInterrupt:
            stderr.print("interrupted", style="yellow")
            ctx.exit(130)
        except Exception as exc:
            if _verbose(ctx):
                raise
            _fail(ctx, f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)")


def _verbose(ctx: typer.Context) -> bool:
    return isinstance(ctx.obj, AppContext) and ctx.obj.verbose


def _fail(ctx: typer.Context, message: str) -> None:
    text = redact(message, Secrets.from_env())
    stderr.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    if _verbose(ctx):
        stderr.print_exception()
    ctx.exit(1)


app = typer.Typer(
    cls=_Group,
    name="cryptobot",
    help=(
        "Command-line toolkit for crypto-futures traders: market data to managed positions."
        " Paper trading by default.\n\nExample: cryptobot fetch --top 30 --timeframes 5m,15m"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config", rich_help_panel="Setup")
app.command("fetch", rich_help_panel="Data", epilog=fetch.EPILOG)(fetch.fetch)
app.command("scan", rich_help_panel="Setups", epilog=scan.EPILOG)(scan.scan_command)
app.command("signal", rich_help_panel="Setups", epilog=signal.EPILOG)(signal.signal_command)
app.command("size", rich_help_panel="Risk", epilog=size.EPILOG)(size.size_command)
app.add_typer(risk_cmd.app, name="risk", rich_help_panel="Risk")
app.add_typer(cot.app, name="cot", rich_help_panel="Data")
app.command("backtest", rich_help_panel="Research", epilog=backtest.EPILOG)(
    backtest.backtest_command
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cryptobot {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config file (default ./cryptobot.yaml)."),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Lake and journal folder (default ./data).")
    ] = None,
    exchange: Annotated[
        str | None,
        typer.Option("--exchange", "-x", help="binanceusdm (default), bybit, bitget or replay."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More logs; tracebacks.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only on stderr.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    overrides = {k: v for k, v in {"data_dir": data_dir, "exchange": exchange}.items() if v}
    ctx.obj = AppContext(config_path=config, overrides=overrides, verbose=verbose, quiet=quiet)
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_path=False, show_time=False)],
        force=True,
    )
    # never DEBUG: ccxt logs request headers (with the API key) at that level
    for noisy in ("ccxt", "asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


def main() -> None:
    try:
        app(prog_name="cryptobot")
    except BrokenPipeError:  # the reader went away (`| head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


if __name__ == "__main__":
    sys.exit(main())
