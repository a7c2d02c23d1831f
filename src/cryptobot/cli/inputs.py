"""Reading records given to a command: a file path, or ``-`` for stdin (JSON Lines, a JSON array
or CSV: whatever ``-f jsonl|json|csv`` printed).

Every record keeps where it came from (``stdin line 3``, ``setups.parquet row 2``), so a bad
one is named in the error instead of sinking a batch without saying which. A JSON Lines line
that is not a JSON object at all (a truncated write, a stray log line) is a bad record like
any other: it stops the batch naming its line, or ``--skip-bad`` leaves it out.
"""

import csv
import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from cryptobot.core.errors import CryptobotError, DataError
from cryptobot.core.numbers import short

T = TypeVar("T")
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)  # what a CSV writer spells
Numbered = list[tuple[str, dict[str, Any]]]
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # a record's field name, as our writers name them


class BadLine(dict):
    """A JSON Lines line that is not a JSON object, kept in its place (empty, with ``why``) so
    :func:`parse_records` names and skips it by the one rule for bad records."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why


def read_records(source: str, stdin: TextIO | None = None) -> Numbered:
    """``(where, record)`` pairs; an empty input is an empty list, not an error.

    ``-`` reads stdin as whatever another command printed there: JSON Lines, a JSON array
    (``-f json``) or CSV with a header (``-f csv``), told apart by the first non-blank character
    (``[`` an array, ``{`` JSON Lines, anything else CSV), and read as the same file would be."""
    if source == "-":
        text = (stdin or sys.stdin).read().removeprefix("\ufeff")  # a spreadsheet's BOM
        first = text.lstrip()[:1]
        kind = {"[": ".json", "{": ".jsonl", "": ".jsonl"}.get(first, ".csv")
        return _parse_text(text, kind, "stdin")
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give a file, or - for stdin")
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa  # only for a Parquet input: `--help` and pipes stay quick
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
        return _rows(rows, str(path))
    if suffix in (".jsonl", ".ndjson", ".json", ".csv"):
        return _parse_text(path.read_text(encoding="utf-8-sig"), suffix, str(path))
    raise DataError(f"{path}: use a .jsonl, .json, .csv or .parquet file, or - for stdin")


def _parse_text(text: str, kind: str, source: str) -> Numbered:
    """Records from the text of a ``.jsonl``/``.ndjson``, ``.json`` or ``.csv`` input (read
    without a byte-order mark, as spreadsheets save CSV)."""
    if kind == ".json":
        try:
            data = json.loads(text or "[]")
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return _rows(data if isinstance(data, list) else [data], source)
    if kind == ".csv":
        _one_line_is_no_records(text, source)
        rows = csv.DictReader(io.StringIO(text, newline=""))
        return _rows([_csv_numbers(row) for row in rows], source)
    return _jsonl(text.splitlines(), source)


def _one_line_is_no_records(text: str, source: str) -> None:
    """A single line that is no CSV header of records (names that are not column names, or
    no ``symbol`` column, which every record has) is no input at all: ``null`` or a log line
    (``Error: connection refused, retrying``) piped in by mistake. Read as a CSV without rows,
    it would end a pipe with exit 0 and nothing done. A header of records alone is an empty
    input."""
    lines = text.strip().splitlines()
    if len(lines) != 1:
        return
    names = next(csv.reader([lines[0]]))
    if "symbol" not in names or not all(_COLUMN.fullmatch(n) for n in names):
        raise DataError(
            f"{source}: {short(lines[0])} is not records (JSON Lines, a JSON array, or CSV "
            "with a header and rows)"
        )


def parse_records(
    records: Numbered,
    parse: Callable[[dict[str, Any]], T],
    *,
    skip_bad: bool,
    warn: Callable[[str], None],
) -> list[T]:
    """Parse every record. A bad one stops the batch naming it (where, id, why), or with
    ``skip_bad`` is reported through ``warn`` and left out while the rest go on."""
    out = []
    for where, record in records:
        try:
            if isinstance(record, BadLine):
                raise DataError(record.why)
            out.append(parse(record))
        except CryptobotError as exc:
            ident = record.get("id") or record.get("setup_id")
            message = f"{where}" + (f" (id {ident})" if ident else "") + f": {exc}"
            if not skip_bad:
                raise DataError(f"{message} (--skip-bad leaves it out)") from None
            warn(f"skipped {message}")
    return out


def _csv_numbers(row: dict[str, Any]) -> dict[str, Any]:
    """CSV is all text: a cell spelled as a JSON number (``12.5``, ``-3``, ``1e-5``) is that
    number, as the CSV writer meant it (``nan``/``inf`` too, to be refused as not finite);
    anything else stays text, so ``1_0`` or `` 12.5 `` is refused where a number is needed, as
    it is in a JSON record."""
    return {k: _csv_cell(v) for k, v in row.items()}


def _csv_cell(cell: Any) -> Any:
    if isinstance(cell, str) and _JSON_NUMBER.fullmatch(cell):
        return json.loads(cell)
    if isinstance(cell, str) and _NOT_FINITE.fullmatch(cell):
        return float(cell)  # refused as "not a finite number", the real reason
    return cell


def _rows(rows: list[Any], source: str) -> Numbered:
    out = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{source} row {number}: expected an object")
        out.append((f"{source} row {number}", row))
    return out


def _jsonl(lines: list[str], source: str) -> Numbered:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            record = BadLine(f"not valid JSON ({exc.msg})")
        if not isinstance(record, dict):
            record = BadLine("expected a JSON object")
        records.append((f"{source} line {number}", record))
    return records
