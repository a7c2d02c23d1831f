"""The retry policy: back-off bounds, Retry-After, and no blind retries of state changes."""

import asyncio
import random

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.core.errors import ExchangeFailure
from cryptobot.exchange.retry import RetryAfter, RetryPolicy


@given(
    attempt=st.integers(1, 30),
    base=st.floats(0, 5),
    cap=st.floats(0, 60),
    retry_after=st.one_of(st.none(), st.floats(0, 120)),
    seed=st.integers(0, 2**32 - 1),
)
def test_delay_is_bounded_and_never_shorter_than_retry_after(attempt, base, cap, retry_after, seed):
    policy = RetryPolicy(base_delay_s=base, max_delay_s=cap, rng=random.Random(seed))
    delay = policy.delay(attempt, retry_after)
    assert delay >= (retry_after or 0.0)
    assert delay <= max(min(cap, base * 2 ** (attempt - 1)), retry_after or 0.0) + 1e-9


def _flaky(errors: list[Exception], result: str = "done"):
    calls = []

    async def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def test_transient_errors_are_retried_with_the_servers_pause():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.02, sleep=sleep)
    call, calls = _flaky([RetryAfter("429", 3.0), ccxt.RequestTimeout("t"), ccxt.BadResponse("b")])
    assert asyncio.run(policy.call("x", call)) == "done"
    assert len(calls) == 4 and slept[0] >= 3.0 and all(s <= 0.02 for s in slept[1:])


def test_gives_up_with_a_clear_error():
    policy = RetryPolicy(attempts=2, base_delay_s=0, sleep=lambda s: asyncio.sleep(0))
    call, _ = _flaky([ccxt.ExchangeNotAvailable("503"), ccxt.ExchangeNotAvailable("503")])
    with pytest.raises(ExchangeFailure, match="failed after 2 tries: ExchangeNotAvailable"):
        asyncio.run(policy.call("fetch BTC", call))


def test_non_idempotent_calls_are_never_resent():
    policy = RetryPolicy(attempts=5, base_delay_s=0, sleep=lambda s: asyncio.sleep(0))
    call, calls = _flaky([ccxt.RequestTimeout("lost response")])
    with pytest.raises(ccxt.RequestTimeout):
        asyncio.run(policy.call("create order", call, idempotent=False))
    assert len(calls) == 1


def test_errors_that_are_not_transient_are_not_retried():
    policy = RetryPolicy(attempts=5, base_delay_s=0, sleep=lambda s: asyncio.sleep(0))
    call, calls = _flaky([ccxt.BadSymbol("no such market")])
    with pytest.raises(ccxt.BadSymbol):
        asyncio.run(policy.call("x", call))
    assert len(calls) == 1
