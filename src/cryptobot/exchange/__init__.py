"""One async exchange interface for every venue: ccxt (live prices), the replay exchange
(stored candles + a clock) and the paper broker (live prices + simulated fills); the trading
part (``TradingExchange``) is simulated by replay and paper on ``fills/``. ``factory`` opens the
one the settings ask for.

Everything above reads the time from a venue's ``now()``. ``exchange`` decides no trade and
sizes nothing (it imports nothing from ``risk``, ``manage``, ``strategies`` or ``backtest``)."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "base": ("Clock", "Exchange", "Ticker", "TradingExchange"),
        "errors": ("TradingError",),
        "factory": (
            "command_now",
            "crowd_sources",
            "live_switches",
            "market_exchange",
            "open_exchange",
            "open_venue",
            "sim_setup",
            "stored_exchange",
        ),
        "market_rules": ("CLIENT_ID_CHARS", "add_steps", "snap"),
        "replay": ("ReplayClock", "ReplayExchange"),
        "simulated": ("SimSetup",),
    },
    modules=("errors",),
)
