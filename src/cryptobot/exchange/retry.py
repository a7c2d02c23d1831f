"""Retrying what the exchange gets wrong: timeouts, 429/418 (honouring Retry-After), 5xx,
dropped connections and malformed bodies.

Only idempotent calls are retried. A call that changes state (placing an order) is never
re-sent blindly: the caller must look the order up by its client order id instead.
"""

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cryptobot.core.errors import ExchangeFailure
from cryptobot.exchange.ccxt_modules import package

log = logging.getLogger(__name__)
T = TypeVar("T")
ccxt = package("ccxt")

#: Transient failures: ccxt's NetworkError covers timeouts, 429/418 (DDoSProtection,
#: RateLimitExceeded), 5xx (ExchangeNotAvailable) and dropped connections.
RETRYABLE: tuple[type[Exception], ...] = (ccxt.NetworkError, ccxt.BadResponse)


@dataclass
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with equal jitter; never shorter than the server's Retry-After."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        jittered = backoff / 2 + self.rng.random() * backoff / 2
        return max(jittered, retry_after or 0.0)

    async def call(self, what: str, fn: Callable[[], Awaitable[T]], idempotent: bool = True) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return await fn()
            except RETRYABLE as exc:
                if not idempotent:
                    raise
                if attempt == self.attempts:
                    raise ExchangeFailure(
                        f"{what} failed after {self.attempts} tries: {describe(exc)}"
                    ) from exc
                pause = self.delay(attempt, retry_after_of(exc))
                log.warning("%s: %s; retry %d in %.2fs", what, describe(exc), attempt, pause)
                await self.sleep(pause)
        raise AssertionError("unreachable")


class RetryAfter(ccxt.RateLimitExceeded):
    """A 429/418 that carries the server's ``Retry-After`` (seconds)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_of(exc: Exception) -> float | None:
    return getattr(exc, "retry_after", None)


_QUERY = re.compile(r"(https?://[^\s?]*)\?\S*")


def describe(exc: Exception) -> str:
    """One line about a failure, for logs and errors: never a URL's query, where a signed
    request carries its signature (ccxt puts the URL in the text of a dropped connection; a
    signed URL is good for another call while its receive window lasts)."""
    text = _QUERY.sub(r"\1", str(exc).strip().splitlines()[0]) if str(exc).strip() else ""
    text = text[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
