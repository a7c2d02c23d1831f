"""Where numba keeps its compiled kernels, chosen before numba is first imported.

numba caches next to the source (``__pycache__``) or in ``~/.cache/numba``; with a read-only
install and no writable HOME (cron, containers, a service user) it has nowhere to go and the
``@njit(cache=True)`` kernels raise at import. So the first writable directory of these is
handed to numba as ``NUMBA_CACHE_DIR``: the user's own ``NUMBA_CACHE_DIR``,
``$XDG_CACHE_HOME/cryptobot/numba``, ``~/.cache/cryptobot/numba``, then a per-user directory
in the system temp dir. When none is writable the variable is left alone and numba falls back
to its own locations (nothing is cached if they fail too, which costs compile time only).

The cache holds pickles that numba loads and runs, so a directory we pick ourselves must be
private: created 0700, owned by this user, not a symlink, writable by nobody else. A folder
planted in the shared temp dir by another account (or left open to others) is passed over.
The user's own ``NUMBA_CACHE_DIR`` is taken as given.
"""

import os
import stat
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

VAR = "NUMBA_CACHE_DIR"


def candidates(*, environ: Mapping[str, str], temp_dir: str, uid: int) -> list[Path]:
    """The directories to try, best first."""
    found = []
    if environ.get(VAR):
        found.append(Path(environ[VAR]))
    if environ.get("XDG_CACHE_HOME"):
        found.append(Path(environ["XDG_CACHE_HOME"]) / "cryptobot" / "numba")
    if environ.get("HOME"):
        found.append(Path(environ["HOME"]) / ".cache" / "cryptobot" / "numba")
    found.append(Path(temp_dir) / f"cryptobot-numba-{uid}")
    return found


def writable(path: Path) -> bool:
    """Can numba use it? The same test numba makes: create it, write a file in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def private(path: Path, *, uid: int) -> bool:
    """Is ``path`` (created 0700 if missing) a real directory of this user that no other
    account can write? An open one of ours is closed to 0700; anyone else's is refused."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            return False
        if info.st_mode & 0o022:
            path.chmod(0o700)
    except OSError:
        return False
    return True


def configure(environ: MutableMapping[str, str], *, temp_dir: str | None = None) -> str | None:
    """Point ``environ[NUMBA_CACHE_DIR]`` at the first usable candidate; returns it.
    ``temp_dir`` defaults to the system's (tests pass their own)."""
    if temp_dir is None:
        try:
            temp_dir = tempfile.gettempdir()
        except OSError:  # no usable temp dir at all
            temp_dir = "/tmp"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    given = environ.get(VAR)
    for path in candidates(environ=environ, temp_dir=temp_dir, uid=uid):
        ours = str(path) != given
        if (not ours or private(path, uid=uid)) and writable(path):
            environ[VAR] = str(path)
            return str(path)
    return None
