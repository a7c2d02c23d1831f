"""Reading the journal back: each kind of record ``cryptobot journal`` shows, filtered.

Kinds: ``orders``, ``fills`` (with the strategy of the order they filled), ``trades`` (round
trips derived from the fills: ``journal.roundtrips``), ``positions``, ``events``, ``setups``,
``backtests`` (the recorded runs) and ``account`` (balance and equity snapshots).

Why a reader of its own: the writers' modules each answer their caller's one question (the
desk's orders of a sized order, the breaker's state); a trader asks "what happened on BTC in
the last week" of any table. Reads use one short read-only connection (``catalog.reader``,
which waits out a writer's lock and never creates the file), so ``journal`` runs beside a
``trade`` or a daemon writing. Rows come back as the journal holds them: times in ms, JSON
text decoded into objects; :func:`with_iso_times` turns the times into ISO text for the text
formats. A journal written by an older cryptobot (a column added since) reads with that
column null, and a table not written yet reads as no rows (:class:`Selection` says why).
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptobot.core.errors import CryptobotError
from cryptobot.core.timeutil import LAST_MS, iso, parse_duration, parse_time
from cryptobot.journal import run_rows

if TYPE_CHECKING:  # duckdb loads when a kind is read, not for `journal --help`
    import duckdb

Record = dict[str, Any]
DURATION_UNITS = ("m", "h", "d", "w")


@dataclass(frozen=True, kw_only=True)
class Filters:
    """What ``journal`` narrows a kind to. ``since``/``until``: ms, the window ``[since,
    until)`` of the kind's time; ``venue`` matches the journal's account name whole
    (``paper:main``) or its kind before the colon (``paper``); ``limit``: the newest N."""

    since: int | None = None
    until: int | None = None
    symbol: str | None = None
    strategy: str | None = None
    venue: str | None = None
    limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class Kind:
    """How one kind is read: its table (or a query), the column its time filter and order
    use, the output columns in order, the SQL each filter tests (None: the filter does not
    apply to it), which columns are times (ms) and which hold JSON text. ``files``: the
    kind's rows kept in files beside the journal and their columns' SQL types (given the
    data dir and the read connection), listed with the table's."""

    table: str
    source: str
    files: Callable[[Path, Any], tuple[list[Record], Mapping[str, str]]] | None = None
    time: str
    columns: tuple[str, ...]
    symbol: str | None = "symbol"
    strategy: str | None = "strategy"
    venue: str | None = "venue"
    times: tuple[str, ...] = ()
    json_text: tuple[str, ...] = ()
    tiebreak: tuple[str, ...] = ()


def _table(name: str) -> str:
    return f"SELECT * FROM {name}"


def _run_rows(root: Path, con: Any) -> tuple[list[Record], Mapping[str, str]]:
    """Backtest runs: rows in files only (``journal.run_rows``)."""
    return run_rows.rows(root), run_rows.COLUMNS


def _pending_orders(root: Path, con: Any) -> tuple[list[Record], Mapping[str, str]]:
    """Orders a killed run may have sent, still in its intents file (``journal.trading``)."""
    from cryptobot.journal.trading import ORDER_TYPES, pending_orders

    return pending_orders(root, con), ORDER_TYPES


KINDS: dict[str, Kind] = {
    "orders": Kind(
        table="orders", source=_table("orders"), files=_pending_orders, time="created_at",
        columns=("created_at", "updated_at", "venue", "symbol", "strategy", "client_order_id",
                 "parent_id", "leg", "side", "type", "amount", "price", "trigger_price",
                 "expected_price", "reduce_only", "status", "exchange_order_id", "filled",
                 "average", "fee", "reason", "gates"),
        times=("created_at", "updated_at"), json_text=("gates",), tiebreak=("client_order_id",),
    ),
    "fills": Kind(
        table="fills",
        source="SELECT f.*, o.strategy, o.exchange_order_id FROM fills f LEFT JOIN orders o "
        "ON o.venue = f.venue AND o.client_order_id = f.client_order_id",
        time="ts",
        columns=("ts", "venue", "symbol", "strategy", "id", "client_order_id",
                 "exchange_order_id", "parent_id", "leg", "side", "order_type", "amount",
                 "price", "cost", "fee", "fee_rate", "liquidity", "realized_pnl"),
        times=("ts",), tiebreak=("id",),
    ),
    "positions": Kind(
        table="positions", source=_table("positions"), time="ts", strategy=None,
        columns=("ts", "venue", "symbol", "side", "contracts", "entry_price", "mark_price",
                 "notional", "unrealized_pnl", "leverage", "margin_mode", "liquidation_price"),
        times=("ts",), tiebreak=("symbol",),
    ),
    "events": Kind(
        table="events", source=_table("events"), time="ts", strategy=None,
        columns=("ts", "venue", "level", "kind", "symbol", "client_order_id", "message", "data"),
        times=("ts",), json_text=("data",), tiebreak=("id",),
    ),
    "setups": Kind(
        table="setups", source=_table("setups"), time="ts", venue="exchange",
        columns=("ts", "exchange", "symbol", "strategy", "timeframe", "side", "status", "entry",
                 "stop", "targets", "confidence", "reasons", "id", "anchor_ts", "first_seen",
                 "last_seen"),
        times=("ts", "anchor_ts", "first_seen", "last_seen"), json_text=("targets", "reasons"),
        tiebreak=("id",),
    ),
    "backtests": Kind(
        table="backtest_runs", source=_table("backtest_runs"), files=_run_rows,
        time="created_at", venue=None,
        symbol="list_contains(string_split(symbols, ','), ?)",
        columns=("created_at", "run_id", "strategy", "symbols", "timeframe", "start_ts",
                 "end_ts", "request", "summary", "benchmarks"),
        times=("created_at", "start_ts", "end_ts"),
        json_text=("request", "summary", "benchmarks"), tiebreak=("run_id",),
    ),
    "account": Kind(
        table="account_snapshots", source=_table("account_snapshots"), time="ts",
        symbol=None, strategy=None,
        columns=("ts", "venue", "currency", "balance", "equity", "unrealized_pnl",
                 "margin_used", "free"),
        times=("ts",), tiebreak=("venue",),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """Rows of one kind, and why there are none when the journal holds no such table (None
    when the table exists: no row matched the filters)."""

    records: list[Record]
    absent: str | None = None


def moment(text: str, *, now: int) -> int:
    """A ``--since``/``--until`` value in ms: a duration back from ``now`` (``7d``, ``12h``,
    ``2w``, ``30m``) or a time (ISO-8601, epoch ms). ``ValueError`` saying what is wrong."""
    text = text.strip()
    if text[-1:].lower() in DURATION_UNITS:  # back before 1970 is everything (not a DuckDB error)
        return max(now - parse_duration(text), 0)
    try:
        ms = parse_time(text)
    except CryptobotError:
        ms = -1
    if not 0 <= ms < LAST_MS:
        raise ValueError(
            f"{text!r} is neither a duration back from now (7d, 12h, 2w, 30m) nor a time "
            "(2025-12-01, 2025-12-01T08:00Z, epoch ms)"
        )
    return ms


def applies(kind: str, filters: Filters) -> list[str]:
    """The filters given that ``kind`` cannot apply (``--strategy`` to positions..)."""
    spec = KINDS.get(kind)
    given = {"symbol": filters.symbol, "strategy": filters.strategy, "venue": filters.venue}
    if spec is None:  # trades: every filter applies
        return []
    return [name for name, value in given.items()
            if value is not None and getattr(spec, name) is None]  # fmt: skip


def read(root: Path, kind: str, filters: Filters) -> Selection:
    """The rows of any kind ``journal`` shows (``trades`` derived by ``journal.roundtrips``)."""
    if kind == "trades":
        from cryptobot.journal.roundtrips import trades

        return trades(root, filters)
    return select(root, kind, filters)


def layout(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A kind's output columns and which of them are times (ms)."""
    if kind == "trades":
        from cryptobot.journal.roundtrips import COLUMNS, TIMES

        return COLUMNS, TIMES
    return KINDS[kind].columns, KINDS[kind].times


def select(root: Path, kind: str, filters: Filters) -> Selection:
    """The rows of ``kind`` (not ``trades``: :func:`journal.roundtrips.trades`) matching
    ``filters``, oldest first (the newest ``limit`` of them)."""
    from cryptobot.data import catalog

    spec = KINDS[kind]
    with catalog.reader(root, files=spec.files is not None) as con:
        tables = catalog.tables(con) if con is not None else set()
        kept, types = spec.files(root, con) if spec.files is not None else ([], {})
        if not (tables or kept):
            return Selection([], absent=f"no journal in {root} yet")
        parts = [(spec.source, [])] if spec.table in tables else []
        parts += [_json_rows(kept, types)] if kept else []
        if not parts:
            return Selection([], absent=f"the journal holds no {kind} yet")
        sql = " UNION ALL BY NAME ".join(f"({part})" for part, _ in parts)
        rows = _query(con, spec, filters, source=(sql, [p for _, ps in parts for p in ps]))
    return Selection([_record(spec, row) for row in rows])


def _json_rows(rows: list[Record], types: Mapping[str, str]) -> tuple[str, list[str]]:
    """SQL (and its one parameter) of ``rows`` as a relation of the columns ``types`` names:
    one JSON text DuckDB reads at once (~25 ms for 2,000 rows), not a statement per row."""
    columns = ", ".join(
        f"row -> '{name}' AS {name}"
        if kind == "JSON"
        else f"CAST(row ->> '{name}' AS {kind}) AS {name}"
        for name, kind in types.items()
    )
    sql = f"SELECT {columns} FROM (SELECT unnest(CAST(? AS JSON)::JSON[]) AS row)"
    return sql, [json.dumps(rows)]


def _query(
    con: "duckdb.DuckDBPyConnection",
    spec: Kind,
    filters: Filters,
    *,
    source: tuple[str, list[Any]],
) -> list[Record]:
    where, params = _where(spec, filters)
    order = ", ".join(f"{c} DESC" for c in (spec.time, *spec.tiebreak))
    sql = f"SELECT * FROM ({source[0]}) WHERE {where} ORDER BY {order}"
    if filters.limit is not None:
        sql += f" LIMIT {int(filters.limit)}"
    cur = con.execute(sql, [*source[1], *params])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in reversed(cur.fetchall())]


def _where(spec: Kind, filters: Filters) -> tuple[str, list[Any]]:
    where, params = ["TRUE"], []
    if filters.since is not None:
        where.append(f"{spec.time} >= ?")
        params.append(filters.since)
    if filters.until is not None:
        where.append(f"{spec.time} < ?")
        params.append(filters.until)
    for name, value in (("symbol", filters.symbol), ("strategy", filters.strategy)):
        test = getattr(spec, name)
        if value is not None and test is not None:
            where.append(test if "?" in test else f"{test} = ?")
            params.append(value)
    if filters.venue is not None and spec.venue is not None:
        where.append(venue_test(spec.venue))
        params += [filters.venue, filters.venue]
    return " AND ".join(where), params


def venue_test(column: str) -> str:
    """SQL matching ``column`` to a ``--venue``: the whole name or its kind before ``:``."""
    return f"({column} = ? OR split_part({column}, ':', 1) = ?)"


def _record(spec: Kind, row: Mapping[str, Any]) -> Record:
    """A row in the kind's column order (a column an older journal lacks: null), JSON text
    decoded (text that is not JSON stays text)."""
    out = {c: row.get(c) for c in spec.columns}
    for c in spec.json_text:
        out[c] = decoded(out[c])
    return out


def decoded(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def with_iso_times(records: Sequence[Record], times: Sequence[str]) -> list[Record]:
    """The records with their ms ``times`` as UTC ISO-8601 text (the text formats' times;
    Parquet keeps int64 ms, DESIGN section 4)."""
    return [{k: iso(v) if k in times and isinstance(v, int) else v for k, v in r.items()}
            for r in records]  # fmt: skip


__all__ = ["KINDS", "Filters", "Kind", "Selection", "applies", "layout", "moment", "read",
           "select", "venue_test", "with_iso_times"]  # fmt: skip
