"""``cryptobot risk``: the circuit breaker's state, equity observations, and the manual reset."""

import re
import time
from typing import Annotated

import click
import typer
from typer.core import TyperCommand

from cryptobot.cli.context import AppContext
from cryptobot.cli.numbers import NON_NEGATIVE
from cryptobot.cli.output import FormatOpt, OutputOpt, render, wants_table
from cryptobot.core.timeutil import iso
from cryptobot.risk.breakers import BreakerState, Mode, Reset

SEVERE = (Mode.halted, Mode.stopped)

AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="Whose breaker: the journal's name of the account (paper:paper, binanceusdm,"
        " replay:binanceusdm). Default: the configured one (mode, exchange, paper.account).",
    ),
]

app = typer.Typer(
    help="Circuit breakers: status, equity observations, manual reset after a weekly halt.",
    no_args_is_help=True,
)


@app.command("status", epilog="Example:\n\n  cryptobot risk status")
def status(
    ctx: typer.Context, account: AccountOpt = None, fmt: FormatOpt = None, output: OutputOpt = None
) -> None:
    """The breaker's mode, why, until when, and the latest trips (on a terminal)."""
    obj: AppContext = ctx.obj
    root = obj.data_dir(create=False)
    from cryptobot.journal import breakers as breaker_journal
    from cryptobot.risk.context import current_breaker  # the journal loads when it runs

    name = _account(obj, account)
    state = current_breaker(root, obj.settings.risk, _now(obj), account=name)
    render([_row(state, name)], fmt, output, title="circuit breaker")
    events = breaker_journal.events(root, account=name)
    if events and wants_table(fmt=fmt, output=output):
        for e in events:
            e["ts"] = iso(e["ts"])
        render(events, fmt, title="latest breaker events")


class _SignedNumber(TyperCommand):
    """``risk equity -5`` or ``-inf``: a number to check and refuse with its reason, not an
    unknown option (click would read ``-inf`` as the short options -i -n -f)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        numbers = [a for a in args if _SIGNED.match(a)]
        if numbers and "--" not in args:
            args = [*(a for a in args if not _SIGNED.match(a)), "--", *numbers]
        return super().parse_args(ctx, args)


_SIGNED = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


@app.command(
    "equity",
    cls=_SignedNumber,
    epilog="Example (cron, every minute):\n\n  cryptobot risk equity 987.5",
)
def equity(
    ctx: typer.Context,
    amount: Annotated[
        float,
        typer.Argument(
            parser=NON_NEGATIVE,
            metavar="AMOUNT",
            help="Account equity now, in the quote currency (finite, >= 0).",
        ),
    ],
    account: AccountOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Record an equity observation; trips the daily/weekly/monthly breaker when a limit is hit
    and prints the actions it asks for."""
    obj: AppContext = ctx.obj
    root = obj.data_dir(create=True)
    from cryptobot.risk.context import observe_equity

    name = _account(obj, account)
    state, actions = observe_equity(root, account=name, equity=amount, now=_now(obj),
                                    risk=obj.settings.risk, label=f"equity {amount:g}")  # fmt: skip
    render([_row(state, name) | {"actions": ",".join(actions)}], fmt, output,
           title="circuit breaker")  # fmt: skip


@app.command("reset", epilog="Example:\n\n  cryptobot risk reset")
def reset(
    ctx: typer.Context, account: AccountOpt = None, fmt: FormatOpt = None, output: OutputOpt = None
) -> None:
    """Release a weekly halt by hand (a daily block runs its course; a monthly stop needs a
    change of the loss limits, risk.breakers.*_loss_pct/usd)."""
    obj: AppContext = ctx.obj
    root = obj.data_dir(create=False)
    from cryptobot.risk.context import apply_event

    name = _account(obj, account)
    state, _ = apply_event(root, Reset(_now(obj)), obj.settings.risk, "manual reset", account=name)
    render([_row(state, name)], fmt, output, title="circuit breaker")


def _account(obj: AppContext, given: str | None) -> str:
    from cryptobot.core.venues import CCXT_VENUES, configured_account, known_account

    if given is None:
        return configured_account(obj.settings)
    if not known_account(name := given.strip()):
        raise typer.BadParameter(
            f"{given!r} is no account: paper:<name>, replay:<exchange> or one of "
            f"{', '.join(CCXT_VENUES)}",
            param_hint="--account",
        )
    return name


def _row(state: BreakerState, account: str) -> dict:
    return {
        "account": account,
        "mode": str(state.mode),
        "entries_allowed": state.entries_allowed,
        "tripped_by": state.tripped_by,
        "reason": state.reason,
        "until": iso(state.until) if state.mode is Mode.blocked else None,
        # a daily block a weekly reset will not end (kept under a halt or a stop)
        "daily_block_until": iso(state.until) if state.mode in SEVERE else None,
        "recovery_until": iso(state.recovery_until),
        "day_start_equity": state.day_start,
        "last_equity": state.last_equity,
    }


def _now(obj: AppContext) -> int:
    """The breaker's clock: the replay exchange's under ``exchange: replay``, else the wall's."""
    from cryptobot.exchange.factory import command_now

    return command_now(obj.settings, wall_ms=int(time.time() * 1000))
