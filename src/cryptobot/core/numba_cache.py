"""Where numba keeps its compiled kernels, chosen before numba is first imported.

numba caches next to the source (``__pycache__``) or in ``~/.cache/numba``; with a read-only
install and no writable HOME (cron, containers, a service user) it has nowhere to go and the
``@njit(cache=True)`` kernels raise at import. So the first writable directory of these is
handed to numba as ``NUMBA_CACHE_DIR``: the user's own ``NUMBA_CACHE_DIR``,
``$XDG_CACHE_HOME/cryptobot/numba``, ``~/.cache/cryptobot/numba``, then a per-user directory
in the system temp dir. When none is writable the variable is left alone and numba falls back
to its own locations (nothing is cached if they fail too, which costs compile time only).
"""

import os
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


def configure(environ: MutableMapping[str, str]) -> str | None:
    """Point ``environ[NUMBA_CACHE_DIR]`` at the first writable candidate; returns it."""
    try:
        temp_dir = tempfile.gettempdir()
    except OSError:  # no usable temp dir at all
        temp_dir = "/tmp"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    for path in candidates(environ=environ, temp_dir=temp_dir, uid=uid):
        if writable(path):
            environ[VAR] = str(path)
            return str(path)
    return None
