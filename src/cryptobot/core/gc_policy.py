"""When CPython's cyclic garbage collector runs in a ``cryptobot`` process.

The collector starts a pass each time allocations outnumber frees by a few hundred, and every
so often a full pass that walks each tracked object. A command's start-up creates a few hundred
thousand objects (the modules of pandas, numba, pyarrow, duckdb, pydantic: their classes,
functions, registries), and they all live until the process ends: none is garbage, yet the
passes their creation triggers walk them again and again (0.2-0.3 s of a backtest's start).
The collections at interpreter shutdown walk them all once more, with the cycles the module
teardown leaves (~0.4 s after a backtest). Measured by bench/bench_startup.py.

So a command loads its libraries inside :func:`loading` (no automatic pass meanwhile), and
``main`` calls :func:`before_exit` as the process ends. Between the two the collector runs as
usual, so a long-running command (``scan --watch``) still reclaims its garbage cycles.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    """No automatic collection inside (start-up imports create no garbage worth a pass); the
    collector is back as it was on leaving, even on an error."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def before_exit() -> None:
    """Freeze everything alive (``gc.freeze``), so the collections at shutdown walk none of
    it. All they would find is unreachable cycles whose memory the exit returns anyway: files
    and connections are closed by their owners (``with``), never by a collection (Python does
    not promise finalisers at exit), and atexit handlers still run."""
    gc.freeze()
