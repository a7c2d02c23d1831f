"""Binance USDⓈ-M market streams on 127.0.0.1 (WebSocket) for ccxt pro: the liquidation stream.

ccxt pro connects to ``<ws_base>/market/ws/<n>`` and sends ``{"method": "SUBSCRIBE", "params":
["!forceOrder@arr"], "id": 1}``; the server answers ``{"result": null, "id": 1}`` and pushes one
``forceOrder`` event per message, the raw shape of Binance's stream. The messages are built from
the one recorded ``forceOrder`` event in ../shared/data/exchange-fixtures (nautilus_trader's copy
of Binance's documented example; no longer stream capture exists there): the same fields and
number formats, other symbols, sides, quantities and times (restamped to a start the test picks,
at most one liquidation per symbol per second, as Binance sends them).

``burst`` sends that many messages back to back, as in a liquidation cascade (a client reading
them gets several in one read). Faults: ``drop_after`` closes the first connection after that
many messages without a close handshake (a dropped connection); a reconnecting client then gets
the stream from ``overlap`` messages before the drop (a venue that re-sends what the client may
have missed), so a recorder must drop those duplicates. Each connection is logged in
``connections``.
"""

import asyncio
import copy
import json
import threading
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

FIXTURE = (
    Path(__file__).resolve().parents[3]
    / "shared/data/exchange-fixtures/nautilus_trader/crates/adapters/binance/test_data"
    / "futures/market_data_json/liquidation_stream.json"
)
#: price scale of each symbol against the recorded BTC price (9910 USDT)
_SYMBOLS = {"BTCUSDT": 1.0, "ETHUSDT": 0.019, "SOLUSDT": 0.0008, "XRPUSDT": 0.00003}


def recorded_message() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def forceorder_messages(n: int, start_ms: int) -> list[dict[str, Any]]:
    """``n`` events in the recorded shape from ``start_ms`` on, 400 ms apart (so a symbol never
    repeats within a second across the four symbols)."""
    base = recorded_message()
    out = []
    symbols = list(_SYMBOLS)
    for i in range(n):
        msg = copy.deepcopy(base)
        symbol = symbols[i % len(symbols)]
        scale = _SYMBOLS[symbol]
        t = start_ms + 400 * i
        qty = f"{0.014 * (1 + i % 5) / scale:.3f}"
        msg["E"] = t + 2
        msg["o"] |= {
            "s": symbol,
            "S": "SELL" if i % 3 else "BUY",
            "q": qty,
            "l": qty,
            "z": qty,
            "p": f"{9910.0 * scale * (1 - 0.0005 * (i % 7)):.8f}",
            "ap": f"{9910.12345678 * scale * (1 - 0.0005 * (i % 7)):.8f}",
            "T": t,
        }
        out.append(msg)
    return out


class LiquidationStream:
    """The stream server, run in its own thread for the life of a ``with`` block."""

    def __init__(
        self,
        messages: list[dict[str, Any]],
        *,
        drop_after: int | None = None,
        overlap: int = 0,
        burst: int = 1,
    ) -> None:
        self.messages = messages
        self.drop_after = drop_after
        self.overlap = overlap
        self.burst = burst  # messages sent back to back (a cascade: one read holds several)
        self.interval_s = 0.005
        self.connections: list[list[str]] = []  # the streams each connection subscribed to
        self.sent = 0  # messages sent over all connections
        self._resume = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    def __enter__(self) -> "LiquidationStream":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._stream)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self._port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        msg = await ws.receive()
        if msg.type != WSMsgType.TEXT:
            return ws
        subscribe = json.loads(msg.data)
        self.connections.append(list(subscribe.get("params", [])))
        await ws.send_str(json.dumps({"result": None, "id": subscribe.get("id")}))
        first_connection = len(self.connections) == 1
        start = self._resume
        for i in range(start, len(self.messages)):
            if first_connection and self.drop_after is not None and i == self.drop_after:
                self._resume = max(0, i - self.overlap)
                request.transport.abort()  # no close frame: the connection just dies
                return ws
            await ws.send_str(json.dumps(self.messages[i]))
            self.sent += 1
            if (i + 1) % self.burst == 0:
                await asyncio.sleep(self.interval_s)
        self._resume = len(self.messages)
        async for _ in ws:  # then quiet, as a market with no liquidations, until the client
            pass  # closes (reading is what answers its close frame)
        return ws
