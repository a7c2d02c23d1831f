"""The composer (``engine.composer``): at each close, in one order for every desk, which
signals may open, the breaker fed and a trip's close-all, sizing through the gates, the cooldown
after a loss; the backtest's fast path and its ``--stepwise`` venue desk both drive it;
``trade``'s desk: sized orders onto a venue with their stop and take-profit ladder, gated with
the venue's account, idempotent by client id (``engine.trade``); and the maker-first executor
that works one entry onto a venue (``engine.execution.execute``); and the reconcile cycle
that brings the journal in line with the venue and carries out a tripped breaker's actions
(``engine.reconcile``).

It owns no rule of its own: each step is the library's (``strategies``, ``risk``, ``fills``,
``manage``), and the venue is any ``exchange.TradingExchange``."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "execution": ("Sleep", "execute"),
        "execution_plan": ("child_qty", "entry_order_id", "maker_price"),
        "composer": ("NO_PRICE", "Composer", "Lane", "Rules", "answer", "answer_async"),
        "reconcile": ("reconcile", "reconcile_desk"),
        "reconcile_report": ("Difference",),
        "trade": (
            "LIVE_IN_FLIGHT_MS",
            "Outcome",
            "TradeSetup",
            "close_positions",
            "trade_orders",
        ),
        "trade_record": ("TradeOrder",),
        "trade_status": ("StatusReport", "account_status"),
    },
)
