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
