"""The COT part of the lake: each report as published, and parsed, under ``data_dir/cot/``.

``cot/raw/<report>/<file>`` keeps what the CFTC sent byte for byte (a yearly zip under its own
name; an API page as ``api-<sha>.json``). ``cot/<report>.parquet`` holds one row per contract
code and as-of date with every category's long/short/spread, the open interest and the
publication time. Re-storing a report replaces its row (the CFTC revises now and then), so a
second fetch of the same data changes nothing. Writers hold ``cot/.lock`` for the merge and
write through a temp file and a rename: a run killed at any point leaves the last good file.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cryptobot.core.errors import DataError
from cryptobot.cot.release import Calendar
from cryptobot.cot.reports import ReportType, position_columns
from cryptobot.data import locks
from cryptobot.data.atomic import atomic_write
from cryptobot.data.lake import WriteResult

KEY = ["code", "report_date"]


def columns(report: ReportType) -> list[str]:
    head = ["code", "market", "report_date", "published_ts", "open_interest"]
    return [*head, *position_columns(report), "source"]


class CotLake:
    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "cot"

    def parsed_path(self, report: ReportType) -> Path:
        return self.dir / f"{report.name}.parquet"

    def raw_path(self, report: ReportType, name: str) -> Path:
        return self.dir / "raw" / report.name / Path(name).name

    def read(self, report: ReportType) -> pd.DataFrame:
        """Every stored row of ``report`` sorted by code and date (empty with the columns when
        nothing is stored)."""
        path = self.parsed_path(report)
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in columns(report)})
        try:
            frame = pq.read_table(path).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
        return frame.sort_values(KEY, ignore_index=True)

    def last_dates(self, report: ReportType) -> dict[str, int]:
        """The newest stored as-of date (ms) per contract code."""
        frame = self.read(report)
        return {str(k): int(v) for k, v in frame.groupby("code")["report_date"].max().items()}

    def store(
        self,
        report: ReportType,
        records: Sequence[dict[str, Any]],
        raws: Sequence[tuple[str, bytes]],
        *,
        calendar: Calendar,
        source: str,
    ) -> WriteResult:
        """Keep ``raws`` as published and merge ``records`` (already validated) in."""
        frame = to_frame(report, records, calendar=calendar, source=source)
        with locks.exclusive(self.dir / ".lock"):
            old = self.read(report)  # a damaged table refuses the import before anything is kept
            for name, data in raws:
                atomic_write(self.raw_path(report, name), lambda tmp, d=data: tmp.write_bytes(d))
            return self._merge(report, old, frame)

    def _merge(self, report: ReportType, old: pd.DataFrame, frame: pd.DataFrame) -> WriteResult:
        merged = pd.concat([old, frame], ignore_index=True) if len(old) else frame
        merged = merged.drop_duplicates(KEY, keep="last").sort_values(KEY, ignore_index=True)
        new_rows = len(merged) - len(old)
        if new_rows == 0 and _same(old, merged, report):
            return WriteResult(0, len(old))
        table = pa.Table.from_pandas(merged[columns(report)], preserve_index=False)
        path = self.parsed_path(report)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        return WriteResult(new_rows, len(merged))


def to_frame(
    report: ReportType, records: Sequence[dict[str, Any]], *, calendar: Calendar, source: str
) -> pd.DataFrame:
    """Parsed records -> stored rows: dates as ms UTC, the publication time worked out."""
    rows = [
        r
        | {
            "report_date": _ms(r["report_date"]),
            "published_ts": calendar.published_ms(r["report_date"]),
            "source": source,
        }
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=columns(report))
    return frame.astype({c: _dtype(c) for c in frame.columns})


def _ms(day: Any) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _dtype(column: str) -> str:
    return "object" if column in ("code", "market", "source") else "int64"


def _same(old: pd.DataFrame, merged: pd.DataFrame, report: ReportType) -> bool:
    cols = [c for c in columns(report) if c != "source"]  # the same numbers from another source
    return old[cols].reset_index(drop=True).equals(merged[cols].reset_index(drop=True))
