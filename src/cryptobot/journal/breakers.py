"""Circuit-breaker state in the DuckDB journal, so every process sees the same trip.

``breaker_state`` holds one row (the current state as JSON); ``breaker_events`` keeps every
event that changed the mode or asked for actions, with its reason, for the journal and report.
A state change and its event row are written in one transaction.
"""

import json
from pathlib import Path

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


def load_state(root: Path) -> dict | None:
    """The stored state record (``BreakerState.to_record``), or None before the first event.
    Read-only, so ``size`` and ``risk status`` never wait behind each other."""
    with catalog.reader(root) as con:
        if con is None or "breaker_state" not in catalog.tables(con):
            return None
        row = con.execute("SELECT state FROM breaker_state WHERE name = ?", [NAME]).fetchone()
    return json.loads(row[0]) if row else None


def save_state(
    root: Path, before: dict, after: dict, ts: int, event: str, actions: list[str]
) -> None:
    """Store ``after``; log the event when the mode changed or it asked for actions."""
    with catalog.connect(root) as con:
        con.execute(_SCHEMA)
        con.execute("BEGIN")
        con.execute(
            "INSERT OR REPLACE INTO breaker_state VALUES (?, ?, ?)",
            [NAME, ts, json.dumps(after)],
        )
        if actions or before["mode"] != after["mode"]:
            con.execute(
                "INSERT INTO breaker_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    ts,
                    event,
                    before["mode"],
                    after["mode"],
                    after["tripped_by"],
                    after["reason"],
                    json.dumps(actions),
                ],
            )
        con.execute("COMMIT")


def events(root: Path, limit: int = 20) -> list[dict]:
    with catalog.reader(root) as con:
        if con is None or "breaker_events" not in catalog.tables(con):
            return []
        cur = con.execute("SELECT * FROM breaker_events ORDER BY ts DESC LIMIT ?", [limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
