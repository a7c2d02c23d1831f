"""The CFTC report types cryptobot reads, their trader categories and where each is published.

Two families: Traders in Financial Futures (TFF: dealers, asset managers, leveraged funds,
other reportables) and the legacy report (non-commercial, commercial). Each comes as futures
only or futures-and-options combined; the Socrata dataset id and the yearly zip name differ.
"""

from dataclasses import dataclass

from cryptobot.core.errors import CryptobotError

TFF_CATEGORIES = ("dealer", "asset_mgr", "lev_money", "other_rept", "nonrept")
LEGACY_CATEGORIES = ("noncomm", "comm", "nonrept")
#: Categories the CFTC reports spreading for; the others have long and short only.
SPREADING = frozenset({"dealer", "asset_mgr", "lev_money", "other_rept", "noncomm"})
CATEGORY_LABELS = {
    "dealer": "dealers",
    "asset_mgr": "asset managers",
    "lev_money": "leveraged funds",
    "other_rept": "other reportables",
    "nonrept": "non-reportables",
    "noncomm": "non-commercials",
    "comm": "commercials",
}


@dataclass(frozen=True)
class ReportType:
    name: str
    family: str  # "tff" | "legacy"
    combined: bool
    dataset: str  # Socrata dataset id on publicreporting.cftc.gov
    zip_template: str  # yearly file name under the CFTC's history folder

    @property
    def categories(self) -> tuple[str, ...]:
        return TFF_CATEGORIES if self.family == "tff" else LEGACY_CATEGORIES

    def zip_name(self, year: int) -> str:
        return self.zip_template.format(year=year)


#: Dataset ids checked offline against several independent Socrata clients and notes (e.g. the
#: sodapy example listing "Legacy Combined Report: jun7-fc8e ... TFF Futures Only Report:
#: gpe5-46if, TFF Combined Report: yw9f-hn96", the victorKariuki/cftc-cot wiki, and a probe of
#: 6dca-aqww returning ``futonly_or_combined=FutOnly`` rows for 133741). Zip names: the files in
#: ../shared/data/cot (fut_fin_txt, com_fin_txt, deacot) and cftc.gov/files/dea/history/deacom
#: {year}.zip in several downloaders. Not checked against the live API from here (offline).
REPORTS = {
    r.name: r
    for r in (
        ReportType("tff_futures_only", "tff", False, "gpe5-46if", "fut_fin_txt_{year}.zip"),
        ReportType("tff_combined", "tff", True, "yw9f-hn96", "com_fin_txt_{year}.zip"),
        ReportType("legacy_futures_only", "legacy", False, "6dca-aqww", "deacot{year}.zip"),
        ReportType("legacy_combined", "legacy", True, "jun7-fc8e", "deacom{year}.zip"),
    )
}


def report_type(*, family: str, combined: bool) -> ReportType:
    return next(r for r in REPORTS.values() if r.family == family and r.combined == combined)


def position_columns(report: ReportType) -> list[str]:
    """Stored columns per category: ``<cat>_long``, ``<cat>_short`` and, where the CFTC
    reports it, ``<cat>_spread``."""
    cols = []
    for cat in report.categories:
        sides = ("long", "short", "spread") if cat in SPREADING else ("long", "short")
        cols += [f"{cat}_{side}" for side in sides]
    return cols


def check_category(report: ReportType, category: str) -> None:
    if category not in report.categories:
        raise CryptobotError(
            f"category {category!r} is not in the {report.name} report; "
            f"use one of {', '.join(report.categories)} (cot.category)"
        )
