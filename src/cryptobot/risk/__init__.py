"""Sizing, pre-trade gates and circuit breakers: the one path every order takes before it may
reach a venue (``orders.size_orders``), and the breaker state machine (``breakers.step``).

The liquidation price and the maintenance brackets it sizes with are the matching model's
(``fills.liquidation``, ``fills.brackets``). ``risk`` places no order and reads no clock: the
caller gives it ``now``."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "breakers": ("BreakerState", "Equity", "Mode", "Reset"),
        "context": (
            "MarketFlags",
            "account_state",
            "apply_event",
            "brackets_resolver",
            "current_breaker",
            "flag_market",
            "observe_equity",
            "resolve_markets",
        ),
        "orders": (
            "ENTRY_ORDERS",
            "RESENT_LEGS",
            "SizingSetup",
            "fill_order_ids",
            "leg_of_order",
            "leg_order_id",
            "level_past_entry",
            "size_orders",
        ),
        "sizing": ("floor_to_step",),
    },
    modules=("breakers", "cooldown", "gates", "stops"),
)
