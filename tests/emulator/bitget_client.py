"""The real ccxt ``bitget`` client pointed at the Bitget emulator, as the product configures it
(swap markets only, the classic account: ``uta`` off, so ccxt asks no account-settings route).
Any key, secret and passphrase do: the emulator checks that requests are signed, not by whom."""

import re
from typing import Any

from cryptobot.exchange.ccxt_modules import package
from tests.emulator.bitget_usdt import BitgetEmulator

ccxt = package("ccxt")  # the one exchange loaded, as the product loads it


def bitget_client(emu: BitgetEmulator, *, timeout_ms: int = 2000, **options: Any) -> Any:
    client = ccxt.bitget(
        {
            "apiKey": "emulator-key",
            "secret": "emulator-secret",
            "password": "emulator-passphrase",
            "enableRateLimit": False,
            "timeout": timeout_ms,
            "options": {
                "defaultType": "swap",
                "fetchMarkets": {"types": ["swap"]},
                "uta": False,
                **options,
            },
        }
    )
    client.urls["api"] = {
        k: re.sub(r"^https://[^/]+", emu.url, v) if isinstance(v, str) else v
        for k, v in client.urls["api"].items()
    }
    return client
