"""The live trading adapter on either emulated venue (the REAL ccxt client over loopback), for
tests that run the same script against Binance USDⓈ-M and Bitget USDT-M."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptobot.core.config import Secrets
from cryptobot.core.settings import ExchangeSettings
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange
from cryptobot.exchange.retry import RetryPolicy
from tests.conftest import SHARED
from tests.emulator import BinanceEmulator, BitgetEmulator
from tests.emulator.serving import VenueServer
from tests.test_ccxt_trading import KEY, SECRET, Sleeps

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"
VENUES = ("binanceusdm", "bitget")
EMULATORS = {"binanceusdm": BinanceEmulator, "bitget": BitgetEmulator}
KEYS = Secrets(api_key=KEY, api_secret=SECRET, api_password="p4ss-never-shown")


@contextmanager
def emulator(venue: str) -> Iterator[VenueServer]:
    with EMULATORS[venue](SHARED) as server:
        server.engine.spec(BTCID)  # prices the symbol from the stored candles
        yield server


def adapter(emu: VenueServer, venue: str, **kw: Any) -> CcxtTradingExchange:
    settings = ExchangeSettings(api_base=emu.url, enable_rate_limit=False, timeout_ms=300)
    policy = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=0.05, sleep=Sleeps())
    kw.setdefault("settle_s", 0.0)
    return CcxtTradingExchange(venue, settings, policy, KEYS, **kw)


def run(emu: VenueServer, venue: str, script: Any, **kw: Any) -> Any:
    """Run ``script(ex)`` on a fresh adapter for ``venue`` and close it."""

    async def go() -> Any:
        ex = adapter(emu, venue, **kw)
        try:
            if venue == "bitget":  # its plain orders name the symbol's margin mode
                await ex.set_margin_mode(BTC, "isolated")
            return await script(ex)
        finally:
            await ex.close()

    return asyncio.run(go())


def last(emu: VenueServer) -> float:
    return emu.engine.book.prices[BTCID]
