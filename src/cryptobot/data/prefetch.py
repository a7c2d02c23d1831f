"""A lake whose first reads of some candle series start early, on a thread.

A command that knows which series it will read before it has loaded its engine (``backtest``
with ``--symbols`` and ``--timeframe``: numba and its registries are 0.3 s of Python work
before a bar is read) starts those reads first. Arrow decodes Parquet without holding Python's
lock, so on a machine with a second core the read of a million bars (0.08-0.1 s) costs the
command no time of its own; on one core it costs what it did.

The read is the plain lake's, started earlier: the first read that asks for the same series
(the same exchange, symbol, timeframe and window, all columns) is handed its result, or its
error (a damaged file is the same :class:`DataError`, raised there). Any other read, and a
second read of the same series, reads the files as :class:`Lake` does. A series written in
between is seen as it was when the early read ran, as a reader that started then would see it
(readers take no lock). The thread is not a daemon: a command that fails before it reads
waits for the read to end as the interpreter exits (at most the read's time), because a thread
still inside Arrow's decoder while the interpreter and Arrow's thread pool are torn down could
crash the process.
"""

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cryptobot.data.lake import PRICES, Lake

Key = tuple[str, str, str, int | None, int | None]
Columns = dict[str, np.ndarray]


class _Early:
    """One read running on its own thread; :meth:`result` waits for it."""

    def __init__(self, read: Callable[[], Columns]) -> None:
        self._columns: Columns | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(read,), daemon=False,
                                        name="cryptobot-prefetch")  # fmt: skip
        self._thread.start()

    def _run(self, read: Callable[[], Columns]) -> None:
        try:
            self._columns = read()
        except BaseException as exc:  # handed to the reader, raised in its thread
            self._error = exc

    def result(self) -> Columns:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._columns is not None
        return self._columns


class PrefetchLake(Lake):
    """:class:`Lake`, plus :meth:`prefetch_candles`."""

    def __init__(self, root: str | Path, *, prices: str = "candles") -> None:
        super().__init__(root, prices=prices)
        self._early: dict[Key, _Early] = {}

    def prefetch_candles(
        self,
        *,
        exchange: str,
        symbol: str,
        timeframe: str,
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        """Start reading a series' candles (all columns) on a thread; the next
        :meth:`read_candle_columns` of the same series and window takes the result."""
        key = (exchange, symbol, timeframe, start, end)
        if key not in self._early:
            self._early[key] = _Early(lambda: Lake.read_candle_columns(self, *key))

    def read_candle_columns(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start: int | None = None,
        end: int | None = None,
        *,
        prices: tuple[str, ...] = PRICES,
    ) -> Columns:
        early = None
        if tuple(prices) == PRICES:
            early = self._early.pop((exchange, symbol, timeframe, start, end), None)
        if early is not None:
            return early.result()
        return super().read_candle_columns(exchange, symbol, timeframe, start, end,
                                           prices=prices)  # fmt: skip
