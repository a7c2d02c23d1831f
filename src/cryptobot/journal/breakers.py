"""Circuit-breaker state in the DuckDB journal, so every process sees the same trip.

One breaker per account (the journal's venue name: ``paper:paper``, ``binanceusdm``,
``replay:binanceusdm``): a paper run's equity and a live account's are different series, and
one breaker fed both would judge a live drawdown against paper readings (a paper reading of
10,000 after a live one of 450 hides the live loss). ``breaker_state`` holds one row per
account (the current state as JSON); ``breaker_events`` keeps every event that changed the mode
or asked for actions, with its account and reason, for the journal and report. A state change
and its event row are written in one transaction, together with the read of the state it was
computed from (:func:`update_state`).

Journals written before breakers were per account hold one row named ``account`` (a name no
account can take): an account with no row of its own starts from its trip, if it holds one (a
halt stored then stays in force for every account until each is released), never from its
equity figures (another account's readings, which would judge this account's losses); their
events (account null) are listed for every account.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
ALTER TABLE breaker_events ADD COLUMN IF NOT EXISTS account VARCHAR;
"""
SHARED = "account"  # the one row of a journal written before breakers were per account
# the account's own row first, else the shared row of an older journal
_STATE = "SELECT name, state FROM breaker_state WHERE name IN (?, ?) ORDER BY name = ? DESC LIMIT 1"
# a state's equity figures: what an account never takes from the shared row
_FIGURES = ("start_equity", "peak_equity", "last_equity", "day", "day_start", "week",
            "week_start", "month", "month_start")  # fmt: skip
_OF_ACCOUNT = "(account = ? OR account IS NULL)"


def load_state(root: Path, *, account: str) -> object:
    """The stored state record of ``account`` (``BreakerState.to_record``), or None before its
    first event. Read-only, so ``size`` and ``risk status`` never wait behind each other."""
    _own(account)
    with catalog.reader(root) as con:
        if con is None:
            return None
        try:  # no table yet: no state (asked this way, not of the catalog: 1 ms, not 20)
            return _state_of(con, account)
        except duckdb.CatalogException:
            return None


def _state_of(con: duckdb.DuckDBPyConnection, account: str) -> object:
    """``account``'s stored state record (:func:`_stored`); with no row at all, None only
    when its events agree: a row lost (deleted by hand, a restored older file) while its last
    event left the breaker other than ``active`` reads as a corrupt state, blocked until a
    reset, never as a fresh breaker that forgot a trip."""
    row = con.execute(_STATE, [account, SHARED, account]).fetchone()
    if row is not None:
        return _stored(row)
    # the mode the newest event left (events are appended: rowid is their order)
    _, last = _events_on(con, account=account, select="mode", tail="ORDER BY rowid DESC LIMIT 1")
    return None if not last or last[0][0] == "active" else Lost(last[0][0])


@dataclass(frozen=True)
class Lost:
    """An account whose state row is gone while its events say a trip was in force: judged
    as a corrupt state (``BreakerState.from_record`` reads its ``problem``)."""

    last_mode: str

    @property
    def problem(self) -> str:
        return f"its row is missing, and its last event left the breaker {self.last_mode}"


def _stored(row: tuple[str, str | None] | None) -> object:
    """The state record of a ``(name, state)`` row: the account's own as stored; the shared
    row of an older journal as an account starts from it (its trip only)."""
    if row is None:
        return None
    record = _decode(row[1])
    if row[0] != SHARED or not isinstance(record, dict) or "mode" not in record:
        return record  # a corrupt shared state is judged as one (unsafe: blocked)
    if record["mode"] == "active":
        return None  # nothing in force: a fresh breaker
    return record | {name: None for name in _FIGURES}


def _own(account: str) -> None:
    if account == SHARED:
        raise ValueError(f"{SHARED!r} names an older journal's shared breaker, not an account")


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


def save_state(root: Path, update: Update, *, account: str) -> None:
    """Store ``update.after`` as ``account``'s state, whatever was stored (an import, a
    repair); log the event when the mode changed or it asked for actions (``SHARED``: an
    older journal's shared row, as tests of one write it)."""
    with catalog.connect(root) as con:
        con.execute(_SCHEMA)
        con.execute("BEGIN")
        _write(con, update, account=account)
        con.execute("COMMIT")


def update_state(root: Path, change: Callable[[object], Update], *, account: str) -> Update:
    """Read ``account``'s stored state, let ``change`` compute the next one, store it: one
    write transaction, so two processes feeding events at once (cron and the daemon) cannot
    overwrite each other's result. If ``change`` raises, nothing is stored."""
    _own(account)
    with catalog.connect(root) as con:
        con.execute(_SCHEMA)
        con.execute("BEGIN")
        update = change(_state_of(con, account))
        _write(con, update, account=account)
        con.execute("COMMIT")
    return update


def _write(con: duckdb.DuckDBPyConnection, update: Update, *, account: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO breaker_state VALUES (?, ?, ?)",
        [account, update.ts, json.dumps(update.after)],
    )
    if update.actions or update.before["mode"] != update.after["mode"]:
        after = update.after
        con.execute(
            "INSERT INTO breaker_events (ts, event, mode_before, mode, tripped_by, reason, "
            "actions, account) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [update.ts, update.event, update.before["mode"], after["mode"], after["tripped_by"],
             after["reason"], json.dumps(update.actions), account],
        )  # fmt: skip


def events(root: Path, *, account: str, limit: int = 20) -> list[dict]:
    """``account``'s latest breaker events, newest first (an older journal's too)."""
    found = _select_events(root, account=account, select="*",
                           tail="ORDER BY ts DESC LIMIT ?", tail_args=[limit])  # fmt: skip
    if found is None:
        return []
    names, rows = found
    return [dict(zip(names, r, strict=True)) for r in rows]


def trip_actions(root: Path, *, account: str, ts: int, mode: str) -> list[str] | None:
    """The actions ``account``'s trip into ``mode`` at ``ts`` asked for (its
    ``breaker_events`` row), or None when no such trip is stored (a state judged on reading,
    not written yet)."""
    found = _select_events(
        root, account=account, select="actions", where=["ts = ?", "mode = ?", "actions <> '[]'"],
        args=[ts, mode], tail="ORDER BY rowid DESC LIMIT 1",
    )  # fmt: skip
    if not found or not found[1]:
        return None
    return list(json.loads(found[1][0][0]))


def _select_events(root: Path, **query: Any) -> tuple[list[str], list[tuple]] | None:
    """:func:`_events_on` (``query``: its keywords) on a read connection of ``root``'s
    journal. None: no journal, or no events table in it."""
    with catalog.reader(root) as con:
        if con is None or "breaker_events" not in catalog.tables(con):
            return None
        return _events_on(con, **query)


def _events_on(
    con: duckdb.DuckDBPyConnection,
    *,
    account: str,
    select: str,
    where: list[str] | None = None,
    args: list[object] | None = None,
    tail: str,
    tail_args: list[object] | None = None,
) -> tuple[list[str], list[tuple]]:
    """``SELECT select FROM breaker_events WHERE where... tail`` for ``account`` (an older
    journal's rows, which name no account or lack the column, included), on an open connection
    whose journal has the events table: the column names and the rows."""
    where, args = list(where or []), list(args or [])
    if "account" in _columns(con):  # an older journal opened read-only lacks the column
        where, args = [*where, _OF_ACCOUNT], [*args, account]
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    cur = con.execute(f"SELECT {select} FROM breaker_events {clause}{tail}",
                      [*args, *(tail_args or [])])  # fmt: skip
    return [d[0] for d in cur.description], cur.fetchall()


def _columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    """``breaker_events``' columns: an older journal opened read-only lacks ``account``."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'breaker_events'"
    ).fetchall()
    return {row[0] for row in rows}
