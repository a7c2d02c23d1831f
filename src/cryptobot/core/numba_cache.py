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

Inside the chosen directory the kernels live in a folder named after a fingerprint of the
package's sources (``src-<hash>``). numba checks a cached function against its own file only,
but our kernels inline functions of other modules (``manage.step`` into ``backtest.kernel``,
``fills.model`` into both): an edit of ``manage/step.py`` alone would otherwise leave the old
compiled step inside a kernel loaded from the cache. Any change of any source file gives a new
folder, so a stale kernel can never load; the older folders are pruned (the newest few are
kept, for another process still running the previous version).
"""

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

VAR = "NUMBA_CACHE_DIR"
PACKAGE = Path(__file__).resolve().parents[1]
HEX = "0123456789abcdef"
KEEP = 3  # fingerprint folders kept: the current one and the newest others


def candidates(*, environ: Mapping[str, str], temp_dir: str, uid: int) -> list[Path]:
    """The directories to try, best first."""
    found = []
    if environ.get(VAR):
        found.append(base_of(Path(environ[VAR])))
    if environ.get("XDG_CACHE_HOME"):
        found.append(Path(environ["XDG_CACHE_HOME"]) / "cryptobot" / "numba")
    if environ.get("HOME"):
        found.append(Path(environ["HOME"]) / ".cache" / "cryptobot" / "numba")
    found.append(Path(temp_dir) / f"cryptobot-numba-{uid}")
    return found


def base_of(path: Path) -> Path:
    """The base of a sources folder (a child process inherits the folder its parent chose as
    ``NUMBA_CACHE_DIR``, and must not nest another one inside it); other paths as they are."""
    name = path.name
    if (
        name.startswith("src-")
        and len(name) == 20
        and all(c in "0123456789abcdef" for c in name[4:])
    ):
        return path.parent
    return path


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


def fingerprint(package: Path = PACKAGE) -> str:
    """A hash of every source file of ``package``: its path, size and modification time (what
    numba itself compares for the one file it checks)."""
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*.py")):
        info = path.stat()
        digest.update(f"{path.relative_to(package)}|{info.st_size}|{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def sources_folder(base: Path, *, package: Path = PACKAGE) -> Path:
    """``base``'s folder for these sources, created; older folders beyond ``KEEP`` removed."""
    folder = base / f"src-{fingerprint(package)}"
    folder.mkdir(mode=0o700, exist_ok=True)
    older = sorted(
        (p for p in base.glob("src-*") if p != folder and p.is_dir() and not p.is_symlink()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in older[KEEP - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)
    return folder


def configure(environ: MutableMapping[str, str], *, temp_dir: str | None = None) -> str | None:
    """Point ``environ[NUMBA_CACHE_DIR]`` at the sources' folder in the first usable
    candidate; returns it. ``temp_dir`` defaults to the system's (tests pass their own)."""
    if temp_dir is None:
        try:
            temp_dir = tempfile.gettempdir()
        except OSError:  # no usable temp dir at all
            temp_dir = "/tmp"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    given = str(base_of(Path(environ[VAR]))) if environ.get(VAR) else None
    for path in candidates(environ=environ, temp_dir=temp_dir, uid=uid):
        ours = str(path) != given
        if (not ours or private(path, uid=uid)) and writable(path):
            try:
                folder = sources_folder(path)
            except OSError:
                continue
            environ[VAR] = str(folder)
            return str(folder)
    return None
