"""When CPython's cyclic garbage collector runs in a ``cryptobot`` process, and how it ends.

The collector starts a pass each time allocations outnumber frees by a few hundred, and every
so often a pass over an older generation that walks each object in it. A command's start-up
creates a few hundred thousand objects (the modules of pandas, numba, pyarrow, duckdb, pydantic:
their classes, functions, registries), and they all live until the process ends: none is
garbage, yet the passes their creation triggers walk them again and again (0.2-0.3 s of a
backtest's start). The collections at interpreter shutdown walk them all once more, with the
cycles the module teardown leaves (~0.4 s after a backtest). Merely pausing the collector while
they load is not enough: the first pass after it walks all of them at once (0.05-0.1 s of a
backtest, the command's first allocations triggering it). Measured by bench/bench_startup.py.

So the ``cryptobot`` process (``main``, :func:`quiet_start`) starts with the collector paused,
through typer's parsing, until the command's own code runs (:func:`settled`); a command loads
its libraries inside :func:`loading`; and each of these ends by freezing what is alive
(``gc.freeze``: the objects move to a generation no pass walks), as :func:`before_exit` does
when the process ends. Between them the collector runs as usual on what is created later, so a
long-running command (``scan --watch``) still reclaims its garbage cycles.

Only the process ``main`` runs in freezes anything. A host that calls the commands in its own
process (a test through typer's runner, a notebook) keeps its collector as it was: a frozen
object is never collected, and a host's objects are not start-up objects that live to the end.

The ``cryptobot`` program itself (``cli.app.run``: the console script, ``python -m cryptobot``)
then ends without the interpreter tearing down every module one by one (0.01-0.03 s after a
backtest, for nothing the process keeps).
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_owned = False  # this process is a ``cryptobot`` command (``quiet_start`` was called)


def quiet_start() -> None:
    """For ``main``, first thing: this process is the command's own, and its start-up (typer,
    the command's module, parsing) runs without a collection until :func:`settled`."""
    global _owned
    _owned = True
    gc.disable()


def settled() -> None:
    """The command's own code starts: what start-up made is frozen (a command's process keeps
    its modules to the end) and the collector runs from here. Nothing in a host process."""
    if _owned:
        gc.freeze()
        gc.enable()


@contextmanager
def loading() -> Iterator[None]:
    """No automatic collection inside (start-up imports create no garbage worth a pass); on
    leaving, in a command's process, what was loaded is frozen; the collector is back as it
    was, even on an error."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _owned:
            gc.freeze()
        if enabled:
            gc.enable()


def before_exit() -> None:
    """Freeze everything alive (``gc.freeze``), so the collections at shutdown walk none of
    it. All they would find is unreachable cycles whose memory the exit returns anyway: files
    and connections are closed by their owners (``with``), never by a collection (Python does
    not promise finalisers at exit), and atexit handlers still run. The collector is left on
    (a command that ended in start-up, ``--help`` or a usage error, never had it back)."""
    gc.freeze()
    gc.enable()
