"""``cryptobot scan``: setups on the busiest perpetuals, now."""

import asyncio
import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from cryptobot.cli.charts import ChartOpt, write_charts
from cryptobot.cli.context import AppContext
from cryptobot.cli.output import Format, FormatOpt, OutputOpt, render, wants_table
from cryptobot.core.setup import Setup
from cryptobot.core.symbols import parse_symbols
from cryptobot.core.timeutil import iso
from cryptobot.report.text import price_text, reasons_text
from cryptobot.strategies import NAMES

log = logging.getLogger(__name__)

EPILOG = (
    "Examples:\n\n"
    "  cryptobot scan --top 30\n\n"
    "  cryptobot scan --top 30 --strategy bos_fvg_fib --min-confidence 4\n\n"
    "  cryptobot scan --symbols BTC/USDT:USDT --strategy momentum --format jsonl > setups.jsonl\n\n"
    "  cryptobot scan --top 30 --watch\n\n"
    "  cryptobot scan --top 30 --strategy bos_fvg_fib --chart .   # PNGs + setups.html, here\n\n"
    "  cryptobot scan --top 30 --format jsonl | cryptobot signal - --format jsonl"
)


def scan_command(
    ctx: typer.Context,
    top: Annotated[
        int | None, typer.Option(min=1, help="The N busiest perpetuals (config: scan.top).")
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", "--symbol", help="Comma-separated unified symbols."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated: {', '.join(NAMES)} (config: strategies.enabled)."),
    ] = None,
    min_confidence: Annotated[
        int | None,
        typer.Option(min=0, max=5, help="Hide setups below this confidence (0-5)."),
    ] = None,
    within: Annotated[
        int | None,
        typer.Option(min=1, help="List triggers of the last N closed bars (config: scan.within)."),
    ] = None,
    bars: Annotated[
        int | None, typer.Option(min=50, help="Closed bars per timeframe (config: scan.bars).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use stored candles only; no network.")
    ] = False,
    watch_: Annotated[
        bool, typer.Option("--watch", help="Scan again at every candle close until Ctrl-C.")
    ] = False,
    cycles: Annotated[
        int | None, typer.Option(min=1, help="With --watch: stop after N scans.")
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    chart: ChartOpt = None,
) -> None:
    """Run the strategies on closed bars and list setups: [bold]triggered[/] (act now) and
    [bold]armed[/] (context in place; entry is the level that would trigger).

    Candles are refreshed through the lake first (only what is missing) unless --offline.
    Every setup is journaled in the DuckDB journal; re-scanning the same bars adds no rows.
    On a pipe or in a file the records are full setup/1 records (what `signal` and `size`
    read); the table rounds prices for reading only.
    """
    # the detectors (numba, TA-Lib) load here, not at start-up: `cryptobot --help` stays quick
    from cryptobot.journal.setups import record_setups
    from cryptobot.strategies.registry import resolve
    from cryptobot.strategies.scanner import (
        ScanRequest,
        scan,
        seconds_to_next_close,
        timeframes_of,
        watch,
    )

    obj: AppContext = ctx.obj
    settings = obj.settings
    if symbols and top:
        raise typer.BadParameter("give --symbols or --top, not both")
    names = strategy.split(",") if strategy else _enabled(settings.strategies.enabled)
    request = ScanRequest(
        strategies=[n.strip() for n in names if n.strip()],
        symbols=parse_symbols(symbols) if symbols else None,
        top=None if symbols else (top or settings.scan.top),
        within=within or settings.scan.within,
        min_confidence=min_confidence,
        offline=offline,
        bars=bars or settings.scan.bars,
    )
    from cryptobot.data.lake import Lake  # pandas loads with the scan, not with its --help
    from cryptobot.exchange.factory import market_exchange

    lake = Lake(obj.data_dir(create=not offline))

    async def once() -> int:
        exchange = market_exchange(settings, lake, offline=offline, secrets=obj.secrets)
        async with exchange:
            result = await scan(exchange, lake, settings, request)
        for line in result.errors + result.notes:
            log.warning(line)
        new = record_setups(lake.root, result.setups, result.as_of)
        log.info("%d setups (%d new) at %s", len(result.setups), new, iso(result.as_of))
        if not result.setups:
            log.warning("no setups at %s", iso(result.as_of))  # an empty pipe, said once
        _render(result.setups, fmt, output, f"setups at {iso(result.as_of)}")
        if chart is not None:
            write_charts(
                result.setups,
                directory=chart,
                lake=lake,
                settings=settings,
                now_ms=result.as_of,
                title=f"setups at {iso(result.as_of)}",
            )
        return result.as_of

    shortest = timeframes_of(resolve(request.strategies, settings))[0]  # validates names early
    if not watch_:
        asyncio.run(once())
        return

    async def wait(_as_of: int | None) -> None:
        await asyncio.sleep(seconds_to_next_close(int(time.time() * 1000), shortest))

    asyncio.run(watch(once, wait, cycles))


def _enabled(enabled: list[str]) -> list[str]:
    return [n for n in enabled if n in NAMES]


def _render(setups: list[Setup], fmt: Format | None, output: Path | None, title: str) -> None:
    if output is not None and output.suffix.lower() == ".parquet":
        render([s.to_row() for s in setups], fmt, output)
    elif wants_table(fmt=fmt, output=output):
        render([_display(s) for s in setups], Format.table, title=title)
    else:
        render([s.to_json() for s in setups], fmt, output)


def _display(s: Setup) -> dict:
    """One table row: what a trader reads first, reasons last (prices to 8 significant
    digits)."""
    return {
        "symbol": s.symbol,
        "strategy": s.strategy,
        "status": s.status,
        "side": s.side,
        "tf": s.timeframe,
        "bar": (iso(s.ts) or "")[:16].replace("T", " "),
        "entry": price_text(s.entry),
        "stop": price_text(s.stop),
        "targets": " ".join(price_text(t) for t in s.targets),
        "R": " ".join(f"{r:g}" for r in s.r_targets),
        "conf": s.confidence,
        "reasons": reasons_text(s.reasons),
    }
