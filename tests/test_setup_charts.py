"""``scan --chart DIR`` / ``signal --chart DIR``: one PNG per setup and one self-contained page,
drawn from real candles (../shared/data) in a real lake, and the page opened in a real
headless browser."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cryptobot.core.config import load_settings
from cryptobot.core.setup import Setup
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import parse_time
from cryptobot.data.lake import Lake
from cryptobot.report.charts import SIZE_PX, spread
from cryptobot.report.marks import panels_of
from cryptobot.report.setup_charts import PAGE, chart_setup
from cryptobot.report.windows import read_window, setup_close
from tests.conftest import BINANCE, Cli
from tests.test_cli_start import _loaded
from tests.test_scan_stability import CASES, _scan, _store

ETH = "ETH/USDT:USDT"
SCAN = ("scan", "--offline", "--symbols", ETH, "--strategy", "bos_fvg_fib", "--within", "300")
SCAN += ("--min-confidence", "0", "--format", "jsonl")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def eth_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six days of real ETH 15m and 5m bars, filed where an offline binanceusdm scan reads:
    they end with a triggered bos_fvg_fib short (2025-03-07 02:25)."""
    if not BINANCE.is_dir():
        pytest.skip("../shared/data is not present (real market data for fidelity tests)")
    root = tmp_path_factory.mktemp("lake")
    for tf in ("15m", "5m"):
        frame = pq.read_table(BINANCE / f"ETH_USDT_USDT/{tf}.parquet").to_pandas()
        frame = frame[frame.timestamp.between(parse_time("2025-03-02"), parse_time("2025-03-08"))]
        Lake(root).write_candles("binanceusdm", ETH, tf, frame)
    return root


@pytest.fixture(scope="module")
def scanned(eth_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Setup], Path]:
    """The setups of one offline scan with --chart, and the chart directory."""
    charts = tmp_path_factory.mktemp("charts")
    out = Cli({"CRYPTOBOT_DATA_DIR": str(eth_lake)})(*SCAN, "--chart", str(charts)).stdout
    return [Setup.from_record(json.loads(line)) for line in out.splitlines()], charts


def _assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == SIZE_PX
        image.verify()


def _figures(page: str) -> list[str]:
    return re.findall(r"<figure id='([0-9a-f]{16})'>", page)


def test_scan_chart_draws_each_setup_and_one_page(scanned):
    setups, charts = scanned
    assert setups, "six days of ETH hold bos_fvg_fib setups"
    pngs = sorted(charts.glob("*.png"))
    assert sorted(p.stem.rsplit("_", 1)[1] for p in pngs) == sorted(s.id for s in setups)
    for path in pngs:
        _assert_png(path)
    page = (charts / PAGE).read_text()
    assert _figures(page) == [s.id for s in setups]  # the order scan printed them in
    assert page.count("src='data:image/png;base64,") == len(setups)
    links = re.findall(r"(?:src|href)='([^']*)'", page)
    assert all(a.startswith(("data:image/png;base64,", "#")) for a in links), "nothing outside"
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page).lower()
    assert "http" not in text and "//" not in text and "url(" not in text
    assert "<script" not in text and "<link" not in text
    assert not [p for p in charts.iterdir() if p.suffix not in (".png", ".html")]  # no temps


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_the_page_shows_every_chart_in_a_real_browser(scanned, tmp_path: Path):
    """Chromium opens a copy of the page with a probe that writes, once everything loaded,
    the decoded width of every image into the DOM it dumps."""
    setups, charts = scanned
    probe = tmp_path / "probe.html"
    script = (
        "<script>addEventListener('load',()=>{document.body.setAttribute('data-widths',"
        "[...document.images].map(i=>i.naturalWidth).join(','))})</script></body>"
    )
    probe.write_text((charts / PAGE).read_text().replace("</body>", script))
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"HOME": str(tmp_path)},
    )
    widths = re.search(r'data-widths="([0-9,]*)"', done.stdout)
    assert widths, done.stderr[-2000:]
    assert widths.group(1).split(",") == [str(SIZE_PX[0])] * len(setups)
    assert len(re.findall(r"<figure id=", done.stdout)) == len(setups)


def test_signal_chart_draws_the_decided_setups(scanned, eth_lake: Path, tmp_path: Path):
    setups, _ = scanned
    records = "".join(json.dumps(s.to_json()) + "\n" for s in setups)
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(eth_lake)})
    every = tmp_path / "every"
    every.mkdir()
    rows = cli(
        "signal",
        "-",
        "--offline",
        "--all",
        "--format",
        "jsonl",
        "--chart",
        str(every),
        input=records,
    )
    decided = [json.loads(line)["setup_id"] for line in rows.stdout.splitlines()]
    assert sorted(decided) == sorted(s.id for s in setups)
    assert _figures((every / PAGE).read_text()) == decided
    for path in every.glob("*.png"):
        _assert_png(path)
    accepted = tmp_path / "accepted"
    accepted.mkdir()
    signals = cli(
        "signal", "-", "--offline", "--format", "jsonl", "--chart", str(accepted), input=records
    )
    ids = [json.loads(line)["id"] for line in signals.stdout.splitlines()]
    assert (
        len(_figures((accepted / PAGE).read_text()))
        == len(ids)
        == len(list(accepted.glob("*.png")))
    )


@pytest.mark.parametrize("command", ["scan", "signal"])
@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_chart_dir_that_is_not_one_is_refused_before_any_work(
    cli: Cli, data_dir: Path, tmp_path: Path, command: str, kind: str
):
    target = tmp_path / "charts"
    if kind == "file":
        target.write_text("not a directory")
    args = (*SCAN[:-2], "--chart", str(target)) if command == "scan" else ("signal", "-")
    if command == "signal":
        args += ("--chart", str(target))
    result = cli(*args, input="", ok=None)
    assert result.exit_code == 1 and result.stdout == ""
    assert f"--chart {target}" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert ("does not exist" if kind == "missing" else "is not a directory") in result.stderr
    assert not (data_dir / "cryptobot.duckdb").exists()  # refused before the journal opened
    assert target.is_file() == (kind == "file")


def _scan_process(lake: Path, charts: Path) -> subprocess.Popen:
    src = Path(__file__).resolve().parents[1] / "src"
    env = os.environ | {"PYTHONPATH": str(src), "CRYPTOBOT_DATA_DIR": str(lake)}
    return subprocess.Popen(
        [sys.executable, "-m", "cryptobot", *SCAN, "--chart", str(charts)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _whole(charts: Path, ids: list[str]) -> None:
    """Every PNG decodes and the page holds exactly the given charts, each whole."""
    for path in charts.glob("*.png"):
        _assert_png(path)
    page = (charts / PAGE).read_text()
    assert page.endswith("</html>\n") and _figures(page) == ids


@pytest.mark.slow
def test_two_scans_charting_into_one_dir_at_once(scanned, eth_lake: Path, tmp_path: Path):
    """Real processes: each file ends up whole (one writer's or the other's), no temp left."""
    setups, _ = scanned
    procs = [_scan_process(eth_lake, tmp_path) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    _whole(tmp_path, [s.id for s in setups])
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".html"] + [".png"] * len(setups)


def test_a_run_killed_mid_way_leaves_the_charts_of_the_last_one_whole(
    scanned, eth_lake: Path, tmp_path: Path
):
    """kill -9 once the new run has replaced its first PNG: the page and every PNG are still
    whole files (the old page, or the new one if it got that far)."""
    setups, charts = scanned
    for path in charts.iterdir():
        shutil.copy(path, tmp_path / path.name)
    old_page = (tmp_path / PAGE).read_text()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.png")}
    proc = _scan_process(eth_lake, tmp_path)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.stat().st_mtime_ns != t for p, t in before.items() if p.exists()):
            proc.kill()
            break
        time.sleep(0.005)
    proc.communicate(timeout=60)
    _whole(tmp_path, [s.id for s in setups])
    assert (tmp_path / PAGE).read_text() in (old_page, (charts / PAGE).read_text())


@pytest.mark.parametrize("command", ["scan", "signal"])
def test_help_offers_chart_without_loading_matplotlib(tmp_path: Path, command: str):
    code, modules, out = _loaded(tmp_path, command, "--help")
    assert code == 0 and "--chart" in out
    assert not [m for m in modules if m == "matplotlib" or m.startswith("matplotlib.")]
    assert "cryptobot.report.charts" not in modules


def test_a_chart_that_cannot_be_written_is_one_line(scanned, eth_lake: Path, tmp_path: Path):
    """A directory squatting on a chart's file name (root can write anywhere, so this is the
    failure a test can cause): exit 1, one line, the records still printed, the rest whole."""
    setups, charts = scanned
    blocked = sorted(charts.glob("*.png"))[-1].name
    (tmp_path / blocked).mkdir()
    result = Cli({"CRYPTOBOT_DATA_DIR": str(eth_lake)})(*SCAN, "--chart", str(tmp_path), ok=None)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: --chart {tmp_path}: ")
    assert len(result.stdout.splitlines()) == len(setups)
    assert (tmp_path / blocked).is_dir() and not (tmp_path / PAGE).exists()
    for path in tmp_path.glob("*.png"):
        if path.is_file():
            _assert_png(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any directory")
def test_a_read_only_chart_dir_is_refused_before_any_work(cli: Cli, data_dir: Path, tmp_path):
    target = tmp_path / "charts"
    target.mkdir(mode=0o555)
    result = cli(*SCAN, "--chart", str(target), ok=None)
    assert result.exit_code == 1 and "not writable" in result.stderr
    assert not (data_dir / "cryptobot.duckdb").exists()


@pytest.mark.parametrize("strategy", ["momentum", "breakout"])
def test_momentum_and_breakout_charts_from_real_setups(shared, tmp_path: Path, strategy: str):
    """The first triggered setup of a real scan: its panels' windows split at the setup's close
    (what the detector saw, then what closed later, never a bar still open), and its PNG."""
    settings = load_settings()
    symbols, clock, spans = CASES[strategy]
    lake = Lake(tmp_path / "lake")
    _store(lake, spans)
    found = _scan(lake, settings, strategy, symbols, parse_time(clock), 300).setups
    setup = next(s for s in found if s.status == "triggered")
    panels = panels_of(setup, settings.strategies)
    assert len(panels) == 2 and panels[0].timeframe == setup.timeframe
    later = setup_close(setup) + 6 * 3_600_000 + 1
    for panel in panels:
        tf = timeframe_ms(panel.timeframe)
        window = read_window(lake, setup, panel, now_ms=later)
        assert not window.seen.empty and not window.after.empty
        assert (window.seen.timestamp + tf <= setup_close(setup)).all()
        assert (window.after.timestamp + tf > setup_close(setup)).all()
        assert (window.after.timestamp + tf <= later).all()
        assert set(window.emas) == set(panel.emas) and len(window.emas[9]) == (
            len(window.seen) + len(window.after)
        )
        assert read_window(lake, setup, panel, now_ms=setup_close(setup)).after.empty
    path = tmp_path / "chart.png"
    path.write_bytes(chart_setup(setup, lake=lake, cfg=settings.strategies, now_ms=later))
    _assert_png(path)


BOS_RECORD = {
    "schema": "setup/1",
    "exchange": "binanceusdm",
    "symbol": "DOGE/USDT:USDT",
    "strategy": "bos_fvg_fib",
    "timeframe": "5m",
    "side": "short",
    "status": "triggered",
    "ts": "2025-03-19T17:15:00Z",
    "anchor_ts": "2025-03-19T15:30:00Z",
    "entry": 0.2,
    "stop": 0.21,
    "targets": [0.19, 0.18],
    "confidence": 4,
}


def test_records_with_more_keys_draw_them_and_bad_values_are_left_out(tmp_path: Path):
    """Keys a reworked detector adds are drawn; values of the wrong type are skipped, not
    fatal; a symbol without stored candles still gets its levels and says so."""
    cfg = load_settings().strategies
    rich = Setup.from_record(
        BOS_RECORD
        | {
            "reasons": {
                "break": {"kind": "choch", "time": "2025-03-19T15:45:00Z", "level": 0.195},
                "leg": {
                    "start": 0.215,
                    "start_time": 1_742_385_600_000,
                    "end": 0.18,
                    "end_time": "2025-03-19T15:45:00Z",
                },
                "poi": {"bottom": 0.2, "top": 0.205},
                "fib": {"0.5": 0.1975, "0.618": 0.2016, "0.786": 0.2075},
                "fvg": {"bottom": 0.201, "top": 0.206, "start_time": "2025-03-19T14:00:00Z"},
                "first_touch_time": "2025-03-19T16:50:00Z",
                "trigger": {"kind": "structure_shift", "time": "2025-03-19T17:15:00Z"},
                "stop": {"basis": "poi_extreme", "price": 0.208},
            }
        }
    )
    context, entry = panels_of(rich, cfg)
    assert context.leg is not None and context.leg.start_ts == 1_742_385_600_000
    assert context.leg.end_ts == parse_time("2025-03-19T15:45:00Z")
    assert [m.label for m in context.markers] == ["CHoCH", "trigger: structure shift"]
    assert context.markers[0].ts == parse_time("2025-03-19T15:45:00Z")
    assert [line.label for line in context.lines] == [
        "broken swing (CHoCH)",
        "fib 0.5",
        "fib 0.618",
        "fib 0.786",
    ]
    assert {b.kind: b.since for b in context.boxes}["fvg"] == parse_time("2025-03-19T14:00:00Z")
    assert "first touch" in [m.label for m in entry.markers]
    assert "stop (poi extreme)" in [line.label for line in entry.lines]
    assert [line.label for line in entry.lines if line.kind == "target"] == ["T1 1R", "T2 2R"]

    bad = Setup.from_record(
        BOS_RECORD
        | {
            "reasons": {
                "break": {"level": "high", "time": "yesterday"},
                "poi": "0.2-0.205",
                "fib": [0.5, 0.618],
                "fvg": {"bottom": 0.2},
                "leg": {"start": 0.215, "end": None},
                "first_touch_time": True,
                "stop": ["poi_extreme"],
            }
        }
    )
    context, entry = panels_of(bad, cfg)
    assert context.lines == [] and context.boxes == [] and context.leg is None
    assert context.markers[0].ts == bad.anchor_ts  # the BOS bar falls back to anchor_ts
    assert [m.label for m in entry.markers] == ["trigger"]
    empty = Lake(tmp_path / "empty")
    for setup in (rich, bad):
        path = tmp_path / f"{setup.id}.png"
        path.write_bytes(chart_setup(setup, lake=empty, cfg=cfg, now_ms=setup.ts + 10**8))
        _assert_png(path)


def test_an_unknown_strategy_gets_its_trade_levels():
    record = BOS_RECORD | {"strategy": "grid", "timeframe": "1h", "reasons": {}}
    (panel,) = panels_of(Setup.from_record(record), load_settings().strategies)
    assert panel.timeframe == "1h"
    assert [line.kind for line in panel.lines] == ["entry", "stop", "target", "target"]


@given(
    st.lists(st.floats(min_value=-0.5, max_value=1.5), max_size=30),
    st.floats(min_value=0.005, max_value=0.1),
)
def test_labels_spread_keep_order_and_room(wanted, gap):
    wanted = sorted(wanted)
    placed = spread(wanted, gap=gap)
    assert len(placed) == len(wanted)
    assert all(b - a >= gap - 1e-9 for a, b in pairwise(placed))
    assert all(y <= 1.0 + 1e-9 for y in placed)
    if all(0 <= y <= 1 for y in wanted) and len(wanted) * gap <= 1:
        assert all(y >= -1e-9 for y in placed)  # what fits stays on the pane
    if all(b - a >= gap for a, b in pairwise(wanted)) and all(y <= 1 for y in wanted):
        assert placed == pytest.approx(wanted)  # labels already apart are not moved
