"""The journal as one Excel workbook: a sheet per kind (``journal export --xlsx``).

Why openpyxl (pandas' own xlsx engine) and not a hand-made zip of XML: a workbook Excel,
LibreOffice and pandas all open is a spec of its own; the library is small and pure Python.

What a cell holds: numbers as numbers, NaN and infinities as empty cells (Excel has neither),
times as Excel date-times in UTC (the header says so), lists and objects as JSON text, and
text always as text: a journal message or a strategy name starting with ``=`` is never a
formula (a journal carries what venues answered; a formula in it would run on open). The
file is written through a temp file and a rename, so an export killed half-way never leaves
half a workbook.
"""

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptobot.core.numbers import plain
from cryptobot.data.atomic import atomic_write

#: characters the xlsx format cannot hold (control characters other than tab and newlines)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class Sheet:
    """One kind's rows: its columns in order and which of them are times (ms)."""

    name: str
    columns: Sequence[str]
    records: Sequence[Mapping[str, Any]]
    times: Sequence[str] = ()


def write_xlsx(path: Path, sheets: Sequence[Sheet]) -> None:
    """Write ``sheets`` to ``path`` (an empty kind is a sheet with its header only)."""
    from openpyxl import Workbook  # only an export needs it

    book = Workbook(write_only=True)
    for sheet in sheets:
        ws = book.create_sheet(sheet.name[:31])
        ws.append([_header(c, sheet.times) for c in sheet.columns])
        for record in sheet.records:
            ws.append([_cell(ws, record.get(c), time=c in sheet.times) for c in sheet.columns])
    atomic_write(path, lambda tmp: book.save(tmp))


def _header(column: str, times: Sequence[str]) -> str:
    return f"{column} (UTC)" if column in times else column


def _cell(ws: Any, value: Any, *, time: bool) -> Any:
    from openpyxl.cell import WriteOnlyCell

    value = plain(value)
    if value is None:
        return None
    if time and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC).replace(tzinfo=None)
    if isinstance(value, bool | int | float):
        return value if not isinstance(value, float) or math.isfinite(value) else None
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=False, default=str)
    cell = WriteOnlyCell(ws, value=_ILLEGAL.sub("", text))
    cell.data_type = "s"  # text, never a formula
    return cell


__all__ = ["Sheet", "write_xlsx"]
