"""The venue names cryptobot knows, in a module light enough for the CLI's start-up (the
``--exchange`` flag checks its value before any settings are loaded), and the one the lake
files a venue's data under (``backtest`` and ``size`` need that name, not the exchange
factory and the simulated venues behind it: 0.04 s of their start)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptobot.core.settings import Settings

#: Venues reached through ccxt; ``replay`` serves a stored lake through the same interface.
CCXT_VENUES = ("binanceusdm", "bybit", "bitget")
VENUES = (*CCXT_VENUES, "replay")


def lake_exchange(settings: "Settings") -> str:
    """The exchange id the lake files data under: ``fetch`` through the replay exchange stores
    the replayed venue's markets and candles under that venue's id, not under ``replay``."""
    return settings.replay.source_exchange if settings.exchange == "replay" else settings.exchange


def account_name(settings: "Settings", *, live: bool) -> str:
    """The journal's name for the account orders go to (``exchange.factory.open_venue``'s
    choice), which its rows and its circuit breaker are kept under: the live exchange, the
    replay exchange's, or the paper account."""
    if live:
        return settings.exchange
    if settings.exchange == "replay":
        return f"replay:{settings.replay.source_exchange}"
    return f"paper:{settings.paper.account}"


def configured_account(settings: "Settings") -> str:
    """The account ``size`` and ``risk`` judge by default: the live exchange when the config
    says ``mode: live``, else the simulated one (``trade`` names its own, by its switches)."""
    return account_name(settings, live=settings.mode == "live")
