"""COT parsing and storage against the CFTC's own files in ../shared/data/cot."""

import csv
import io
import re
import zipfile
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.core.errors import DataError
from cryptobot.cot.parse import fold, parse_records, read_zip, rows_of_text
from cryptobot.cot.reports import REPORTS, position_columns
from tests.conftest import Cli
from tests.cot_server import COT

ZIPS = sorted(COT.glob("*/*.zip"))
LATEST = date(2030, 1, 1)  # "today" for the parser: no report can be dated after it
needs_cot = pytest.mark.skipif(not ZIPS, reason="../shared/data/cot is not present")
EXPECTED_TYPE = {
    "tff_futures_only": "tff_futures_only",
    "tff_futures_and_options_combined": "tff_combined",
    "legacy_futures_only": "legacy_futures_only",
}


def raw_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows keyed by its own header, read with the csv module only."""
    with zipfile.ZipFile(path) as zf:
        text = zf.read(zf.namelist()[0]).decode("latin-1")
    return [
        {k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))
    ]


@needs_cot
@pytest.mark.parametrize("path", ZIPS, ids=lambda p: p.name)
def test_every_shared_file_parses_every_market(path: Path) -> None:
    report, rows = read_zip(path.read_bytes(), path.name)
    assert report.name == EXPECTED_TYPE[path.parent.name]
    codes = {r["cftc_contract_market_code"].strip() for r in rows}
    records = parse_records(rows, report, codes, path.name, latest=LATEST)
    assert len(records) == len(raw_rows(path)) > 1000
    assert "133741" in {r["code"] for r in records}


TFF_HEADERS = {
    "dealer": "Dealer_Positions_{}_All",
    "asset_mgr": "Asset_Mgr_Positions_{}_All",
    "lev_money": "Lev_Money_Positions_{}_All",
    "other_rept": "Other_Rept_Positions_{}_All",
    "nonrept": "NonRept_Positions_{}_All",
}
LEGACY_HEADERS = {
    "noncomm": "Noncommercial Positions-{} (All)",
    "comm": "Commercial Positions-{} (All)",
    "nonrept": "Nonreportable Positions-{} (All)",
}


TFF_KEYS = ("CFTC_Contract_Market_Code", "Report_Date_as_YYYY-MM-DD")
LEGACY_KEYS = ("CFTC Contract Market Code", "As of Date in Form YYYY-MM-DD")


@needs_cot
@pytest.mark.parametrize(
    ("folder", "year_file", "headers", "keys"),
    [
        ("tff_futures_only", "fut_fin_txt_2022.zip", TFF_HEADERS, TFF_KEYS),
        ("tff_futures_only", "fut_fin_txt_2023.zip", TFF_HEADERS, TFF_KEYS),
        ("legacy_futures_only", "deacot2025.zip", LEGACY_HEADERS, LEGACY_KEYS),
    ],
)
def test_stored_positions_equal_the_raw_file(
    cli: Cli, data_dir: Path, folder: str, year_file: str, headers: dict, keys: tuple
) -> None:
    path = COT / folder / year_file
    cli("cot", "fetch", "--import", str(path), "-f", "jsonl")
    stored = pq.read_table(data_dir / "cot" / f"{folder}.parquet").to_pandas()
    code_col, date_col = keys
    raw = [r for r in raw_rows(path) if r[code_col] in ("133741", "146021")]
    sample = raw[:: max(1, len(raw) // 8)]  # several dates of both contracts
    assert len(sample) >= 8 and {r[code_col] for r in sample} == {"133741", "146021"}
    for row in sample:
        got = stored[
            (stored["code"] == row[code_col]) & (stored["report_date"] == _ms(row[date_col]))
        ]
        assert len(got) == 1, (row[code_col], row[date_col])
        for cat, template in headers.items():
            for side in ("Long", "Short"):
                assert int(got[f"{cat}_{side.lower()}"].iloc[0]) == int(row[template.format(side)])
    assert stored["code"].isin(["133741", "146021"]).sum() == len(raw)


def _ms(day: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("file_name", "api_name"),
    [
        ("Lev_Money_Positions_Long_All", "lev_money_positions_long"),
        ("Dealer_Positions_Short_All", "dealer_positions_short_all"),
        ("Noncommercial Positions-Spreading (All)", "noncomm_postions_spread_all"),
        ("Commercial Positions-Long (All)", "comm_positions_long_all"),
        ("Nonreportable Positions-Short (All)", "nonrept_positions_short_all"),
        ("Open Interest (All)", "open_interest_all"),
        ("NonRept_Positions_Long_All", "nonrept_positions_long"),
    ],
)
def test_file_and_api_spellings_fold_to_one_key(file_name: str, api_name: str) -> None:
    assert fold(file_name) == fold(api_name)


@given(st.sampled_from(sorted(REPORTS)), st.data())
def test_every_stored_column_has_an_api_spelling_with_and_without_all(report_name, data):
    col = data.draw(st.sampled_from(position_columns(REPORTS[report_name])))
    cat, side = col.rsplit("_", 1)
    key = f"{cat}_positions_{side}"
    assert fold(key) == fold(key + "_all") == fold(key.upper() + "_All") == key


HEADER = (
    "Market_and_Exchange_Names,Report_Date_as_YYYY-MM-DD,CFTC_Contract_Market_Code,"
    "Open_Interest_All,"
    + ",".join(f"{t.format(s)}" for t in TFF_HEADERS.values() for s in ("Long", "Short", "Spread"))
    + ",FutOnly_or_Combined"
)


def _line(code: str, value: str = "5") -> str:
    return f'"BITCOIN - CME",2023-10-10,{code},100,' + ",".join([value] * 15) + ",FutOnly"


@pytest.mark.parametrize("bad", ["NaN", "inf", "1.5", "-3", "", "1e3"])
def test_a_bad_number_in_a_wanted_row_is_refused_with_the_row_named(bad: str) -> None:
    text = "\n".join([HEADER, _line("133741"), _line("146021", bad)])
    report, rows = rows_of_text(text, "x.txt")
    with pytest.raises(DataError, match=r"x.txt row 2 \(146021\).*(not a whole|missing)"):
        parse_records(rows, report, {"133741", "146021"}, "x.txt", latest=LATEST)


def test_a_bad_number_in_a_market_nobody_asked_for_does_not_stop_the_import() -> None:
    text = "\n".join([HEADER, _line("133741"), _line("099741", "NaN")])
    report, rows = rows_of_text(text, "x.txt")
    records = parse_records(rows, report, {"133741"}, "x.txt", latest=LATEST)
    assert [r["code"] for r in records] == ["133741"]
    assert records[0]["asset_mgr_long"] == 5


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Market_and_Exchange_Names,Prod_Merc_Positions_Long_All", "disaggregated"),
        ("date,open,high,low,close", "not a Commitments of Traders report"),
        ("", "empty"),
    ],
)
def test_other_files_are_named_for_what_they_are(header: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        rows_of_text(header, "x.txt")


def test_a_corrupt_zip_is_refused() -> None:
    with pytest.raises(DataError, match="not a readable zip"):
        read_zip(b"PK\x03\x04 truncated", "fut_fin_txt_2023.zip")


@needs_cot
def test_the_text_inside_a_zip_imports_too_and_keeps_its_raw_copy_apart(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    texts = []
    for year in (2022, 2023):
        path = COT / "tff_futures_only" / f"fut_fin_txt_{year}.zip"
        with zipfile.ZipFile(path) as zf:
            text = tmp_path / path.stem / "FinFutYY.txt"  # the CFTC's name for every year
            text.parent.mkdir()
            text.write_bytes(zf.read(zf.namelist()[0]))
            texts.append(text)
    for text in texts:
        cli("cot", "fetch", "--import", str(text), "-f", "jsonl")
    raw = sorted(p.name for p in (data_dir / "cot" / "raw" / "tff_futures_only").iterdir())
    assert len(raw) == 2 and all(name.endswith("-FinFutYY.txt") for name in raw)
    stored = pq.read_table(data_dir / "cot" / "tff_futures_only.parquet").to_pandas()
    assert len(stored) == 208 + 164


def _dated(day: str, code: str = "133741", value: str = "5") -> str:
    return _line(code, value).replace("2023-10-10", day)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        ("2031-10-07", "report date 2031-10-07 is after today (2030-01-01)"),
        ("0001-01-02", "before the first COT report"),
        ("2023-10-10T99:99junk", "not a YYYY-MM-DD date"),
    ],
)
def test_a_report_from_the_future_or_the_distant_past_is_refused_with_its_row(day: str, why: str):
    """A week dated after today can have been published by no one; stored, it also stopped
    ``cot fetch`` for good (it asked only for weeks after it)."""
    report, rows = rows_of_text("\n".join([HEADER, _dated("2023-10-10"), _dated(day)]), "x.txt")
    with pytest.raises(DataError, match=r"x.txt row 2 \(133741\).*" + re.escape(why)):
        parse_records(rows, report, {"133741"}, "x.txt", latest=LATEST)


def test_the_apis_midnight_time_is_a_date():
    report, rows = rows_of_text("\n".join([HEADER, _dated("2023-10-10T00:00:00.000")]), "x.txt")
    (record,) = parse_records(rows, report, {"133741"}, "x.txt", latest=LATEST)
    assert record["report_date"] == date(2023, 10, 10)


def test_one_week_given_twice_with_different_figures_is_refused_naming_both_rows():
    text = "\n".join([HEADER, _dated("2023-10-10"), _dated("2023-10-10", value="1")])
    report, rows = rows_of_text(text, "x.txt")
    with pytest.raises(DataError, match=r"x\.txt row 1 and x\.txt row 2 hold different figures"):
        parse_records(rows, report, {"133741"}, "x.txt", latest=LATEST)
    same = "\n".join([HEADER, _dated("2023-10-10"), _dated("2023-10-10")])
    report, rows = rows_of_text(same, "x.txt")
    assert len(parse_records(rows, report, {"133741"}, "x.txt", latest=LATEST)) == 1


def test_a_count_too_large_for_a_column_is_refused_with_its_row():
    text = "\n".join([HEADER, _dated("2023-10-10", value="9" * 20)])
    report, rows = rows_of_text(text, "x.txt")
    with pytest.raises(DataError, match=r"x.txt row 1 \(133741\).*too large"):
        parse_records(rows, report, {"133741"}, "x.txt", latest=LATEST)
