"""Crash-safe file replacement: write beside the target, fsync, rename over it, fsync the
directory.

The temp file is created with mode 0666 filtered by the process umask, exactly as a plain
``open(path, "w")`` would be, so a lake written by one account stays readable by the others the
umask allows (cron under another user, a web server). ``tempfile.mkstemp`` would make it 0600.
"""

import os
import secrets
from collections.abc import Callable
from pathlib import Path

_TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path``; on any failure ``path`` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        sync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def sync_directory(directory: Path) -> None:
    """A rename (or a new file) in ``directory`` made durable: without it a power cut can
    lose the entry while the data is on disk, and files written in order (a backtest run's
    row after its trades) could come back out of order. ~0.6 ms here."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(directory: Path, *, name: str = "*") -> int:
    """Delete temp files that :func:`atomic_write` left for ``name`` (a glob) in ``directory``.

    A ``kill -9`` between create and rename leaves one behind. Call this only while holding the
    lock that every writer of those targets holds, so no live writer's temp file can match.
    Returns how many were removed.
    """
    stale = list(directory.glob(f".{name}.*{_TEMP_SUFFIX}")) if directory.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)


def _create_temp(path: Path) -> Path:
    """A new, empty, uniquely named file beside ``path``; the kernel applies the umask."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
