"""The emulators' faults on either venue's raw wire (the real ccxt client, no adapter between):
a refusing fault (429 / 418 with its Retry-After, 5xx) places nothing and the same request goes
through after it; a response lost after the order was accepted (the connection dropped, the
answer late, the request itself slow) leaves the order placed once, found by its client id.
Each venue's own routes and shapes are in ``test_emulator_account`` (Binance) and
``test_emulator_bitget``."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt
import pytest

from tests.emulator import TRADING_PATHS as BINANCE_TRADING
from tests.emulator import BinanceEmulator, BitgetEmulator, Faults
from tests.emulator.binance_client import binance_client
from tests.emulator.bitget_client import bitget_client
from tests.emulator.bitget_usdt import TRADING_PATHS as BITGET_TRADING
from tests.emulator.serving import VenueServer

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"


def binance_market(ex: Any, cid: str) -> None:
    ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": cid})


def bitget_market(ex: Any, cid: str) -> None:
    """A raw place-order on the crossed default (the wire as it is, no ccxt defaults)."""
    ex.privateMixPostV2MixOrderPlaceOrder({
        "symbol": BTCID, "productType": "USDT-FUTURES", "marginCoin": "USDT", "side": "buy",
        "orderType": "market", "size": "0.01", "marginMode": "crossed", "clientOid": cid,
    })  # fmt: skip


@dataclass(frozen=True)
class Raw:
    """A venue's raw wire: its emulator, client, a market buy of 0.01 by client id, the route
    it goes to, the prefixes a trading fault may hit and ccxt's class for each refusing fault."""

    server: type[VenueServer]
    client: Callable[..., Any]
    market: Callable[[Any, str], None]
    place: str
    trading: tuple[str, ...]
    refusals: dict[str, type[Exception]]


RAW = {
    "binanceusdm": Raw(BinanceEmulator, binance_client, binance_market, "/fapi/v1/order",
                       BINANCE_TRADING, {"429": ccxt.DDoSProtection, "418": ccxt.DDoSProtection,
                                         "500": ccxt.OperationFailed,
                                         "503": ccxt.OperationFailed}),
    "bitget": Raw(BitgetEmulator, bitget_client, bitget_market, "/api/v2/mix/order/place",
                  BITGET_TRADING, {"429": ccxt.DDoSProtection, "500": ccxt.ExchangeError,
                                   "503": ccxt.ExchangeError}),
}  # fmt: skip


@pytest.fixture
def venue(request, shared: Path) -> Iterator[tuple[Raw, VenueServer]]:
    raw = RAW[request.param]
    with raw.server(shared) as server:
        server.engine.spec(BTCID)
        yield raw, server


def cases(*kinds: str, per_venue: bool = False) -> list:
    """(venue, kind) parameters: each venue's refusing faults, or ``kinds`` on every venue."""
    rows = [(v, k) for v, raw in RAW.items() for k in (raw.refusals if per_venue else kinds)]
    return [pytest.param(v, k, id=f"{v}-{k}") for v, k in rows]


@pytest.mark.parametrize(("venue", "kind"), cases(per_venue=True), indirect=["venue"])
def test_refusing_faults_place_nothing(venue, kind):
    raw, emu = venue
    ex = raw.client(emu)
    ex.load_markets()
    emu.faults = Faults(kinds=(kind,), paths=raw.trading, first=1, retry_after_s=7)
    with pytest.raises(raw.refusals[kind]):
        raw.market(ex, "f1")
    hit = emu.hits[-1]
    assert hit.outcome == kind and hit.status is None
    assert hit.retry_after == (7 if kind in ("429", "418") else None)
    assert emu.engine.book.placements["f1"] == 0
    raw.market(ex, "f1")  # then it works
    assert emu.engine.book.placements["f1"] == 1


ERRORS = {"drop": ccxt.NetworkError, "late": ccxt.RequestTimeout, "slow": ccxt.RequestTimeout}


@pytest.mark.parametrize(("venue", "kind"), cases(*ERRORS), indirect=["venue"])
def test_response_lost_after_the_order_was_accepted(venue, kind):
    raw, emu = venue
    ex = raw.client(emu)
    ex.load_markets()
    ex.timeout = 300  # shorter than the fault's delay
    emu.faults = Faults(kinds=(kind,), paths=(raw.place,), first=1, slow_s=0.6)
    with pytest.raises(ERRORS[kind]):
        raw.market(ex, "lost")
    for _ in range(100):  # a slow request is still on its way: it lands after the client gave up
        if emu.engine.book.placements["lost"]:
            break
        time.sleep(0.02)
    # the client saw a failure, yet the order exists: a lookup by client id finds it
    assert emu.engine.book.placements["lost"] == 1
    found = ex.fetch_order(None, BTC, {"clientOrderId": "lost"})
    assert found["status"] == "closed" and found["filled"] == 0.01
