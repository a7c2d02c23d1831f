"""Reading records given to a command: a file path, or ``-`` for JSON Lines on stdin."""

import csv
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from cryptobot.core.errors import DataError


def read_records(source: str, stdin: TextIO | None = None) -> list[dict[str, Any]]:
    if source == "-":
        return _jsonl((stdin or sys.stdin).read().splitlines(), "stdin")
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path.read_text().splitlines(), str(path))
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return data if isinstance(data, list) else [data]
    if suffix == ".csv":
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    raise DataError(f"{path}: use a .jsonl, .json, .csv or .parquet file, or - for stdin")


def _jsonl(lines: list[str], source: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{source} line {number}: expected a JSON object")
        records.append(record)
    return records
