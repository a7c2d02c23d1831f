"""``cryptobot fetch``: candles, funding, open interest, crowd data and markets into the lake."""

from __future__ import annotations

import asyncio
import logging
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptobot.cli.context import AppContext
from cryptobot.cli.numbers import POSITIVE
from cryptobot.cli.output import FormatOpt, OutputOpt, render
from cryptobot.core.errors import CryptobotError, UnknownSymbolError
from cryptobot.core.symbols import parse_symbols
from cryptobot.core.timeframes import parse_timeframes
from cryptobot.core.timeutil import iso, parse_time

#: ``--import --kind``: candles, mark-price candles and the series of data/series.py (a test
#: keeps this equal to the library's list; importing that here would load pandas for --help)
IMPORT_KINDS = (
    "candles",
    "mark",
    "funding",
    "open_interest",
    "long_short",
    "top_long_short_accounts",
    "top_long_short_positions",
    "taker_volume",
    "fear_greed",
)
ImportKind = StrEnum("ImportKind", {k: k for k in IMPORT_KINDS})

if TYPE_CHECKING:  # the lake, pandas and the exchange load with the work, not with --help
    from cryptobot.data.fetcher import FetchPlan

log = logging.getLogger(__name__)

EPILOG = (
    "Examples:\n\n"
    "  cryptobot fetch --top 30 --timeframes 5m,15m --days 30\n\n"
    "  cryptobot fetch --symbols BTC/USDT:USDT,ETH/USDT:USDT --timeframes 1h"
    " --from 2024-01-01 --funding --open-interest\n\n"
    "  cryptobot fetch --import BTCUSDT-5m.feather --symbol BTC/USDT:USDT --timeframe 5m\n\n"
    "  cryptobot fetch --import BTC_USDT_USDT-8h-funding_rate.feather --kind funding"
    " --symbol BTC/USDT:USDT\n\n"
    "  cryptobot fetch --crowd --symbols BTC/USDT:USDT,ETH/USDT:USDT\n\n"
    "  cryptobot fetch --liquidations --watch --for 3600\n\n"
    "  cryptobot fetch --status"
)


def fetch(
    ctx: typer.Context,
    symbols: Annotated[
        str | None,
        typer.Option(
            "--symbols", "--symbol", help="Comma-separated unified symbols (--import: one)."
        ),
    ] = None,
    top: Annotated[
        int | None, typer.Option(min=1, help="The N busiest USDT perpetuals by 24h volume.")
    ] = None,
    timeframes: Annotated[
        str | None,
        typer.Option(
            "--timeframes",
            "--timeframe",
            help="Comma-separated, e.g. 5m,15m (config: fetch.timeframes; --import: one).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--from", "--since", help="Start, ISO-8601 (UTC) e.g. 2024-01-01; not in the future."
        ),
    ] = None,
    days: Annotated[
        float | None,
        typer.Option(parser=POSITIVE, help="Days of history (> 0); not with --from."),
    ] = None,
    funding: Annotated[
        bool | None, typer.Option("--funding/--no-funding", help="Funding-rate history too.")
    ] = None,
    open_interest: Annotated[
        bool | None,
        typer.Option("--open-interest/--no-open-interest", help="Open-interest history too."),
    ] = None,
    crowd: Annotated[
        bool,
        typer.Option(
            "--crowd",
            help="Crowd data: funding, open interest, long/short ratios (all and top traders),"
            " taker buy/sell volume, Fear & Greed; candles only with --timeframes.",
        ),
    ] = False,
    liquidations: Annotated[
        bool,
        typer.Option(
            "--liquidations",
            help="Record the exchange's liquidation stream (with --watch; all symbols unless"
            " --symbols). Counts are a lower bound: one liquidation per symbol per second.",
        ),
    ] = False,
    watch_: Annotated[
        bool, typer.Option("--watch", help="Keep recording until Ctrl-C / SIGTERM.")
    ] = False,
    for_s: Annotated[
        float | None,
        typer.Option("--for", parser=POSITIVE, help="With --watch: stop after SECONDS."),
    ] = None,
    max_messages: Annotated[
        int | None,
        typer.Option(min=1, help="With --watch: stop after N liquidations."),
    ] = None,
    import_file: Annotated[
        Path | None,
        typer.Option("--import", help="Store a CSV/Parquet/feather/JSON(L) file instead."),
    ] = None,
    kind: Annotated[
        ImportKind,
        typer.Option(
            help="What --import holds: candles, mark (mark-price candles), funding,"
            " open_interest, long_short (all accounts), top_long_short_accounts,"
            " top_long_short_positions, taker_volume (--timeframe: the period) or fear_greed"
            " (daily, no --symbol)."
        ),
    ] = ImportKind.candles,
    status: Annotated[bool, typer.Option("--status", help="Report what is stored.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Bring the lake up to date: candles (closed bars only), funding, open interest, markets.

    Re-running resumes from the last stored bar and never duplicates one;
    a summary row per series says what was added and how many gaps remain.
    --crowd adds long/short ratios, taker volume and Fear & Greed; --liquidations --watch
    records the liquidation stream; --import --kind stores funding, mark prices, crowd series.
    """
    from cryptobot.data.fetcher import FetchPlan
    from cryptobot.data.lake import Lake
    from cryptobot.data.status import lake_status

    obj: AppContext = ctx.obj
    if status:
        root = obj.data_dir(create=False)
        rows = lake_status(Lake(root))
        if not rows:
            log.warning("no candles stored in %s yet; run `cryptobot fetch` first", root)
        render(rows, fmt, output, title="stored data")
        return
    if import_file is not None:
        row = _import(obj, import_file, kind.value, symbols, timeframes)
        render([row], fmt, output, title="import")
        return
    if kind != ImportKind.candles:
        raise typer.BadParameter(f"--kind {kind.value} says what --import holds; give --import")
    others = any(x is not None and x is not False for x in (top, timeframes, since, days))
    others |= bool(crowd or funding or open_interest)
    _check_watch_flags(liquidations, watch_, for_s, max_messages, others=others)
    if liquidations:
        stream = parse_symbols(symbols) if symbols else []
        row = asyncio.run(_record(obj, stream, for_s=for_s, max_messages=max_messages))
        render([row], fmt, output, title="liquidations")
        return
    if symbols and top:
        raise typer.BadParameter("give --symbols or --top, not both")
    cfg = obj.settings.fetch
    default_timeframes = [] if crowd else list(cfg.timeframes)
    plan = FetchPlan(
        symbols=parse_symbols(symbols) if symbols else None,
        top=top,
        timeframes=parse_timeframes(timeframes) if timeframes else default_timeframes,
        since=_since(since, days, now_ms=int(time.time() * 1000)),
        days=days if days is not None else cfg.days,
        funding=cfg.funding if funding is None else funding,
        open_interest=cfg.open_interest if open_interest is None else open_interest,
        open_interest_period=cfg.open_interest_period,
        crowd=crowd,
    )
    if not plan.symbols and not plan.top:
        raise typer.BadParameter("say which symbols: --symbols BTC/USDT:USDT,... or --top N")
    results = asyncio.run(_run(obj, plan))
    render([vars(r) for r in results], fmt, output, title=f"fetch {obj.settings.exchange}")
    failed = [r for r in results if r.error]
    if failed:
        raise CryptobotError(f"{len(failed)} of {len(results)} series failed; see the error column")


def _check_watch_flags(
    liquidations: bool,
    watch: bool,
    for_s: float | None,
    max_messages: int | None,
    *,
    others: bool,
) -> None:
    """A recording takes --symbols and its bounds only; the bounds need --watch."""
    if liquidations and others:
        raise typer.BadParameter(
            "--liquidations records the stream only (--symbols may narrow it); fetch the rest"
            " in another run"
        )
    if liquidations and not watch:
        raise typer.BadParameter(
            "exchanges keep no liquidation history to fetch: record the stream with"
            " --liquidations --watch"
        )
    if watch and not liquidations:
        raise typer.BadParameter("--watch records the liquidation stream: add --liquidations")
    if (for_s is not None or max_messages is not None) and not watch:
        raise typer.BadParameter("--for and --max-messages bound a --watch")


def _since(since: str | None, days: float | None, *, now_ms: int) -> int | None:
    """``--from`` in ms; with ``--days`` too, or in the future, it is a usage error (either
    would otherwise be ignored silently: --days loses to --from, and a future start fetches
    nothing)."""
    if since is None:
        return None
    if days is not None:
        raise typer.BadParameter("give --from or --days, not both")
    try:
        start = parse_time(since)
    except CryptobotError as exc:
        raise typer.BadParameter(str(exc)) from None
    if start > now_ms:
        raise typer.BadParameter(f"--from {since} is in the future (now is {iso(now_ms)})")
    return start


async def _run(obj: AppContext, plan: FetchPlan):
    from cryptobot.cli.progress import progress_bar
    from cryptobot.data.fetcher import Fetcher
    from cryptobot.data.lake import Lake
    from cryptobot.exchange.factory import crowd_sources, open_exchange

    lake = Lake(obj.data_dir(create=True))
    settings = obj.settings
    async with open_exchange(settings, obj.secrets) as exchange:
        with progress_bar(not obj.quiet) as progress:
            fetcher = Fetcher(
                exchange,
                lake,
                settings.universe,
                concurrency=settings.fetch.concurrency,
                progress=progress,
                sources=crowd_sources(settings, exchange),
            )
            return await fetcher.run(plan)


async def _record(
    obj: AppContext, symbols: list[str], *, for_s: float | None, max_messages: int | None
) -> dict:
    """Record until SIGINT/SIGTERM, ``--for`` or ``--max-messages``; then flush and report."""
    import signal
    from dataclasses import asdict

    from cryptobot.data import catalog
    from cryptobot.data.lake import Lake
    from cryptobot.data.liquidations import LiquidationVenue, record
    from cryptobot.exchange.factory import open_exchange

    lake = Lake(obj.data_dir(create=True))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if for_s is not None:
        loop.call_later(for_s, stop.set)
    async with open_exchange(obj.settings, obj.secrets) as exchange:
        if not isinstance(exchange, LiquidationVenue):
            venue = obj.settings.exchange  # "replay", not the replayed venue's id
            raise CryptobotError(f"{venue} streams no liquidations (a live venue does)")
        markets = await exchange.load_markets()
        unknown = [s for s in symbols if s not in markets]
        if unknown:
            raise UnknownSymbolError(f"{exchange.id} lists no contract {', '.join(unknown)}")
        result = await record(
            exchange,
            lake,
            symbols=symbols,
            stop=stop,
            now_ms=lambda: int(time.time() * 1000),
            max_messages=max_messages,
        )
    catalog.refresh_views(lake.root)  # a first recording gets its DuckDB view
    return asdict(result)


def _import(
    obj: AppContext, path: Path, kind: str, symbol: str | None, timeframe: str | None
) -> dict:
    _check_import_flags(kind, symbol, timeframe)
    from cryptobot.core.venues import lake_exchange
    from cryptobot.data.importer import import_file
    from cryptobot.data.lake import Lake
    from cryptobot.data.sources import FEAR_GREED_SOURCE

    lake = Lake(obj.data_dir(create=True))
    now_ms = int(time.time() * 1000)
    # under replay: the replayed venue, as fetch files it
    source = FEAR_GREED_SOURCE if kind == "fear_greed" else lake_exchange(obj.settings)
    return import_file(lake, kind, source, path, symbol=symbol, period=timeframe, now_ms=now_ms)


def _check_import_flags(kind: str, symbol: str | None, timeframe: str | None) -> None:
    """Which of --symbol and --timeframe the kind needs (a usage error, exit 2, otherwise)."""
    needs_symbol = kind != "fear_greed"
    needs_period = kind not in ("funding", "fear_greed")
    if kind == "candles" and not (symbol and timeframe):
        raise typer.BadParameter("--import needs --symbol and --timeframe")
    if needs_symbol and not symbol:
        raise typer.BadParameter(f"--import --kind {kind} needs --symbol")
    if not needs_symbol and symbol:
        raise typer.BadParameter("--kind fear_greed is one index for the market: drop --symbol")
    if needs_period and not timeframe:
        what = "the candles' timeframe" if kind == "mark" else "the period of its rows"
        raise typer.BadParameter(f"--import --kind {kind} needs --timeframe ({what})")
    if not needs_period and timeframe:
        pace = "is daily" if kind == "fear_greed" else "follows the venue's funding times"
        raise typer.BadParameter(f"--kind {kind} {pace}: drop --timeframe")
    if "," in (symbol or "") + (timeframe or ""):
        raise typer.BadParameter("--import stores one file: give one --symbol and one --timeframe")
