"""``cryptobot signal``: setups in, signals out (context filters applied, every decision
journaled)."""

import logging
import time
from typing import Annotated

import typer

from cryptobot.cli.charts import ChartOpt, write_charts
from cryptobot.cli.context import AppContext
from cryptobot.cli.inputs import parse_records, read_records
from cryptobot.cli.output import FormatOpt, OutputOpt, render
from cryptobot.core.setup import Setup

log = logging.getLogger(__name__)

EPILOG = (
    "Examples:\n\n"
    "  cryptobot signal setups.jsonl\n\n"
    "  cryptobot scan --top 30 --format jsonl | cryptobot signal - --format jsonl\n\n"
    "  cryptobot signal setups.jsonl --all --format table   # why each setup passed or not\n\n"
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
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    chart: ChartOpt = None,
) -> None:
    """Turn setups into signals: regime, funding, higher-timeframe bias, cooldown after a loss,
    one signal per symbol, expiry. Rejected setups are journaled with the reason.

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
    decisions = decide_and_record(setups, lake, obj.settings.signal, cot=obj.settings.cot)
    accepted = [d for d in decisions if d.accepted]
    log.info("%d of %d setups became signals", len(accepted), len(decisions))
    if chart is not None:
        charted = [d.setup for d in (decisions if show_all else accepted)]
        now_ms = int(time.time() * 1000)
        write_charts(
            charted,
            directory=chart,
            lake=lake,
            settings=obj.settings,
            now_ms=now_ms,
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
