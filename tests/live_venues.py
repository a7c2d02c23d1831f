"""The live trading adapter on either emulated venue (the REAL ccxt client over loopback), for
tests that run the same script against Binance USDⓈ-M and Bitget USDT-M: the keys, the retry
pauses a test reads, and each venue's wire facts (``Wire``: its routes, fees, fault kinds)
that the shared cases assert with."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptobot.core.config import Secrets
from cryptobot.core.settings import ExchangeSettings
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange
from cryptobot.exchange.retry import RetryPolicy
from tests.conftest import SHARED
from tests.emulator import TRADING_PATHS as BINANCE_TRADING
from tests.emulator import BinanceEmulator, BitgetEmulator
from tests.emulator.bitget_usdt import TRADING_PATHS as BITGET_TRADING
from tests.emulator.faults import Hit
from tests.emulator.serving import VenueServer

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"
VENUES = ("binanceusdm", "bitget")
EMULATORS = {"binanceusdm": BinanceEmulator, "bitget": BitgetEmulator}
KEY, SECRET = "k3y-Zq81-never-shown", "s3cr3t-Xw47-never-shown"
PASSPHRASE = "p4ss-Qv09-never-shown"
KEYS = Secrets(api_key=KEY, api_secret=SECRET, api_password=PASSPHRASE)
V2 = "/api/v2/mix"


class Sleeps:
    """The retry policy's pauses, kept (and shortened) so a test can read them."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))


@dataclass(frozen=True)
class Wire:
    """Where a venue's requests go and what it charges: what the shared cases assert with."""

    place: str  # a plain order's route
    stop: str  # a stop's (Binance's algo orders, Bitget's TP/SL plan orders)
    orders: str  # the prefix of the plain order routes (place, look up, cancel)
    stop_lookups: tuple[str, ...]  # the routes a stop is looked up on, in turn
    balance: str
    funding: str
    trading: tuple[str, ...]  # the prefixes a chaos run faults
    rate_limits: tuple[str, ...]  # the HTTP codes the venue limits with
    taker_fee: float
    margin_refusal: str  # words of its "insufficient margin" answer
    cancel_method: str  # how a cancel goes (Binance: DELETE; Bitget: POST .../cancel-..)

    def posted(self, emu: VenueServer) -> list[Hit]:
        """The order placements the venue received (plain and stops), faulted ones too."""
        return [h for h in emu.hits if h.method == "POST" and h.path in (self.place, self.stop)]

    def cancels(self, emu: VenueServer) -> list[Hit]:
        """The cancel requests the venue received (Binance: DELETE on the order's route;
        Bitget: POST to a ``cancel-..`` route)."""
        if self.cancel_method == "DELETE":
            return [
                h for h in emu.hits if h.method == "DELETE" and h.path in (self.place, self.stop)
            ]
        return [h for h in emu.hits if h.method == "POST" and "/cancel-" in h.path]


WIRES = {
    "binanceusdm": Wire(
        place="/fapi/v1/order", stop="/fapi/v1/algoOrder", orders="/fapi/v1/order",
        stop_lookups=("/fapi/v1/algoOrder",), balance="/fapi/v3/account",
        funding="/fapi/v1/income", trading=BINANCE_TRADING,
        rate_limits=("429", "418"), taker_fee=0.0005, margin_refusal="Margin is insufficient",
        cancel_method="DELETE",
    ),
    "bitget": Wire(
        place=f"{V2}/order/place-order", stop=f"{V2}/order/place-tpsl-order",
        orders=f"{V2}/order/",
        stop_lookups=(f"{V2}/order/orders-plan-pending", f"{V2}/order/orders-plan-history"),
        balance=f"{V2}/account/accounts", funding=f"{V2}/account/bill", trading=BITGET_TRADING,
        rate_limits=("429",), taker_fee=0.0006, margin_refusal="40762", cancel_method="POST",
    ),
}  # fmt: skip


@contextmanager
def emulator(venue: str) -> Iterator[VenueServer]:
    with EMULATORS[venue](SHARED) as server:
        server.engine.spec(BTCID)  # prices the symbol from the stored candles
        yield server


def adapter(
    emu: VenueServer, venue: str, *, sleeps: Sleeps | None = None, **kw: Any
) -> CcxtTradingExchange:
    settings = ExchangeSettings(api_base=emu.url, enable_rate_limit=False, timeout_ms=300)
    policy = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=0.05, sleep=sleeps or Sleeps())
    kw.setdefault("settle_s", 0.0)
    return CcxtTradingExchange(venue, settings, policy, KEYS, **kw)


def run(emu: VenueServer, venue: str, script: Any, *, margin: bool = True, **kw: Any) -> Any:
    """Run ``script(ex)`` on a fresh adapter for ``venue`` and close it; ``margin``: set the
    symbol's margin mode first (Bitget's plain orders name it)."""

    async def go() -> Any:
        ex = adapter(emu, venue, **kw)
        try:
            if margin and venue == "bitget":
                await ex.set_margin_mode(BTC, "isolated")
            return await script(ex)
        finally:
            await ex.close()

    return asyncio.run(go())


def last(emu: VenueServer) -> float:
    return emu.engine.book.prices[BTCID]
