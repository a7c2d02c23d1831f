"""``cryptobot cot``: CFTC Commitments of Traders for CME Bitcoin/Ether -> a weekly bias.

The COT library and pandas load inside the commands, so ``cryptobot cot --help`` stays quick.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cryptobot.cli.context import AppContext
from cryptobot.cli.output import Format, FormatOpt, OutputOpt, check_file, render
from cryptobot.core.errors import DataError
from cryptobot.core.timeutil import iso, parse_time

if TYPE_CHECKING:
    import pandas as pd

    from cryptobot.core.settings import CotBiasSettings
    from cryptobot.cot.reports import ReportType
    from cryptobot.cot.store import CotLake

log = logging.getLogger(__name__)

app = typer.Typer(
    help=(
        "CFTC Commitments of Traders for CME Bitcoin/Ether: latest positioning by trader"
        " category, weekly change, COT index and percentile, and the bias with its reason."
    ),
    invoke_without_command=True,
    epilog=(
        "Examples:\n\n  cryptobot cot fetch\n\n  cryptobot cot\n\n"
        "  cryptobot cot history --asset BTC --weeks 156 --chart cot-btc.html"
    ),
)
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="See only reports published by then (ISO time; default now)."),
]
CategoryOpt = Annotated[
    str | None,
    typer.Option("--category", help="asset_mgr, lev_money, dealer, ...; legacy: noncomm, comm."),
]
ReportOpt = Annotated[
    str | None,
    typer.Option("--report", help="tff_futures_only, tff_combined, legacy_futures_only, ..."),
]


def _check_chart(path: Path | None) -> Path | None:
    """``--chart`` obeys ``-o``'s rule: a missing folder is an error before any work."""
    return check_file(path, suffixes=(".html", ".htm"), flag="--chart")


@app.callback()
def latest_command(
    ctx: typer.Context,
    asset: Annotated[
        str | None, typer.Option("--asset", "-a", help="Comma list (default cot.assets).")
    ] = None,
    report: ReportOpt = None,
    category: CategoryOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Latest positioning per asset and the bias it gives."""
    if ctx.invoked_subcommand is not None:
        return
    from cryptobot.cot import bias
    from cryptobot.cot.source import report_named
    from cryptobot.cot.store import CotLake

    obj: AppContext = ctx.obj
    cfg = _with_category(obj, category)
    chosen = report_named(report or cfg.bias_report)
    now = _now(as_of)
    assets = asset.split(",") if asset else cfg.assets
    for a in assets:
        bias.code_of(a, cfg)  # an unknown asset is an error even when nothing is stored
    frame = _published(CotLake(obj.data_dir(create=False)), chosen, now)
    rows = bias.latest(frame, chosen, assets, cfg, now_ms=now)
    missing = sorted({a.upper() for a in assets} - {r["asset"] for r in rows})
    if missing and not rows:
        raise DataError(f"no {chosen.name} report of {', '.join(missing)} published by {iso(now)}")
    for a in missing:
        log.warning("%s: no %s report published by %s", a, chosen.name, iso(now))
    records = _for_screen([_record(r) for r in rows], cfg, fmt, output)
    render(records, fmt, output, title=f"COT {chosen.name}")


@app.command(
    "fetch",
    epilog="Examples:\n\n  cryptobot cot fetch\n\n"
    "  cryptobot cot fetch --import fut_fin_txt_2023.zip",
)
def fetch_command(
    ctx: typer.Context,
    report: Annotated[
        str | None, typer.Option("--report", help="Comma list (default cot.reports).")
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="auto (API, zips if it fails) | api | zip.")
    ] = "auto",
    import_path: Annotated[
        Path | None,
        typer.Option("--import", help="A CFTC yearly zip (or its .txt) to store, offline."),
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Download the CFTC reports for the configured CME codes, all history, incrementally."""
    if source not in ("auto", "api", "zip"):
        raise typer.BadParameter("use auto, api or zip", param_hint="--source")
    from cryptobot.cot.source import fetch_report, import_file, report_named
    from cryptobot.cot.store import CotLake

    obj: AppContext = ctx.obj
    cfg = obj.settings.cot
    lake = CotLake(obj.data_dir(create=True))
    if import_path is not None:
        expect = report_named(report) if report else None
        results = [import_file(lake, import_path, cfg=cfg, now_ms=_now(None), expect=expect)]
    else:
        names = report.split(",") if report else cfg.reports
        reports = [report_named(n.strip()) for n in names]
        results = [
            fetch_report(lake, r, cfg=cfg, now_ms=_now(None), source=source, warn=log.warning)
            for r in reports
        ]
    render([vars(r) for r in results], fmt, output, title="COT fetch")


@app.command(
    "history",
    epilog="Example:\n\n  cryptobot cot history --asset BTC --weeks 156 --chart cot-btc.html",
)
def history_command(
    ctx: typer.Context,
    asset: Annotated[str, typer.Option("--asset", "-a", help="BTC, ETH, MBT or MET.")] = "BTC",
    weeks: Annotated[int, typer.Option("--weeks", "-n", min=1, help="Last N reports.")] = 52,
    report: ReportOpt = None,
    category: CategoryOpt = None,
    as_of: AsOfOpt = None,
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart", help="Also write an HTML chart (e.g. cot-btc.html).", callback=_check_chart
        ),
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Week by week: nets per category, the indexes and the bias each report gave."""
    from cryptobot.cot import bias
    from cryptobot.cot.source import report_named
    from cryptobot.cot.store import CotLake
    from cryptobot.data.atomic import atomic_write
    from cryptobot.report.cot_chart import history_page

    obj: AppContext = ctx.obj
    cfg = _with_category(obj, category)
    chosen = report_named(report or cfg.bias_report)
    bias.code_of(asset, cfg)
    now = _now(as_of)
    frame = _published(CotLake(obj.data_dir(create=False)), chosen, now)
    rows = bias.table(frame, chosen, asset.upper(), cfg).tail(weeks)
    if rows.empty:
        raise DataError(f"no {chosen.name} report of {asset.upper()} published by {iso(now)}")
    if chart is not None:
        page = history_page(
            rows,
            asset=asset.upper(),
            categories=chosen.categories,
            index=bias.index_column(cfg),
            cfg=cfg,
        )
        atomic_write(chart, lambda tmp: tmp.write_text(page))
    records = [_record({"asset": asset.upper(), **r}) for r in rows.to_dict("records")]
    records = _for_screen(records, cfg, fmt, output)
    render(records, fmt, output, title=f"COT {chosen.name} {asset.upper()}")


def _published(lake: CotLake, report: ReportType, now_ms: int) -> pd.DataFrame:
    """The stored reports public at ``now_ms``; none at all is an error worth one line (an
    empty table would hide that the lake was never fetched, or that --as-of is too early)."""
    from cryptobot.cot import bias

    stored = lake.read(report)
    if stored.empty:
        raise DataError(
            f"no {report.name} COT reports stored in {lake.dir}; run `cryptobot cot fetch`"
        )
    frame = bias.visible(stored, now_ms)
    if frame.empty:
        first = iso(int(stored["published_ts"].min()))
        raise DataError(
            f"no {report.name} COT reports published by {iso(now_ms)} (the first stored was"
            f" published {first})"
        )
    return frame


def _with_category(obj: AppContext, category: str | None) -> CotBiasSettings:
    """The config's ``cot`` section, with ``--category`` (checked against the report later)."""
    cfg = obj.settings.cot
    return cfg.model_copy(update={"category": category}) if category else cfg


def _for_screen(
    records: list[dict[str, Any]], cfg: CotBiasSettings, fmt: Format | None, output: Path | None
) -> list[dict[str, Any]]:
    """A table on a terminal keeps what a trader reads (nets in the configured measure, the
    configured index); files and pipes get every column."""
    table = output is None and (fmt is Format.table or (fmt is None and sys.stdout.isatty()))
    if not table:
        return records
    return [{k: v for k, v in r.items() if _shown(k, cfg)} for r in records]


def _shown(key: str, cfg: CotBiasSettings) -> bool:
    if key.startswith("net_pct_oi_"):
        return cfg.measure == "net_pct_oi"
    if key.startswith("net_"):
        return cfg.measure == "net"
    if key.startswith("cot_index_"):
        return cfg.method == "minmax"
    if key.startswith("pctl_"):
        return cfg.method == "percentile"
    return key != "measure"  # the configured category's net, shown among the nets


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """Dates as ISO text, floats rounded, NaN as null (strict JSON)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "report_date":
            value = iso(int(value))[:10]
        elif key == "published_ts":
            key, value = "published_at", iso(int(value))
        elif isinstance(value, float):
            value = None if math.isnan(value) or math.isinf(value) else round(value, 2)
        elif hasattr(value, "item"):  # numpy scalars
            value = value.item()
        out[key] = value
    return out


def _now(as_of: str | None) -> int:
    return parse_time(as_of) if as_of else int(time.time() * 1000)
