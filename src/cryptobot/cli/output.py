"""Rendering records the same way in every command.

A rich table when stdout is a terminal, JSON Lines when it is a pipe; ``--format`` picks
table/json/jsonl/csv explicitly and ``-o FILE`` writes .parquet/.csv/.jsonl/.json by extension.
Logs and progress never go to stdout.
"""

import csv
import io
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from cryptobot.core.errors import CryptobotError
from cryptobot.data.atomic import atomic_write

Record = dict[str, Any]


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def render(
    records: Sequence[Record],
    fmt: Format | None = None,
    output: Path | None = None,
    title: str | None = None,
) -> None:
    if output is not None:
        write_records(records, output)
        return
    chosen = fmt or (Format.table if sys.stdout.isatty() else Format.jsonl)
    if chosen is Format.table:
        table = as_table(records, title)
        console = Console()
        console.width = max(console.width, _min_width(table))
        console.print(table)
    else:
        sys.stdout.write(dumps(records, chosen))
        sys.stdout.flush()


def dumps(records: Sequence[Record], fmt: Format) -> str:
    if fmt is Format.json:
        return json.dumps(list(records), indent=2, default=str) + "\n"
    if fmt is Format.jsonl:
        return "".join(json.dumps(r, default=str) + "\n" for r in records)
    if fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_columns(records), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buf.getvalue()
    raise ValueError(fmt)


def write_records(records: Sequence[Record], path: Path) -> None:
    """Write by extension, atomically, so an interrupted export never leaves half a file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = pa.Table.from_pylist(list(records))
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        return
    formats = {".csv": Format.csv, ".jsonl": Format.jsonl, ".json": Format.json}
    if suffix not in formats:
        raise CryptobotError(f"-o {path}: use a .parquet, .csv, .jsonl or .json file name")
    text = dumps(records, formats[suffix])
    atomic_write(path, lambda tmp: tmp.write_text(text))


def as_table(records: Sequence[Record], title: str | None = None) -> Table:
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


def _min_width(table: Table) -> int:
    return sum((c.min_width or 0) + 3 for c in table.columns) + 1


def _columns(records: Sequence[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(r))
    return list(seen)


def _numeric(records: Sequence[Record], col: str) -> bool:
    values = [r.get(col) for r in records if r.get(col) is not None]
    return bool(values) and all(isinstance(v, int | float) for v in values)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.8g}"
    return str(value)
