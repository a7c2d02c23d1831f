"""Choosing the exchange implementation from the settings.

ccxt (sync and async, about half a second to import) loads only when a live venue is opened:
``scan --offline``, replay and the stored exchange never need it.
"""

from pathlib import Path

from cryptobot.core.config import Secrets
from cryptobot.core.settings import Settings
from cryptobot.core.timeutil import parse_time
from cryptobot.data.lake import Lake
from cryptobot.exchange.base import Exchange
from cryptobot.exchange.replay import ReplayClock, ReplayExchange


def open_exchange(settings: Settings, secrets: Secrets | None = None) -> Exchange:
    if settings.exchange == "replay":
        replay = settings.replay
        lake = Lake(Path(replay.source_dir or settings.data_dir))
        clock = ReplayClock(parse_time(replay.start)) if replay.start else None
        return ReplayExchange(lake, replay.source_exchange, clock)
    from cryptobot.exchange.ccxt_exchange import CcxtExchange

    return CcxtExchange(settings.exchange, settings.venue(), retry_policy(settings), secrets)


def retry_policy(settings: Settings):
    """The configured back-off for read-only requests (the exchange's, Fear & Greed's)."""
    from cryptobot.exchange.retry import RetryPolicy

    return RetryPolicy(
        attempts=settings.retry.attempts,
        base_delay_s=settings.retry.base_delay_s,
        max_delay_s=settings.retry.max_delay_s,
    )


def lake_exchange(settings: Settings) -> str:
    """The exchange id the lake files data under: ``fetch`` through the replay exchange stores
    the replayed venue's markets and candles under that venue's id, not under ``replay``."""
    return settings.replay.source_exchange if settings.exchange == "replay" else settings.exchange


def stored_exchange(settings: Settings, lake: Lake) -> Exchange:
    """The data dir's own stored candles as an exchange (no network): what ``--offline``
    commands read. Its clock stands just after the newest stored bar."""
    return ReplayExchange(lake, lake_exchange(settings))
