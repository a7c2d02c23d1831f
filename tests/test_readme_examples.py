"""Every example in the README runs in a test, on the demo lake (the team's rule).

The examples are read from README.md itself: every line of a code block that starts with
``cryptobot `` (pipes between cryptobot commands and a final ``> file`` included, trailing
``# comments`` dropped), so a new example is tested the day it is written. They run in README
order in one working directory laid out like a clone after ``make demo``: ``examples/``,
``config/``, the synthetic sample market in ``demo-data/sample-market`` and the demo lake
``demo-data`` that the Makefile's ``demo`` recipe builds (read from the Makefile, run here),
with ``CRYPTOBOT_CONFIG=examples/demo.yaml`` as the README tells a newcomer. Files an earlier
example writes (``setups.jsonl`` above all) feed the later ones.

Each example must exit 0, and whatever it prints or writes as JSON / JSON Lines must parse
strictly (no NaN / Infinity). They run in-process (typer's CliRunner): a ``|`` hands one
command's stdout to the next as stdin, a ``>`` writes the last one's stdout to the file.

Bounds and stand-ins, stated here rather than hidden:
- ``--watch`` examples run with ``--cycles 1`` (one scan, no waiting for the next close).
- ``cryptobot cot ...`` talks to the CFTC; here it talks to ``tests/cot_server.py``, the
  loopback CFTC serving the real files in ``../shared/data/cot`` (skipped when absent), and the
  yearly zip the README imports is that real file, put where a user's download would be.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import Cli
from tests.cot_server import COT, CftcServer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO_CONFIG = "examples/demo.yaml"

# README line -> why it cannot run offline. The test fails when a line here leaves the README.
OFFLINE_BY_DESIGN: dict[str, str] = {
    "cryptobot fetch --liquidations --watch --for 3600": "the replay exchange streams no"
    " liquidations; tests/test_liquidations.py records a loopback WebSocket stream",
}
# Flags that would run forever, and the bound each runs with here.
BOUNDED = {"--watch": ["--cycles", "1"]}
# Files a README example names that a user downloads by hand -> where this test gets them.
DOWNLOADS = {"fut_fin_txt_2023.zip": COT / "tff_futures_only" / "fut_fin_txt_2023.zip"}


def code_block_lines(text: str) -> list[str]:
    """The lines inside fenced code blocks (```sh, ``` and any other info string)."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.strip())
    return lines


def examples(text: str) -> list[str]:
    """Every ``cryptobot`` command line of the README's code blocks, comments stripped."""
    return [
        " ".join(w if w in ("|", ">") else shlex.quote(w) for w in _words(line))
        for line in code_block_lines(text)
        if line.split()[:1] == ["cryptobot"]
    ]


def _words(line: str) -> list[str]:
    """Shell words of ``line``: quotes honoured, ``# comment`` dropped, ``|`` and ``>`` apart."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def stages(line: str) -> tuple[list[list[str]], str | None]:
    """``cryptobot a | cryptobot b > f`` -> ([[a...], [b...]], "f"); only cryptobot commands."""
    words, target = _words(line), None
    if ">" in words:
        at = words.index(">")
        assert at == len(words) - 2, f"only a final '> file' is supported: {line}"
        words, target = words[:at], words[at + 1]
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            commands.append([])
        else:
            commands[-1].append(word)
    for command in commands:
        assert command[:1] == ["cryptobot"], f"not a cryptobot command in a pipe: {line}"
    return [c[1:] for c in commands], target


def bounded(args: list[str]) -> list[str]:
    for flag, bound in BOUNDED.items():
        if flag in args:
            args = args + bound
    return args


def strict_json(text: str, where: str) -> None:
    """Output that looks like JSON must be strict JSON: one document or one per line."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{where}: {constant} is not JSON")

    body = text.strip()
    if not body.startswith(("{", "[")):
        return
    try:
        json.loads(body, parse_constant=refuse)
    except json.JSONDecodeError:
        for line in body.splitlines():
            json.loads(line, parse_constant=refuse)


README_EXAMPLES = examples(README.read_text())


def test_the_readme_has_examples_and_the_exemptions_are_current():
    assert len(README_EXAMPLES) > 20  # the extraction still finds the README's blocks
    assert "cryptobot.duckdb" not in " ".join(README_EXAMPLES)  # a file name is not a command
    stale = [line for line in OFFLINE_BY_DESIGN if line not in README_EXAMPLES]
    assert not stale, f"listed as offline-by-design but no longer in the README: {stale}"
    unused = [name for name in DOWNLOADS if not any(name in ex for ex in README_EXAMPLES)]
    assert not unused, f"downloads no README example names any more: {unused}"


def test_the_extractor_reads_pipes_redirects_and_comments():
    text = (
        "```sh\ncryptobot scan --top 3 | cryptobot signal - > s.jsonl   # note\n```\n"
        "```\ncryptobot.duckdb     views\ncryptobot size --symbol 'A B' # x\n```\n"
        "cryptobot outside a block\n"
    )
    found = examples(text)
    assert found == [
        "cryptobot scan --top 3 | cryptobot signal - > s.jsonl",
        "cryptobot size --symbol 'A B'",
    ]
    assert stages(found[0]) == ([["scan", "--top", "3"], ["signal", "-"]], "s.jsonl")


def _demo_recipe() -> list[list[str]]:
    """The Makefile's ``demo`` recipe, one argument list per line (``$(BIN)/...`` dropped)."""
    recipe, inside = [], False
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("demo:"):
            inside = True
        elif inside and line.startswith("\t"):
            recipe.append(shlex.split(line.strip())[1:])
        elif inside:
            break
    assert recipe, "the Makefile has no demo recipe"
    return recipe


@pytest.fixture(scope="module")
def cftc() -> Iterator[CftcServer | None]:
    if not COT.is_dir():
        yield None
        return
    with CftcServer() as server:
        yield server


@dataclass
class DemoDir:
    """The working directory the examples share, and how many of them have run there."""

    path: Path
    env: dict[str, str | None]
    ran: int = 0

    def run(self, line: str) -> None:
        """Run one README line: exit 0 at every stage, strict JSON on stdout and in files."""
        commands, target = stages(line)
        cli, text = Cli(self.env), None
        for args in commands:
            text = _run(cli, bounded(args), self.path, input=text)
            strict_json(text, f"{line}: stdout of {' '.join(args[:2])}")
        if target is not None:
            (self.path / target).write_text(text)
        for written in _outputs(commands[-1], self.path):
            _check_file(written, line)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, cftc: CftcServer | None) -> DemoDir:
    """A clone's layout after ``make demo``: its recipe read from the Makefile and run here."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copytree(ROOT / "config", work / "config")
    for name, source in DOWNLOADS.items():
        if source.is_file():
            shutil.copyfile(source, work / name)
    env = _env(cftc)
    for step in _demo_recipe():
        if step[0] == "examples/make_sample_market.py":
            subprocess.run([sys.executable, *step], cwd=work, check=True, capture_output=True)
        else:
            _run(Cli(env), step, work, input=None)
    return DemoDir(work, env)


def _env(cftc: CftcServer | None) -> dict[str, str | None]:
    """The demo config; the developer's CRYPTOBOT_* variables removed (None unsets)."""
    env: dict[str, str | None] = {n: None for n in os.environ if n.startswith("CRYPTOBOT_")}
    env["CRYPTOBOT_CONFIG"] = DEMO_CONFIG  # as the README tells a newcomer after `make demo`
    if cftc is not None:
        env |= {
            "CRYPTOBOT__COT__API_BASE": f"{cftc.url}/resource",
            "CRYPTOBOT__COT__FILES_BASE": f"{cftc.url}/files",
            "CRYPTOBOT__COT__FIRST_YEAR": "2018",
        }
    return env


def _run(cli: Cli, args: list[str], work: Path, input: str | None) -> str:
    here = Path.cwd()
    os.chdir(work)
    try:
        result = cli(*args, input=input, ok=None)
    finally:
        os.chdir(here)
    assert result.exit_code == 0, (args, result.exit_code, result.stderr, result.exception)
    return result.stdout


def _runnable(line: str, cftc: CftcServer | None) -> str | None:
    """Why ``line`` is not run here, or None."""
    if line in OFFLINE_BY_DESIGN:
        return OFFLINE_BY_DESIGN[line]
    needs_cot = stages(line)[0][0][0] == "cot" or "cot_crowd" in line
    if needs_cot and cftc is None:
        return "../shared/data/cot is not present (the loopback CFTC serves its files)"
    return None


@pytest.mark.slow
@pytest.mark.xdist_group("readme")  # one worker: the examples build on each other in one dir
@pytest.mark.parametrize("index", range(len(README_EXAMPLES)), ids=lambda i: f"{i:02d}")
def test_readme_example_runs_on_the_demo_lake(
    index: int, demo: DemoDir, cftc: CftcServer | None
) -> None:
    """Example ``index``, after every earlier one (run now if ``-k`` left them out)."""
    for line in README_EXAMPLES[demo.ran : index + 1]:
        demo.ran += 1
        reason = _runnable(line, cftc)
        if reason is None:
            demo.run(line)
        elif line == README_EXAMPLES[index]:
            pytest.skip(reason)


def _outputs(args: list[str], work: Path) -> list[Path]:
    """Files the command wrote with ``-o``/``--output``/``--chart``."""
    flags = {"-o", "--output", "--chart"}
    return [work / args[i + 1] for i, a in enumerate(args[:-1]) if a in flags]


def _check_file(path: Path, line: str) -> None:
    assert path.is_file(), f"{line}: wrote no {path.name}"
    if path.suffix in (".json", ".jsonl"):
        strict_json(path.read_text(), f"{line}: {path.name}")
    elif path.suffix == ".parquet":
        pd.read_parquet(path)
