"""Rendering records the same way in every command.

A rich table when stdout is a terminal, JSON Lines when it is a pipe; ``--format`` picks
table/json/jsonl/csv explicitly and ``-o FILE`` writes .parquet/.csv/.jsonl/.json by extension.
Logs and progress never go to stdout.

This is the one place records leave, so the output contracts live here: JSON is strict (a NaN or
an infinity becomes ``null``, which JavaScript, Go and ``json.loads(parse_constant=...)`` all
accept), a Parquet file has a column for every key of every row (not only the first row's), a CSV
cell holding a list or an object is JSON text, and ``-o`` is checked before a command starts its
work (a missing directory is an error, not a silent ``mkdir``).
"""

import csv
import io
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cryptobot.core.errors import CryptobotError
from cryptobot.core.numbers import plain
from cryptobot.data.atomic import atomic_write

if TYPE_CHECKING:  # pyarrow loads only when a Parquet file is written (`--help` stays quick)
    import pyarrow as pa
    from rich.console import Console
    from rich.table import Table

Record = dict[str, Any]
SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def check_output(path: Path | None) -> Path | None:
    """Refuse an ``-o`` the command could not write, before it does any work."""
    return check_file(path, suffixes=SUFFIXES, flag="-o")


def check_file(path: Path | None, *, suffixes: Sequence[str], flag: str) -> Path | None:
    """The rule of :func:`check_output` for any file option (``--chart page.html``)."""
    if path is None:
        return None
    if path.is_dir():
        raise CryptobotError(f"{flag} {path}: is a directory; give a file name")
    if path.suffix.lower() not in suffixes:
        names = " or ".join([", ".join(suffixes[:-1]), suffixes[-1]] if suffixes[:-1] else suffixes)
        raise CryptobotError(f"{flag} {path}: use a {names} file name")
    if not path.parent.is_dir():
        raise CryptobotError(
            f"{flag} {path}: directory {path.parent} does not exist; create it first"
        )
    return path


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to FILE (.parquet, .csv, .jsonl or .json) instead of stdout.",
        callback=check_output,
    ),
]
FormatOpt = Annotated[Format | None, typer.Option("--format", "-f", help="Output format.")]


def wants_table(*, fmt: Format | None, output: Path | None) -> bool:
    """A table for a person (terminal or ``--format table``); full records everywhere else, so
    a pipe or a file always carries what the next command needs."""
    if output is not None:
        return False
    return fmt is Format.table or (fmt is None and sys.stdout.isatty())


def render(
    records: Sequence[Record],
    fmt: Format | None = None,
    output: Path | None = None,
    title: str | None = None,
) -> None:
    if output is not None:
        write_records(records, output)
        return
    if wants_table(fmt=fmt, output=None):
        from rich.console import Console  # a table's only (0.02-0.04 s with its first print)

        table = as_table(records, title)
        console = Console()
        console.width = max(console.width, _min_width(table))
        console.print(table)
    else:
        sys.stdout.write(dumps(records, fmt or Format.jsonl))
        sys.stdout.flush()


class Notes:
    """Lines for the person running a command, on stderr (never data): coloured through rich on
    a terminal; elsewhere (a pipe, a cron log) one plain line each, not wrapped at 80 columns,
    and rich is not loaded for them (0.02-0.04 s of a backtest's start). ``quiet`` (``-q``)
    drops them all. The text is printed as it is: a ``[`` in it is no markup."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._console: Console | None = None
        if not quiet and sys.stderr.isatty():
            from rich import console

            self._console = console.Console(stderr=True)

    def say(self, text: str) -> None:
        self._emit(text)

    def warn(self, text: str, *, colour: str = "yellow") -> None:
        """``warning: text``, the label in ``colour`` on a terminal."""
        self._emit(text, label="warning:", colour=colour)

    def _emit(self, text: str, *, label: str = "", colour: str = "") -> None:
        if self.quiet:
            return
        if self._console is None:
            sys.stderr.write(f"{label} {text}\n" if label else f"{text}\n")
            return
        from rich.markup import escape

        self._console.print(f"[{colour}]{label}[/] {escape(text)}" if label else escape(text))


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text; times and other objects as their string form."""
    return json.dumps(plain(value), indent=indent, default=str, allow_nan=False)


def dumps(records: Sequence[Record], fmt: Format) -> str:
    if fmt is Format.json:
        return to_json(list(records), indent=2) + "\n"
    if fmt is Format.jsonl:
        return "".join(to_json(r) + "\n" for r in records)
    if fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_columns(records), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _csv_cell(v) for k, v in r.items()} for r in records)
        return buf.getvalue()
    raise ValueError(fmt)


def write_records(records: Sequence[Record], path: Path) -> None:
    """Write by extension, atomically, so an interrupted export never leaves half a file."""
    check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = arrow_table(records)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        return
    formats = {".csv": Format.csv, ".jsonl": Format.jsonl, ".json": Format.json}
    text = dumps(records, formats[suffix])
    atomic_write(path, lambda tmp: tmp.write_text(text))


def arrow_table(records: Sequence[Record]) -> "pa.Table":
    """One column per key of any row (missing values null). A column whose values Arrow cannot
    hold as one type (a number in one row, text in another) is stored as JSON text."""
    import pyarrow as pa

    columns = {}
    for name in _columns(records):
        values = [plain(r.get(name)) for r in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else to_json(v) for v in values])
    return pa.table(columns)


def as_table(records: Sequence[Record], title: str | None = None) -> "Table":
    from rich.table import Table  # only a table needs it, not JSON or a file (0.005 s)

    table = Table(title=title, header_style="bold")
    columns = _columns(records)
    cells = [[_cell(r.get(c)) for c in columns] for r in records]
    for i, col in enumerate(columns):
        widest = max([len(col), *(len(row[i]) for row in cells)])
        table.add_column(
            col,
            justify="right" if _numeric(records, col) else "left",
            min_width=min(widest, 22),  # readable cells; a wide table scrolls instead of mashing
            overflow="fold",
        )
    for row in cells:
        table.add_row(*row)
    return table


def _min_width(table: "Table") -> int:
    return sum((c.min_width or 0) + 3 for c in table.columns) + 1


def _columns(records: Sequence[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(r))
    return list(seen)


def _numeric(records: Sequence[Record], col: str) -> bool:
    values = [r.get(col) for r in records if r.get(col) is not None]
    return bool(values) and all(isinstance(v, int | float) for v in values)


def _csv_cell(value: Any) -> Any:
    value = plain(value)
    return to_json(value) if isinstance(value, dict | list) else value


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.8g}"
    return str(value)
