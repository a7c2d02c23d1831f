"""What every emulated venue is: a loopback HTTP server with its own clock, the real stored
candles that drive its prices, one trading account with its matching engine, faults on demand
and the log of every request. A venue subclass supplies its routes, its request encoding and
the bodies of its refusals; everything else here is shared.

The prices are the real Binance USDⓈ-M files in ``../shared/data`` for every venue (no Bitget
candles are public, see its README): a Bitget emulator trades the same price path under
Bitget's rules and wire format. The emulator has its own clock (``now_ms``): only bars that
opened by then exist.
"""

import json
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow.parquet as pq

from tests.emulator.account import Account
from tests.emulator.faults import Faults, Hit
from tests.emulator.loopback import LoopbackServer
from tests.emulator.matching import Matching, Rules
from tests.emulator.orders import Spec

#: ``../shared/data`` beside the checkout; a git worktree elsewhere (``wt/<branch>``) names it
SHARED = Path(
    os.environ.get("CRYPTOBOT_SHARED_DATA")
    or Path(__file__).resolve().parents[3] / "shared" / "data"
)
DEFAULT_NOW = 1_744_027_200_000  # 2025-04-07T12:00:00Z: inside most shared Binance series

TF_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "1w": 604_800_000,
}
# tick size, step size per base (Binance USDⓈ-M values); others get a price-based guess.
SPECS = {
    "BTC": ("0.10", "0.001"),
    "ETH": ("0.01", "0.001"),
    "SOL": ("0.0100", "1"),
    "XRP": ("0.0001", "0.1"),
    "BNB": ("0.010", "0.01"),
    "LTC": ("0.01", "0.001"),
    "ADA": ("0.00010", "1"),
    "LINK": ("0.001", "0.01"),
    "BCH": ("0.01", "0.001"),
}
MALFORMED = b'[[1744000000000, "83000.1", "8'


@cache
def stored_bars(data_dir: Path, base: str, interval: str) -> np.ndarray:
    """A stored candle file as rows [ts, o, h, l, c, v], oldest first, read once per process
    (every emulator a test starts serves the same files) and read-only."""
    path = data_dir / "candles" / "binance" / f"{base}_USDT_USDT" / f"{interval}.parquet"
    if not path.exists():
        return np.empty((0, 6))
    cols = ["timestamp", "open", "high", "low", "close", "volume"]
    rows = pq.read_table(path, columns=cols).to_pandas()[cols].to_numpy(dtype="float64")
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    rows.flags.writeable = False
    return rows


class VenueServer(LoopbackServer, ABC):
    """The shared part of an emulated venue. A venue sets the headers and parameters below
    and answers its routes, its minimum notional and the bodies of its fault answers."""

    #: the request header carrying the API key (the only header a route sees)
    key_header: ClassVar[str] = ""
    #: headers a signed route checks are present (never logged)
    auth_headers: ClassVar[tuple[str, ...]] = ()
    #: request parameters never logged (signatures)
    secret_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data_dir: Path, now_ms: int, account: Account, rules: Rules) -> None:
        self.data_dir = data_dir
        self.now_ms = now_ms
        self.faults = Faults()
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self.symbols = sorted(
            p.name.removesuffix("_USDT_USDT")
            for p in (data_dir / "candles" / "binance").glob("*_USDT_USDT")
        )
        self.account = account
        self.engine = Matching(self, account, rules)
        #: called with (method, path) after each request is answered by its route: a test's
        #: price path that moves as requests arrive (between a quote and the order after it)
        self.after: Callable[[str, str], None] | None = None
        super().__init__(_handler(self))

    def count(self, path: str, outcome: str | None = None) -> int:
        return sum(1 for h in self.hits if h.path == path and outcome in (None, h.outcome))

    # ---- the venue's part ------------------------------------------------------------------
    @abstractmethod
    def route(
        self, path: str, q: dict[str, Any], method: str, headers: dict[str, str]
    ) -> tuple[int, Any]:
        """The HTTP status and JSON body answering ``method path`` with parameters ``q``."""

    @abstractmethod
    def min_notional(self, base: str) -> float: ...

    @abstractmethod
    def rate_limited(self) -> dict[str, Any]:
        """The body of a 429/418 answer."""

    @abstractmethod
    def unwell(self) -> dict[str, Any]:
        """The body of a 5xx answer."""

    # ---- data ----------------------------------------------------------------------------
    def bars(self, base: str, interval: str) -> np.ndarray:
        """All bars of a file as rows [ts, o, h, l, c, v] (empty when there is no file)."""
        return stored_bars(self.data_dir, base, interval)

    def visible(self, base: str, interval: str) -> np.ndarray:
        """Bars that have opened by the emulator's clock (the last one may still be open)."""
        bars = self.bars(base, interval)
        return bars[: np.searchsorted(bars[:, 0], self.now_ms, side="right")]

    def closed(self, base: str, interval: str) -> np.ndarray:
        bars = self.bars(base, interval)
        return bars[: np.searchsorted(bars[:, 0], self.now_ms - TF_MS[interval], side="right")]

    def funding(self, base: str) -> list[tuple[int, float]]:
        path = self.data_dir / "funding" / "binance" / f"{base}_USDT_USDT.parquet"
        if not path.exists():
            return []
        t = pq.read_table(path).to_pandas()
        return [
            (int(a), float(b))
            for a, b in zip(t.timestamp, t.funding_rate, strict=True)
            if a <= self.now_ms
        ]

    def base_of(self, symbol: str | None) -> str | None:
        if symbol and symbol.endswith("USDT") and symbol[:-4] in self.symbols:
            return symbol[:-4]
        return None

    def tick_step(self, base: str) -> tuple[str, str]:
        """The base's price tick and quantity step, as the venue prints them."""
        if base in SPECS:
            return SPECS[base]
        bars = self.bars(base, "5m")
        price = float(bars[-1, 4]) if len(bars) else 1.0
        digits = max(0, 4 - math.floor(math.log10(price)))
        return f"{10**-digits:.{digits}f}", "1"

    def spec(self, symbol: str) -> Spec | None:
        """Tick, step and minimum notional of a tradable perpetual (None: unknown symbol)."""
        base = self.base_of(symbol)
        if base is None:
            return None
        tick, step = self.tick_step(base)
        return Spec(float(tick), float(step), self.min_notional(base))

    # ---- requests ------------------------------------------------------------------------
    def parse(self, query: str, body: str, content_type: str) -> dict[str, Any]:
        """The request's parameters: the query string, then a form or JSON body."""
        q: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
        if body and "json" in content_type:
            loaded = json.loads(body)
            q |= loaded if isinstance(loaded, dict) else {}
        elif body:
            q |= {k: v[-1] for k, v in parse_qs(body).items()}
        return q


def _handler(emu: VenueServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # the head and the body leave in two writes: with Nagle's algorithm the body waits for
        # the client's delayed ACK of the head, 40 ms a response on Linux loopback
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size).decode() if size else ""
            try:
                q = emu.parse(url.query, body, self.headers.get("Content-Type") or "")
            except ValueError:
                return self._send(400, {"code": -1, "msg": "malformed request body"})
            wanted = (emu.key_header, *emu.auth_headers)
            headers = {h: self.headers.get(h, "") for h in wanted if h}
            with emu._lock:
                fault = emu.faults.pick(url.path, method)
                logged = {k: v for k, v in q.items() if k not in emu.secret_params}
                hit = Hit(time.monotonic(), url.path, logged, fault or "ok", method=method)
                emu.hits.append(hit)
            if fault in ("429", "418"):
                hit.retry_after = emu.faults.retry_after_s
                return self._send(
                    int(fault), emu.rate_limited(), {"Retry-After": str(hit.retry_after)}
                )
            if fault in ("500", "502", "503"):
                return self._send(int(fault), emu.unwell())
            if fault == "slow":
                time.sleep(emu.faults.slow_s)
            try:
                status, answer = emu.route(url.path, q, method, headers)
            except Exception as exc:  # an emulator bug: visible in hits, answered as a 500
                hit.outcome = f"emulator error: {exc!r}"
                return self._send(500, {"code": -1, "msg": repr(exc)})
            hit.status = status
            if emu.after is not None:
                emu.after(method, url.path)
            if fault == "drop":  # processed, then the connection dies before any answer
                self.close_connection = True
                return None
            if fault == "late":  # processed at once, answered after the client gave up
                time.sleep(emu.faults.slow_s)
            if fault == "malformed":
                return self._send_raw(200, MALFORMED, "application/json")
            return self._send(status, answer)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

        def _send_raw(
            self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            try:
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                self.close_connection = True

    return Handler
