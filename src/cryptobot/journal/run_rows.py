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

from cryptobot.data.atomic import atomic_write

FOLDER = "backtests"
SUFFIX = ".run.json"
# the columns and their SQL types, as the journal's older ``backtest_runs`` table has them
COLUMNS = {
    "run_id": "VARCHAR", "created_at": "BIGINT", "strategy": "VARCHAR", "symbols": "VARCHAR",
    "timeframe": "VARCHAR", "start_ts": "BIGINT", "end_ts": "BIGINT", "request": "JSON",
    "summary": "JSON", "benchmarks": "JSON",
}  # fmt: skip


def path(root: Path, run_id: str) -> Path:
    return Path(root) / FOLDER / f"{run_id}{SUFFIX}"


def write(root: Path, row: Mapping[str, Any]) -> None:
    """Store a run's row (keys: :data:`COLUMNS`; JSON values as objects). Strict JSON: a NaN
    or an infinity in it is a ``ValueError`` before anything is written."""
    text = json.dumps(dict(row), allow_nan=False, default=str) + "\n"
    atomic_write(path(root, row["run_id"]), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def source(root: Path) -> str | None:
    """SQL reading every stored run row (None when there is none yet), for DuckDB. The files
    are read as text and parsed in SQL: ``read_json`` spends ~0.5 ms per file (1.1-1.6 s for
    2,000 runs), text and ``::JSON`` 0.07 ms. A file that is not a JSON object (damaged by
    hand; a writer never leaves one) is not listed, as a killed run is not."""
    folder = Path(root).resolve() / FOLDER
    if not any(folder.glob(f"*{SUFFIX}")):
        return None
    glob = (folder / f"*{SUFFIX}").as_posix().replace("'", "''")
    columns = ", ".join(
        f"row -> '{name}' AS {name}"
        if kind == "JSON"
        else f"TRY_CAST(row ->> '{name}' AS {kind}) AS {name}"
        for name, kind in COLUMNS.items()
    )
    return (
        f"SELECT {columns} FROM (SELECT content::JSON AS row FROM read_text('{glob}') "
        "WHERE CASE WHEN json_valid(content) THEN json_type(content) = 'OBJECT' ELSE false END)"
    )
