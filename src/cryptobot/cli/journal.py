"""``cryptobot journal``: what was traded, read back from the DuckDB journal, filtered, exported.

Reads only (read-only connections, retried while a writer holds the file), so it runs beside
``trade`` or a daemon. Times: ISO UTC in the text formats and the table, int64 ms in Parquet.
"""

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context

from cryptobot.cli.context import AppContext
from cryptobot.cli.output import (
    Format,
    Notes,
    OutputOpt,
    check_file,
    render,
    to_json,
    wants_table,
)
from cryptobot.journal.query import (
    Filters,
    Selection,
    applies,
    layout,
    moment,
    read,
    with_iso_times,
)

HELP = {
    "orders": "Orders trade asked a venue for: legs, status, fills, fees, the gate verdicts"
    " of an entry and why one was refused.",
    "fills": "The venue's fills of journaled orders (and its liquidations), with the strategy"
    " of the order they filled.",
    "trades": "Round trips derived from the fills: entry and exit averages, slippage against"
    " the sized price, fees, funding, pnl and the exit reason.",
    "positions": "Snapshots of the venue's open positions, taken at the end of each trade run.",
    "events": "What a trader must know: CRITICAL (a position closed for want of a stop),"
    " WARNING, INFO.",
    "setups": "Setups scan and signal saw, with their reasons.",
    "backtests": "Recorded backtest runs with their request and summary.",
    "account": "Balance and equity snapshots: wallet, equity, unrealised pnl, margin used.",
}
KIND_NAMES = tuple(HELP)

app = typer.Typer(
    help=(
        "Read what was traded from the journal: orders, fills, round trips, positions,"
        " events, setups, backtests, account snapshots; filter and export (CSV, Parquet,"
        " JSONL, XLSX)."
    ),
    no_args_is_help=True,
    epilog=(
        "Examples:\n\n  cryptobot journal orders --since 7d --symbol BTC/USDT:USDT\n\n"
        "  cryptobot journal trades --format csv -o trades.csv\n\n"
        "  cryptobot journal export --xlsx -o journal.xlsx"
    ),
)


class JournalFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


SUFFIX_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "json"}

SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="From this time: a duration back from now (7d, 12h, 2w, 30m)"
                 " or ISO-8601 / epoch ms."),
]  # fmt: skip
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Before this time (same forms as --since).")
]
SymbolOpt = Annotated[str | None, typer.Option("--symbol", help="One symbol: BTC/USDT:USDT.")]
StrategyOpt = Annotated[str | None, typer.Option("--strategy", help="One strategy's rows.")]
VenueOpt = Annotated[
    str | None,
    typer.Option("--venue", "--exchange", help="One account: paper:main, replay:binanceusdm,"
                 " binanceusdm; or a kind of them: paper, replay."),
]  # fmt: skip
LimitOpt = Annotated[
    int | None, typer.Option("--limit", min=1, max=2**62, help="The newest N rows only.")
]  # (DuckDB's LIMIT takes at most a 64-bit number)
JournalFormatOpt = Annotated[
    JournalFormat | None,
    typer.Option("--format", "-f", help="Output format (parquet: to -o FILE or a pipe)."),
]


def _command(kind: str) -> None:
    """``journal <kind>``: one command per kind, all with the same flags (a filter a kind
    has no column for is a usage error there, not silently ignored)."""

    def command(
        ctx: typer.Context,
        since: SinceOpt = None,
        until: UntilOpt = None,
        symbol: SymbolOpt = None,
        strategy: StrategyOpt = None,
        venue: VenueOpt = None,
        limit: LimitOpt = None,
        fmt: JournalFormatOpt = None,
        output: OutputOpt = None,
    ) -> None:
        filters = _filters(since=since, until=until, symbol=symbol, strategy=strategy,
                           venue=venue, limit=limit)  # fmt: skip
        wrong = applies(kind, filters)
        if wrong:
            raise _usage(f"--{wrong[0]} does not apply to journal {kind}")
        chosen = _format(fmt, output)
        obj: AppContext = ctx.obj
        selection = read(obj.data_dir(create=False), kind, filters)
        _note_empty(kind, selection, quiet=obj.quiet)
        _emit(kind, selection.records, fmt=chosen, output=output)

    command.__doc__ = HELP[kind]
    example = f"Example:\n\n  cryptobot journal {kind} --since 7d"
    app.command(kind, epilog=example)(command)


def _filters(
    *,
    since: str | None,
    until: str | None,
    symbol: str | None,
    strategy: str | None,
    venue: str | None,
    limit: int | None,
) -> Filters:
    now = int(time.time() * 1000)
    times = {}
    for flag, text in (("--since", since), ("--until", until)):
        try:
            times[flag] = None if text is None else moment(text, now=now)
        except ValueError as exc:
            raise _usage(f"{flag} {exc}") from None
    return Filters(since=times["--since"], until=times["--until"], symbol=symbol,
                   strategy=strategy, venue=venue, limit=limit)  # fmt: skip


def _format(fmt: JournalFormat | None, output: Path | None) -> JournalFormat | None:
    """The format: ``-o``'s suffix decides; a ``--format`` saying otherwise is a usage
    error, and Parquet (binary) is refused on a terminal."""
    if output is not None:
        by_suffix = JournalFormat(SUFFIX_FORMATS[output.suffix.lower()])
        if fmt is not None and fmt is not by_suffix:
            raise _usage(f"--format {fmt} and -o {output} disagree; the suffix decides")
        return by_suffix
    if fmt is JournalFormat.parquet and sys.stdout.isatty():
        raise _usage("--format parquet is binary: give -o FILE.parquet or pipe it")
    return fmt


def _note_empty(kind: str, selection: Selection, *, quiet: bool) -> None:
    if selection.records:
        return
    why = selection.absent or "nothing matches the filters"
    Notes(quiet=quiet).say(f"note: no {kind}: {why}")


def _emit(kind: str, records: list[dict], *, fmt: JournalFormat | None,
          output: Path | None) -> None:  # fmt: skip
    columns, times = layout(kind)
    if fmt is JournalFormat.parquet:
        _parquet(records, columns, output)
        return
    text = with_iso_times(records, times)
    if not text and fmt is JournalFormat.csv:  # a header for an empty CSV
        out = ",".join(columns) + "\n"
        if output is None:
            sys.stdout.write(out)
        else:
            from cryptobot.data.atomic import atomic_write

            atomic_write(output, lambda tmp: tmp.write_text(out))
        return
    plain_fmt = None if fmt is None else Format(fmt.value)
    if wants_table(fmt=plain_fmt, output=output):
        text = [{k: _flat(v) for k, v in r.items()} for r in text]
    render(text, plain_fmt, output, title=f"journal {kind}")


def _flat(value: Any) -> Any:
    """A nested value as JSON text, for a table cell."""
    return to_json(value) if isinstance(value, dict | list) else value


def _parquet(records: list[dict], columns: tuple[str, ...], output: Path | None) -> None:
    """Parquet to ``output`` (through a temp file) or to stdout; an empty kind keeps its
    columns (all null). An object (gate verdicts, an event's data) is JSON text: Parquet
    cannot store an empty one as a struct, and each row's keys differ."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cryptobot.cli.output import arrow_table

    rows = [{k: to_json(v) if isinstance(v, dict) else v for k, v in r.items()} for r in records]
    table = arrow_table(rows) if rows else pa.table(
        {c: pa.array([], pa.null()) for c in columns})  # fmt: skip
    if output is None:
        sys.stdout.flush()
        pq.write_table(table, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    from cryptobot.data.atomic import atomic_write

    atomic_write(output, lambda tmp: pq.write_table(table, tmp))


for _kind in KIND_NAMES:
    _command(_kind)


def _xlsx_file(path: Path | None) -> Path | None:
    return check_file(path, suffixes=(".xlsx",), flag="-o")


@app.command(
    "export",
    epilog="Examples:\n\n  cryptobot journal export --xlsx -o journal.xlsx --since 30d\n\n"
    "  cryptobot journal export --parquet-dir journal-parquet",
)
def export(
    ctx: typer.Context,
    xlsx: Annotated[bool, typer.Option("--xlsx", help="One workbook, a sheet per kind.")] = False,
    parquet_dir: Annotated[
        Path | None,
        typer.Option("--parquet-dir", help="A Parquet file per kind in this directory."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The .xlsx file (with --xlsx).", callback=_xlsx_file),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    symbol: SymbolOpt = None,
    strategy: StrategyOpt = None,
    venue: VenueOpt = None,
    limit: LimitOpt = None,
) -> None:
    """Every kind at once, to an XLSX workbook or a directory of Parquet files; the filters
    apply to each kind that has their column."""
    folder = _export_target(xlsx=xlsx, parquet_dir=parquet_dir, output=output)
    filters = _filters(since=since, until=until, symbol=symbol, strategy=strategy,
                       venue=venue, limit=limit)  # fmt: skip
    obj: AppContext = ctx.obj
    root = obj.data_dir(create=False)
    parts = {kind: read(root, kind, _applicable(kind, filters)) for kind in KIND_NAMES}
    notes = Notes(quiet=obj.quiet)
    if not any(p.records for p in parts.values()):
        why = next((p.absent for p in parts.values() if p.absent), "nothing matches the filters")
        notes.say(f"note: the export is empty: {why}")
    if folder is None:
        from cryptobot.journal.export import Sheet, write_xlsx

        sheets = []
        for kind in KIND_NAMES:
            columns, times = layout(kind)
            sheets.append(Sheet(kind, columns, parts[kind].records, times))
        write_xlsx(output, sheets)  # type: ignore[arg-type]  # checked by _export_target
        where = str(output)
    else:
        folder.mkdir(exist_ok=True)
        for kind in KIND_NAMES:
            _parquet(parts[kind].records, layout(kind)[0], folder / f"{kind}.parquet")
        where = f"{folder}/"
    counts = ", ".join(f"{kind} {len(parts[kind].records)}" for kind in KIND_NAMES)
    notes.say(f"wrote {where}: {counts}")


def _export_target(*, xlsx: bool, parquet_dir: Path | None, output: Path | None) -> Path | None:
    """Checked before any work: one of --xlsx -o FILE.xlsx or --parquet-dir DIR (whose
    parent must exist); returns the Parquet folder, None for a workbook."""
    if xlsx == (parquet_dir is not None):
        raise _usage("give one of --xlsx -o FILE.xlsx or --parquet-dir DIR")
    if xlsx:
        if output is None:
            raise _usage("--xlsx needs -o FILE.xlsx")
        return None
    assert parquet_dir is not None
    if output is not None:
        raise _usage("-o names the workbook of --xlsx; --parquet-dir writes a file per kind")
    if parquet_dir.exists() and not parquet_dir.is_dir():
        raise _usage(f"--parquet-dir {parquet_dir}: is a file, not a directory")
    if not parquet_dir.parent.is_dir():
        raise _usage(f"--parquet-dir {parquet_dir}: directory {parquet_dir.parent} does not"
                     " exist; create it first")  # fmt: skip
    return parquet_dir


def _applicable(kind: str, filters: Filters) -> Filters:
    """``filters`` without those ``kind`` has no column for (an export's filters apply where
    they mean something)."""
    from dataclasses import replace

    wrong = applies(kind, filters)
    return replace(filters, **dict.fromkeys(wrong)) if wrong else filters


def _usage(message: str) -> UsageError:
    return UsageError(message, ctx=get_current_context(silent=True))
