"""Choosing the exchange implementation from the settings.

ccxt (sync and async, about half a second to import) loads only when a live venue is opened:
``scan --offline``, replay and the stored exchange never need it. The replay exchange (and
the pandas it reads its candles with, ~0.35 s) loads only for those: a paper or live ``trade``
or ``risk`` call does without it.

Where orders go (``open_venue``), per DESIGN.md's live switches: ``exchange: replay`` trades on
the replay exchange's own simulated account; any other venue is traded on paper, its live
prices through the paper broker. Live orders (the ccxt trading adapter) need ``mode: live``
in the config AND ``--live`` on the command line AND keys in the environment
(:func:`live_switches`, the one place that decides); asking for live with any of them missing
is refused with the missing ones named, and nothing reaches an exchange.
"""

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from cryptobot.core.config import Secrets
from cryptobot.core.errors import ConfigError
from cryptobot.core.settings import Settings
from cryptobot.core.timeutil import parse_time
from cryptobot.core.venues import lake_exchange
from cryptobot.data.lake import Lake
from cryptobot.exchange.base import Clock, Exchange, TradingExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs
from cryptobot.fills.liquidation import venue_of

if TYPE_CHECKING:
    from cryptobot.exchange.replay import ReplayExchange


def open_exchange(settings: Settings, secrets: Secrets | None = None) -> Exchange:
    if settings.exchange == "replay":
        return _replay(settings)
    from cryptobot.exchange.ccxt_exchange import CcxtExchange

    return CcxtExchange(settings.exchange, settings.venue(), retry_policy(settings), secrets)


def crowd_sources(settings: Settings, exchange: Exchange) -> list:
    """Every source ``fetch --crowd`` asks, in order: the exchange's statistics, then the Fear &
    Greed index, unless replaying a stored market (replay is offline: it serves what the lake
    holds, open interest included)."""
    from cryptobot.data.sources import ExchangeSource

    if settings.exchange == "replay":
        return [ExchangeSource(exchange)]
    from cryptobot.exchange.fear_greed import FearGreedSource

    return [
        ExchangeSource(exchange),
        FearGreedSource(
            settings.fetch.fear_greed_url,
            retry=retry_policy(settings),
            timeout_s=settings.venue().timeout_ms / 1000,
        ),
    ]


def retry_policy(settings: Settings):
    """The configured back-off for read-only requests (the exchange's, Fear & Greed's)."""
    from cryptobot.exchange.retry import RetryPolicy

    return RetryPolicy(
        attempts=settings.retry.attempts,
        base_delay_s=settings.retry.base_delay_s,
        max_delay_s=settings.retry.max_delay_s,
    )


def open_venue(
    settings: Settings,
    secrets: Secrets | None = None,
    *,
    live: bool = False,
    clock: Clock | None = None,
) -> TradingExchange:
    """The venue orders go to: the live ccxt adapter when :func:`live_switches` says so; the
    replay exchange (``exchange: replay``); else the paper broker on the configured venue's
    prices with its account in ``data_dir``'s journal. ``clock``: the paper broker's (default:
    the venue's own ``now``)."""
    if live_switches(settings, secrets, live=live):
        from cryptobot.exchange.ccxt_trading import CcxtTradingExchange

        return CcxtTradingExchange(
            settings.exchange, settings.venue(), retry_policy(settings), secrets
        )
    if settings.exchange == "replay":
        return _replay(settings)
    from cryptobot.exchange.paper import PaperBroker

    return PaperBroker(
        open_exchange(settings, secrets),
        journal_dir=Path(settings.data_dir),
        setup=sim_setup(settings),
        account=settings.paper.account,
        clock=clock,
    )


def sim_setup(settings: Settings) -> SimSetup:
    """How the simulated venues trade: the backtest's costs (so paper, replay and backtest
    charge the same), the paper account's deposit, matching timeframe and book, the margin mode
    and the liquidation formula of the configured venue."""
    source = settings.replay.source_exchange if settings.exchange == "replay" else settings.exchange
    return SimSetup(
        costs=Costs.from_settings(settings),
        initial_balance=settings.paper.initial_balance,
        margin_mode=settings.risk.margin_mode,
        venue=venue_of(source),
        max_leverage=settings.risk.max_leverage,
        timeframe=settings.paper.timeframe,
        spread_ticks=settings.paper.spread_ticks,
        top_of_book_pct=settings.paper.top_of_book_pct,
    )


def live_switches(settings: Settings, secrets: Secrets | None, *, live: bool) -> bool:
    """Whether orders go to a live exchange: True only with ``mode: live`` in the config AND
    ``--live`` on the command line AND API keys in the environment (with the passphrase, on a
    venue whose keys have one: Bitget); False when neither the config nor the command line asks
    for live. Asked for by one and missing another, it refuses, naming every missing switch (a
    trader who set one expects live, and must not be traded on paper, nor live, by surprise)."""
    from cryptobot.exchange.ccxt_dialects import DIALECTS

    dialect = DIALECTS.get(settings.exchange)
    passphrase = dialect is not None and dialect.needs_passphrase
    keys = "CRYPTOBOT_API_KEY and CRYPTOBOT_API_SECRET"
    keys += " and CRYPTOBOT_API_PASSWORD" if passphrase else ""
    have = secrets is not None and secrets.has_keys
    if passphrase:
        have = have and bool(secrets and secrets.api_password and secrets.api_password.strip())
    switches = {
        "`mode: live` in the config": settings.mode == "live",
        "--live on the command line": live,
        f"{keys} in the environment": have,
    }
    if all(switches.values()):
        if settings.exchange == "replay":
            raise ConfigError("live orders need a real exchange, not `exchange: replay`")
        return True
    if settings.mode != "live" and not live:
        return False
    missing = [name for name, on in switches.items() if not on]
    raise ConfigError(
        f"live orders need {' AND '.join(switches)}; missing: {'; '.join(missing)}. "
        "Nothing was sent (without all three, trade on paper: no --live, mode: paper)"
    )


def command_now(settings: Settings, *, wall_ms: int) -> int:
    """The time a command that reads no live market judges at (``size``'s and ``risk``'s
    circuit breaker): under ``exchange: replay`` the replay exchange's clock (``now()``), so a
    replayed day drives the breaker as it drives ``signal`` and ``trade``; else ``wall_ms``, the
    caller's clock (a live venue's ``now()`` would take the network, which these commands never
    need, and the breaker's hours do not hang on a server's few milliseconds)."""
    if settings.exchange != "replay":
        return wall_ms
    return asyncio.run(_replay(settings).now())


def _replay(settings: Settings) -> "ReplayExchange":
    from cryptobot.exchange.replay import ReplayClock, ReplayExchange

    replay = settings.replay
    lake = Lake(Path(replay.source_dir or settings.data_dir))
    clock = ReplayClock(parse_time(replay.start)) if replay.start else None
    return ReplayExchange(lake, replay.source_exchange, clock, setup=_replay_setup(settings))


def _replay_setup(settings: Settings) -> SimSetup:
    """The replay exchange trades at the config's costs on its smallest stored timeframe (the
    paper timeframe is the paper broker's)."""
    return replace(sim_setup(settings), timeframe=None)


def market_exchange(
    settings: Settings, lake: Lake, *, offline: bool, secrets: Secrets | None = None
) -> Exchange:
    """What ``scan`` and ``signal`` read the market and its clock from: the lake's own stored
    candles with ``offline`` (no network), else the configured venue."""
    return stored_exchange(settings, lake) if offline else open_exchange(settings, secrets)


def stored_exchange(settings: Settings, lake: Lake) -> Exchange:
    """The data dir's own stored candles as an exchange (no network): what ``--offline``
    commands read. Its clock stands just after the newest stored bar."""
    from cryptobot.exchange.replay import ReplayExchange

    return ReplayExchange(lake, lake_exchange(settings), setup=_replay_setup(settings))
