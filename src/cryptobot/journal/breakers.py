"""Circuit-breaker state in the DuckDB journal, so every process sees the same trip.

``breaker_state`` holds one row (the current state as JSON); ``breaker_events`` keeps every
event that changed the mode or asked for actions, with its reason, for the journal and report.
A state change and its event row are written in one transaction, together with the read of
the state it was computed from (:func:`update_state`).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cryptobot.data import catalog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS breaker_state (
    name VARCHAR PRIMARY KEY, updated_at BIGINT, state VARCHAR
);
CREATE TABLE IF NOT EXISTS breaker_events (
    ts BIGINT, event VARCHAR, mode_before VARCHAR, mode VARCHAR, tripped_by VARCHAR,
    reason VARCHAR, actions VARCHAR
);
"""
NAME = "account"


def load_state(root: Path) -> object:
    """The stored state record (``BreakerState.to_record``), or None before the first event.
    Read-only, so ``size`` and ``risk status`` never wait behind each other."""
    with catalog.reader(root) as con:
        if con is None:
            return None
        try:  # no table yet: no state (asked this way, not of the catalog: 1 ms, not 20)
            row = con.execute("SELECT state FROM breaker_state WHERE name = ?", [NAME]).fetchone()
        except duckdb.CatalogException:
            return None
    return _decode(row[0]) if row else None


def _decode(text: str | None) -> object:
    """The stored JSON as it is, for ``BreakerState.from_record`` to judge. A row whose text is
    not JSON, is JSON ``null`` or SQL NULL comes back as its text (never None, which means "no
    state yet" and would read as a fresh, active breaker)."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return text or ""
    return text if value is None else value


@dataclass(frozen=True)
class Update:
    """A state change to store: the records before and after, and the event that made it."""

    before: dict
    after: dict
    ts: int
    event: str
    actions: list[str]


def save_state(root: Path, update: Update) -> None:
    """Store ``update.after``; log the event when the mode changed or it asked for actions."""
    with catalog.connect(root) as con:
        con.execute(_SCHEMA)
        con.execute("BEGIN")
        _write(con, update)
        con.execute("COMMIT")


def update_state(root: Path, change: Callable[[object], Update]) -> Update:
    """Read the stored state, let ``change`` compute the next one, store it: one write
    transaction, so two processes feeding events at once (cron and the daemon) cannot
    overwrite each other's result. If ``change`` raises, nothing is stored."""
    with catalog.connect(root) as con:
        con.execute(_SCHEMA)
        con.execute("BEGIN")
        row = con.execute("SELECT state FROM breaker_state WHERE name = ?", [NAME]).fetchone()
        update = change(_decode(row[0]) if row else None)
        _write(con, update)
        con.execute("COMMIT")
    return update


def _write(con: duckdb.DuckDBPyConnection, update: Update) -> None:
    con.execute(
        "INSERT OR REPLACE INTO breaker_state VALUES (?, ?, ?)",
        [NAME, update.ts, json.dumps(update.after)],
    )
    if update.actions or update.before["mode"] != update.after["mode"]:
        after = update.after
        con.execute(
            "INSERT INTO breaker_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            [update.ts, update.event, update.before["mode"], after["mode"], after["tripped_by"],
             after["reason"], json.dumps(update.actions)],
        )  # fmt: skip


def events(root: Path, limit: int = 20) -> list[dict]:
    with catalog.reader(root) as con:
        if con is None or "breaker_events" not in catalog.tables(con):
            return []
        cur = con.execute("SELECT * FROM breaker_events ORDER BY ts DESC LIMIT ?", [limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def trip_actions(root: Path, *, ts: int, mode: str) -> list[str] | None:
    """The actions the trip into ``mode`` at ``ts`` asked for (its ``breaker_events`` row), or
    None when no such trip is stored (a state judged on reading, not written yet)."""
    with catalog.reader(root) as con:
        if con is None or "breaker_events" not in catalog.tables(con):
            return None
        row = con.execute(
            "SELECT actions FROM breaker_events WHERE ts = ? AND mode = ? AND actions <> '[]' "
            "ORDER BY rowid DESC LIMIT 1",
            [ts, mode],
        ).fetchone()
    return None if row is None else list(json.loads(row[0]))
