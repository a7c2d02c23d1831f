"""Balance and equity snapshots of a trading account in the DuckDB journal (``account_snapshots``).

Why a table of its own: the breaker sees equity observations and ``trade --status`` shows the
account now, but an equity curve of what was really traded, and the margin it tied up, needs
the account as it stood at each run. ``trade`` writes one at the end of each run and the paper
broker one whenever a call moved its money (a fill or a funding payment), each in the writer's
own transaction (:func:`write_snapshot` takes the caller's connection).

Columns (the quant plan's minimum and what ccxt's balance adds): ``ts`` (the venue's clock,
ms), ``venue`` (the journal's account name: ``paper:<account>``, ``replay:<exchange>``, the
live exchange's id), ``currency``, ``balance`` (the wallet), ``equity`` (wallet + unrealised),
``unrealized_pnl``, ``margin_used``, ``free``.
"""

import duckdb

from cryptobot.core.account import Balance

SCHEMA = """
CREATE TABLE IF NOT EXISTS account_snapshots (
    ts BIGINT, venue VARCHAR, currency VARCHAR, balance DOUBLE, equity DOUBLE,
    unrealized_pnl DOUBLE, margin_used DOUBLE, free DOUBLE, PRIMARY KEY (venue, ts)
);
"""


def write_snapshot(
    con: duckdb.DuckDBPyConnection, *, venue: str, balance: Balance, ts: int
) -> None:
    """One snapshot at ``ts`` (a second one at the same time replaces it: a venue's clock can
    stand still between two calls of one bar)."""
    con.execute(SCHEMA)
    con.execute(
        "INSERT OR REPLACE INTO account_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [ts, venue, balance.currency, balance.wallet, balance.total, balance.unrealized_pnl,
         balance.used, balance.free],
    )  # fmt: skip


__all__ = ["SCHEMA", "write_snapshot"]
