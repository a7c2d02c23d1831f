"""Paper accounts in the DuckDB journal, so a paper broker survives a restart.

Tables (``account`` names the paper account; several can share a journal):

- ``paper_schema``: the version of these tables (``PAPER_SCHEMA``); another version is refused
  rather than misread;
- ``paper_accounts``: one row per account, its ``Ledger`` (money, counters, the clock it saw);
- ``paper_books``: one row per account and symbol, its ``Book`` (leverage, margin mode, the
  position, how far its bars were matched);
- ``paper_orders``: every order ever placed, by client order id (status open, closed, canceled
  or rejected);
- ``paper_fills``: every fill;
- ``paper_funding``: every funding payment, per symbol (added to version 1 in place: a table
  only, created on first use where it is missing);
- ``account_snapshots`` (``journal.account``, shared with ``trade``): the balance after each
  call that booked a fill or a funding payment.

Columns are the fields of the ``core.account`` records, so a record and its row cannot drift
apart (a field added there changes the tables: bump ``PAPER_SCHEMA``). One broker call writes
all it changed in one transaction (``store``): a process killed before the commit leaves the
account as it was, never an order without its fill or a fill without its money.
"""

import types
import typing
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import duckdb

from cryptobot.core.account import (
    AccountState,
    Balance,
    Book,
    Fill,
    FundingPayment,
    Ledger,
    Order,
)
from cryptobot.core.errors import CryptobotError
from cryptobot.data import catalog
from cryptobot.journal.account import write_snapshot

PAPER_SCHEMA = 1
_TABLES: dict[str, tuple[type, tuple[str, ...]]] = {
    "paper_accounts": (Ledger, ("account",)),
    "paper_books": (Book, ("account", "symbol")),
    "paper_orders": (Order, ("account", "client_order_id")),
    "paper_fills": (Fill, ("account", "id")),
    "paper_funding": (FundingPayment, ("account", "id")),
}


def load(root: Path, account: str) -> AccountState | None:
    """The stored account with its open orders, or None before its first call."""
    with catalog.connect(root) as con:
        _ensure(con)
        return _load(con, account)


def load_cycle(root: Path, account: str) -> tuple[AccountState | None, set[str]]:
    """``load`` and the client order ids of every stored order (a cycle's duplicate check
    without a query per order), on one connection."""
    with catalog.connect(root) as con:
        _ensure(con)
        rows = con.execute("SELECT client_order_id FROM paper_orders WHERE account = ?",
                           [account]).fetchall()  # fmt: skip
        return _load(con, account), {r[0] for r in rows}


def _load(con: duckdb.DuckDBPyConnection, account: str) -> AccountState | None:
    ledger = _rows(con, "paper_accounts", account)
    if not ledger:
        return None
    books = _rows(con, "paper_books", account)
    orders = _rows(con, "paper_orders", account, "status = 'open'")
    return AccountState(
        ledger=ledger[0],
        books={b.symbol: b for b in books},
        orders={o.client_order_id: o for o in orders},
    )


def find_order(root: Path, account: str, client_order_id: str) -> Order | None:
    with catalog.connect(root) as con:
        _ensure(con)
        found = _rows(con, "paper_orders", account, "client_order_id = ?", [client_order_id])
    return found[0] if found else None


def fills(root: Path, account: str, *, symbol: str | None, since: int | None) -> list[Fill]:
    """Fills of ``symbol`` (all: None) at or after ``since``, oldest first."""
    found = _select(root, "paper_fills", account, symbol=symbol, since=since)
    return sorted(found, key=lambda f: (f.timestamp, int(f.id)))


def payments(root: Path, account: str, *, symbol: str | None,
             since: int | None) -> list[FundingPayment]:  # fmt: skip
    """Funding payments of ``symbol`` (all: None) at or after ``since``, oldest first."""
    found = _select(root, "paper_funding", account, symbol=symbol, since=since)
    return sorted(found, key=lambda p: (p.timestamp, p.symbol))


def _select(root: Path, table: str, account: str, *, symbol: str | None,
            since: int | None) -> list[Any]:  # fmt: skip
    where, params = ["TRUE"], []
    if symbol is not None:
        where.append("symbol = ?")
        params.append(symbol)
    if since is not None:
        where.append("timestamp >= ?")
        params.append(since)
    with catalog.connect(root) as con:
        _ensure(con)
        return _rows(con, table, account, " AND ".join(where), params)


def store(
    root: Path,
    account: str,
    state: AccountState,
    *,
    orders: Iterable[Order],
    new_fills: Iterable[Fill],
    new_payments: Iterable[FundingPayment] = (),
    snapshot: Balance | None = None,
) -> None:
    """Write one call's result in one transaction: the ledger, every book, the orders it
    placed or changed, its new fills and funding payments, and ``snapshot`` (the balance
    after a call that moved money) in ``account_snapshots`` as venue ``paper:<account>``."""
    with catalog.connect(root) as con:
        _ensure(con)
        con.execute("BEGIN")
        _upsert(con, "paper_accounts", account, [state.ledger])
        _upsert(con, "paper_books", account, list(state.books.values()))
        _upsert(con, "paper_orders", account, list(orders))
        _upsert(con, "paper_fills", account, list(new_fills))
        _upsert(con, "paper_funding", account, list(new_payments))
        if snapshot is not None:
            write_snapshot(con, venue=f"paper:{account}", balance=snapshot, ts=snapshot.timestamp)
        con.execute("COMMIT")


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables (first use; a table added to this version since: where it is
    missing) and refuse tables of another version."""
    con.execute("CREATE TABLE IF NOT EXISTS paper_schema (version INTEGER)")
    row = con.execute("SELECT max(version) FROM paper_schema").fetchone()
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if row[0] is None or not set(_TABLES) <= present:
        con.execute("BEGIN")
        for table, (record, key) in _TABLES.items():
            columns = ", ".join(f"{name} {kind}" for name, kind in _columns(record))
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (account VARCHAR, {columns}, "
                f"PRIMARY KEY ({', '.join(key)}))"
            )
        if row[0] is None:
            con.execute("INSERT INTO paper_schema VALUES (?)", [PAPER_SCHEMA])
        con.execute("COMMIT")
    if row[0] is not None and row[0] != PAPER_SCHEMA:
        raise CryptobotError(
            f"the journal's paper tables are version {row[0]}; this cryptobot reads version "
            f"{PAPER_SCHEMA} (use another data dir, or a cryptobot of that version)"
        )


def _rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    account: str,
    where: str = "TRUE",
    params: list[Any] | None = None,
) -> list[Any]:
    record = _TABLES[table][0]
    names = [name for name, _ in _columns(record)]
    cur = con.execute(
        f"SELECT {', '.join(names)} FROM {table} WHERE account = ? AND ({where})",
        [account, *(params or [])],
    )
    return [record(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]


def _upsert(con: duckdb.DuckDBPyConnection, table: str, account: str, rows: list[Any]) -> None:
    if not rows:
        return
    record, key = _TABLES[table]
    names = ["account", *(name for name, _ in _columns(record))]
    catalog.insert_rows(
        con,
        f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) VALUES {{values}}",
        [[account, *(getattr(r, n) for n in names[1:])] for r in rows],
        key=[names.index(k) for k in key],
    )


def _columns(record: type) -> list[tuple[str, str]]:
    """(name, DuckDB type) of each field of a ``core.account`` record."""
    hints = typing.get_type_hints(record)
    return [(f.name, _sql_type(hints[f.name])) for f in fields(record)]


def _sql_type(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _sql_type(args[0])
    if typing.get_origin(hint) is typing.Literal or hint is str:
        return "VARCHAR"
    return {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE"}[hint]


__all__ = ["PAPER_SCHEMA", "fills", "find_order", "load", "load_cycle", "payments", "store"]
