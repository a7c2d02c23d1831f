"""The holes a hostile tester found in ``cot``: no reports (nothing stored, or nothing public
by ``--as-of``), reports too old to read a bias from, global options after ``cot`` (and after
the other groups), ``cot fetch -o`` and ``--chart`` into a missing folder."""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.cot.bias import DAY_MS, BiasBook
from cryptobot.data.lake import Lake
from cryptobot.strategies.signals import decide
from tests.conftest import BINANCE, Cli, walk_bars
from tests.cot_server import COT
from tests.test_cot_signal import _params as cot_params
from tests.test_cot_signal import _setup

TFF = sorted((COT / "tff_futures_only").glob("*.zip"))
needs_cot = pytest.mark.skipif(not TFF, reason="../shared/data/cot is not present")
LAST_REPORT = "2023-10-10"  # the newest as-of date in the shared 2018-2023 files


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def cot_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One lake with the CFTC's 2018-2023 TFF files, shared by the module (read-only)."""
    if not TFF:
        pytest.skip("../shared/data/cot is not present")
    root = tmp_path_factory.mktemp("cot-lake")
    for path in TFF:
        Cli({"CRYPTOBOT_DATA_DIR": str(root)})("cot", "fetch", "--import", str(path), "-f", "json")
    return root


DEC30 = _ms("2025-12-30")  # the venue's clock in the signal tests: the setups' bar has closed


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _params(**cot):
    return cot_params(load_settings(), **cot)


# 1. no COT reports: one line for `cot`, bias none for signal and backtest


def test_cot_without_any_report_is_one_line(cli: Cli, data_dir: Path) -> None:
    for args in (("cot",), ("cot", "history"), ("cot", "--asset", "ETH", "-f", "json")):
        result = cli(*args, ok=None)
        assert result.exit_code == 1, (args, result.stderr)
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"error: no tff_futures_only COT reports stored in {data_dir / 'cot'};"
            " run `cryptobot cot fetch`"
        ]
    assert not (data_dir / "cot").exists()  # looking created nothing


@needs_cot
@pytest.mark.parametrize("command", [(), ("history",), ("history", "--asset", "ETH")])
def test_as_of_before_the_first_publication_is_one_line(cot_lake: Path, command) -> None:
    before = _snapshot(cot_lake)
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(cot_lake)})
    result = cli("cot", *command, "--as-of", "1999-01-01", "-f", "jsonl", ok=None)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no tff_futures_only COT reports published by 1999-01-01T00:00:00Z"
        " (the first stored was published 2018-04-13T19:30:00Z)"
    ]
    assert _snapshot(cot_lake) == before


@needs_cot
def test_an_asset_without_a_public_report_is_left_out_with_a_warning(cot_lake: Path) -> None:
    """ETH futures began in 2021: in 2020 BTC has reports and ETH none."""
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(cot_lake)})
    both = cli("cot", "--as-of", "2020-06-01", "-f", "jsonl")
    assert [json.loads(line)["asset"] for line in both.stdout.splitlines()] == ["BTC"]
    assert "ETH: no tff_futures_only report published by 2020-06-01" in both.stderr
    eth = cli("cot", "--asset", "ETH", "--as-of", "2020-06-01", ok=None)
    assert eth.exit_code == 1 and eth.stdout == ""
    assert eth.stderr.strip() == (
        "error: no tff_futures_only report of ETH published by 2020-06-01T00:00:00Z"
    )
    history = cli("cot", "history", "--asset", "ETH", "--as-of", "2020-06-01", ok=None)
    assert history.exit_code == 1
    assert history.stderr.strip() == eth.stderr.strip()


def test_signal_filter_without_reports_passes_with_the_reason(data_dir: Path) -> None:
    p, cot = _params()
    setups = [_setup("BTC/USDT:USDT", "long", "2025-12-30"),
              _setup("SOL/USDT:USDT", "short", "2025-12-30")]  # fmt: skip
    long_, short = decide(setups, Lake(data_dir), p, cot=cot, now=DEC30)
    assert long_.accepted and short.accepted
    assert long_.context["cot_bias"] == short.context["cot_bias"] == "none"
    assert long_.context["cot_reason"] == (
        "BTC none: no tff_futures_only COT report published by 2025-12-30T00:00:00Z"
    )
    assert short.context["cot_reason"] == "SOL none: not in cot.markets"


def test_signal_command_with_the_filter_and_no_reports(tmp_path: Path, data_dir: Path) -> None:
    setups = tmp_path / "setups.jsonl"
    setups.write_text(json.dumps(_setup("BTC/USDT:USDT", "short", "2025-12-30").to_json()) + "\n")
    env = {"CRYPTOBOT_DATA_DIR": str(data_dir), "CRYPTOBOT__COT__SIGNAL_FILTER": "true",
           "CRYPTOBOT__SIGNAL__MAX_SETUP_AGE_BARS": "1000000"}  # fmt: skip
    Lake(data_dir).write_candles("binanceusdm", "BTC/USDT:USDT", "5m",
                                 walk_bars(DEC30 - 600_000, 2))  # fmt: skip
    row = json.loads(Cli(env)("signal", str(setups), "--offline", "--all", "-f", "jsonl").stdout)
    assert row["accepted"] is True
    assert json.dumps(row).count('"cot_bias": "none"') == 1


def test_backtest_with_the_filter_and_no_reports(
    shared: Path, tmp_path: Path, data_dir: Path
) -> None:
    """Nothing stored: the run is the unfiltered run, and stderr says the filter did nothing."""
    hourly = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1h.parquet")
    hourly = hourly[hourly.timestamp.between(_ms("2023-01-01"), _ms("2023-06-01"))]
    Lake(data_dir).write_candles("binanceusdm", "BTC/USDT:USDT", "1h", hourly)
    trades = {}
    for flag in ("false", "true"):
        out = tmp_path / f"bt-{flag}.parquet"
        env = {"CRYPTOBOT_DATA_DIR": str(data_dir), "CRYPTOBOT__COT__SIGNAL_FILTER": flag}
        result = Cli(env)("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT",
                          "-o", str(out), "-f", "jsonl")  # fmt: skip
        trades[flag] = pd.read_parquet(out)
        said = "cot.signal_filter is on but no COT reports are stored" in result.stderr
        assert said == (flag == "true")
    assert len(trades["false"]) > 0
    assert trades["true"][["side", "entry_time"]].equals(trades["false"][["side", "entry_time"]])


# 2. a report past cot.max_report_age_days gives bias none, with the reason


@needs_cot
def test_a_two_year_old_report_is_not_read_as_this_weeks_bias(cot_lake: Path) -> None:
    p, cot = _params()
    fresh = decide([_setup("BTC/USDT:USDT", "short", "2023-10-14")], Lake(cot_lake), p,
                   cot=cot, now=_ms("2023-10-14"))[0]  # fmt: skip
    old = decide([_setup("BTC/USDT:USDT", "short", "2025-12-30")], Lake(cot_lake), p, cot=cot,
                 now=DEC30)[0]  # fmt: skip
    assert not fresh.accepted and fresh.reason.startswith("cot: BTC BULLISH")
    assert old.accepted and old.context["cot_bias"] == "none"
    assert old.context["cot_reason"] == (
        f"BTC none: the newest COT report is as of {LAST_REPORT}, 812 days before 2025-12-30"
        " (cot.max_report_age_days: 21)"
    )
    longer = _params(max_report_age_days=1000)[1]  # the user may accept older reports
    assert not decide([_setup("BTC/USDT:USDT", "short", "2025-12-30")], Lake(cot_lake), p,
                      cot=longer, now=DEC30)[0].accepted  # fmt: skip


@needs_cot
def test_the_age_limit_is_inclusive_to_the_millisecond(cot_lake: Path) -> None:
    cfg = load_settings().cot
    book = BiasBook(cot_lake, cfg)
    limit = _ms(LAST_REPORT) + cfg.max_report_age_days * DAY_MS
    assert book.at("BTC", limit).label == "BULLISH"
    assert book.at("BTC", limit + 1).label == "none"
    assert list(book.sides("btc", np.array([limit, limit + 1]))) == [1, 0]
    note = book.gap_note("BTC", np.array([limit - 1, limit, limit + 1]))
    assert note is not None and note.startswith("BTC: no COT bias at 1 of 3 bars")
    assert book.gap_note("BTC", np.array([limit])) is None
    assert book.gap_note("SOL", np.array([limit + 1])) is None  # not a COT asset


@needs_cot
def test_cot_command_marks_a_stale_latest_report(cot_lake: Path) -> None:
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(cot_lake)})
    rows = [
        json.loads(x)
        for x in cli("cot", "--as-of", "2025-12-30", "-f", "jsonl").stdout.split("\n")
        if x
    ]
    assert [(r["asset"], r["report_date"], r["bias"]) for r in rows] == [
        ("BTC", LAST_REPORT, "none"), ("ETH", LAST_REPORT, "none")
    ]  # fmt: skip
    assert rows[0]["pctl_156"] == 90.32  # the numbers stay; only the bias is withheld
    assert "812 days before 2025-12-30" in rows[0]["reason"]
    fresh = json.loads(cli("cot", "--asset", "BTC", "--as-of", "2023-10-14", "-f", "jsonl").stdout)
    assert fresh["bias"] == "BULLISH"


@needs_cot
def test_backtest_says_where_the_reports_ran_out(cot_lake: Path, tmp_path: Path) -> None:
    if not BINANCE.is_dir():
        pytest.skip("../shared/data is not present")
    hourly = pd.read_parquet(BINANCE / "BTC_USDT_USDT" / "1h.parquet")
    lake = tmp_path / "bt-lake"
    (lake / "cot").mkdir(parents=True)
    for f in (cot_lake / "cot").glob("*.parquet"):
        (lake / "cot" / f.name).write_bytes(f.read_bytes())
    window = hourly[hourly.timestamp.between(_ms("2023-10-01"), _ms("2023-12-01"))]
    Lake(lake).write_candles("binanceusdm", "BTC/USDT:USDT", "1h", window)
    env = {"CRYPTOBOT_DATA_DIR": str(lake), "CRYPTOBOT__COT__SIGNAL_FILTER": "true"}
    result = Cli(env)("backtest", "--strategy", "momentum", "--symbols", "BTC/USDT:USDT",
                      "-f", "jsonl")  # fmt: skip
    assert "BTC: no COT bias at" in " ".join(result.stderr.split())


@needs_cot
def test_book_sides_agree_with_the_reading_at_each_moment(cot_lake: Path) -> None:
    """The backtest's vectorised lookup and signal's one-at-a-time reading never disagree."""
    book = BiasBook(cot_lake, load_settings().cot.model_copy(update={"bias_window": 26}))
    sign = {"BULLISH": 1, "BEARISH": -1, "NEUTRAL": 0, "none": 0}

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(_ms("2017-06-01"), _ms("2024-06-01")), min_size=1, max_size=20),
           st.sampled_from(["BTC", "ETH", "MET", "SOL"]))  # fmt: skip
    def agree(times: list[int], asset: str) -> None:
        sides = book.sides(asset, np.array(times))
        assert list(sides) == [sign[book.at(asset, t).label] for t in times]

    agree()


@pytest.mark.parametrize("bad", ["0", "-3", "nan", "inf"])
def test_max_report_age_days_must_be_a_positive_whole_number(monkeypatch, bad: str) -> None:
    monkeypatch.setenv("CRYPTOBOT__COT__MAX_REPORT_AGE_DAYS", bad)
    with pytest.raises(ConfigError, match="max_report_age_days"):
        load_settings()


# 3. global options after a group invoked without a sub-command


@needs_cot
def test_global_options_after_cot(cot_lake: Path, tmp_path: Path) -> None:
    cli = Cli()
    quiet = cli("cot", "-q", "--data-dir", str(cot_lake), "--as-of", "2020-06-01", "-f", "jsonl")
    assert [json.loads(x)["asset"] for x in quiet.stdout.splitlines()] == ["BTC"]
    assert quiet.stderr == ""  # -q: the ETH warning is not an error
    empty = tmp_path / "empty"
    empty.mkdir()
    loud = cli("cot", "--data-dir", str(empty), "-v", ok=None)
    assert loud.exit_code == 1
    assert "error: no tff_futures_only COT reports stored" in loud.stderr
    assert "Traceback" in loud.stderr  # -v, as the error of an unexpected failure suggests


@pytest.mark.parametrize("group", ["risk", "config"])
def test_global_options_after_the_other_groups(group: str, data_dir: Path) -> None:
    result = Cli()(group, "-q", "--data-dir", str(data_dir), ok=None)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: Missing command (see cryptobot {group} --help)"


def test_global_options_between_group_and_sub_command(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("cot:\n  max_report_age_days: 40\n")
    shown = Cli()("config", "-c", str(config), "--data-dir", str(data_dir), "show", "-f", "json")
    assert '"max_report_age_days": 40' in shown.stdout
    status = Cli()("risk", "--data-dir", str(data_dir), "-q", "status", "-f", "json")
    assert json.loads(status.stdout)[0]["mode"] == "active" and status.stderr == ""


# 4. cot fetch -o, and --chart into a missing folder


@needs_cot
def test_cot_fetch_writes_its_summary_to_o(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fetched.json"
    result = cli("cot", "fetch", "--import", str(TFF[-1]), "-o", str(out))
    assert result.stdout == ""
    [row] = json.loads(out.read_text())
    assert row["report"] == "tff_futures_only" and row["last_report_date"] == LAST_REPORT


@pytest.mark.parametrize("name", ["missing/fetched.json", "fetched.xlsx"])
def test_cot_fetch_refuses_a_bad_o_before_any_work(cli: Cli, data_dir: Path, tmp_path: Path,
                                                   name: str) -> None:  # fmt: skip
    target = tmp_path / name
    result = cli("cot", "fetch", "--import", str(TFF[-1] if TFF else "x.zip"), "-o", str(target),
                 ok=None)  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: -o {target}: ")
    assert not (data_dir / "cot").exists() and not target.parent.joinpath("missing").exists()


@needs_cot
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("missing/deeper/c.html", "does not exist; create it first"),
        ("c.png", "use a .html or .htm"),
    ],
)
def test_history_chart_is_checked_like_o(
    cot_lake: Path, tmp_path: Path, name: str, why: str
) -> None:
    chart = tmp_path / name
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(cot_lake)})
    result = cli("cot", "history", "--chart", str(chart), "-f", "jsonl", ok=None)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: --chart {chart}: ") and why in result.stderr
    assert not (tmp_path / "missing").exists() and not chart.exists()
    good = tmp_path / "c.html"
    cli("cot", "history", "--chart", str(good), "-f", "jsonl")
    assert good.read_text().lstrip().lower().startswith("<!doctype html")


@needs_cot
def test_an_import_into_a_damaged_table_keeps_nothing(tmp_path: Path) -> None:
    """The stored table is read before the raw file is kept: a refused import changes
    nothing stored (the raw zip was written first, then the merge failed)."""
    root = tmp_path / "lake"
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(root)})
    cli("cot", "fetch", "--import", str(TFF[-1]), "-f", "json")
    (root / "cot" / "tff_futures_only.parquet").write_bytes(b"not parquet")
    before = _snapshot(root)
    done = cli("cot", "fetch", "--import", str(TFF[0]), "-f", "json", ok=False)
    assert done.exit_code == 1 and "cannot read" in done.stderr
    assert _snapshot(root) == before
