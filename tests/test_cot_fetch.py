"""``cryptobot cot fetch`` against a loopback CFTC (Socrata API pages and the yearly zips)."""

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli
from tests.cot_server import COT, CftcServer

TFF = sorted((COT / "tff_futures_only").glob("*.zip"))
pytestmark = pytest.mark.skipif(not TFF, reason="../shared/data/cot is not present")
ROWS = 639  # BTC, MBT, ETH, MET rows in the shared futures-only TFF files 2018-2023
PARQUET = Path("cot") / "tff_futures_only.parquet"


@pytest.fixture
def cftc() -> Iterator[CftcServer]:
    with CftcServer() as server:
        yield server


def env_for(server: CftcServer, data_dir: Path, page_size: int = 100) -> dict[str, str]:
    return {
        "CRYPTOBOT_DATA_DIR": str(data_dir),
        "CRYPTOBOT__COT__API_BASE": f"{server.url}/resource",
        "CRYPTOBOT__COT__FILES_BASE": f"{server.url}/files",
        "CRYPTOBOT__COT__PAGE_SIZE": str(page_size),
        "CRYPTOBOT__COT__TIMEOUT_S": "60",  # a loaded machine: a slow answer must not fall back
        "CRYPTOBOT__COT__FIRST_YEAR": "2018",
    }


def fetch(cli: Cli, *args: str, ok: bool = True) -> dict | object:
    result = cli("cot", "fetch", "-f", "jsonl", *args, ok=ok)
    return json.loads(result.stdout.splitlines()[0]) if ok else result


def snapshot(data_dir: Path) -> dict[str, bytes]:
    """Every stored file's bytes (the lock file aside)."""
    root = data_dir / "cot"
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def stored(data_dir: Path):
    frame = pq.read_table(data_dir / PARQUET).to_pandas()
    return frame.drop(columns="source").sort_values(["code", "report_date"], ignore_index=True)


def test_api_fetch_pages_then_is_incremental(cftc: CftcServer, data_dir: Path) -> None:
    cli = Cli(env_for(cftc, data_dir))
    first = fetch(cli)
    assert first == {
        "report": "tff_futures_only",
        "source": "api",
        "requests": 7,  # 639 rows in pages of 100
        "new_rows": ROWS,
        "total_rows": ROWS,
        "last_report_date": "2023-10-10",
    }
    pages = sorted((data_dir / "cot" / "raw" / "tff_futures_only").glob("api-*.json"))
    assert sum(len(json.loads(p.read_bytes())) for p in pages) == ROWS  # raw, as served
    before, hits = snapshot(data_dir), len(cftc.hits)
    second = fetch(cli)
    assert (second["new_rows"], second["requests"], second["total_rows"]) == (0, 1, ROWS)
    assert len(cftc.hits) == hits + 1
    assert snapshot(data_dir) == before  # nothing rewritten


def test_incremental_after_an_offline_import_asks_only_for_newer_reports(
    cftc: CftcServer, data_dir: Path
) -> None:
    cli = Cli(env_for(cftc, data_dir, page_size=1000))
    for path in TFF[:-1]:  # 2018-2022 from the files
        fetch(cli, "--import", str(path))
    result = fetch(cli)
    assert (result["new_rows"], result["requests"], result["total_rows"]) == (164, 1, ROWS)


def test_zip_fallback_stores_what_the_api_stores(
    cftc: CftcServer, tmp_path: Path, data_dir: Path
) -> None:
    fetch(Cli(env_for(cftc, data_dir)))
    other = tmp_path / "other"
    other.mkdir()
    cftc.api_down = True
    cli = Cli(env_for(cftc, other))
    result = cli("cot", "fetch", "-f", "jsonl")
    row = json.loads(result.stdout)
    assert (row["source"], row["new_rows"]) == ("zip", ROWS)
    assert "HTTP 503; falling back to the yearly zips" in result.stderr
    assert "fut_fin_txt_2024.zip" in result.stderr  # not published on the loopback CFTC
    assert stored(other).equals(stored(data_dir))
    raw = {p.name for p in (other / "cot" / "raw" / "tff_futures_only").iterdir()}
    assert {p.name for p in TFF} <= raw
    assert (other / "cot" / "raw" / "tff_futures_only" / TFF[0].name).read_bytes() == TFF[
        0
    ].read_bytes()


def test_api_only_fails_when_the_api_is_down(cftc: CftcServer, data_dir: Path) -> None:
    cftc.api_down = True
    result = fetch(Cli(env_for(cftc, data_dir)), "--source", "api", ok=False)
    assert result.exit_code == 1 and "HTTP 503" in result.stderr
    assert snapshot(data_dir) == {}


def _seeded(cftc: CftcServer, data_dir: Path) -> tuple[Cli, dict[str, bytes]]:
    cli = Cli(env_for(cftc, data_dir))
    for path in TFF[:-1]:
        fetch(cli, "--import", str(path))
    return cli, snapshot(data_dir)


def _one_line_exit_1(result, *needles: str) -> None:
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("field", ["lev_money_positions_short", "open_interest_all"])
def test_a_socrata_page_missing_a_field_stores_nothing(
    cftc: CftcServer, data_dir: Path, field: str
) -> None:
    cli, before = _seeded(cftc, data_dir)
    cftc.drop_field = field
    _one_line_exit_1(fetch(cli, ok=False), "missing", field.removesuffix("_all"), "gpe5-46if")
    assert snapshot(data_dir) == before


def test_a_corrupt_zip_from_the_server_stores_nothing(cftc: CftcServer, data_dir: Path) -> None:
    cli, before = _seeded(cftc, data_dir)
    cftc.zip_override["fut_fin_txt_2023.zip"] = TFF[-1].read_bytes()[:5000]
    _one_line_exit_1(fetch(cli, "--source", "zip", ok=False), "not a readable zip")
    assert snapshot(data_dir) == before


def test_another_report_type_from_the_server_stores_nothing(
    cftc: CftcServer, data_dir: Path
) -> None:
    cli, before = _seeded(cftc, data_dir)
    combined = COT / "tff_futures_and_options_combined" / "com_fin_txt_2022.zip"
    cftc.zip_override["fut_fin_txt_2023.zip"] = combined.read_bytes()
    _one_line_exit_1(
        fetch(cli, "--source", "zip", ok=False), "tff_combined", "not tff_futures_only"
    )
    assert snapshot(data_dir) == before


def _zip_with(text: str) -> bytes:
    """A zip of one file, dated 2024-01-01: built at collection, it must be the same bytes in
    every xdist worker (a member stamped with the clock gave two workers different tests)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("f_year.txt", date_time=(2024, 1, 1, 0, 0, 0)), text)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("fut_fin_txt_2024.zip", b"PK\x03\x04garbage", "not a readable zip"),
        (
            "fut_disagg_txt_2023.zip",
            _zip_with("Market_and_Exchange_Names,Prod_Merc_Positions_Long_All\n"),
            "disaggregated",
        ),
        ("empty.zip", _zip_with(""), "empty"),
        ("two.zip", b"", "not a readable zip"),
    ],
    ids=["garbage", "disaggregated", "empty_member", "zero_bytes"],
)
def test_bad_imports_are_one_line_and_store_nothing(
    cftc: CftcServer, data_dir: Path, tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    cli, before = _seeded(cftc, data_dir)
    path = tmp_path / name
    path.write_bytes(content)
    _one_line_exit_1(fetch(cli, "--import", str(path), ok=False), needle)
    assert snapshot(data_dir) == before


def test_import_of_another_report_than_asked_is_refused(cftc: CftcServer, data_dir: Path) -> None:
    cli, before = _seeded(cftc, data_dir)
    combined = COT / "tff_futures_and_options_combined" / "com_fin_txt_2022.zip"
    result = fetch(cli, "--import", str(combined), "--report", "tff_futures_only", ok=False)
    _one_line_exit_1(result, "holds the tff_combined report, not tff_futures_only")
    assert snapshot(data_dir) == before


def test_two_processes_importing_at_once_keep_both(data_dir: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"CRYPTOBOT_DATA_DIR": str(data_dir), "PYTHONPATH": str(root / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cryptobot", "cot", "fetch", "--import", str(p), "-f", "jsonl"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for p in TFF[:3]  # 2018-2020: 39 + 52 + 47 BTC rows
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(stored(data_dir)) == 138


@pytest.mark.slow
def test_kill_9_during_imports_leaves_a_readable_lake(data_dir: Path) -> None:
    """Killed at whatever point it reached, an import leaves the previous file or the new one,
    never a broken one; the next run completes the lake."""
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"CRYPTOBOT_DATA_DIR": str(data_dir), "PYTHONPATH": str(root / "src")}
    cmd = [sys.executable, "-m", "cryptobot", "cot", "fetch", "-f", "jsonl", "--import"]
    subprocess.run([*cmd, str(TFF[0])], env=env, check=True, capture_output=True)
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        proc = subprocess.Popen(
            [*cmd, str(TFF[-1])], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL: no cleanup runs
            proc.wait()
        assert len(stored(data_dir)) in (39, 39 + 164)
    subprocess.run([*cmd, str(TFF[-1])], env=env, check=True, capture_output=True)
    assert len(stored(data_dir)) == 39 + 164
