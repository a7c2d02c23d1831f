"""The CLI survives an environment without a writable HOME (issue item 13)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cryptobot.core import numba_cache

SRC = Path(__file__).resolve().parents[1] / "src"


def test_candidates_in_order(tmp_path: Path):
    env = {"NUMBA_CACHE_DIR": "/mine", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}
    found = numba_cache.candidates(environ=env, temp_dir="/tmp", uid=7)
    assert found == [
        Path("/mine"),
        Path("/xdg/cryptobot/numba"),
        Path("/home/u/.cache/cryptobot/numba"),
        Path("/tmp/cryptobot-numba-7"),
    ]
    assert numba_cache.candidates(environ={}, temp_dir="/t", uid=0) == [
        Path("/t/cryptobot-numba-0")
    ]


def test_an_unusable_home_falls_through_to_the_temp_dir(tmp_path: Path):
    home = tmp_path / "home-is-a-file"
    home.write_text("")  # mkdir under it fails, even for root
    env = {"HOME": str(home), "NUMBA_CACHE_DIR": str(home / "numba")}
    chosen = numba_cache.configure(env)
    assert chosen == env["NUMBA_CACHE_DIR"]
    assert Path(chosen).parent.parent == Path(numba_cache.tempfile.gettempdir())
    assert numba_cache.writable(Path(chosen))


def test_a_writable_home_is_used(tmp_path: Path):
    env = {"HOME": str(tmp_path)}
    chosen = Path(numba_cache.configure(env))
    assert chosen.parent == tmp_path / ".cache" / "cryptobot" / "numba"
    assert chosen.name == f"src-{numba_cache.fingerprint()}"


def test_a_cache_dir_planted_by_another_account_is_passed_over(tmp_path: Path):
    """numba loads pickles from its cache: a folder someone else owns in the shared temp dir
    (or a symlink) must never be used; an open folder of ours is closed to 0700."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    uid = os.getuid()
    planted = temp / f"cryptobot-numba-{uid}"
    planted.symlink_to(tmp_path)  # owned by us, but a link to somewhere else
    assert numba_cache.configure(_no_home(tmp_path), temp_dir=str(temp)) is None
    planted.unlink()
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    chosen = numba_cache.configure(_no_home(tmp_path), temp_dir=str(temp))
    assert Path(chosen).parent == planted and planted.stat().st_mode & 0o777 == 0o700
    if uid == 0:  # only root can hand a folder to another account
        os.chown(planted, 65534, 65534)
        assert numba_cache.configure(_no_home(tmp_path), temp_dir=str(temp)) is None


def _no_home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    return {"HOME": str(home)}


def _read_only_tree(tmp_path: Path) -> Path:
    """A copy of the package where numba cannot cache next to the sources (as in a read-only
    site-packages): every ``__pycache__`` is a plain file."""
    copy = tmp_path / "site"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for package in (copy / "cryptobot").rglob("__init__.py"):
        (package.parent / "__pycache__").write_text("")
    return copy


def _run(tmp_path: Path, tree: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home-file"
    home.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env |= {"HOME": str(home), "TMPDIR": str(temp), "PYTHONPATH": str(tree)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def test_without_a_writable_home_or_source_tree_the_kernels_still_load(tmp_path: Path):
    tree = _read_only_tree(tmp_path)
    version = _run(tmp_path, tree, "-m", "cryptobot", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("cryptobot ")
    code = (
        "import os, cryptobot.backtest.kernel, cryptobot.fills.model;"
        "print(os.environ['NUMBA_CACHE_DIR'])"
    )
    loaded = _run(tmp_path, tree, "-c", code)
    assert loaded.returncode == 0, loaded.stderr
    assert Path(loaded.stdout.strip()).parent.parent == tmp_path / "tmp"


def test_the_same_environment_breaks_numba_without_the_chosen_dir(tmp_path: Path):
    """The failure the choice prevents (pins that the test above exercises something): a
    cached kernel outside cryptobot, with nothing setting NUMBA_CACHE_DIR."""
    tree = _read_only_tree(tmp_path)
    probe = tree / "probe.py"
    probe.write_text("import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x\n")
    (tree / "__pycache__").write_text("")
    broken = _run(tmp_path, tree, str(probe))
    assert broken.returncode != 0 and "no locator available" in broken.stderr


def test_an_edit_of_any_source_file_gives_the_kernels_a_new_folder(tmp_path: Path):
    """numba checks a cached kernel against its own file only; the kernel inlines the
    management step of another module, so an edit of that module alone must not load the old
    compiled step: the sources' fingerprint names the folder."""
    package = tmp_path / "pkg"
    shutil.copytree(SRC / "cryptobot", package, ignore=shutil.ignore_patterns("__pycache__"))
    base = tmp_path / "cache"
    base.mkdir()
    first = numba_cache.sources_folder(base, package=package)
    assert numba_cache.sources_folder(base, package=package) == first  # same sources, same folder
    step = package / "manage" / "step.py"
    os.utime(step, ns=(step.stat().st_atime_ns, step.stat().st_mtime_ns + 1_000_000))
    second = numba_cache.sources_folder(base, package=package)
    assert second != first and first.is_dir()  # the previous version's folder is kept
    for k in range(numba_cache.KEEP + 2):
        (package / "manage" / "extra.py").write_text(f"# {k}\n")
        numba_cache.sources_folder(base, package=package)
    assert len(list(base.glob("src-*"))) == numba_cache.KEEP


def test_a_child_process_uses_its_parents_folder_not_one_inside_it(tmp_path: Path):
    env = {"HOME": str(tmp_path)}
    chosen = numba_cache.configure(env)
    assert numba_cache.configure(dict(env)) == chosen  # the child inherits NUMBA_CACHE_DIR
    mine = {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    assert Path(numba_cache.configure(mine)).parent == tmp_path / "mine"
