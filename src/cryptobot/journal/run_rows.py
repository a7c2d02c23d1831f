"""A recorded backtest run's row: one strict-JSON file per run beside the journal,
``backtests/<run_id>.run.json``, that ``journal backtests`` reads with the journal's tables.

Why a file and not a DuckDB row: a backtest otherwise never touches DuckDB, and importing it,
opening the journal and committing one row took 0.08-0.1 s of a 1.1 s million-bar backtest
process (DuckDB's import and instance start, which no setting shortens). A file also never
waits for another process's lock on the journal (a ``trade`` or a daemon holding it).

Order and crashes: the row is the last file of a run written (temp file + fsync + rename), so a
run whose row exists has its trades and equity files too; a process killed before leaves files
no row names, and the run is not listed. Journals written before this layout keep their rows in
the ``backtest_runs`` table, which readers list beside the files.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptobot.core.numbers import strict_json
from cryptobot.core.timeutil import LAST_MS
from cryptobot.data.atomic import atomic_write

FOLDER = "backtests"
SUFFIX = ".run.json"
PARTS = ("trades", "equity")  # the Parquet files a run has beside its row
# the columns and their SQL types, as the journal's older ``backtest_runs`` table has them
COLUMNS = {
    "run_id": "VARCHAR", "created_at": "BIGINT", "strategy": "VARCHAR", "symbols": "VARCHAR",
    "timeframe": "VARCHAR", "start_ts": "BIGINT", "end_ts": "BIGINT", "request": "JSON",
    "summary": "JSON", "benchmarks": "JSON",
}  # fmt: skip


def path(root: Path, run_id: str) -> Path:
    return Path(root) / FOLDER / f"{run_id}{SUFFIX}"


def part_path(root: Path, run_id: str, part: str) -> Path:
    """Where a recorded run's trades or hourly equity (``part``, one of :data:`PARTS`) are."""
    return Path(root) / FOLDER / f"{run_id}.{part}.parquet"


def write(root: Path, row: Mapping[str, Any]) -> None:
    """Store a run's row (keys: :data:`COLUMNS`; JSON values as objects). Strict JSON: a NaN
    or an infinity in it is a ``ValueError`` before anything is written."""
    text = json.dumps(dict(row), allow_nan=False, default=str) + "\n"
    atomic_write(path(root, row["run_id"]), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def rows(root: Path) -> list[dict[str, Any]]:
    """Every stored run's row (``journal backtests`` reads them with the journal's tables).
    The files are read here, not by DuckDB's file functions: their paths
    would be globs (a data dir named ``runs[1]`` listed nothing), one bad file failed the
    whole read, and ``read_json`` spends ~0.5 ms a file (1.1-1.6 s for 2,000 runs). A row is
    listed only when it is whole (:func:`_whole`)."""
    folder = Path(root) / FOLDER
    return [row for path in sorted(folder.glob(f"*{SUFFIX}")) if (row := _whole(path))]


def _whole(path: Path) -> dict[str, Any] | None:
    """The row of a run file when the run is whole, else None: strict JSON (no NaN) holding
    an object whose ``run_id`` names the file, with its trades and equity files beside it (a
    writer leaves nothing else; a file damaged, copied or cut by hand is not a run, as a
    killed one is not). A value of the wrong kind reads as null (a time outside the years a
    date can hold, a text that is not text); the JSON columns as they are."""
    try:
        row = strict_json(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    run_id = row.get("run_id") if isinstance(row, dict) else None
    if not isinstance(run_id, str) or path.name != f"{run_id}{SUFFIX}":
        return None
    if not all(part_path(path.parent.parent, run_id, part).is_file() for part in PARTS):
        return None
    out: dict[str, Any] = {}
    for name, kind in COLUMNS.items():
        value = row.get(name)
        if kind == "BIGINT":
            ok = type(value) is int and 0 <= value < LAST_MS
        else:
            ok = kind == "JSON" or isinstance(value, str)
        out[name] = value if ok else None
    return out
