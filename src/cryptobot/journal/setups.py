"""Setups and signal decisions in the DuckDB journal (``cryptobot.duckdb`` in the data dir).

A setup row is keyed by the setup's id, so re-scanning the same bars updates ``last_seen``
instead of adding a row; an armed setup that later triggers is a new row (its status is part
of its identity). Each write is one transaction on a short-lived connection.

The losses the cooldown counts are the round trips derived from ``trade``'s fills
(``journal.roundtrips.closed``), the one record of what was traded. Journals written before
that keep a ``trades`` table this module used to create: nothing ever wrote it and nothing reads
it now (``DROP TABLE trades`` is safe).
"""

import json
from collections.abc import Collection, Iterable
from pathlib import Path

from cryptobot.core.setup import Setup, json_safe
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data import catalog
from cryptobot.journal import roundtrips

_SCHEMA = """
CREATE TABLE IF NOT EXISTS setups (
    id VARCHAR PRIMARY KEY, ts BIGINT, anchor_ts BIGINT, exchange VARCHAR, symbol VARCHAR,
    strategy VARCHAR, timeframe VARCHAR, side VARCHAR, status VARCHAR, entry DOUBLE,
    stop DOUBLE, targets VARCHAR, confidence INTEGER, reasons VARCHAR,
    first_seen BIGINT, last_seen BIGINT
);
CREATE TABLE IF NOT EXISTS signal_decisions (
    setup_id VARCHAR PRIMARY KEY, decided_at BIGINT, ts BIGINT, expires_at BIGINT,
    exchange VARCHAR, symbol VARCHAR, strategy VARCHAR, side VARCHAR, accepted BOOLEAN,
    reason VARCHAR, context VARCHAR, record VARCHAR
);
"""


def ensure_schema(con) -> None:
    con.execute(_SCHEMA)


def record_setups(root: Path, setups: Iterable[Setup], seen_at: int) -> int:
    """Store setups; returns how many were new."""
    rows = [_setup_row(s, seen_at) for s in setups]
    if not rows:
        return 0
    with catalog.connect(root) as con:
        ensure_schema(con)
        con.execute("BEGIN")
        before = con.execute("SELECT count(*) FROM setups").fetchone()[0]
        catalog.insert_rows(
            con,
            "INSERT INTO setups VALUES {values} "
            "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, ts = excluded.ts, "
            "entry = excluded.entry, stop = excluded.stop, targets = excluded.targets, "
            "confidence = excluded.confidence, reasons = excluded.reasons",
            rows,
            key=(0,),
        )
        after = con.execute("SELECT count(*) FROM setups").fetchone()[0]
        con.execute("COMMIT")
    return after - before


def record_decisions(root: Path, decisions: Iterable, decided_at: int, max_age_bars: int) -> None:
    """Store every signal decision (accepted or not, with its reason); re-deciding a setup
    replaces its earlier decision."""
    rows = []
    for d in decisions:
        s = d.setup
        expires = s.ts + (max_age_bars + 1) * timeframe_ms(s.timeframe)
        rows.append(
            (
                s.id,
                decided_at,
                s.ts,
                expires,
                s.exchange,
                s.symbol,
                s.strategy,
                s.side,
                d.accepted,
                d.reason,
                json.dumps(json_safe(d.context)),
                json.dumps(s.to_json()),
            )
        )
    if not rows:
        return
    with catalog.connect(root) as con:
        ensure_schema(con)
        con.execute("BEGIN")
        catalog.insert_rows(con, "INSERT OR REPLACE INTO signal_decisions VALUES {values}",
                            rows, key=(0,))  # fmt: skip
        con.execute("COMMIT")


def signal_history(
    root: Path, now: int, *, symbols: Collection[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """(last losing trade's close per symbol, live accepted signal's setup id per symbol) for
    ``symbols``. A losing trade is a closed round trip of any venue with a net ``pnl`` below 0
    (fees and funding counted, as the backtest's cooldown counts ``net``); a trip whose pnl is
    unknown (a fill without a price) is not counted as a loss."""
    losses: dict[str, int] = {}
    live: list[tuple] = []
    with catalog.reader(root) as con:
        for trip in roundtrips.closed(con, symbols=symbols):
            if trip["pnl"] < 0:
                symbol = trip["symbol"]
                losses[symbol] = max(losses.get(symbol, 0), int(trip["closed_at"]))
        if con is not None and "signal_decisions" in catalog.tables(con):
            live = con.execute(
                "SELECT symbol, arg_max(setup_id, ts) FROM signal_decisions "
                "WHERE accepted AND expires_at > ? GROUP BY symbol",
                [now],
            ).fetchall()
    return losses, dict(live)


def _setup_row(s: Setup, seen_at: int) -> tuple:
    row = s.to_row()
    return (
        s.id,
        s.ts,
        s.anchor_ts,
        s.exchange,
        s.symbol,
        s.strategy,
        s.timeframe,
        s.side,
        s.status,
        s.entry,
        s.stop,
        json.dumps(s.targets),
        s.confidence,
        row["reasons"],
        seen_at,
        seen_at,
    )
