"""DuckDB views over the lake in ``cryptobot.duckdb``, so any SQL client can query it.

The views read the Parquet files directly (nothing is copied). Connections are opened briefly
and retried while another process (the daemon) holds the write lock.

DuckDB lets one process write, or several read, never both at once: a read-only connection
cannot open while a writer holds the file. So readers (``risk status``, ``size``, ``journal``)
open read-only through :func:`reader` and retry on the lock, and writers keep their connection
for one transaction only; then a reader waits milliseconds, never the whole ``wait_s``.

A run that must write fast (``trade``'s batch: a journal row before each order leaves) holds
the journal open instead (:func:`held`): opening the file costs 20-60 ms, a transaction on the
open database 1-2 ms. Meanwhile other processes wait at the lock (checked: DuckDB refuses even
a read-only open of a file another process holds), so a hold lasts one batch, never a loop,
and is let go while the batch waits (:func:`released`: a maker order resting for seconds).
"""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from cryptobot.core.errors import CryptobotError

log = logging.getLogger(__name__)

DB_NAME = "cryptobot.duckdb"
#: rows of one ``INSERT`` (:func:`insert_rows`): 250 to 1,000 run alike, fewer cost more
_ROWS_PER_STATEMENT = 250
T = TypeVar("T")


@dataclass
class _Hold:
    """A journal this process holds open: its connection, and the schemas run on it."""

    con: duckdb.DuckDBPyConnection
    ready: set[str] = field(default_factory=set)


#: the journals held open in this process (DuckDB keeps one database per file and process)
_HELD: dict[Path, _Hold] = {}

_VIEWS = {
    "candles": (
        "candles/*/*/*/*.parquet",
        "regexp_extract(filename, '/candles/([^/]+)/', 1) AS exchange, "
        "regexp_extract(filename, '/candles/[^/]+/([^/]+)/', 1) AS symbol_id, "
        "regexp_extract(filename, '/candles/[^/]+/[^/]+/([^/]+)/', 1) AS timeframe, "
        "timestamp, open, high, low, close, volume",
    ),
    "funding": (
        "funding/*/*.parquet",
        "regexp_extract(filename, '/funding/([^/]+)/', 1) AS exchange, "
        "regexp_extract(filename, '/funding/[^/]+/([^/]+)\\.parquet', 1) AS symbol_id, "
        "timestamp, funding_rate",
    ),
    "open_interest": (
        "open_interest/*/*/*.parquet",
        "regexp_extract(filename, '/open_interest/([^/]+)/', 1) AS exchange, "
        "regexp_extract(filename, '/open_interest/[^/]+/([^/]+)/', 1) AS symbol_id, "
        "regexp_extract(filename, '/([^/]+)\\.parquet', 1) AS period, "
        "timestamp, open_interest, open_interest_value",
    ),
    **{
        kind: (
            f"{kind}/*/*/*.parquet",
            f"regexp_extract(filename, '/{kind}/([^/]+)/', 1) AS exchange, "
            f"regexp_extract(filename, '/{kind}/[^/]+/([^/]+)/', 1) AS symbol_id, "
            "regexp_extract(filename, '/([^/]+)\\.parquet', 1) AS period, "
            "* EXCLUDE (filename)",
        )
        for kind in (
            "long_short",
            "top_long_short_accounts",
            "top_long_short_positions",
            "taker_volume",
        )
    },
    "fear_greed": (
        "fear_greed/*.parquet",
        "regexp_extract(filename, '/fear_greed/([^/]+)\\.parquet', 1) AS source, "
        "* EXCLUDE (filename)",
    ),
    "liquidations": (
        "liquidations/*/????-??-??.parquet",
        "regexp_extract(filename, '/liquidations/([^/]+)/', 1) AS exchange, * EXCLUDE (filename)",
    ),
    "mark": (
        "mark/*/*/*/*.parquet",
        "regexp_extract(filename, '/mark/([^/]+)/', 1) AS exchange, "
        "regexp_extract(filename, '/mark/[^/]+/([^/]+)/', 1) AS symbol_id, "
        "regexp_extract(filename, '/mark/[^/]+/[^/]+/([^/]+)/', 1) AS timeframe, "
        "timestamp, open, high, low, close",
    ),
    "markets": (
        "markets/*.parquet",
        "regexp_extract(filename, '/markets/([^/]+)\\.parquet', 1) AS exchange, "
        "* EXCLUDE (filename)",
    ),
}


@contextmanager
def connect(
    root: Path, read_only: bool = False, wait_s: float = 10.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; waits for another process's lock up to ``wait_s``. Inside
    :func:`held` a cursor of the held database (read-only or not: the process has it open)."""
    path = Path(root) / DB_NAME
    hold = _HELD.get(path.resolve())
    if hold is not None:
        cursor = hold.con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _retry_locked(lambda: duckdb.connect(str(path), read_only=read_only), wait_s)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def held(root: Path) -> Iterator[None]:
    """The journal kept open in this process until the block ends: every :func:`connect` and
    :func:`reader` of it inside is a cursor of the open database (no file opened again, which
    costs 20-60 ms, about 17 ms of CPU: most of a paper broker's cycle, or of an order's way
    out). Every write is still its own transaction. Meanwhile no other process can open the
    journal (DuckDB locks the file; its readers wait and retry): hold it for a batch, a run
    that owns its journal (bars replayed through the paper broker), never for a whole loop.
    Nested holds of one journal are one."""
    path = (Path(root) / DB_NAME).resolve()
    if path in _HELD:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    hold = _Hold(_retry_locked(lambda: duckdb.connect(str(path)), 10.0))
    _HELD[path] = hold
    try:
        yield
    finally:
        _HELD.pop(path, None)
        hold.con.close()


@contextmanager
def released(root: Path) -> Iterator[None]:
    """A held journal let go for the block (a wait of seconds: ``journal``, ``report`` and
    other processes open it meanwhile), opened again after it (retrying on their lock);
    nothing to do when it is not held. The reopening costs what an open costs (20-60 ms),
    paid after a wait, never between a decision and its request."""
    path = (Path(root) / DB_NAME).resolve()
    hold = _HELD.pop(path, None)
    if hold is None:
        yield
        return
    hold.con.close()
    try:
        yield
    finally:
        hold.con = _retry_locked(lambda: duckdb.connect(str(path)), 10.0)
        _HELD[path] = hold


def prepared(
    con: duckdb.DuckDBPyConnection, root: Path, schema: str, *, probe: str | None = None
) -> None:
    """Run ``schema`` (idempotent DDL: ``CREATE .. IF NOT EXISTS``) on ``con`` unless it is
    there: ``probe`` (a query that binds only once the schema is complete, ``LIMIT 0``) answers
    in about 1 ms where the DDL, changing nothing, takes 5-20 ms on a fresh connection (90 ms
    seen under load). Once per hold on a held journal, at each write on a short connection."""
    hold = _HELD.get((Path(root) / DB_NAME).resolve())
    if (hold is None or schema not in hold.ready) and not _answers(con, probe):
        con.execute(schema)
    if hold is not None:
        hold.ready.add(schema)


def _answers(con: duckdb.DuckDBPyConnection, probe: str | None) -> bool:
    if probe is None:
        return False
    try:
        con.execute(probe).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return False
    return True


def has_schema(root: Path, schema: str) -> bool:
    """Whether ``schema`` was run on this journal's hold (its tables exist: no need to ask)."""
    hold = _HELD.get((Path(root) / DB_NAME).resolve())
    return hold is not None and schema in hold.ready


@contextmanager
def reader(
    root: Path, wait_s: float = 10.0, *, files: bool = False
) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection, or None when there is no journal yet (a reader never creates
    one: ``risk status`` on a fresh data dir leaves it as it was); with ``files`` (the caller
    reads files beside the journal) an in-memory database instead of None."""
    path = Path(root) / DB_NAME
    if path.resolve() not in _HELD and not path.is_file():
        if not files:
            yield None
            return
        con = duckdb.connect()
        try:
            yield con
        finally:
            con.close()
        return
    with connect(root, read_only=True, wait_s=wait_s) as con:
        yield con


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables and views of the journal (a read-only reader cannot create missing ones)."""
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {row[0] for row in rows}


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[int],
) -> None:
    """Run ``statement`` (an ``INSERT`` whose ``{values}`` stands for the rows' ``VALUES``
    list) over ``rows`` in a few statements, not one per row: DuckDB's ``executemany`` runs a
    statement per row (1-4 ms each; a paper broker's call stores every book, a reconcile
    every fill it read). One statement may not touch a key twice, so a key met again keeps
    its last row, as row-by-row inserts would leave it (``key``: the key's positions in a
    row)."""
    latest = {tuple(row[i] for i in key): row for row in rows}
    batch = list(latest.values())
    for start in range(0, len(batch), _ROWS_PER_STATEMENT):
        chunk = batch[start : start + _ROWS_PER_STATEMENT]
        marks = ", ".join(["(" + ", ".join("?" * len(chunk[0])) + ")"] * len(chunk))
        con.execute(statement.format(values=marks), [v for row in chunk for v in row])


def refresh_views(root: Path) -> list[str]:
    """(Re)create a view for every kind of record present; returns the view names. A kind
    with a file DuckDB cannot read (a damaged partition) keeps no view, said in one warning:
    the views are a convenience for queries, and a fetch that stored its series must not end
    in an error for them (``fetch --status`` names the file)."""
    root = Path(root).resolve()
    made = []
    with connect(root) as con:
        for name, (pattern, columns) in _VIEWS.items():
            if not any(root.glob(pattern)):
                continue
            glob = (root / pattern).as_posix().replace("'", "''")
            try:
                con.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT {columns} "
                    f"FROM read_parquet('{glob}', filename = true, union_by_name = true)"
                )
            except duckdb.Error as exc:
                reason = str(exc).strip().splitlines()[0]
                con.execute(f"DROP VIEW IF EXISTS {name}")  # an older one would fail alike
                log.warning("no %s view: %s (fetch --status names the file)", name, reason)
                continue
            made.append(name)
    return made


def query(root: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with connect(root, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _retry_locked(open_: Callable[[], T], wait_s: float) -> T:
    """Open, retrying while another process holds the journal's lock, for up to ``wait_s``.

    The one wall-clock read of the library: ``time.monotonic`` bounds this lock wait (a real
    process's waiting, not market time, so no venue clock applies). Tries come every 5-50 ms:
    a writer committing in a loop (a paper broker's bars, a long batch) frees the lock only for
    the moment between two of its short connections, and a reader backing off to one try a
    second landed in such a gap too rarely to get in within ``wait_s`` on a loaded machine.
    Not more often: a refused open costs ~6.5 ms of CPU (DuckDB starts its instance before it
    meets the lock), so a process waiting out a held journal uses ~12 % of a CPU."""
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        try:
            return open_()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise CryptobotError(f"the journal database is busy or unreadable: {exc}") from None
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
