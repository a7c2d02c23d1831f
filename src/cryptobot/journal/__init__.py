"""The DuckDB event journal: setups seen, signal decisions, breaker state, the paper broker's
account and ``trade``'s orders, fills, positions, funding, account snapshots and events, each a
table in ``cryptobot.duckdb`` written in one transaction (``trade``'s write-ahead intents first
in an fsync'd file, ``intents``, taken in after the request); backtest runs as files beside it
(``backtests``, ``run_rows``: a backtest never opens DuckDB); and the readers ``cryptobot
journal`` shows them through (``query``, the round trips of ``roundtrips``, the workbook of
``export``).

Writers hold connections briefly so ``journal`` and ``report`` run beside the daemon (a
``trade`` run holds its journal for the run, let go while it waits). It stores what callers
decided, with the times they give; it decides nothing itself."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "setups": ("record_decisions", "record_setups", "signal_history"),
        "intents": ("Intent", "IntentLog", "IntentNotDurable"),
        "trading": ("OrderRow", "ReconcileRows", "TradeJournal"),
    },
    modules=(
        "account",
        "backtests",
        "breakers",
        "export",
        "paper",
        "query",
        "roundtrips",
        "run_rows",
    ),
)
