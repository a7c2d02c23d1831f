"""Downloading COT reports: the CFTC's Socrata API first, the yearly zips when it fails.

The API is asked only for the configured contract codes and only for as-of dates after the
newest one stored, in pages of ``cot.page_size`` (so an up-to-date lake costs one request that
returns nothing). When the API cannot be reached (connection refused, timeout, HTTP error) the
yearly zips are downloaded instead, from the newest stored year on. A page or a file that
arrives but is wrong (a missing field, a corrupt zip, another report type) is an error, not a
reason to fall back: nothing is stored from that run and the message names the culprit.
"""

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from cryptobot.core.errors import CryptobotError, DataError
from cryptobot.core.settings import CotBiasSettings
from cryptobot.core.timeutil import iso
from cryptobot.cot.parse import fold, parse_records, read_zip, rows_of_text
from cryptobot.cot.release import Calendar
from cryptobot.cot.reports import REPORTS, ReportType
from cryptobot.cot.store import CotLake

Source = Literal["auto", "api", "zip"]
Records = list[dict[str, Any]]
Raws = list[tuple[str, bytes]]


class Unreachable(CryptobotError):
    """The server did not answer usefully (network, timeout, HTTP status)."""


@dataclass
class Http:
    """GET with a timeout; counts requests so a caller can say what a fetch cost."""

    timeout_s: float
    requests: int = 0
    log: list[str] = field(default_factory=list)

    def get(self, url: str) -> bytes | None:
        """The body, or None for 404 (a yearly file not published yet)."""
        self.requests += 1
        self.log.append(url)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise Unreachable(f"{_host(url)} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"{_host(url)} unreachable ({reason})") from None


@dataclass(frozen=True)
class FetchResult:
    report: str
    source: str
    requests: int
    new_rows: int
    total_rows: int
    last_report_date: str | None


def calendar_of(cfg: CotBiasSettings) -> Calendar:
    return Calendar(closures=cfg.closures, overrides=cfg.publication_overrides)


def fetch_report(
    lake: CotLake,
    report: ReportType,
    *,
    cfg: CotBiasSettings,
    now_ms: int,
    source: Source = "auto",
    warn: Callable[[str], None] = lambda _: None,
) -> FetchResult:
    """Bring ``report`` up to date for the configured codes; ``warn`` hears of a fallback."""
    http = Http(cfg.timeout_s)
    codes = set(cfg.markets.values())
    last = lake.last_dates(report)
    since = min(last[c] for c in codes) if codes <= set(last) else None
    if since is not None:  # a week stored from the future (before such rows were refused)
        since = min(since, now_ms)
    used = source
    ask = _Ask(report, cfg, http, frozenset(codes), since, now_ms)
    try:
        if source == "zip":
            records, raws = _zip_records(ask, warn)
        else:
            used = "api"
            records, raws = _api_records(ask)
    except Unreachable as exc:
        if source != "auto":
            raise
        warn(f"{exc}; falling back to the yearly zips")
        used = "zip"
        records, raws = _zip_records(ask, warn)
    result = lake.store(report, records, raws, calendar=calendar_of(cfg), source=used)
    return _result(lake, report, used, http.requests, result.new_rows, result.total_rows)


def import_file(
    lake: CotLake,
    path: Path,
    *,
    cfg: CotBiasSettings,
    now_ms: int,
    expect: ReportType | None = None,
) -> FetchResult:
    """Store one of the CFTC's own files (a yearly zip or its text) without the network."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CryptobotError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".zip":
        report, rows = read_zip(data, path.name)
    else:
        report, rows = rows_of_text(data.decode("latin-1"), path.name)
    if expect is not None and report != expect:
        raise DataError(f"{path.name} holds the {report.name} report, not {expect.name}")
    records = parse_records(rows, report, set(cfg.markets.values()), path.name,
                            latest=_today(now_ms))  # fmt: skip
    # the zips are named per year; the text inside is not (annual.txt, FinFutYY.txt)
    raw_name = path.name if path.suffix.lower() == ".zip" else f"{_sha(data)}-{path.name}"
    result = lake.store(
        report,
        records,
        [(raw_name, data)],
        calendar=calendar_of(cfg),
        source=f"import:{path.name}",
    )
    return _result(lake, report, "import", 0, result.new_rows, result.total_rows)


@dataclass(frozen=True)
class _Ask:
    """What one fetch asks for: the report, the settings, the client, the wanted contract
    codes, the newest week stored of them (None: all history) and the caller's clock."""

    report: ReportType
    cfg: CotBiasSettings
    http: Http
    codes: frozenset[str]
    since: int | None
    now_ms: int


def _api_records(ask: _Ask) -> tuple[Records, Raws]:
    report, cfg, http, codes, since = ask.report, ask.cfg, ask.http, ask.codes, ask.since
    where = "cftc_contract_market_code in(" + ",".join(f"'{c}'" for c in sorted(codes)) + ")"
    if since is not None:
        where += f" AND report_date_as_yyyy_mm_dd > '{_floating(since)}'"
    records: Records = []
    raws: Raws = []
    offset = 0
    while True:
        query = {
            "$where": where,
            "$order": "report_date_as_yyyy_mm_dd,cftc_contract_market_code",
            "$limit": cfg.page_size,
            "$offset": offset,
        }
        url = f"{cfg.api_base.rstrip('/')}/{report.dataset}.json?{urllib.parse.urlencode(query)}"
        body = http.get(url)
        if body is None:
            raise Unreachable(f"{_host(url)} has no dataset {report.dataset}")
        page = _page(body, report, offset)
        where_page = f"{report.dataset} rows {offset + 1}-{offset + len(page)}"
        rows = [{fold(k): v for k, v in row.items()} for row in page]
        records += parse_records(rows, report, codes, where_page, latest=_today(ask.now_ms))
        if page:
            raws.append((f"api-{_sha(body)}.json", body))
        if len(page) < cfg.page_size:
            return records, raws
        offset += cfg.page_size


def _page(body: bytes, report: ReportType, offset: int) -> list[dict[str, Any]]:
    try:
        page = json.loads(body)
    except ValueError:
        page = None
    if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
        raise DataError(
            f"{report.dataset} page at offset {offset} is not a JSON list of rows; "
            "is cot.api_base a Socrata endpoint?"
        )
    return page


def _zip_records(ask: _Ask, warn: Callable[[str], None]) -> tuple[Records, Raws]:
    report, cfg, http, codes, since = ask.report, ask.cfg, ask.http, ask.codes, ask.since
    this_year = datetime.fromtimestamp(ask.now_ms / 1000, UTC).year
    first = datetime.fromtimestamp(since / 1000, UTC).year if since is not None else cfg.first_year
    records: Records = []
    raws: Raws = []
    missing = []
    for year in range(first, this_year + 1):
        name = report.zip_name(year)
        data = http.get(f"{cfg.files_base.rstrip('/')}/{name}")
        if data is None:  # early January the new year's file does not exist yet
            missing.append(name)
            continue
        found, rows = read_zip(data, name)
        if found != report:
            raise DataError(f"{name} holds the {found.name} report, not {report.name}")
        records += parse_records(rows, report, codes, name, latest=_today(ask.now_ms))
        raws.append((name, data))
    if not raws:
        raise Unreachable(f"none of {', '.join(missing)} is at {cfg.files_base}")
    if missing:
        warn(f"not published at {cfg.files_base}: {', '.join(missing)}")
    return records, raws


def _result(
    lake: CotLake, report: ReportType, source: str, requests: int, new: int, total: int
) -> FetchResult:
    last = lake.last_dates(report)
    newest = iso(max(last.values())) if last else None
    return FetchResult(report.name, source, requests, new, total, newest and newest[:10])


def _today(now_ms: int) -> date:
    """The UTC date of ``now_ms``: no report can be dated after it."""
    return datetime.fromtimestamp(now_ms / 1000, UTC).date()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _floating(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000")


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def report_named(name: str) -> ReportType:
    if name not in REPORTS:
        raise CryptobotError(f"unknown COT report {name!r}; use one of {', '.join(REPORTS)}")
    return REPORTS[name]
