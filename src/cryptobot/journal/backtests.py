"""Backtest runs in the journal, so ``report`` can list and draw them later.

DuckDB's ``backtest_runs`` holds one row per run (request, summary and benchmarks as JSON). The
run's trade list and its equity curve at most hourly (the last value of each hour, so a year of
1m bars stays small) are Parquet files beside the journal: ``backtests/<run_id>.trades.parquet``
and ``backtests/<run_id>.equity.parquet``, each row carrying its ``run_id`` (any DuckDB client
reads them all with ``read_parquet('backtests/*.trades.parquet')``).

Why files: inserting a million-bar run's 46,000 trades into DuckDB and checkpointing them when
the connection closed took 0.10-0.16 s of a 1.2 s backtest process, and grew the file every
reader of the journal (``size``, ``risk status``) opens. One row commits in milliseconds.

Order and crashes: the files are written first (temp file + rename), then the row commits in
one transaction. A process killed before the commit leaves files that no row names; readers
list runs from the table only, so such a run is not half there, it is not there. Such files are
never removed automatically: another process's files wait for its commit the same way, and a
sweep could not tell the two apart. Two processes recording at once each write their own files
(the run id holds a random part) and take DuckDB's write lock in turn (``catalog.connect``
retries on it). Journals written before this layout keep their ``backtest_trades`` and
``backtest_equity`` tables untouched.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cryptobot.core.periods import period_ends
from cryptobot.core.setup import json_safe
from cryptobot.data import catalog
from cryptobot.data.arrow import column, numbers, text
from cryptobot.data.atomic import atomic_write

if TYPE_CHECKING:
    import pandas as pd

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id VARCHAR PRIMARY KEY, created_at BIGINT, strategy VARCHAR, symbols VARCHAR,
    timeframe VARCHAR, start_ts BIGINT, end_ts BIGINT, request VARCHAR, summary VARCHAR,
    benchmarks VARCHAR
);
"""
HOUR_MS = 3_600_000
FOLDER = "backtests"
TRADE_COLUMNS = ("symbol", "side", "entry_time", "exit_time", "qty", "entry_price",
                 "exit_price", "net", "fees", "funding", "r", "reason")  # fmt: skip
Part = Literal["trades", "equity"]


def save_run(
    root: Path,
    *,
    request: dict,
    timeframe: str,
    summary: dict,
    benchmarks: dict,
    trades: pa.Table | pd.DataFrame,
    equity: pa.Table | pd.DataFrame,
    now_ms: int,
) -> str:
    """Records one run (``now_ms``: the caller's clock, its ``created_at``); returns its id.
    ``trades`` and ``equity`` as the run leaves them (``Result.trade_table``, ...) or as
    pandas frames of the same columns."""
    run_id = secrets.token_hex(6)  # random: two recorders in the same ms differ
    stamps = column(equity, "timestamp", np.int64)
    hourly = hour_ends(stamps)
    values = column(equity, "equity", np.float64)
    curve = pa.table(
        {"timestamp": numbers(stamps[hourly]), "equity": numbers(values[hourly], nan_is_null=True)}
    )
    if not isinstance(trades, pa.Table):
        trades = pa.Table.from_pandas(trades, preserve_index=False)
    rows = trades.select(list(TRADE_COLUMNS))
    for part, table in (("trades", rows), ("equity", curve)):
        table = table.add_column(0, "run_id", text(np.zeros(table.num_rows, np.int8), [run_id]))
        atomic_write(run_path(root, run_id, part), lambda tmp, t=table: _write(t, tmp))
    with catalog.connect(root) as con:
        con.execute(_SCHEMA)
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO backtest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, now_ms, request["strategy"], ",".join(request["symbols"]), timeframe,
             int(stamps[0]) if len(stamps) else None, int(stamps[-1]) if len(stamps) else None,
             json.dumps(json_safe(request), default=str), json.dumps(json_safe(summary)),
             json.dumps(json_safe(benchmarks))],
        )  # fmt: skip
        con.execute("COMMIT")
    return run_id


def _write(table: pa.Table, path: Path) -> None:
    """Dictionary encoding for the text columns only: Arrow's attempt on every distinct price
    and equity value costs more than it saves."""
    text = [f.name for f in table.schema if pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)]  # fmt: skip
    pq.write_table(table, path, use_dictionary=text)


def run_path(root: Path, run_id: str, part: Part) -> Path:
    """Where a recorded run's trades or hourly equity are stored."""
    return Path(root) / FOLDER / f"{run_id}.{part}.parquet"


def read_run(root: Path, run_id: str, part: Part) -> pa.Table:
    """A recorded run's trades or hourly equity (a run ``runs`` lists always has both)."""
    return pq.read_table(run_path(root, run_id, part))


def hour_ends(stamps: np.ndarray) -> np.ndarray:
    """Rows holding the last value of each UTC hour of a bar-time-sorted curve (a groupby of a
    million rows took 0.02-0.04 s of the run's record)."""
    return period_ends(stamps, HOUR_MS)


def runs(root: Path) -> list[dict]:
    with catalog.reader(root) as con:
        if con is None or "backtest_runs" not in catalog.tables(con):
            return []
        cur = con.execute("SELECT * FROM backtest_runs ORDER BY created_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
