"""COT index, percentile rank, the bias sentence, and publication times (no look-ahead)."""

import base64
import json
import struct
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.core.config import load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.cot.bias import minmax_index, percentile_rank, read_bias, rolling, visible
from cryptobot.cot.release import BACKLOG, LAPSES, Calendar, federal_holidays
from cryptobot.cot.reports import CATEGORY_LABELS
from cryptobot.report import cot_chart
from tests.conftest import Cli
from tests.cot_server import COT

TFF = sorted((COT / "tff_futures_only").glob("*.zip"))
needs_cot = pytest.mark.skipif(not TFF, reason="../shared/data/cot is not present")


def test_percentile_rank_by_hand_with_ties() -> None:
    window = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype=float)
    # x = 3; below: 1, 1, 2 = 3; equal: two 3s (itself included) -> one other, counting half
    assert percentile_rank(window) == pytest.approx(100 * (3 + 0.5) / 9)
    assert minmax_index(window) == pytest.approx(100 * (3 - 1) / (9 - 1))


@pytest.mark.parametrize(
    ("window", "pct", "minmax"),
    [
        ([1, 2, 3, 4], 100.0, 100.0),  # unique maximum
        ([4, 3, 2, 1], 0.0, 0.0),  # unique minimum
        ([7, 7, 7], 50.0, 50.0),  # all equal: the middle, both ways
        ([1, 3, 3, 2, 3], 75.0, 100.0),  # tied at the top: 2 below, 2 others equal -> (2+1)/4
    ],
)
def test_edges_and_the_tie_rule(window: list[int], pct: float, minmax: float) -> None:
    arr = np.array(window, dtype=float)
    assert percentile_rank(arr) == pytest.approx(pct)
    assert minmax_index(arr) == pytest.approx(minmax)


@given(st.lists(st.integers(-50_000, 50_000), min_size=2, max_size=60))
def test_indexes_stay_in_0_100_and_agree_on_the_extremes(values: list[int]) -> None:
    arr = np.array(values, dtype=float)
    pct, mm = percentile_rank(arr), minmax_index(arr)
    assert 0 <= pct <= 100 and 0 <= mm <= 100
    if arr[-1] > arr[:-1].max():
        assert pct == mm == 100
    if arr[-1] < arr[:-1].min():
        assert pct == mm == 0


def test_rolling_needs_the_full_window() -> None:
    out = rolling(np.arange(5, dtype=float), 3, "percentile")
    assert np.isnan(out[:2]).all() and (out[2:] == 100).all()


def _cfg(**changes):
    return load_settings().cot.model_copy(update=changes)


@pytest.mark.parametrize(
    ("index", "net", "label", "reason"),
    [
        (
            12.0,
            4210,
            "BEARISH",
            "BTC BEARISH: asset managers' net long at the 12th percentile of 156 weeks",
        ),
        (
            81.0,
            -5,
            "BULLISH",
            "BTC BULLISH: asset managers' net short at the 81st percentile of 156 weeks",
        ),
        (80.0, 1, "BULLISH", None),
        (20.0, 1, "BEARISH", None),
        (50.0, 1, "NEUTRAL", "(BULLISH at >= 80, BEARISH at <= 20)"),
        (None, None, "NEUTRAL", "BTC NEUTRAL: 40 weeks of reports, the index needs 156"),
    ],
)
def test_bias_thresholds_and_the_sentence(index, net, label, reason) -> None:
    got = read_bias(asset="BTC", index=index, net=net, weeks=40, cfg=_cfg())
    assert got.label == label
    if reason:
        assert reason in got.reason


def test_minmax_sentence() -> None:
    got = read_bias(asset="ETH", index=91.4, net=10, weeks=200, cfg=_cfg(method="minmax"))
    assert got.reason == "ETH BULLISH: asset managers' net long at 91% of its 156-week range"


# ---- publication time ---------------------------------------------------------------------


def _utc(day: date) -> str:
    ms = Calendar().published_ms(day)
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("as_of", "published_utc"),
    [
        ("2023-10-10", "2023-10-13 19:30"),  # Friday 15:30 EDT
        ("2023-01-10", "2023-01-13 20:30"),  # Friday 15:30 EST
        ("2022-11-22", "2022-11-28 20:30"),  # Thanksgiving: Monday
        ("2024-06-18", "2024-06-24 19:30"),  # Juneteenth on Wednesday: Monday
        ("2021-12-28", "2022-01-03 20:30"),  # New Year's Day observed Friday 31 Dec: Monday
        ("2018-12-18", "2018-12-21 20:30"),  # released the day before the lapse began
        # the CFTC's 2024 schedule (cftc.gov/es/node/132401): holidays after Tuesday -> Monday
        ("2024-07-02", "2024-07-08 19:30"),  # 4 July on Thursday
        ("2024-11-26", "2024-12-02 20:30"),  # Thanksgiving
        ("2024-12-24", "2024-12-30 20:30"),  # Christmas on Wednesday
        ("2024-09-03", "2024-09-06 19:30"),  # Labor Day (Monday) delays nothing
        ("2021-06-15", "2021-06-21 19:30"),  # Juneteenth's first year, observed Friday 18 June
        ("2023-07-03", "2023-07-07 19:30"),  # 4 July on Tuesday (the same rule; in the 2023 file)
        # the catch-up schedules after the lapses (cot/release.py BACKLOG, with sources)
        ("2018-12-24", "2019-02-01 20:30"),  # the first report of the 2018-19 backlog
        ("2018-12-31", "2019-02-05 20:30"),  # Monday data (1 January on Tuesday), Tuesday release
        ("2019-03-05", "2019-03-08 20:30"),  # current again
        # the ION cyber incident of 2023: one by one from 24 Feb, current again on 24 Mar
        ("2023-01-24", "2023-01-27 20:30"),  # the last report before it, on time
        ("2023-01-31", "2023-02-24 20:30"),  # the CFTC's statement of that day
        ("2023-02-07", "2023-03-03 20:30"),
        ("2023-02-28", "2023-03-14 19:30"),  # a Tuesday, after the switch to EDT
        ("2023-03-14", "2023-03-21 19:30"),  # the last catch-up report, on a Tuesday
        ("2023-03-21", "2023-03-24 19:30"),  # the normal schedule again
        ("2025-09-30", "2025-11-19 20:30"),  # the first of the 2025 backlog, on a Wednesday
        ("2025-12-23", "2026-01-09 20:30"),
        ("2026-01-13", "2026-01-20 20:30"),  # the last catch-up report, on a Tuesday
        ("2026-01-20", "2026-01-23 20:30"),  # the normal schedule again
    ],
)
def test_publication_rule(as_of: str, published_utc: str) -> None:
    assert _utc(date.fromisoformat(as_of)) == published_utc


#: The CFTC's 2025 catch-up schedule: as-of date -> its "original publish date" (the normal
#: rule, holidays included; 2025-11-10 is Monday data for Veterans Day on Tuesday)
ORIGINAL_2025 = {
    "2025-09-30": "2025-10-03", "2025-10-07": "2025-10-10", "2025-10-14": "2025-10-17",
    "2025-10-21": "2025-10-24", "2025-10-28": "2025-10-31", "2025-11-04": "2025-11-07",
    "2025-11-10": "2025-11-14", "2025-11-18": "2025-11-21", "2025-11-25": "2025-12-01",
    "2025-12-02": "2025-12-05", "2025-12-09": "2025-12-12", "2025-12-16": "2025-12-19",
    "2025-12-23": "2025-12-29", "2025-12-30": "2026-01-05", "2026-01-06": "2026-01-09",
    "2026-01-13": "2026-01-16", "2026-01-20": "2026-01-23",
}  # fmt: skip


def test_the_rule_gives_the_cftc_s_original_dates_of_2025() -> None:
    cal = Calendar()
    got = {k: cal.scheduled_day(date.fromisoformat(k)).isoformat() for k in ORIGINAL_2025}
    assert got == ORIGINAL_2025


def test_the_backlog_tables_are_in_order_and_never_early() -> None:
    """Each lapse's catch-up reports came out one after the other, each after its normal day."""
    cal = Calendar()
    days = sorted(BACKLOG.items())
    published_in_order = [published for _, published in days]
    assert published_in_order == sorted(set(published_in_order))
    for as_of, published in days:
        assert published > cal.scheduled_day(as_of)
        assert any(start <= published <= end for start, end in LAPSES)


def test_a_report_of_a_lapse_missing_from_the_table_waits_for_the_catch_up() -> None:
    """An as-of date no schedule lists (e.g. a Wednesday) counts as published when the backlog
    was cleared: late, never early."""
    assert _utc(date(2025, 10, 8)) == "2026-01-23 20:30"
    assert _utc(date(2023, 2, 8)) == "2023-03-24 19:30"  # the ION incident's


def test_an_override_beats_the_rule_and_closures_move_the_release() -> None:
    cal = Calendar(closures=["2023-10-12"], overrides={"2023-10-03": "2023-10-09T10:00:00-04:00"})
    assert cal.published_ms(date(2023, 10, 3)) == int(
        datetime(2023, 10, 9, 14, tzinfo=UTC).timestamp() * 1000
    )
    assert cal.published_ms(date(2023, 10, 10)) == int(  # closed Thursday -> Monday
        datetime(2023, 10, 16, 19, 30, tzinfo=UTC).timestamp() * 1000
    )


@pytest.mark.parametrize("bad", [{"overrides": {"2023-10-03": "2023-10-09"}}, {"closures": ["x"]}])
def test_bad_calendar_config_is_a_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        Calendar(**bad)


def test_federal_holidays_2024() -> None:
    assert sorted(d.isoformat() for d in federal_holidays(2024)) == [
        "2024-01-01", "2024-01-15", "2024-02-19", "2024-05-27", "2024-06-19", "2024-07-04",
        "2024-09-02", "2024-10-14", "2024-11-11", "2024-11-28", "2024-12-25",
    ]  # fmt: skip


# ---- against the real files ---------------------------------------------------------------


@pytest.fixture
def tff_lake(cli: Cli, data_dir: Path) -> Path:
    if not TFF:
        pytest.skip("../shared/data/cot is not present")
    for path in TFF:
        cli("cot", "fetch", "--import", str(path), "-f", "jsonl")
    return data_dir


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_delayed_monday_report_is_invisible_before_its_publication(cli: Cli, tff_lake) -> None:
    """As of Tuesday 2022-11-22 (Thanksgiving week): published Monday 2022-11-28 15:30 EST."""

    def latest_btc(as_of: str) -> str:
        out = cli("cot", "--asset", "BTC", "--as-of", as_of, "-f", "jsonl").stdout
        return _jsonl(out)[0]["report_date"]

    assert latest_btc("2022-11-25T21:00Z") == "2022-11-15"  # the Friday it would normally be out
    assert latest_btc("2022-11-28T20:29Z") == "2022-11-15"
    assert latest_btc("2022-11-28T20:30Z") == "2022-11-22"
    frame = pq.read_table(tff_lake / "cot" / "tff_futures_only.parquet").to_pandas()
    monday = int(datetime(2022, 11, 28, 20, 30, tzinfo=UTC).timestamp() * 1000)
    seen = visible(frame, monday - 1)
    assert seen["report_date"].max() < int(datetime(2022, 11, 22, tzinfo=UTC).timestamp() * 1000)


def test_history_index_equals_a_hand_computed_window(cli: Cli, tff_lake: Path) -> None:
    """The 26-week percentile and min-max of BTC asset managers' net on 2023-10-10, worked out
    here from the stored long and short columns with plain Python."""
    out = cli(
        "cot", "history", "--asset", "BTC", "--weeks", "3", "--as-of", "2023-10-14", "-f", "jsonl"
    )
    last = _jsonl(out.stdout)[-1]
    assert last["report_date"] == "2023-10-10"
    frame = pq.read_table(tff_lake / "cot" / "tff_futures_only.parquet").to_pandas()
    btc = frame[frame["code"] == "133741"].sort_values("report_date")
    longs, shorts = btc["asset_mgr_long"].tolist(), btc["asset_mgr_short"].tolist()
    nets = [lo - sh for lo, sh in zip(longs, shorts, strict=True)][-26:]
    x = nets[-1]
    below = sum(v < x for v in nets)
    ties = sum(v == x for v in nets) - 1
    assert last["net_asset_mgr"] == x == 7402 - 517
    assert last["pctl_26"] == round(100 * (below + ties / 2) / 25, 2)
    assert last["cot_index_26"] == round(100 * (x - min(nets)) / (max(nets) - min(nets)), 2)
    assert last["change"] == x - nets[-2]


def test_latest_output_is_strict_json_with_a_reason(cli: Cli, tff_lake: Path) -> None:
    out = cli("cot", "--as-of", "2023-10-14", "-f", "json").stdout
    rows = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert [r["asset"] for r in rows] == ["BTC", "ETH"]
    btc, eth = rows
    assert btc["bias"] in ("BULLISH", "BEARISH", "NEUTRAL")
    assert btc["reason"].startswith(f"BTC {btc['bias']}: asset managers' net long")
    assert eth["pctl_156"] is None and "the index needs 156" in eth["reason"]  # ETH began 2021


@pytest.mark.parametrize(
    "args",
    [
        ("cot", "history", "--asset", "DOGE"),
        ("cot", "--asset", "BTC,DOGE"),
        ("cot", "--report", "disaggregated"),
    ],
)
def test_unknown_asset_or_report_is_one_line_exit_1(cli: Cli, tff_lake: Path, args) -> None:
    before = (tff_lake / "cot" / "tff_futures_only.parquet").read_bytes()
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "unknown" in result.stderr
    assert (tff_lake / "cot" / "tff_futures_only.parquet").read_bytes() == before


def test_a_category_from_the_other_family_is_refused(tff_lake: Path) -> None:
    env = {"CRYPTOBOT_DATA_DIR": str(tff_lake), "CRYPTOBOT__COT__CATEGORY": "noncomm"}
    result = Cli(env)("cot", ok=False)
    assert result.exit_code == 1 and "not in the tff_futures_only report" in result.stderr


def test_legacy_report_reads_non_commercials(cli: Cli, data_dir: Path) -> None:
    legacy = COT / "legacy_futures_only" / "deacot2025.zip"
    if not legacy.exists():
        pytest.skip("../shared/data/cot is not present")
    cli("cot", "fetch", "--import", str(legacy), "-f", "jsonl")
    args = ("cot", "history", "--report", "legacy_futures_only", "--asset", "BTC", "-f", "jsonl")
    last = _jsonl(cli(*args, "--category", "noncomm", "--as-of", "2025-03-22").stdout)[-1]
    assert (last["report_date"], last["net_noncomm"], last["measure"]) == ("2025-03-18", 1841, 1841)
    assert last["bias"] == "NEUTRAL" and "11 weeks of reports" in last["reason"]
    bad = cli(*args, "--category", "asset_mgr", ok=False)
    assert bad.exit_code == 1 and "use one of noncomm, comm, nonrept" in bad.stderr


def test_the_table_shows_the_configured_measure_and_method(cli: Cli, tff_lake: Path) -> None:
    out = cli("cot", "--as-of", "2023-10-14", "-f", "table").stdout
    assert "pctl_156" in out and "net_asset_mgr" in out and "BULLISH" in out
    assert "cot_index_156" not in out and "net_pct_oi" not in out
    env = {"CRYPTOBOT_DATA_DIR": str(tff_lake), "CRYPTOBOT__COT__METHOD": "minmax",
           "CRYPTOBOT__COT__MEASURE": "net_pct_oi"}  # fmt: skip
    out = Cli(env)("cot", "--as-of", "2023-10-14", "-f", "table").stdout
    assert "cot_index_156" in out and "net_pct_oi_asset_mgr" in out and "pctl_156" not in out


def test_history_chart_is_a_self_contained_page(cli: Cli, tff_lake: Path, tmp_path: Path) -> None:
    """The page holds one inlined PNG of the report's size; the figure drawn for the same rows
    has one line per TFF category with the rows' nets, the index line with a gap (not a zero)
    where the index is undefined, and the two thresholds."""
    chart = tmp_path / "cot-btc.html"
    args = ("cot", "history", "--asset", "BTC", "--weeks", "156", "--as-of", "2023-10-14")
    rows = _jsonl(cli(*args, "--chart", str(chart), "-f", "jsonl").stdout)
    page = chart.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert f"{len(rows)} reports" in page and page.count("data:image/png;base64,") == 1
    png = base64.b64decode(page.split("data:image/png;base64,")[1].split("'")[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == cot_chart.SIZE_PX

    frame = pd.DataFrame(rows)
    frame["report_date"] = pd.to_datetime(frame["report_date"]).astype("int64") // 10**6
    frame = frame.astype({c: float for c in frame.columns if c.startswith(("net_", "pctl_"))})
    categories = ("asset_mgr", "lev_money", "dealer", "other_rept", "nonrept")
    cfg = load_settings(env={}).cot
    fig = cot_chart.history_figure(frame, asset="BTC", categories=categories, index="pctl_156",
                                   cfg=cfg)  # fmt: skip
    nets, index = fig.axes
    labels = [ln.get_label() for ln in nets.get_lines()]
    assert labels[:5] == [CATEGORY_LABELS[c] for c in categories]
    for line, category in zip(nets.get_lines(), categories, strict=False):
        assert np.array_equal(line.get_ydata(), frame[f"net_{category}"].to_numpy())
    drawn, *bands = index.get_lines()
    values = np.asarray(drawn.get_ydata(), dtype=float)
    assert np.isfinite(values).sum() == sum(r["pctl_156"] is not None for r in rows) > 100
    assert [b.get_label() for b in bands] == ["BULLISH at 80", "BEARISH at 20"]
