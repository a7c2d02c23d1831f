"""Plain types, configuration and errors shared by every layer.

The records on the wire (market, setup, signal, sized order, account), the settings and how
they load, symbols, timeframes, times and numbers. Nothing here reads the lake, talks to a
venue or decides a trade; every other package may import ``core``, and ``core`` imports none
of them."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "account": ("AccountState", "Balance", "Book", "Fill", "FundingPayment", "Ledger",
                    "Liquidity", "MARGIN_MODES", "MarginMode", "ORDER_TYPES", "Order",
                    "OrderRequest", "OrderSide", "OrderType", "Position", "side_sign"),
        "config": ("Secrets", "load_dotenv_file", "load_settings", "redact", "settings_yaml"),
        "errors": ("ConfigError", "CryptobotError", "DataError", "ExchangeFailure", "OutOfOrder",
                   "UnknownSymbolError"),
        "execution": ("ExecutionReport", "ExecutionRequest", "ExecutionStatus"),
        "jit": ("njit",),
        "legs": ("ENTRY_ORDERS", "RESENT_LEGS", "leg_of_order", "leg_order_id"),
        "market": ("BestBidAsk", "Market", "plain_tier"),
        "numbers": (
            "MAX_SLIPPAGE_BPS",
            "MAX_UNITS",
            "finite",
            "plain",
            "record_number",
            "short",
            "strict_json",
        ),
        "order": ("Intent", "SizedOrder"),
        "periods": ("period_ends",),
        "rules": ("Rule", "rule"),
        "settings": ("BacktestSettings", "BosFvgFibSettings", "BreakerSettings",
                     "BreakoutSettings", "CotBiasSettings", "CotCrowdSettings", "CrowdSettings",
                     "EmaCrossSettings", "ExecutionRules", "ExecutionSettings",
                     "ExchangeSettings", "ExitRule", "FeeSettings", "ManageRules",
                     "ManageSettings", "MomentumSettings", "RiskSettings", "Settings",
                     "SignalSettings", "StrategiesSettings", "UniverseSettings"),
        "setup": ("Setup", "Side", "check_stop", "check_targets", "json_safe", "setup_id"),
        "signal": ("Signal",),
        "symbols": ("check_symbol", "id_to_symbol", "parse_symbols", "symbol_to_id"),
        "timeframes": (
            "bar_open", "last_closed_open", "off_grid", "parse_timeframes", "timeframe_ms",
        ),
        "timeutil": ("DAY_MS", "LAST_MS", "iso", "parse_duration", "parse_time"),
        "venues": ("CCXT_VENUES", "VENUES", "account_name", "configured_account", "file_token",
                   "known_account", "lake_exchange", "token_account"),
    },
    modules=("gc_policy", "jit", "lazy", "numba_cache", "rules"),
)  # fmt: skip
