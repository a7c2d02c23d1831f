"""``cryptobot size``: signals (or one trade given as flags) in, sized orders out."""

import logging
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context

from cryptobot.cli.context import AppContext
from cryptobot.cli.inputs import parse_records, read_records
from cryptobot.cli.numbers import FEE_RATE, NON_NEGATIVE, PERCENT, POSITIVE, number
from cryptobot.cli.output import Format, FormatOpt, OutputOpt, render, wants_table
from cryptobot.core.order import Intent, SizedOrder
from cryptobot.core.settings import RiskSettings
from cryptobot.fills.liquidation import venue_of
from cryptobot.risk.orders import SizingSetup, size_orders

EPILOG = (
    "Examples:\n\n"
    "  cryptobot size --symbol BTC/USDT:USDT --side long --entry 95000 --stop 94200"
    " --risk-usd 1\n\n"
    "  cryptobot size --symbol ETH/USDT:USDT --side short --entry 3500 --stop 3560"
    " --risk-pct 0.5 --equity 50\n\n"
    "  cryptobot size --symbol BTC/USDT:USDT --side short --entry 95000 --margin-pct 10"
    " --leverage 20 --equity 100\n\n"
    "  cryptobot size --symbol ETH/USDT:USDT --side long --entry 3000 --stop 2960"
    " --equity 1000 --strategy cot_crowd   # plan 3: 10% margin at 40x, isolated\n\n"
    "  cryptobot signal setups.jsonl --format jsonl | cryptobot size - --risk-usd 1"
    " -o orders.parquet\n\n"
    "  cryptobot size --symbol X/USDT:USDT --side long --entry 2.5 --stop 2.4 --step 1"
    " --min-notional 5 --explain   # a market not stored"
)

Opt = typer.Option
log = logging.getLogger(__name__)
DEFAULT_DATA_DIR = Path("data")  # the packaged default, ./data


def size_command(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(help="Signals or setups: .jsonl/.json/.csv/.parquet file, or - for stdin."),
    ] = None,
    symbol: Annotated[
        str | None, Opt("--symbol", "--symbols", help="One trade given as flags: its symbol.")
    ] = None,
    side: Annotated[Literal["long", "short"] | None, Opt(help="long or short.")] = None,
    entry: Annotated[float | None, Opt(parser=POSITIVE, help="Entry price (> 0).")] = None,
    stop: Annotated[float | None, Opt(parser=POSITIVE, help="Stop price (> 0).")] = None,
    target: Annotated[
        list[float] | None, Opt(parser=POSITIVE, help="Take-profit price (repeatable).")
    ] = None,
    risk_usd: Annotated[
        float | None, Opt(parser=POSITIVE, help="Fixed $ risk at the stop (> 0).")
    ] = None,
    risk_pct: Annotated[
        float | None,
        Opt(parser=PERCENT, help="% of equity at risk at the stop (> 0, at most 100)."),
    ] = None,
    margin_pct: Annotated[
        float | None,
        Opt(parser=PERCENT, help="% of equity as margin, times --leverage (> 0, at most 100)."),
    ] = None,
    equity: Annotated[
        float | None, Opt(parser=POSITIVE, help="Account equity in the quote currency (> 0).")
    ] = None,
    leverage: Annotated[
        float | None, Opt(parser=number(ge=1), help="Use this leverage instead of choosing (>= 1).")
    ] = None,
    margin_mode: Annotated[
        Literal["isolated", "cross"] | None, Opt(help="Config: risk.margin_mode.")
    ] = None,
    strategy: Annotated[
        Literal["manual", "bos_fvg_fib", "momentum", "breakout", "cot_crowd", "ema_cross"] | None,
        Opt(
            help="The trade given as flags is this strategy's: sized and gated by its"
            " risk.profiles entry (records carry their own). Default: manual."
        ),
    ] = None,
    tick: Annotated[
        float | None, Opt(parser=POSITIVE, help="Price tick (overrides the stored market).")
    ] = None,
    step: Annotated[
        float | None, Opt(parser=POSITIVE, help="Amount step (overrides the stored market).")
    ] = None,
    min_qty: Annotated[
        float | None, Opt(parser=NON_NEGATIVE, help="Minimum order quantity.")
    ] = None,
    min_notional: Annotated[
        float | None, Opt(parser=NON_NEGATIVE, help="Minimum order value.")
    ] = None,
    max_leverage: Annotated[
        float | None, Opt(parser=POSITIVE, help="The market's maximum leverage.")
    ] = None,
    taker_fee: Annotated[
        float | None,
        Opt("--taker-fee", "--fee", parser=FEE_RATE, help="Taker fee rate, e.g. 0.0005."),
    ] = None,
    brackets: Annotated[
        Path | None, Opt(help="Leverage brackets JSON (ccxt fetch_leverage_tiers shape).")
    ] = None,
    skip_bad: Annotated[
        bool,
        Opt("--skip-bad", help="Leave out bad records (each named on stderr); size the rest."),
    ] = False,
    no_journal: Annotated[
        bool,
        Opt(
            "--no-journal",
            help="Size with no data dir (market flags, offline): the circuit breaker cannot be"
            " read, so its gate says n/a; without this flag such orders are refused. A journal"
            " that exists is always read.",
        ),
    ] = False,
    explain: Annotated[
        bool, Opt("--explain", help="Show every step of the arithmetic and every gate (stderr).")
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Size orders: quantity rounded down to the market's step so the loss at the stop stays
    within the target, leverage, margin, liquidation price, fees, and every pre-trade gate.

    An empty input gives an empty output (exit 0)."""
    # the lake and the account's journal load here, not with the module: --help stays quick
    from cryptobot.core.venues import configured_account, lake_exchange
    from cryptobot.data.lake import Lake
    from cryptobot.exchange.factory import command_now
    from cryptobot.risk.context import (
        MarketFlags,
        account_state,
        brackets_resolver,
        resolve_markets,
    )

    obj: AppContext = ctx.obj
    settings = obj.settings
    risk = _policy(settings.risk, risk_usd, risk_pct, margin_pct, margin_mode)
    manual = _manual(
        exchange=lake_exchange(settings),
        symbol=symbol,
        side=side,
        entry=entry,
        stop=stop,
        targets=target or [],
        strategy=strategy,
    )
    intents = _intents(source=source, manual=manual, skip_bad=skip_bad)
    root, missing = _data_dir(obj)
    flags = MarketFlags(
        tick_size=tick,
        step_size=step,
        min_qty=min_qty,
        min_notional=min_notional,
        max_leverage=max_leverage,
        taker=taker_fee,
        brackets_file=brackets,
    )
    exchange = intents[0].exchange if intents else lake_exchange(settings)
    venue = venue_of(exchange)
    symbols = [i.symbol for i in intents]
    markets = resolve_markets(Lake(root) if root else None, exchange, symbols, flags)
    if skip_bad:
        intents = _known(intents=intents, markets=markets)
    # the breaker is judged against the configured risk: a monthly stop ends on a config
    # change, and this command's --risk-usd/--margin-mode flags are not one
    now = command_now(settings, wall_ms=int(time.time() * 1000))  # a replay's clock, if one
    account, growth = account_state(
        root, account=configured_account(settings), exchange=exchange, symbols=symbols,
        equity=equity, risk=settings.risk, now=now,
    )  # fmt: skip
    setup = SizingSetup(
        risk=risk,
        venue=venue,
        client_order_prefix=settings.execution.client_order_prefix,
        taker_fee=settings.fees.taker,
        leverage=leverage,
        growth=growth,
        manage=settings.manage,
        no_journal=missing,
        accept_no_journal=no_journal,
    )
    orders = size_orders(
        intents, markets, brackets_resolver(venue, risk.max_leverage, brackets), account, setup
    )
    if explain:
        _explain(orders)
    if output is not None and output.suffix.lower() == ".parquet":
        render([o.to_row() for o in orders], fmt, output)
    elif wants_table(fmt=fmt, output=output):
        render([_display(o) for o in orders], Format.table, title="sized orders")
    else:
        render([o.to_json() for o in orders], fmt, output, title="sized orders")


def _policy(
    risk: RiskSettings,
    risk_usd: float | None,
    risk_pct: float | None,
    margin_pct: float | None,
    margin_mode: str | None,
) -> RiskSettings:
    chosen = {
        k: v
        for k, v in (("risk_usd", risk_usd), ("risk_pct", risk_pct), ("margin_pct", margin_pct))
        if v is not None
    }
    if len(chosen) > 1:
        raise _usage("give one of --risk-usd, --risk-pct, --margin-pct")
    sizing = {}
    if chosen:
        ((key, value),) = chosen.items()  # > 0 and finite: the flag parsers checked
        method = {"risk_usd": "fixed_usd", "risk_pct": "pct_equity", "margin_pct": "margin_pct"}
        sizing = {"method": method[key], key: value}
    values = {} if margin_mode is None else {"margin_mode": margin_mode}
    if not (sizing or values):
        return risk
    return risk.overriding(sizing=sizing, **values)  # the strategies' profiles too


def _manual(
    *,
    exchange: str,
    symbol: str | None,
    side: str | None,
    entry: float | None,
    stop: float | None,
    targets: list[float],
    strategy: str | None,
) -> Intent | None:
    """The one trade given as flags, if any flag of it was given."""
    if symbol is None and entry is None and side is None:
        if strategy is not None:
            raise _usage(
                "--strategy names the strategy of a trade given as flags; records carry their own"
            )
        return None
    missing = [
        n for n, v in (("--symbol", symbol), ("--side", side), ("--entry", entry)) if v is None
    ]
    if missing:
        raise _usage(f"missing {', '.join(missing)} (or give a SOURCE of signals)")
    return Intent(
        exchange, symbol, side, entry, stop, tuple(targets), strategy=strategy or "manual"
    )


def _intents(*, source: str | None, manual: Intent | None, skip_bad: bool) -> list[Intent]:
    if source is not None and manual is not None:
        raise _usage("give either a SOURCE of signals or --symbol/--side/--entry, not both")
    if source is not None:
        return parse_records(
            read_records(source), Intent.from_record, skip_bad=skip_bad, warn=log.warning
        )
    if manual is None:
        raise _usage("missing --symbol, --side, --entry (or give a SOURCE of signals)")
    return [manual]


def _known(*, intents: list[Intent], markets: dict) -> list[Intent]:
    """With --skip-bad, a record whose market is neither stored nor given is left out too."""
    for i in intents:
        if i.symbol not in markets:
            log.warning("skipped %s: not among the stored %s markets", i.symbol, i.exchange)
    return [i for i in intents if i.symbol in markets]


def _usage(message: str) -> UsageError:
    """A flag missing or clashing is a usage error (exit 2), pointing at this command's help."""
    return UsageError(message, ctx=get_current_context(silent=True))


def _data_dir(obj: AppContext) -> tuple[Path | None, str | None]:
    """The lake and journal, or None and why not. A data dir given (flag, environment, config)
    must exist, as for every reader; only the default ./data may be absent, for sizing offline
    with market flags, and then the breaker is unread (said so, and refused unless
    --no-journal)."""
    path = Path(obj.settings.data_dir).expanduser()
    if "data_dir" in obj.overrides or path != DEFAULT_DATA_DIR or path.is_dir():
        return obj.data_dir(create=False), None
    return None, f"data dir {path} does not exist"


def _explain(orders: list[SizedOrder]) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for o in orders:
        i = o.intent
        console.print(f"[bold]{i.symbol} {i.side}[/] entry {i.entry:g} stop {i.stop}: {o.status}")
        for line in o.steps:
            console.print(f"  {line}")
        for name, verdict in o.gates.items():
            style = "green" if verdict.startswith("pass") else "red"
            console.print(f"  gate {name}: [{style}]{verdict}[/]")
        if o.reason:
            console.print(f"  [red]refused:[/] {o.reason}")


def _display(o: SizedOrder) -> dict:
    """The table a trader reads: the figures that decide, one line per order."""
    f, i = o.figures, o.intent
    liq = f["liquidation_price"]
    passed = sum(v.startswith("pass") for v in o.gates.values())
    targets = [
        f"{t:g} ({r:g}R ${pnl:,.2f})" if r is not None else f"{t:g} (${pnl:,.2f})"
        for t, r, pnl in zip(i.targets, f["target_r"], f["target_pnl_usd"], strict=True)
    ]
    return {
        "symbol": i.symbol,
        "side": i.side,
        "status": o.status,
        "entry": i.entry,
        "stop": i.stop,
        "qty": f"{f['qty_raw']:.6g} -> {f['qty']:g}",
        "notional": round(f["notional"], 2),
        "leverage": f"{f['leverage']:g}x",
        "margin": round(f["margin"], 2),
        "liquidation": f"{liq:,.2f} ({f['liquidation_distance_pct']:.2f}%)" if liq else "none",
        "bracket": f"{f['bracket_tier']} ({f['mmr'] * 100:g}%)",
        "risk_usd": None if f["risk_usd"] is None else round(f["risk_usd"], 4),
        "fees_usd": round(f["fees_usd"], 4),
        "targets": ", ".join(targets),
        "gates": f"{passed}/{len(o.gates)} pass",
        "reason": o.reason,
    }
