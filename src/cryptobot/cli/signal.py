"""``cryptobot signal``: setups in, signals out (context filters applied, every decision
journaled)."""

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from cryptobot.cli.charts import ChartOpt, write_charts
from cryptobot.cli.context import AppContext
from cryptobot.cli.inputs import parse_records, read_records
from cryptobot.cli.output import FormatOpt, OutputOpt, render
from cryptobot.core.setup import Setup

if TYPE_CHECKING:
    from cryptobot.data.lake import Lake

log = logging.getLogger(__name__)

EPILOG = (
    "Examples:\n\n"
    "  cryptobot signal setups.jsonl\n\n"
    "  cryptobot scan --top 30 --format jsonl | cryptobot signal - --format jsonl\n\n"
    "  cryptobot signal setups.jsonl --all --format table   # why each setup passed or not\n\n"
    "  cryptobot scan --offline --format jsonl | cryptobot signal - --offline\n\n"
    "  cryptobot signal setups.jsonl --chart .   # a picture of each signal's setup, here"
)


def signal_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="Setups: a .jsonl/.json/.parquet file or - for stdin.")
    ],
    show_all: Annotated[
        bool, typer.Option("--all", help="List every decision with its reason, not only signals.")
    ] = False,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Leave out bad records (each named on stderr)."),
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="No network: judge at the stored candles' clock, as scan --offline."
        ),
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    chart: ChartOpt = None,
) -> None:
    """Turn setups into signals: regime, funding, higher-timeframe bias, cooldown after a loss,
    one signal per symbol, expiry. Rejected setups are journaled with the reason.

    Setups are judged at the venue's clock (the replay clock under `exchange: replay`; with
    --offline, just after the newest stored bar), never the machine's.

    --chart DIR draws the setups that became signals (every decided setup with --all)."""
    from cryptobot.data.lake import Lake
    from cryptobot.strategies.signals import decide_and_record

    obj: AppContext = ctx.obj
    setups = parse_records(
        read_records(source),
        Setup.from_record,
        skip_bad=skip_bad,
        warn=log.warning,
    )
    lake = Lake(obj.data_dir(create=False))
    if not setups and chart is None:  # an empty pipe: nothing to judge, no venue to ask
        render([], fmt, output, title="signals")
        return
    now = asyncio.run(_venue_now(obj, lake, offline=offline))
    decisions = decide_and_record(setups, lake, obj.settings.signal, now=now, cot=obj.settings.cot)
    accepted = [d for d in decisions if d.accepted]
    log.info("%d of %d setups became signals", len(accepted), len(decisions))
    if chart is not None:
        charted = [d.setup for d in (decisions if show_all else accepted)]
        write_charts(
            charted,
            directory=chart,
            lake=lake,
            settings=obj.settings,
            now_ms=now,
            title="signals",
        )
    if show_all:
        rows = [
            {
                "symbol": d.setup.symbol,
                "strategy": d.setup.strategy,
                "side": d.setup.side,
                "status": d.setup.status,
                "setup_id": d.setup.id,
                "accepted": d.accepted,
                "reason": d.reason,
                **{k: v for k, v in d.context.items()},
            }
            for d in decisions
        ]
        render(rows, fmt, output, title="signal decisions")
        return
    render([d.signal.to_json() for d in accepted], fmt, output, title="signals")


async def _venue_now(obj: AppContext, lake: "Lake", *, offline: bool) -> int:
    """The clock the setups are judged at: the venue's ``now``."""
    from cryptobot.exchange.factory import market_exchange

    async with market_exchange(obj.settings, lake, offline=offline, secrets=obj.secrets) as ex:
        return await ex.now()
