"""A loopback stand-in for the CFTC: the Socrata Public Reporting API and the yearly zips.

``/resource/<dataset>.json`` answers SoQL queries the way publicreporting.cftc.gov does for the
filters ``cot fetch`` sends (``cftc_contract_market_code in(...)``, ``report_date_as_yyyy_mm_dd
> '...'``, ``$order``, ``$limit``, ``$offset``): rows of the real files in
``../shared/data/cot``, renamed to the API's spellings (lower case, ``asset_mgr_positions_long``
without ``_all``, ``noncomm_positions_long_all``, the legacy ``noncomm_postions_spread_all``
typo, dates as floating timestamps) and every value a string, as Socrata sends them.
``/files/<name>.zip`` serves the yearly zips byte for byte.

Faults on demand: ``api_down`` (HTTP 503 for the API), ``drop_field`` (a field removed from
one row of the first page), ``zip_override`` (name -> bytes served instead of the real file).
Not the parser under test: the renaming below is written out independently of cryptobot.cot.
"""

import csv
import io
import json
import re
import threading
import zipfile
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.emulator.binance_usdm import SHARED
from tests.emulator.loopback import LoopbackServer

COT = SHARED / "cot"
DATASETS = {
    "gpe5-46if": "tff_futures_only",
    "yw9f-hn96": "tff_futures_and_options_combined",
    "6dca-aqww": "legacy_futures_only",
}
_LEGACY_API = {  # file header -> API field, the legacy dataset
    "Noncommercial Positions-Long (All)": "noncomm_positions_long_all",
    "Noncommercial Positions-Short (All)": "noncomm_positions_short_all",
    "Noncommercial Positions-Spreading (All)": "noncomm_postions_spread_all",
    "Commercial Positions-Long (All)": "comm_positions_long_all",
    "Commercial Positions-Short (All)": "comm_positions_short_all",
    "Nonreportable Positions-Long (All)": "nonrept_positions_long_all",
    "Nonreportable Positions-Short (All)": "nonrept_positions_short_all",
    "Open Interest (All)": "open_interest_all",
    "As of Date in Form YYYY-MM-DD": "report_date_as_yyyy_mm_dd",
    "CFTC Contract Market Code": "cftc_contract_market_code",
    "Market and Exchange Names": "market_and_exchange_names",
}
_TFF_WITHOUT_ALL = ("Asset_Mgr_", "Lev_Money_", "Other_Rept_", "NonRept_")


def api_name(header: str, legacy: bool) -> str | None:
    if legacy:
        return _LEGACY_API.get(header.strip())
    name = header.strip().lower().replace("-", "_")
    if header.startswith(_TFF_WITHOUT_ALL) and "_Positions_" in header:
        name = name.removesuffix("_all")
    return name


@cache
def api_rows(folder: str) -> tuple[dict[str, str], ...]:
    """Every row of every zip in ``folder`` as the API would return it (parsed once per
    process: servers only read them, and hand out copies)."""
    legacy = folder.startswith("legacy")
    out = []
    for path in sorted((COT / folder).glob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode("latin-1")
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        for values in reader:
            row = {}
            for h, v in zip(header, values, strict=False):
                name = api_name(h, legacy)
                if name:
                    row[name] = v.strip()
            row["report_date_as_yyyy_mm_dd"] += "T00:00:00.000"
            out.append(row)
    return tuple(out)


class CftcServer(LoopbackServer):
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.api_down = False
        self.drop_field: str | None = None
        self.zip_override: dict[str, bytes] = {}
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    def count(self, prefix: str) -> int:
        return sum(h.startswith(prefix) for h in self.hits)

    def rows(self, dataset: str) -> tuple[dict[str, str], ...]:
        with self._lock:
            return api_rows(DATASETS[dataset])

    def query(self, dataset: str, q: dict[str, str]) -> list[dict[str, Any]]:
        where = q.get("$where", "")
        rows = self.rows(dataset)
        codes = re.search(r"cftc_contract_market_code in\(([^)]*)\)", where)
        if codes:
            wanted = set(re.findall(r"'([^']*)'", codes.group(1)))
            rows = [r for r in rows if r["cftc_contract_market_code"] in wanted]
        after = re.search(r"report_date_as_yyyy_mm_dd > '([^']*)'", where)
        if after:
            rows = [r for r in rows if r["report_date_as_yyyy_mm_dd"] > after.group(1)]
        rows = sorted(
            rows, key=lambda r: (r["report_date_as_yyyy_mm_dd"], r["cftc_contract_market_code"])
        )
        offset, limit = int(q.get("$offset", 0)), int(q.get("$limit", 1000))
        page = [dict(r) for r in rows[offset : offset + limit]]
        if self.drop_field and page and offset == 0:
            page[len(page) // 2].pop(self.drop_field, None)
        return page

    def zip_bytes(self, name: str) -> bytes | None:
        if name in self.zip_override:
            return self.zip_override[name]
        found = list(COT.glob(f"*/{name}"))
        return found[0].read_bytes() if found else None


def _handler(server: CftcServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            with server._lock:
                server.hits.append(url.path)
            if url.path.startswith("/resource/"):
                dataset = Path(url.path).name.removesuffix(".json")
                if server.api_down:
                    return self._send(503, b'{"message": "down"}', "application/json")
                if dataset not in DATASETS:
                    return self._send(404, b'{"message": "no such dataset"}', "application/json")
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                body = json.dumps(server.query(dataset, q)).encode()
                return self._send(200, body, "application/json")
            if url.path.startswith("/files/"):
                data = server.zip_bytes(Path(url.path).name)
                if data is None:
                    return self._send(404, b"not found", "text/plain")
                return self._send(200, data, "application/zip")
            return self._send(404, b"not found", "text/plain")

        def _send(self, status: int, payload: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
