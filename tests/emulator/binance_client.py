"""The real ccxt ``binanceusdm`` client pointed at an emulator, as the product configures it
(no currency or margin-asset calls: those live on Binance's spot host, which is not emulated).
Any key and secret do: the emulator checks that requests are signed, not by whom."""

import re
from typing import Any

from cryptobot.exchange.ccxt_modules import package
from tests.emulator.binance_usdm import BinanceEmulator

ccxt = package("ccxt")  # the one exchange loaded, as the product loads it


def binance_client(emu: BinanceEmulator, *, timeout_ms: int = 2000, **options: Any) -> Any:
    return client_for(emu.url, timeout_ms=timeout_ms, **options)


def client_for(url: str, *, timeout_ms: int = 2000, **options: Any) -> Any:
    """The same, by the emulator's URL (for another process)."""
    client = ccxt.binanceusdm(
        {
            "apiKey": "emulator-key",
            "secret": "emulator-secret",
            "enableRateLimit": False,
            "timeout": timeout_ms,
            "options": {"fetchMargins": False, "fetchCurrencies": False, **options},
        }
    )
    client.urls["api"] = {
        k: re.sub(r"^https://[^/]+", url, v) if isinstance(v, str) else v
        for k, v in client.urls["api"].items()
    }
    return client
