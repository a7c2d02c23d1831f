"""The ccxt adapter is built for every supported venue without touching the network."""

import asyncio
import ssl

import pytest

from cryptobot.core.config import load_settings
from cryptobot.core.errors import CryptobotError
from cryptobot.exchange.ccxt_exchange import SUPPORTED, CcxtExchange
from cryptobot.exchange.factory import open_exchange
from cryptobot.exchange.retry import RetryPolicy


def _urls(value) -> list[str]:
    if isinstance(value, dict):
        return [u for v in value.values() for u in _urls(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("exchange_id", SUPPORTED)
def test_every_venue_can_be_pointed_at_loopback(exchange_id: str):
    settings = load_settings(
        env={},
        overrides={
            "exchange": exchange_id,
            f"exchanges.{exchange_id}.api_base": "http://127.0.0.1:9",
        },
    )
    exchange = open_exchange(settings)
    try:
        assert isinstance(exchange, CcxtExchange) and exchange.id == exchange_id
        assert exchange.ohlcv_limit == settings.exchanges[exchange_id].ohlcv_limit
        urls = _urls(exchange._ccxt.urls["api"])
        assert urls and all(u.startswith("http://127.0.0.1:9") for u in urls)
        # ccxt's 250 ms pause at close lets TLS connections shut; plain HTTP has none to wait for
        assert exchange._ccxt.timeout_on_exit == 0
    finally:
        asyncio.run(exchange.close())


def test_a_venue_over_tls_keeps_ccxts_pause_at_close():
    exchange = open_exchange(load_settings(env={}, overrides={"exchange": "binanceusdm"}))
    try:
        assert exchange._ccxt.timeout_on_exit == 250
    finally:
        asyncio.run(exchange.close())


def test_clients_share_one_tls_context_that_still_verifies():
    """ccxt read its CA bundle for every client it opened (~30 ms each); one context now serves
    every client of the process, and it checks certificates and host names as ccxt's did."""
    settings = load_settings(env={}, overrides={"exchange": "binanceusdm"})
    first, second = open_exchange(settings), open_exchange(settings)
    try:
        context = first._ccxt.ssl_context
        assert context is second._ccxt.ssl_context
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 50  # ccxt's CA bundle, loaded
    finally:
        asyncio.run(first.close())
        asyncio.run(second.close())


def test_unknown_venue_is_a_clear_error():
    settings = load_settings(env={})
    with pytest.raises(CryptobotError, match="unknown exchange 'mtgox'"):
        CcxtExchange("mtgox", settings.venue(), RetryPolicy())
