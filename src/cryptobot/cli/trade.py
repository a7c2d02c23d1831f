"""``cryptobot trade``: sized orders to the venue with their stop and take-profit ladder."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context

from cryptobot.cli.context import AppContext
from cryptobot.cli.inputs import parse_records, read_records
from cryptobot.cli.output import Format, FormatOpt, OutputOpt, render, wants_table
from cryptobot.core.numbers import finite

if TYPE_CHECKING:
    from cryptobot.engine.reconcile_report import Difference
    from cryptobot.engine.trade import Outcome
    from cryptobot.engine.trade_status import StatusReport
    from cryptobot.exchange.base import TradingExchange

EPILOG = (
    "Examples:\n\n"
    "  cryptobot signal setups.jsonl --format jsonl | cryptobot size - --risk-usd 1"
    " | cryptobot trade -\n\n"
    "  cryptobot trade orders.parquet --dry-run   # the exact requests, nothing sent\n\n"
    "  cryptobot trade orders.jsonl --taker   # at market, not maker-first\n\n"
    "  cryptobot trade --status\n\n"
    "  cryptobot trade --close BTC/USDT:USDT   # or --close-all\n\n"
    "  cryptobot trade --reconcile   # journal vs venue: repaired, differences reported\n\n"
    "  cryptobot trade orders.jsonl --live   # needs mode: live AND --live AND API keys"
)

Opt = typer.Option
T = TypeVar("T")
log = logging.getLogger(__name__)


def trade_command(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(
            help="Sized orders (`cryptobot size` output): .jsonl/.json/.csv/.parquet, or - for"
            " stdin."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Opt(
            "--dry-run", help="Print the exact requests that would be sent; send and store nothing."
        ),
    ] = False,
    status: Annotated[
        bool,
        Opt(
            "--status",
            help="Positions, open orders with their stops and targets, uPnL and"
            " liquidation distance.",
        ),
    ] = False,
    close: Annotated[
        list[str] | None,
        Opt(
            "--close",
            metavar="SYMBOL",
            help="Close this symbol's position (reduce-only"
            " market) and cancel its orders (repeatable).",
        ),
    ] = None,
    close_all: Annotated[
        bool, Opt("--close-all", help="--close every symbol with a position or an order.")
    ] = False,
    reconcile: Annotated[
        bool,
        Opt(
            "--reconcile",
            help="Bring the journal in line with the venue (its positions, open orders and"
            " fills are the truth), repair what is missing (a stop, orphaned orders, a tripped"
            " breaker's actions) and report each difference.",
        ),
    ] = False,
    live: Annotated[
        bool,
        Opt(
            "--live",
            help="Trade the live exchange: also needs `mode: live` in the config and"
            " CRYPTOBOT_API_KEY/SECRET in the environment.",
        ),
    ] = False,
    skip_bad: Annotated[
        bool,
        Opt("--skip-bad", help="Leave out bad records (each named on stderr); trade the rest."),
    ] = False,
    tp_split: Annotated[
        str | None,
        Opt(
            "--tp-split",
            metavar="PCT,PCT,..",
            help="Percent of the quantity at each target"
            " in turn, e.g. 25,25,25,25 (default: a sized_order/2's own ladder; 25 x 4 for"
            " sized_order/1); the rest is left for manage.",
        ),
    ] = None,
    taker: Annotated[
        bool,
        Opt(
            "--taker",
            help="Enter at market at once: skip the maker-first executor (post-only at the"
            " best bid/ask, re-priced toward the market) that `execution:` sets per strategy.",
        ),
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Place sized orders on the venue (paper by default) with a reduce-only stop and the
    take-profit ladder, gated with the account's real state; idempotent by client order id."""
    from cryptobot.core.venues import account_name
    from cryptobot.engine.trade import LIVE_IN_FLIGHT_MS, TradeSetup
    from cryptobot.exchange.factory import live_switches

    closing = close_all or bool(close)
    _check_modes(source=source, status=status, closing=closing, close=close, close_all=close_all,
                 dry_run=dry_run, tp_split=tp_split, reconcile=reconcile,
                 taker=taker)  # fmt: skip
    split = _split(tp_split)
    obj: AppContext = ctx.obj
    settings, secrets = obj.settings, obj.secrets
    on_live = live_switches(settings, secrets, live=live)  # a switch missing: refused here
    orders = _orders(source, skip_bad=skip_bad) if source is not None else []
    if source is not None and not orders:
        render([], fmt, output, title="trade")  # an empty input is an empty output
        return
    root = obj.data_dir(create=not (dry_run or status))
    setup = TradeSetup(
        risk=settings.risk,
        root=root,
        venue=account_name(settings, live=on_live),
        prefix=settings.execution.client_order_prefix,
        split=split,
        execution=None if taker else settings.execution,
        in_flight_ms=LIVE_IN_FLIGHT_MS if on_live else 0,
        monotonic=time.monotonic,
    )
    if status:
        from cryptobot.engine.trade_status import account_status

        _render_status(_on_venue(obj, live, account_status), fmt=fmt, output=output)
        return
    if reconcile:
        from cryptobot.engine.reconcile import reconcile as reconcile_venue

        found, requests = _on_venue(
            obj, live, lambda v: reconcile_venue(v, setup=setup, dry_run=dry_run)
        )
        _reconciled(found, requests, dry_run=dry_run, fmt=fmt, output=output)
        return
    if closing:
        from cryptobot.engine.trade import close_positions

        symbols = None if close_all else list(close or [])
        outcomes, requests = _on_venue(
            obj, live, lambda v: close_positions(v, symbols, setup=setup, dry_run=dry_run)
        )
    else:
        from cryptobot.engine.trade import trade_orders

        outcomes, requests = _on_venue(
            obj, live, lambda v: trade_orders(v, orders, setup=setup, dry_run=dry_run)
        )
    _finish(outcomes, requests, dry_run=dry_run, fmt=fmt, output=output)


def _check_modes(
    *,
    source: str | None,
    status: bool,
    closing: bool,
    close: list[str] | None,
    close_all: bool,
    dry_run: bool,
    tp_split: str | None,
    reconcile: bool,
    taker: bool,
) -> None:
    """One thing per run: SOURCE, --status, --close/--close-all or --reconcile (usage
    errors, exit 2)."""
    chosen = [n for n, on in (("SOURCE", source is not None), ("--status", status),
                              ("--close/--close-all", closing), ("--reconcile", reconcile))
              if on]  # fmt: skip
    if len(chosen) != 1:
        raise _usage(
            "give one of SOURCE (sized orders, or - for stdin), --status, --close SYMBOL, "
            "--close-all or --reconcile" + (f", not {' and '.join(chosen)}" if chosen else "")
        )
    if close and close_all:
        raise _usage("give --close SYMBOL or --close-all, not both")
    if status and dry_run:
        raise _usage(
            "--status sends nothing already; --dry-run is for SOURCE, --close or --reconcile"
        )
    if tp_split is not None and source is None:
        raise _usage("--tp-split splits the targets of sized orders: give a SOURCE")
    if taker and source is None:
        raise _usage("--taker is how sized orders enter: give a SOURCE")


def _split(text: str | None) -> tuple[float, ...] | None:
    """``--tp-split 25,25,25,25``: finite percents above 0, at most 100 in all."""
    if text is None:
        return None
    try:
        shares = tuple(finite(p, name="a --tp-split share", gt=0) for p in text.split(","))
    except ValueError as exc:
        raise _usage(f"--tp-split {text!r}: {exc}") from None
    if sum(shares) > 100 + 1e-9:
        raise _usage(f"--tp-split {text!r} adds up to {sum(shares):g} %: at most 100")
    return shares


def _orders(source: str, *, skip_bad: bool) -> list:
    """Every record checked before anything is sent: a bad one stops the batch (naming its
    line) unless --skip-bad leaves it out."""
    from cryptobot.engine.trade_record import TradeOrder

    return parse_records(
        read_records(source), TradeOrder.from_record, skip_bad=skip_bad, warn=log.warning
    )


def _on_venue(obj: AppContext, live: bool, work: Callable[["TradingExchange"], Awaitable[T]]) -> T:
    """``work`` on the venue orders go to (``exchange.factory.open_venue``), closed after."""
    from cryptobot.exchange.factory import open_venue

    venue = open_venue(obj.settings, obj.secrets, live=live)

    async def session() -> T:
        async with venue:
            return await work(venue)

    return asyncio.run(session())


def _finish(
    outcomes: list["Outcome"],
    requests: list[dict[str, Any]],
    *,
    dry_run: bool,
    fmt: Format | None,
    output: Any,
) -> None:
    """The requests (dry run) or the outcomes; each order not done is one line on stderr and
    the exit status is 1."""
    if dry_run:
        render(requests, fmt, output, title="requests that would be sent")
    elif wants_table(fmt=fmt, output=output):
        render([_display(o) for o in outcomes], Format.table, title="trade")
    else:
        render([o.to_json() for o in outcomes], fmt, output, title="trade")
    for o in outcomes:
        if o.status == "skipped":
            log.warning("%s %s: skipped, %s", o.symbol, o.client_order_id, o.reason)
    failed = [o for o in outcomes if o.failed]
    for o in failed:
        typer.echo(f"error: {o.symbol} {o.client_order_id}: {o.status}: {o.reason}", err=True)
    if failed:
        raise typer.Exit(1)


def _reconciled(
    found: list["Difference"],
    requests: list[dict[str, Any]],
    *,
    dry_run: bool,
    fmt: Format | None,
    output: Any,
) -> None:
    """The differences (a dry run: the requests the repairs would send); each one not
    repaired is one line on stderr and the exit status is 1."""
    if dry_run:
        render(requests, fmt, output, title="requests that would be sent")
    elif not found and wants_table(fmt=fmt, output=output):
        typer.echo("reconciled: the journal agrees with the venue")
    else:
        render([d.to_json() for d in found], fmt, output, title="reconcile: differences")
    failed = [d for d in found if d.failed]
    for d in failed:
        typer.echo(f"error: {d.kind}: {d.message}", err=True)
    if failed:
        raise typer.Exit(1)


def _display(o: "Outcome") -> dict[str, Any]:
    """One line per order: what each of its orders is now."""
    legs = ", ".join(f"{leg.leg} {leg.action}" for leg in o.legs)
    return {"symbol": o.symbol, "side": o.side, "status": o.status, "orders": legs,
            "execution": _execution_text(o.execution), "reason": o.reason,
            "client_order_id": o.client_order_id}  # fmt: skip


def _execution_text(report: dict[str, Any] | None) -> str:
    """The executor's report in a cell: mode, what filled, maker share, slippage."""
    if report is None:
        return ""
    share, bps, ticks = report["maker_share"], report["slippage_bps"], report["slippage_ticks"]
    parts = [f"{report['mode']} {report['status']} {report['filled']:g}/{report['qty']:g}"]
    if share is not None:
        parts.append(f"maker {share:.0%}")
    if bps is not None:
        parts.append(
            f"slippage {bps:+.1f} bps" + ("" if ticks is None else f" ({ticks:+.1f} ticks)")
        )
    return ", ".join(parts)


def _render_status(report: "StatusReport", *, fmt: Format | None, output: Any) -> None:
    b = report.balance
    title = (f"positions: equity {b.total:,.2f} {b.currency}, free {b.free:,.2f}, "
             f"unrealised {b.unrealized_pnl:+,.2f}")  # fmt: skip
    if not wants_table(fmt=fmt, output=output):
        render(report.rows, fmt, output, title=title)
        return
    if not report.rows:
        typer.echo(f"{title}\nno position and no open order")
        return
    rows = [
        {**{k: v for k, v in r.items() if k not in ("stops", "targets", "orders")},
         "stops": _orders_text(r["stops"]), "targets": _orders_text(r["targets"]),
         "orders": _orders_text(r["orders"])}
        for r in report.rows
    ]  # fmt: skip
    render(rows, Format.table, title=title)


def _orders_text(orders: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{o['amount']:g} @ {o['trigger_price'] or o['price'] or 'market'}" for o in orders
    )


def _usage(message: str) -> UsageError:
    return UsageError(message, ctx=get_current_context(silent=True))
