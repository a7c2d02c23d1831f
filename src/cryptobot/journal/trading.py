"""What ``cryptobot trade`` did, in the DuckDB journal: the orders it asked a venue for, every
request with the venue's answer, the fills of those orders, position snapshots and events.

Every row names its ``venue`` (``paper:<account>``, ``replay:<exchange>`` or the live exchange's
id): a paper run's client ids never count as sent on a live account. Times are the venue's
clock (ms), as the caller gives them. Tables, so ``cryptobot journal orders|fills|positions|
events`` can read them as they are:

- ``orders``: one row per order per venue, by client order id: the sized order it belongs to
  (``parent_id``) and its ``leg`` (``entry``, ``sl``/``sl2``.., ``tp1``.., ``close``..),
  what was asked (symbol, side, type, amount, price, trigger price, reduce-only), the gate
  verdicts of an entry (``gates``, JSON), and where it stands: ``sending`` (asked, no answer
  stored: a run killed between its intent and the answer leaves an intent, taken in as this
  at the next run's start, ``take_in``), the venue's ``open``/``closed``/
  ``canceled``/``rejected`` with its ids and fills, ``refused`` (a gate said no: never sent),
  ``not_placed`` (the venue certainly holds none) or ``unknown`` (it may: look it up); an
  entry's ``expected_price`` is the sized order's entry (what its slippage is measured from);
- ``order_requests``: append-only, every request (create, cancel, leverage, margin mode) with
  its outcome and the venue's message;
- ``fills``: the venue's fills of journaled orders and its liquidations (no order of ours:
  ``parent_id`` and ``leg`` null), by venue and fill id;
- ``positions``: snapshots of the venue's open positions at the end of a run;
- ``funding_payments``: the funding the account paid or received on the symbols of a run;
- ``account_snapshots``: the balance and equity at the end of each run (``journal.account``);
- ``executions``: the maker-first executor's report of an entry (``execution/1``, JSON: its
  orders, slippage in bps and ticks, maker share), by the entry's client id, written when the
  execution ended (a run killed mid-execution leaves none: the next run goes on with it);
- ``events``: what a trader must know (``CRITICAL``: a position closed for want of a stop,
  ``WARNING``: a target not placed, ``INFO``: an order already placed and skipped), and each
  difference a reconcile found, by its class (``engine.reconcile``);
- ``sized_orders``: the sized order behind each entry as ``trade`` read it (JSON), carried by
  the entry's intent and kept with its row (one transaction), so a reconcile can rebuild a
  position's bracket (its stop) from it.

**Write-ahead.** A create's intent goes to an fsync'd file before the request leaves
(``journal.intents``: a DuckDB transaction there cost 5-16 ms); the row follows with the
answer (``answered``, ``failed``, one transaction). Readers of what may have been sent
(``orders_of_each``, ``reconcile_rows``) see the intents not taken in yet as ``sending`` rows,
through one rule (``_pending``).

Writers open a connection per write, one transaction each (``data.catalog`` waits while another
process holds the file), so ``journal`` and ``report`` read between them; readers open read-only
and never create the file. A batch of ``trade`` holds the journal open (:meth:`TradeJournal.held`):
each write is still its own transaction, on the open database (1-2 ms instead of opening the
file, 20-60 ms); other processes wait for the batch to end.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from cryptobot.core.account import Balance, Fill, FundingPayment, Order, OrderRequest, Position
from cryptobot.data import catalog
from cryptobot.journal.account import write_snapshot
from cryptobot.journal.intents import Intent, IntentLog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    venue VARCHAR, client_order_id VARCHAR, parent_id VARCHAR, leg VARCHAR, symbol VARCHAR,
    side VARCHAR, type VARCHAR, amount DOUBLE, price DOUBLE, trigger_price DOUBLE,
    reduce_only BOOLEAN, strategy VARCHAR, status VARCHAR, exchange_order_id VARCHAR,
    filled DOUBLE, average DOUBLE, fee DOUBLE, reason VARCHAR, gates VARCHAR,
    created_at BIGINT, updated_at BIGINT, PRIMARY KEY (venue, client_order_id)
);
CREATE SEQUENCE IF NOT EXISTS order_requests_seq;
CREATE TABLE IF NOT EXISTS order_requests (
    id BIGINT DEFAULT nextval('order_requests_seq'), ts BIGINT, venue VARCHAR, action VARCHAR,
    client_order_id VARCHAR, parent_id VARCHAR, leg VARCHAR, symbol VARCHAR, request VARCHAR,
    outcome VARCHAR, message VARCHAR
);
CREATE TABLE IF NOT EXISTS fills (
    venue VARCHAR, id VARCHAR, client_order_id VARCHAR, parent_id VARCHAR, leg VARCHAR,
    ts BIGINT, symbol VARCHAR, side VARCHAR, order_type VARCHAR, amount DOUBLE, price DOUBLE,
    cost DOUBLE, fee DOUBLE, fee_rate DOUBLE, liquidity VARCHAR, realized_pnl DOUBLE,
    PRIMARY KEY (venue, id)
);
CREATE TABLE IF NOT EXISTS positions (
    ts BIGINT, venue VARCHAR, symbol VARCHAR, side VARCHAR, contracts DOUBLE,
    entry_price DOUBLE, mark_price DOUBLE, notional DOUBLE, unrealized_pnl DOUBLE,
    leverage DOUBLE, margin_mode VARCHAR, liquidation_price DOUBLE,
    PRIMARY KEY (venue, ts, symbol)
);
CREATE TABLE IF NOT EXISTS executions (
    venue VARCHAR, client_order_id VARCHAR, ts BIGINT, status VARCHAR, report VARCHAR,
    PRIMARY KEY (venue, client_order_id)
);
CREATE SEQUENCE IF NOT EXISTS events_seq;
CREATE TABLE IF NOT EXISTS events (
    id BIGINT DEFAULT nextval('events_seq'), ts BIGINT, venue VARCHAR, level VARCHAR,
    kind VARCHAR, symbol VARCHAR, client_order_id VARCHAR, message VARCHAR, data VARCHAR
);
CREATE TABLE IF NOT EXISTS funding_payments (
    venue VARCHAR, id VARCHAR, ts BIGINT, symbol VARCHAR, amount DOUBLE, rate DOUBLE,
    contracts DOUBLE, price DOUBLE, PRIMARY KEY (venue, id)
);
-- added after the first release: a journal written before gains the column on its next write
ALTER TABLE orders ADD COLUMN IF NOT EXISTS expected_price DOUBLE;
CREATE TABLE IF NOT EXISTS sized_orders (
    venue VARCHAR, client_order_id VARCHAR, ts BIGINT, record VARCHAR,
    PRIMARY KEY (venue, client_order_id)
);
"""
#: binds only once every table and column of ``_SCHEMA`` exists (``catalog.prepared``)
_PROBE = (
    "SELECT o.expected_price FROM orders o, order_requests, fills, positions, executions, "
    "events, funding_payments, sized_orders LIMIT 0"
)
#: a fill's ``order_type`` when the venue closed the position itself (``core.account.Fill``)
LIQUIDATION = "liquidation"
#: statuses of a journaled order the venue may still be working on
WORKING = ("sending", "unknown", "open")
#: statuses of an order that was sent (or may have been): never sent again under its id
SENT = ("sending", "unknown", "open", "closed", "canceled")
#: The ``orders`` columns and their SQL types (the table's, ``expected_price`` added since).
ORDER_TYPES = {
    "venue": "VARCHAR", "client_order_id": "VARCHAR", "parent_id": "VARCHAR", "leg": "VARCHAR",
    "symbol": "VARCHAR", "side": "VARCHAR", "type": "VARCHAR", "amount": "DOUBLE",
    "price": "DOUBLE", "trigger_price": "DOUBLE", "reduce_only": "BOOLEAN",
    "strategy": "VARCHAR", "status": "VARCHAR", "exchange_order_id": "VARCHAR",
    "filled": "DOUBLE", "average": "DOUBLE", "fee": "DOUBLE", "reason": "VARCHAR",
    "gates": "VARCHAR", "created_at": "BIGINT", "updated_at": "BIGINT",
    "expected_price": "DOUBLE",
}  # fmt: skip
_ORDER_COLUMNS = tuple(ORDER_TYPES)


@dataclass(frozen=True)
class OrderRow:
    """An order as the journal holds it (a row of ``orders``)."""

    client_order_id: str
    parent_id: str
    leg: str
    symbol: str
    side: str
    type: str
    amount: float
    status: str
    filled: float | None
    created_at: int
    updated_at: int
    reason: str | None

    @property
    def sent(self) -> bool:
        return self.status in SENT


@dataclass(frozen=True)
class ReconcileRows:
    """The journal as a reconcile reads it: the orders the venue may still be working on
    (``WORKING``) and every order that filled, both oldest first; the client ids events of
    the closing kinds name (sized orders found closed); the symbols where an order filled
    more than the journal holds fills for (fills still to read: a run that died after it
    journaled an order's fill and before it stored the fills)."""

    working: list[OrderRow]
    filled: list[OrderRow]
    closed: set[str]
    owed: set[str]


@dataclass(frozen=True)
class TradeJournal:
    """One venue's trading rows in the journal of ``root`` (the data dir)."""

    root: Path
    venue: str

    @contextmanager
    def held(self) -> Iterator[None]:
        """The journal open for a batch (``data.catalog.held``), its tables made at once: every
        read and write inside is on the open database."""
        with catalog.held(self.root):
            with self._writing():
                pass
            yield

    @contextmanager
    def let_go(self) -> Iterator[None]:
        """A held journal closed for the block (a wait: other processes read it meanwhile),
        opened again after (``data.catalog.released``)."""
        with catalog.released(self.root):
            yield

    @property
    def intents(self) -> IntentLog:
        """The venue's write-ahead intents (``journal.intents``)."""
        return IntentLog(self.root, self.venue)

    def take_in(self) -> int:
        """Every intent not in the journal yet (a run killed between an intent and its
        answer) taken in as a ``sending`` row, then the intents file emptied; how many were
        taken in. Under the venue's run lock, before the run's first intent: the rows are then
        looked up by client id as any ``sending`` row is (``engine.reconcile``)."""
        self.intents.ready()
        pending = self.intents.read()
        if pending:
            with self._writing() as con:
                for intent in _unsettled(con, self.venue, pending):
                    _sending(con, intent)
        self.intents.clear()
        return len(pending)

    # ---- reads (read-only connections; nothing is created) -------------------------------
    def orders_of(self, parent_id: str) -> dict[str, OrderRow]:
        """Every journaled order of the sized order ``parent_id`` (its legs), by client id."""
        return self.orders_of_each([parent_id]).get(parent_id, {})

    def orders_of_each(self, parent_ids: Iterable[str]) -> dict[str, dict[str, OrderRow]]:
        """``orders_of`` for several sized orders in one read (a batch's), by parent id (each
        one asked for present, without rows: empty)."""
        parents = sorted(set(parent_ids))
        if not parents:
            return {}
        with catalog.reader(self.root) as con:
            rows = []
            if con is not None and self._has(con, "orders"):
                rows = con.execute(
                    "SELECT client_order_id, parent_id, leg, symbol, side, type, amount, "
                    "status, filled, created_at, updated_at, reason FROM orders WHERE venue = ? "
                    f"AND parent_id IN ({', '.join('?' * len(parents))}) ORDER BY created_at",
                    [self.venue, *parents],
                ).fetchall()
            pending = self._pending(con)
        out: dict[str, dict[str, OrderRow]] = {p: {} for p in parents}
        for row in [OrderRow(*r) for r in rows] + pending:
            if row.parent_id in out:
                out[row.parent_id][row.client_order_id] = row
        return out

    def sent_ids(self) -> set[str]:
        """Client ids of every order the venue answered for on this venue (open or done): the
        gate chain's already-sent ids. A row without an answer (``sending``, ``unknown``) is
        not among them: the desk looks such an order up by its client id first."""
        rows = self._read(
            "SELECT client_order_id FROM orders WHERE venue = ? "
            "AND status IN ('open', 'closed', 'canceled')",
            [self.venue],
        )
        return {r[0] for r in rows}

    def reconcile_rows(self, closed_kinds: tuple[str, ...]) -> "ReconcileRows":
        """What a reconcile reads, on one connection (a cycle of a loop reads it each time)."""
        with catalog.reader(self.root) as con:
            pending = self._pending(con)
            if con is None or not self._has(con, "orders", "fills", "events"):
                return ReconcileRows(pending, [], set(), set())
            rows = con.execute(
                "SELECT client_order_id, parent_id, leg, symbol, side, type, amount, status, "
                "filled, created_at, updated_at, reason FROM orders WHERE venue = ? AND "
                f"(status IN {WORKING} OR filled > 0) ORDER BY created_at, client_order_id",
                [self.venue],
            ).fetchall()
            marks = ", ".join("?" * len(closed_kinds))
            named = con.execute(
                "SELECT DISTINCT client_order_id FROM events WHERE venue = ? AND kind IN "
                f"({marks}) AND client_order_id IS NOT NULL",
                [self.venue, *closed_kinds],
            ).fetchall()
            owed = con.execute(
                "SELECT DISTINCT o.symbol FROM orders o LEFT JOIN (SELECT client_order_id, "
                "sum(amount) AS amount FROM fills WHERE venue = ? GROUP BY client_order_id) f "
                "USING (client_order_id) WHERE o.venue = ? AND o.filled > "
                "coalesce(f.amount, 0) + 1e-9",
                [self.venue, self.venue],
            ).fetchall()
        orders = [OrderRow(*r) for r in rows] + pending
        return ReconcileRows(
            working=[r for r in orders if r.status in WORKING],
            filled=[r for r in orders if (r.filled or 0.0) > 0],
            closed={r[0] for r in named},
            owed={r[0] for r in owed},
        )

    def sized_order(self, client_order_id: str) -> dict[str, Any] | None:
        """The sized order kept for the entry ``client_order_id`` (``asking``'s ``sized``)."""
        rows = self._read(
            "SELECT record FROM sized_orders WHERE venue = ? AND client_order_id = ?",
            [self.venue, client_order_id],
            table="sized_orders",
        )
        return json.loads(rows[0][0]) if rows else None

    def unplaced_entries(self, symbol: str, side: str) -> list[OrderRow]:
        """The entries on ``symbol`` buying (``side`` buy) or selling journaled as never
        placed (``not_placed``), newest first: one the venue holds after all is a journal
        error a reconcile finds by its client id."""
        rows = self._read(
            "SELECT client_order_id, parent_id, leg, symbol, side, type, amount, status, "
            "filled, created_at, updated_at, reason FROM orders WHERE venue = ? AND leg = "
            "'entry' AND symbol = ? AND side = ? AND status = 'not_placed' "
            "ORDER BY created_at DESC, client_order_id DESC",
            [self.venue, symbol, side],
        )
        return [OrderRow(*r) for r in rows]

    def event_keys(self, kind: str) -> set[str]:
        """The ``key`` of every event of ``kind`` that carries one: what a reconcile already
        reported (a difference reported once is not reported again)."""
        rows = self._read(
            "SELECT json_extract_string(data, '$.key') FROM events WHERE venue = ? AND kind = ?",
            [self.venue, kind],
        )
        return {r[0] for r in rows if r[0] is not None}

    def execution_of(self, client_order_id: str) -> dict[str, Any] | None:
        """The executor's report of the entry ``client_order_id``; None while none ended."""
        rows = self._read("SELECT report FROM executions WHERE venue = ? AND client_order_id = ?",
                          [self.venue, client_order_id], table="executions")  # fmt: skip
        return json.loads(rows[0][0]) if rows else None

    def _pending(self, con: duckdb.DuckDBPyConnection | None) -> list[OrderRow]:
        """The intents on disk the journal has no row of yet, as the ``sending`` rows they
        stand for: THE rule by which a reader sees what may have been sent (a run killed
        between an intent and its answer, a run still sending; the file is empty otherwise).
        """
        intents = self.intents.read()
        if not intents:
            return []
        has_orders = con is not None and self._has(con, "orders")
        intents = _unsettled(con if has_orders else None, self.venue, intents)
        return [OrderRow(i.client_order_id, i.parent_id, i.leg, i.symbol, i.side, i.type,
                         i.amount, "sending", None, i.ts, i.ts, None)
                for i in intents]  # fmt: skip

    def _read(self, sql: str, params: list[Any], *, table: str = "orders") -> list[tuple]:
        with catalog.reader(self.root) as con:
            if con is None or not self._has(con, table):
                return []
            return con.execute(sql, params).fetchall()

    def _has(self, con: duckdb.DuckDBPyConnection, *names: str) -> bool:
        """Whether the journal has these tables (on a held journal its schema says so)."""
        return catalog.has_schema(self.root, _SCHEMA) or set(names) <= catalog.tables(con)

    # ---- writes (one transaction each) ---------------------------------------------------
    def intend(self, intent: Intent) -> None:
        """Before a create request leaves, on the hot path: ``intent`` made durable in the
        intents file (``journal.intents``: one fsync'd line, not a DuckDB transaction); the
        journal takes its row in with the answer (``answered``, ``failed``) or, after a crash,
        at the next run's start (``take_in``). ``IntentNotDurable``: nothing may be sent."""
        self.intents.append(intent)

    def answered(
        self,
        req: OrderRequest,
        *,
        parent_id: str,
        leg: str,
        ts: int,
        order: Order,
        intent: Intent | None = None,
    ) -> None:
        """The venue's answer to a create (or a later look-up of it): the order as it is;
        ``intent``: the create's intent, its row taken in first (one transaction)."""
        with self._writing() as con:
            if intent is not None:
                _sending(con, intent)
            _update(con, self.venue, order, ts)
            _request(con, ts=ts, venue=self.venue, action="create", req=req,
                     parent_id=parent_id, leg=leg, outcome=order.status,
                     message=order.reason)  # fmt: skip

    def failed(
        self,
        req: OrderRequest,
        *,
        parent_id: str,
        leg: str,
        ts: int,
        status: str,
        message: str,
        intent: Intent | None = None,
    ) -> None:
        """A create that placed nothing (``rejected``, ``not_placed``) or whose outcome is
        ``unknown``; ``intent`` as ``answered`` takes it."""
        with self._writing() as con:
            if intent is not None:
                _sending(con, intent)
            con.execute(
                "UPDATE orders SET status = ?, reason = ?, updated_at = ? "
                "WHERE venue = ? AND client_order_id = ?",
                [status, message, ts, self.venue, req.client_order_id],
            )
            _request(con, ts=ts, venue=self.venue, action="create", req=req,
                     parent_id=parent_id, leg=leg, outcome=status, message=message)  # fmt: skip

    def update(self, order: Order, *, ts: int) -> None:
        """An order's state as the venue reports it now (fills, cancel)."""
        with self._writing() as con:
            _update(con, self.venue, order, ts)

    def refused(
        self,
        req: OrderRequest,
        *,
        parent_id: str,
        strategy: str,
        ts: int,
        reason: str,
        gates: Mapping[str, str] | None = None,
    ) -> None:
        """An entry the gates (or the venue's rules before any request) refused: never sent.
        A row already sent is left as it is (a refusal never hides an order that exists)."""
        with self._writing() as con:
            known = con.execute(
                "SELECT status FROM orders WHERE venue = ? AND client_order_id = ?",
                [self.venue, req.client_order_id],
            ).fetchone()
            if known is not None and known[0] in SENT:
                return
            row = {
                "venue": self.venue, "client_order_id": req.client_order_id,
                "parent_id": parent_id, "leg": "entry", "symbol": req.symbol, "side": req.side,
                "type": req.type, "amount": req.amount, "price": req.price,
                "trigger_price": req.trigger_price, "reduce_only": req.reduce_only,
                "strategy": strategy, "status": "refused", "exchange_order_id": None,
                "filled": None, "average": None, "fee": None, "reason": reason,
                "gates": json.dumps(dict(gates)) if gates else None, "created_at": ts,
                "updated_at": ts, "expected_price": None,
            }  # fmt: skip
            _upsert(con, row)

    def found(self, order: Order, *, parent_id: str, leg: str, strategy: str, ts: int) -> None:
        """An order found at the venue by its client id (one the journal holds as
        ``sending``, or one another journal sent): its row as the venue states it."""
        with self._writing() as con:
            known = con.execute(
                "SELECT created_at FROM orders WHERE venue = ? AND client_order_id = ?",
                [self.venue, order.client_order_id],
            ).fetchone()
            if known is not None:
                _update(con, self.venue, order, ts)
                return
            row = {
                "venue": self.venue, "client_order_id": order.client_order_id,
                "parent_id": parent_id, "leg": leg, "symbol": order.symbol, "side": order.side,
                "type": order.type, "amount": order.amount, "price": order.price,
                "trigger_price": order.trigger_price, "reduce_only": order.reduce_only,
                "strategy": strategy, "status": order.status, "exchange_order_id": order.id,
                "filled": order.filled, "average": order.average, "fee": order.fee,
                "reason": order.reason, "gates": None, "created_at": order.timestamp,
                "updated_at": max(ts, order.updated), "expected_price": None,
            }  # fmt: skip
            _upsert(con, row)

    def withdrawn(self, intent: Intent, *, reason: str) -> None:
        """An intent whose request this process knows never left (made durable ahead of a
        request it then did not send): its row ``not_placed``, so no run looks it up. A row
        already there (the id's earlier life) is left as it is."""
        with self._writing() as con:
            if not any(r[1] in SENT for r in _rows_of(con, self.venue, [intent])):
                _upsert(con, _row(intent, status="not_placed", reason=reason))

    def settled(self, client_order_id: str, *, status: str, reason: str, ts: int) -> None:
        """A journaled order's status decided without an answer (the venue certainly has no
        such order: ``not_placed``)."""
        with self._writing() as con:
            con.execute(
                "UPDATE orders SET status = ?, reason = ?, updated_at = ? "
                "WHERE venue = ? AND client_order_id = ?",
                [status, reason, ts, self.venue, client_order_id],
            )

    def request(
        self,
        *,
        action: str,
        ts: int,
        symbol: str,
        detail: Mapping[str, Any],
        outcome: str,
        message: str | None = None,
        client_order_id: str | None = None,
        parent_id: str | None = None,
        leg: str | None = None,
    ) -> None:
        """A request other than a create (a cancel, leverage, margin mode) and its outcome."""
        with self._writing() as con:
            con.execute(
                "INSERT INTO order_requests (ts, venue, action, client_order_id, parent_id, "
                "leg, symbol, request, outcome, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [ts, self.venue, action, client_order_id, parent_id, leg, symbol,
                 json.dumps(dict(detail)), outcome, message],
            )  # fmt: skip

    def executed(self, report: Mapping[str, Any], *, ts: int) -> None:
        """The executor's report of an entry (``execution/1``), stored as it ended."""
        with self._writing() as con:
            con.execute(
                "INSERT OR REPLACE INTO executions (venue, client_order_id, ts, status, report) "
                "VALUES (?, ?, ?, ?, ?)",
                [self.venue, report["client_order_id"], ts, report["status"],
                 json.dumps(dict(report), allow_nan=False)],
            )  # fmt: skip

    def event(
        self,
        *,
        ts: int,
        level: str,
        kind: str,
        message: str,
        symbol: str | None = None,
        client_order_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        with self._writing() as con:
            con.execute(
                "INSERT INTO events (ts, venue, level, kind, symbol, client_order_id, message, "
                "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [ts, self.venue, level, kind, symbol, client_order_id, message,
                 json.dumps(dict(data or {}), default=str)],
            )  # fmt: skip

    def fills(self, fills: Iterable[Fill]) -> int:
        """Store the fills of journaled orders (others are not this journal's) and the
        venue's liquidations (which close a position of ours); returns how many were new."""
        fills = list(fills)
        if not fills:
            return 0
        with self._writing() as con:
            ids = sorted({f.client_order_id for f in fills if f.client_order_id})
            legs = {r[0]: (r[1], r[2]) for r in con.execute(
                "SELECT client_order_id, parent_id, leg FROM orders WHERE venue = ? "
                "AND client_order_id IN (SELECT unnest(?::VARCHAR[]))", [self.venue, ids],
            ).fetchall()}  # fmt: skip
            rows = [
                [self.venue, f.id, f.client_order_id,
                 *legs.get(f.client_order_id, (None, None)), f.timestamp, f.symbol, f.side,
                 f.order_type, f.amount, f.price, f.cost, f.fee, f.fee_rate, f.taker_or_maker,
                 f.realized_pnl]
                for f in fills if f.client_order_id in legs or f.order_type == LIQUIDATION
            ]  # fmt: skip
            if not rows:
                return 0
            new = {row[1] for row in rows}
            known = con.execute("SELECT count(*) FROM fills WHERE venue = ? AND id IN "
                                "(SELECT unnest(?::VARCHAR[]))",
                                [self.venue, sorted(new)]).fetchone()[0]  # fmt: skip
            catalog.insert_rows(con, "INSERT OR REPLACE INTO fills VALUES {values}", rows,
                                key=(0, 1))  # fmt: skip
        return len(new) - known

    def positions(self, positions: Iterable[Position], *, ts: int) -> None:
        rows = [
            [ts, self.venue, p.symbol, p.side, p.contracts, p.entry_price, p.mark_price,
             p.notional, p.unrealized_pnl, p.leverage, p.margin_mode, p.liquidation_price]
            for p in positions
        ]  # fmt: skip
        if not rows:
            return
        with self._writing() as con:
            catalog.insert_rows(con, "INSERT OR REPLACE INTO positions VALUES {values}", rows,
                                key=(0, 1, 2))  # fmt: skip

    def payments(self, payments: Iterable[FundingPayment]) -> None:
        """Store funding payments (a payment stored before is replaced by itself)."""
        rows = [[self.venue, p.id, p.timestamp, p.symbol, p.amount, p.rate, p.contracts,
                 p.price] for p in payments]  # fmt: skip
        if not rows:
            return
        with self._writing() as con:
            catalog.insert_rows(con, "INSERT OR REPLACE INTO funding_payments VALUES {values}",
                                rows, key=(0, 1))  # fmt: skip

    def snapshot(self, balance: Balance, *, ts: int) -> None:
        """The account's balance and equity at ``ts`` (``journal.account``)."""
        with self._writing() as con:
            write_snapshot(con, venue=self.venue, balance=balance, ts=ts)

    def _writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return _transaction(self.root)


@contextmanager
def _transaction(root: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short connection holding one transaction: committed when the block ends, rolled back
    when it raises (a crash before the commit leaves the journal as it was)."""
    with catalog.connect(root) as con:
        catalog.prepared(con, root, _SCHEMA, probe=_PROBE)
        con.execute("BEGIN")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def _sending(con: duckdb.DuckDBPyConnection, intent: Intent) -> None:
    """An intent as its ``sending`` row (over the one there: an id sent again once it was
    certainly not placed) and request row, with the sized order behind an entry (the first
    kept stays: a client id is one sized order): what a crash between the request and its
    answer leaves for a reconcile to look up and rebuild a stop from."""
    row = _row(intent, status="sending", reason=None)
    _upsert(con, row)
    _request(con, ts=intent.ts, venue=intent.venue, action="create", req=intent.request,
             parent_id=intent.parent_id, leg=intent.leg, outcome="sent",
             message=None)  # fmt: skip
    if intent.sized is not None:
        con.execute(
            "INSERT INTO sized_orders SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 "
            "FROM sized_orders WHERE venue = ? AND client_order_id = ?)",
            [intent.venue, intent.parent_id, intent.ts, json.dumps(intent.sized),
             intent.venue, intent.parent_id],
        )  # fmt: skip


def _row(intent: Intent, *, status: str, reason: str | None) -> dict[str, Any]:
    """The ``orders`` row of ``intent``'s order, at ``status``."""
    return {
        "venue": intent.venue, "client_order_id": intent.client_order_id,
        "parent_id": intent.parent_id, "leg": intent.leg, "symbol": intent.symbol,
        "side": intent.side, "type": intent.type, "amount": intent.amount,
        "price": intent.price, "trigger_price": intent.trigger_price,
        "reduce_only": intent.reduce_only, "strategy": intent.strategy, "status": status,
        "exchange_order_id": None, "filled": None, "average": None, "fee": None,
        "reason": reason, "gates": json.dumps(intent.gates) if intent.gates else None,
        "created_at": intent.ts, "updated_at": intent.ts,
        "expected_price": intent.expected_price,
    }  # fmt: skip


def pending_orders(root: Path, con: duckdb.DuckDBPyConnection | None) -> list[dict[str, Any]]:
    """The ``sending`` rows that every account's intents stand for and the journal has not
    taken in yet (:func:`_unsettled`, the rule of the fold and of the desk's readers), as the
    fold will write them: what ``journal orders`` shows of an order a killed run may have
    sent, before the next run looks it up. ``con``: a read connection (None: no journal)."""
    has_orders = con is not None and "orders" in catalog.tables(con)
    out = []
    for log in IntentLog.every(root):
        intents = _unsettled(con if has_orders else None, log.venue, log.read())
        out += [_row(intent, status="sending", reason=None) for intent in intents]
    return out


def _unsettled(
    con: duckdb.DuckDBPyConnection | None, venue: str, intents: list[Intent]
) -> list[Intent]:
    """THE rule by which an intent stands for an order that may have been sent: no row of
    its id settles it yet. A row settles it when it is a sent order's (answered, or
    ``sending``/``unknown`` already) or was written at or after the intent (its answer, its
    withdrawal); a row from before it is the id's earlier life (refused, not placed), which
    the intent's send superseded. The newest unsettled intent of each id, in file order.
    ``con`` None: a journal without orders (every intent unsettled)."""
    found = _rows_of(con, venue, intents) if con is not None and intents else []
    rows = {cid: (status, updated) for cid, status, updated in found}
    out: dict[str, Intent] = {}
    for intent in intents:
        status, updated = rows.get(intent.client_order_id, (None, None))
        if status is None or (status not in SENT and (updated or 0) < intent.ts):
            out.pop(intent.client_order_id, None)
            out[intent.client_order_id] = intent
    return list(out.values())


def _rows_of(
    con: duckdb.DuckDBPyConnection, venue: str, intents: list[Intent]
) -> list[tuple[str, str, int]]:
    """(client id, status, updated at) of the journal's rows of the intents' ids."""
    ids = sorted({i.client_order_id for i in intents})
    return con.execute(
        "SELECT client_order_id, status, updated_at FROM orders WHERE venue = ? AND "
        f"client_order_id IN ({', '.join('?' * len(ids))})",
        [venue, *ids],
    ).fetchall()


def _update(con: duckdb.DuckDBPyConnection, venue: str, order: Order, ts: int) -> None:
    con.execute(
        "UPDATE orders SET status = ?, exchange_order_id = ?, filled = ?, average = ?, "
        "fee = ?, reason = ?, updated_at = ? WHERE venue = ? AND client_order_id = ?",
        [order.status, order.id, order.filled, order.average, order.fee, order.reason,
         max(ts, order.updated), venue, order.client_order_id],
    )  # fmt: skip


def _upsert(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """The order's row, replaced if it exists; a new one is a plain insert (DuckDB's ``INSERT
    OR REPLACE`` costs several times as much)."""
    marks = ", ".join("?" * len(_ORDER_COLUMNS))
    known = con.execute(
        "SELECT 1 FROM orders WHERE venue = ? AND client_order_id = ?",
        [row["venue"], row["client_order_id"]],
    ).fetchone()
    verb = "INSERT" if known is None else "INSERT OR REPLACE"
    con.execute(
        f"{verb} INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES ({marks})",
        [row[c] for c in _ORDER_COLUMNS],
    )


def _request(
    con: duckdb.DuckDBPyConnection,
    *,
    ts: int,
    venue: str,
    action: str,
    req: OrderRequest,
    parent_id: str,
    leg: str,
    outcome: str,
    message: str | None,
) -> None:
    detail = {
        "type": req.type, "side": req.side, "amount": req.amount, "price": req.price,
        "trigger_price": req.trigger_price, "reduce_only": req.reduce_only,
        "post_only": req.post_only,
    }  # fmt: skip
    con.execute(
        "INSERT INTO order_requests (ts, venue, action, client_order_id, parent_id, leg, "
        "symbol, request, outcome, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ts, venue, action, req.client_order_id, parent_id, leg, req.symbol,
         json.dumps(detail), outcome, message],
    )  # fmt: skip


__all__ = ["LIQUIDATION", "SENT", "WORKING", "OrderRow", "ReconcileRows", "TradeJournal"]
