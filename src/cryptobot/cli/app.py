"""The ``cryptobot`` command: global options, sub-commands loaded on demand, one error handler.

A CLI in pipes and cron starts thousands of times a day, so nothing heavy is imported here:
each sub-command's module (and with it pandas, ccxt, numba, the backtest kernel) is imported
only when that command runs. ``--help`` lists the commands from :data:`COMMANDS`, a static
table whose short help a test keeps equal to each command's docstring.
"""

import atexit
import copy
import importlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.main
from typer import _click as click
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from cryptobot import __version__
from cryptobot.cli.context import AppContext
from cryptobot.core import gc_policy
from cryptobot.core.errors import CryptobotError


@dataclass(frozen=True)
class Entry:
    """Where a sub-command lives and what ``cryptobot --help`` says about it."""

    module: str
    attr: str  # the command function, or ``app`` for a group of sub-commands
    panel: str
    short_help: str
    group: bool = False


COMMANDS: dict[str, Entry] = {
    "fetch": Entry(
        "cryptobot.cli.fetch",
        "fetch",
        "Data",
        "Bring the lake up to date: candles (closed bars only), funding, open interest, markets.",
    ),
    "scan": Entry(
        "cryptobot.cli.scan",
        "scan_command",
        "Setups",
        "Run the strategies on closed bars and list setups: [bold]triggered[/] (act now) and"
        " [bold]armed[/] (context in place; entry is the level that would trigger).",
    ),
    "signal": Entry(
        "cryptobot.cli.signal",
        "signal_command",
        "Setups",
        "Turn setups into signals: regime, funding, higher-timeframe bias, cooldown after a loss,"
        " one signal per symbol, expiry. Rejected setups are journaled with the reason.",
    ),
    "size": Entry(
        "cryptobot.cli.size",
        "size_command",
        "Risk",
        "Size orders: quantity rounded down to the market's step so the loss at the stop stays"
        " within the target, leverage, margin, liquidation price, fees, and every pre-trade gate.",
    ),
    "trade": Entry(
        "cryptobot.cli.trade",
        "trade_command",
        "Trading",
        "Place sized orders on the venue (paper by default) with a reduce-only stop and the"
        " take-profit ladder, gated with the account's real state; idempotent by client order"
        " id.",
    ),
    "journal": Entry(
        "cryptobot.cli.journal",
        "app",
        "Trading",
        "Read what was traded from the journal: orders, fills, round trips, positions, events,"
        " setups, backtests, account snapshots; filter and export (CSV, Parquet, JSONL, XLSX).",
        group=True,
    ),
    "risk": Entry(
        "cryptobot.cli.risk_cmd",
        "app",
        "Risk",
        "Circuit breakers: status, equity observations, manual reset after a weekly halt.",
        group=True,
    ),
    "backtest": Entry(
        "cryptobot.cli.backtest",
        "backtest_command",
        "Research",
        "Backtest a strategy over stored candles with slippage, fees, funding, liquidation,"
        " position management and the risk engine; prints the summary, records the run.",
    ),
    "cot": Entry(
        "cryptobot.cli.cot",
        "app",
        "Data",
        "CFTC Commitments of Traders for CME Bitcoin/Ether: latest positioning by trader"
        " category, weekly change, COT index and percentile, and the bias with its reason.",
        group=True,
    ),
    "config": Entry(
        "cryptobot.cli.config_cmd",
        "app",
        "Setup",
        "Inspect and validate configuration.",
        group=True,
    ),
}

GLOBAL_PANEL = "Global options"


_RESOLVED = "cryptobot.command"  # ctx.meta (shared by nested contexts): the last command resolved


def _remembering(group: TyperGroup) -> TyperGroup:
    """A sub-command group (``risk``, ``cot``) records the command it resolves too, so a parse
    error inside ``risk status`` points at ``cryptobot risk status --help``."""
    resolve = group.resolve_command

    def resolve_command(
        ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = resolve(ctx, args)
        ctx.meta[_RESOLVED] = (name, command, ctx)
        return name, command, rest

    group.resolve_command = resolve_command  # type: ignore[method-assign]
    return group


def load_command(name: str) -> click.Command:
    """Import the module of one sub-command and build its click command, with the global
    options attached so they are accepted after the sub-command name too."""
    entry = COMMANDS[name]
    module = importlib.import_module(entry.module)
    target = getattr(module, entry.attr)
    if entry.group:
        command: click.Command = _remembering(typer.main.get_group(target))
        command.name = name
        command.rich_help_panel = entry.panel  # type: ignore[attr-defined]
    else:
        single = typer.Typer(rich_markup_mode="rich", add_completion=False)
        single.command(name, rich_help_panel=entry.panel, epilog=getattr(module, "EPILOG", None))(
            target
        )
        command = typer.main.get_command(single)
    _attach_globals(command)
    return _settling(command)


def _settling(command: click.Command) -> click.Command:
    """The command's start-up ends where its own code begins, its arguments parsed: from there
    the collector runs (core/gc_policy.py)."""
    invoke = command.invoke

    def settled_invoke(ctx: click.Context) -> Any:
        gc_policy.settled()
        return invoke(ctx)

    command.invoke = settled_invoke  # type: ignore[method-assign]
    return command


class _Group(TyperGroup):
    """Loads sub-commands lazily; turns errors a user can fix into one line on stderr."""

    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # names only: typer's "did you mean" reads them; get_command builds the commands
        self.commands = dict.fromkeys(COMMANDS)  # type: ignore[assignment]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the top-level help needs names and short help only
            return TyperCommand(name=cmd_name, help=entry.short_help, rich_help_panel=entry.panel)
        return load_command(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_RESOLVED] = (name, command, ctx)  # for a parse error's help pointer
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError as exc:
            # the parser raises "Option '--symbol' requires an argument" without a context:
            # point at the sub-command's help, not the top level's
            name, command, parent = ctx.meta.get(_RESOLVED, (None, None, ctx))
            if exc.ctx is None and command is not None:
                exc.ctx = click.Context(command, info_name=name, parent=parent)
            raise
        except CryptobotError as exc:
            _fail(ctx, str(exc))
        except (BrokenPipeError, typer.Exit, typer.Abort, TyperException, click.ClickException):
            raise  # usage errors (exit 2) and deliberate exits are handled in main()
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            ctx.exit(130)
        except Exception as exc:
            hint = "" if _verbose(ctx) else " (run with -v for the traceback)"
            _fail(ctx, f"unexpected {type(exc).__name__}: {exc}{hint}")

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Usage errors as one line (``error: ... (see cryptobot size --help)``), exit 2,
        instead of a usage block and a boxed message."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # the help is its message
            if exc.format_message():  # empty when rich has already printed it
                typer.echo(exc.format_message())
            code = exc.exit_code
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else prog_name or "cryptobot"
            message = " ".join(exc.format_message().split()).rstrip(".")
            typer.echo(f"error: {message} (see {where} --help)", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 1
        sys.exit(code if isinstance(code, int) else 0)


def _verbose(ctx: click.Context) -> bool:
    return isinstance(ctx.obj, AppContext) and ctx.obj.verbose


def _fail(ctx: click.Context, message: str) -> None:
    """The error in one line, exit 1; with ``-v`` its traceback first. Both redacted: an
    exception chained from ccxt carries the signed request's URL."""
    from cryptobot.core.config import Secrets, redact

    secrets = Secrets.from_env()
    if _verbose(ctx):
        import traceback

        sys.stderr.write(redact(traceback.format_exc(), secrets))
    typer.echo(f"error: {redact(message, secrets)}", err=True)
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


def _venue(value: str | None) -> str | None:
    """``--exchange`` names a known venue: a typo is a usage error (exit 2), before any work."""
    from cryptobot.core.venues import VENUES

    if value is not None and value not in VENUES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(VENUES)}")
    return value


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
        typer.Option(
            "--exchange",
            "-x",
            help="binanceusdm (default), bybit, bitget or replay.",
            callback=_venue,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More logs; tracebacks.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only data on stdout and errors on stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """The global options; each is also accepted after the sub-command (see _attach_globals)."""
    overrides = {k: v for k, v in {"data_dir": data_dir, "exchange": exchange}.items() if v}
    ctx.obj = AppContext(config_path=config, overrides=overrides, verbose=verbose, quiet=quiet)
    configure_logging(verbose=verbose, quiet=quiet)


class _Redacting(logging.Filter):
    """Every log line passes through ``redact``: a library that logs a URL or a request (ccxt
    on a retry) never shows a secret from the environment or a URL's credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        from cryptobot.core.config import Secrets, redact

        record.msg, record.args = redact(record.getMessage(), Secrets.from_env()), None
        return True


class _LineFormatter(logging.Formatter):
    """``warning: message`` on one line, as the error lines read (for logs, cron mail, grep)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def configure_logging(*, verbose: bool, quiet: bool) -> None:
    """Logs go to stderr: through rich on a terminal, one plain line each otherwise (rich
    wraps at 80 columns where there is no terminal); ``-q`` keeps errors only."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(stderr=True), show_path=False, show_time=False
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_LineFormatter())
    handler.addFilter(_Redacting())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # never DEBUG: ccxt logs request headers (with the API key) at that level
    for noisy in ("ccxt", "asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


_GLOBAL_NAMES = ("config", "data_dir", "exchange", "verbose", "quiet")


def _global_options() -> list[click.Parameter]:
    """The top-level options a sub-command repeats (``cryptobot size ... -q``)."""
    top = typer.main.get_command(app)
    return [p for p in top.params if p.name in _GLOBAL_NAMES]


def _attach_globals(command: click.Command) -> None:
    """Give ``command`` (a group, and each of its commands) the global options, minus any
    option string the command already uses for itself; they update the :class:`AppContext`.
    A group gets them too: ``cryptobot cot -q`` runs the group itself, and ``cryptobot risk
    -q`` should say a command is missing, not that ``-q`` is unknown."""
    for sub in getattr(command, "commands", {}).values():
        _attach_globals(sub)
    taken = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for option in _global_options():
        opts = [o for o in option.opts if o not in taken]
        if not opts:
            continue
        repeated = copy.copy(option)
        repeated.opts = opts
        repeated.name = f"global_{option.name}"
        repeated.expose_value = False
        repeated.callback = _apply_global
        repeated.rich_help_panel = GLOBAL_PANEL  # type: ignore[attr-defined]
        command.params.append(repeated)


def _apply_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the sub-command: the same effect as before it."""
    if value in (None, False):
        return
    obj = ctx.find_object(AppContext)
    if obj is None:  # the command was built outside the top-level group (a test)
        return
    name = (param.name or "").removeprefix("global_")
    if name == "config":
        obj.config_path = Path(value)
    elif name == "exchange":
        obj.overrides[name] = _venue(value)
    elif name == "data_dir":
        obj.overrides[name] = value
    else:
        setattr(obj, name, True)
        configure_logging(verbose=obj.verbose, quiet=obj.quiet)


def main() -> None:
    gc_policy.quiet_start()
    try:
        app(prog_name="cryptobot")
    except BrokenPipeError:  # the reader went away (`| head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    finally:
        gc_policy.before_exit()


def run() -> None:
    """The ``cryptobot`` program (the console script, ``python -m cryptobot``): :func:`main`,
    then the process ends at once with its exit status (:func:`_end`). ``main`` alone ends in
    ``SystemExit`` as a click program does, for callers that go on."""
    try:
        main()
    except SystemExit as exc:
        _end(exc.code)


def _end(code: object) -> NoReturn:
    """End this process now with ``code`` (read as ``sys.exit`` reads it) and skip the teardown
    of the interpreter's own exit, every module one by one (0.01-0.03 s after a backtest; the
    collector's part of it is gone already, core/gc_policy.py). What that exit does that
    matters is done first: the atexit callbacks run (logging's, finalizers of temporary files),
    stdout and stderr are flushed (a stdout that cannot take the rest is exit status 120, as
    Python's own exit makes it). Files and connections are closed by their owners (``with``)
    long before. While another thread that is not a daemon still runs, or for a message as
    the code, this is Python's normal exit, which waits for the thread."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if not (code is None or isinstance(code, int)) or any(not t.daemon for t in others):
        sys.exit(code)
    status = code or 0
    gc_policy.before_exit()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed stream
            status = status or (120 if stream is sys.stdout else 0)
    os._exit(status)


if __name__ == "__main__":
    run()
