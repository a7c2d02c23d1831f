"""The venue names cryptobot knows, in a module light enough for the CLI's start-up (the
``--exchange`` flag checks its value before any settings are loaded), and the one the lake
files a venue's data under (``backtest`` and ``size`` need that name, not the exchange
factory and the simulated venues behind it: 0.04 s of their start)."""

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from cryptobot.core.settings import Settings

#: Venues reached through ccxt; ``replay`` serves a stored lake through the same interface.
CCXT_VENUES = ("binanceusdm", "bybit", "bitget")
VENUES = (*CCXT_VENUES, "replay")
#: A paper account's name (``paper.account``), as the journal and its files carry it.
PAPER_ACCOUNT = r"^[A-Za-z0-9_-]{1,32}$"


def lake_exchange(settings: "Settings") -> str:
    """The exchange id the lake files data under: ``fetch`` through the replay exchange stores
    the replayed venue's markets and candles under that venue's id, not under ``replay``."""
    return settings.replay.source_exchange if settings.exchange == "replay" else settings.exchange


def account_name(settings: "Settings", *, live: bool) -> str:
    """The journal's name for the account orders go to (``exchange.factory.open_venue``'s
    choice), which its rows and its circuit breaker are kept under: the live exchange, the
    replay exchange's (live or not: it takes no live orders), or the paper account."""
    if settings.exchange == "replay":
        return f"replay:{settings.replay.source_exchange}"
    if live:
        return settings.exchange
    return f"paper:{settings.paper.account}"


def file_token(account: str) -> str:
    """``account`` as a part of a file name, one name per account (``paper:a_b`` and
    ``paper:a-b`` are two accounts, so two files and two locks): percent-encoded."""
    return quote(account, safe="")


def token_account(token: str) -> str:
    """The account a :func:`file_token` names."""
    return unquote(token)


def known_account(name: str) -> bool:
    """Whether ``name`` is an account :func:`account_name` can give: ``paper:<name>``,
    ``replay:<source>`` or a live exchange's id (``risk --account`` takes no other: a typo
    would judge, or trip, a breaker no trade ever reads)."""
    kind, colon, rest = name.partition(":")
    if not colon:
        return name in CCXT_VENUES
    if kind == "replay":  # the lake's folder of the replayed venue (``replay.source_exchange``)
        return re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", rest) is not None
    return kind == "paper" and re.fullmatch(PAPER_ACCOUNT, rest) is not None


def configured_account(settings: "Settings") -> str:
    """The account ``size`` and ``risk`` judge by default: the live exchange when the config
    says ``mode: live``, else the simulated one (``trade`` names its own, by its switches)."""
    return account_name(settings, live=settings.mode == "live")
