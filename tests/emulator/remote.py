"""An emulated venue in a process of its own, as an exchange is: the client's process then does
none of the venue's work. In one process the emulator answering a request and the client
preparing the next share one interpreter lock, which a latency measure would count as ours.
Its request log and its last price are read over a pipe, between measurements."""

import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType

from tests.emulator.faults import Hit


def _serve(venue: str, conn: Connection) -> None:
    from tests.live_venues import emulator, last

    with emulator(venue) as emu:
        conn.send(emu.url)
        while (ask := conn.recv()) is not None:
            what, start = ask
            if what == "hits":
                conn.send(emu.hits[start:])
            else:
                conn.send(len(emu.hits) if what == "count" else last(emu))


class RemoteVenue:
    """``with RemoteVenue("binanceusdm") as emu``: ``emu.url`` for the client; ``hits_from(n)``
    the requests it received from the n-th on (their ``t`` on this machine's monotonic clock,
    which every process shares); ``last()`` the price it quotes for BTC."""

    def __init__(self, venue: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(venue, child), daemon=True)
        self.url = ""

    def __enter__(self) -> "RemoteVenue":
        self._process.start()
        if not self._conn.poll(120):
            raise RuntimeError("the emulator process did not start")
        self.url = self._conn.recv()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._conn.send(None)
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()

    def hits_from(self, start: int) -> list[Hit]:
        self._conn.send(("hits", start))
        return self._conn.recv()

    def count(self) -> int:
        self._conn.send(("count", 0))
        return self._conn.recv()

    def last(self) -> float:
        self._conn.send(("last", 0))
        return self._conn.recv()
