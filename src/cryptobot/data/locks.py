"""Exclusive advisory locks that serialise the writers of one stored series.

Every write to the lake is read-merge-write: two processes merging into the same file at once
would each rename their own merge over the other's, and the rows only one of them had are lost.
Writers therefore hold ``flock`` on a lock file beside the series for the whole read-merge-write.
Readers never take it: the atomic rename already hands them a whole file, old or new.

``flock`` belongs to the open file, so the kernel releases it when the holder dies (even on
``kill -9``): there are no stale locks to clean. Lock files are kept (removing one while another
process waits on it would let a third lock a different inode). POSIX only.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptobot.core.errors import DataError


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created, umask honoured) for the ``with`` body.

    Blocks until the current holder finishes; lake writes take milliseconds to a second.
    """
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:  # a read-only or foreign data dir: a writer cannot work there
        raise DataError(
            f"cannot lock {lock_file} ({exc.strerror}): this command writes to the data dir, "
            "which must be writable"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
