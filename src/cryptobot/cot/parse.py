"""Reading COT rows in either spelling into one record shape.

The yearly files say ``Lev_Money_Positions_Long_All`` or ``Noncommercial Positions-Long (All)``;
the Socrata API says ``lev_money_positions_long`` or ``noncomm_positions_long_all`` (and, in the
legacy dataset, ``noncomm_postions_spread_all``). Every name is folded to one key: lower case,
runs of other characters to ``_``, a trailing ``_all`` dropped, and the long words shortened the
way the API shortens them. Values must be whole, non-negative numbers: a blank, ``NaN`` or
``1.5`` is refused with the row named, never stored.
"""

import csv
import io
import re
import zipfile
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cryptobot.core.errors import DataError
from cryptobot.cot.reports import ReportType, position_columns, report_type

_WORDS = {
    "noncommercial": "noncomm",
    "commercial": "comm",
    "nonreportable": "nonrept",
    "spreading": "spread",
    "postions": "positions",
}
_DATE_KEYS = ("report_date_as_yyyy_mm_dd", "as_of_date_in_form_yyyy_mm_dd")
FIRST_REPORT = date(1986, 1, 1)  # the CFTC's historical files begin in 1986
_OTHER_REPORTS = {
    "prod_merc_positions_long": "a disaggregated report",
    "m_money_positions_long": "a disaggregated report",
    "cit_positions_long": "a supplemental (index traders) report",
}


def fold(name: str) -> str:
    """One key for every spelling of a column name."""
    words = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_").split("_")
    key = "_".join(_WORDS.get(w, w) for w in words)
    return key.removesuffix("_all")


def family_of(keys: Iterable[str]) -> str:
    """``tff`` or ``legacy`` from the folded column names; anything else is refused."""
    found = set(keys)
    if "asset_mgr_positions_long" in found:
        return "tff"
    if "noncomm_positions_long" in found:
        return "legacy"
    other = next((what for key, what in _OTHER_REPORTS.items() if key in found), None)
    raise DataError(
        f"{other or 'not a Commitments of Traders report'}: cryptobot reads the TFF and legacy "
        "COT reports (fut_fin_txt/com_fin_txt, deacot/deacom)"
    )


def parse_row(row: Mapping[str, Any], report: ReportType, where: str) -> dict[str, Any]:
    """One folded row -> the stored record (positions as ints, the as-of date as a date)."""
    code = _text(row, "cftc_contract_market_code", where)
    when = f"{where} ({code})"
    rec: dict[str, Any] = {
        "code": code,
        "market": _text(row, "market_and_exchange_names", where),
        "report_date": _date(row, when),
        "open_interest": _count(row, "open_interest", when),
    }
    for col in position_columns(report):
        cat, side = col.rsplit("_", 1)
        rec[col] = _count(row, f"{cat}_positions_{side}", when)
    return rec


def rows_of_text(text: str, name: str) -> tuple[ReportType, list[dict[str, Any]]]:
    """A CFTC comma-delimited file (header line first) -> its report type and folded rows."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(f"{name} is empty; expected a CFTC COT file with a header line")
    keys = [fold(h) for h in header]
    family = family_of(keys)
    rows = [dict(zip(keys, values, strict=False)) for values in reader if values]
    return report_type(family=family, combined=_combined(rows, name)), rows


def read_zip(data: bytes, name: str) -> tuple[ReportType, list[dict[str, Any]]]:
    """The text inside one of the CFTC's yearly zips, validated: a corrupt archive, or one
    without exactly one text file, is refused before anything is stored."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [i for i in zf.infolist() if i.filename.lower().endswith(".txt")]
            if len(members) != 1:
                raise DataError(f"{name} holds {len(members)} .txt files; expected one CFTC file")
            text = zf.read(members[0]).decode("latin-1")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise DataError(f"{name} is not a readable zip ({exc}); download it again") from None
    return rows_of_text(text, name)


def parse_records(
    rows: Iterable[Mapping[str, Any]],
    report: ReportType,
    codes: Collection[str],
    source: str,
    *,
    latest: date,
) -> list[dict[str, Any]]:
    """The rows of the wanted contract codes as records; others are skipped unread (a bad
    value in a contract nobody asked for must not stop the import). A report dated after
    ``latest`` (the caller's today: none can have been published yet) or before the first
    COT report, and one week of a contract given twice with different figures, are refused
    naming the rows; a week repeated as it was is kept once."""
    out: dict[tuple[str, date], tuple[str, dict[str, Any]]] = {}
    for i, row in enumerate(rows, start=1):
        code = str(row.get("cftc_contract_market_code", "")).strip()
        if code not in codes:
            continue
        where = f"{source} row {i}"
        rec = parse_row(row, report, where)
        day = rec["report_date"]
        if not FIRST_REPORT <= day <= latest:
            raise DataError(f"{where} ({code}): report date {day} is "
                            + (f"after today ({latest})" if day > latest else
                               f"before the first COT report ({FIRST_REPORT})"))  # fmt: skip
        seen = out.get((code, day))
        if seen is not None and seen[1] != rec:
            raise DataError(f"{seen[0]} and {where} hold different figures for {code} on {day}")
        out.setdefault((code, day), (where, rec))
    return [rec for _, rec in out.values()]


def _combined(rows: list[dict[str, Any]], name: str) -> bool:
    """TFF rows say ``FutOnly`` or ``Combined``; the legacy files only in their name."""
    marks = {str(r.get("futonly_or_combined", "")).strip().lower() for r in rows[:50]} - {""}
    if marks:
        return marks == {"combined"}
    return Path(name).name.lower().startswith("deacom")


def _text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None or not str(value).strip():
        raise DataError(f"{where}: missing {key}")
    return str(value).strip()


def _date(row: Mapping[str, Any], where: str) -> date:
    """The as-of date: ``2023-10-10``, or the API's ``2023-10-10T00:00:00.000``; anything
    after the date must read as a time (``…T99:99junk`` is no date)."""
    key = next((k for k in _DATE_KEYS if row.get(k)), _DATE_KEYS[0])
    text = _text(row, key, where)
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise DataError(f"{where}: {key} is {text!r}, not a YYYY-MM-DD date") from None


def _count(row: Mapping[str, Any], key: str, where: str) -> int:
    text = _text(row, key, where)
    if not re.fullmatch(r"\d+", text):
        raise DataError(f"{where}: {key} is {text!r}, not a whole number of contracts")
    if len(text) > 18:  # beyond what a 64-bit column holds, and any market's open interest
        raise DataError(f"{where}: {key} is {text}, too large for a number of contracts")
    return int(text)
