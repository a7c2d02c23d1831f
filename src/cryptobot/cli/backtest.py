"""``cryptobot backtest``: a strategy over stored candles -> trades, equity, metrics.

The engine, pandas and numba load inside the command, not with the module, so
``cryptobot backtest --help`` stays quick.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context

from cryptobot.cli.context import AppContext
from cryptobot.cli.numbers import FEE_RATE, NON_NEGATIVE, POSITIVE, number
from cryptobot.cli.output import Format, Notes, check_output, render, wants_table
from cryptobot.core import MAX_SLIPPAGE_BPS, MAX_UNITS, gc_policy
from cryptobot.core.errors import ConfigError, CryptobotError
from cryptobot.core.symbols import parse_symbols
from cryptobot.core.timeutil import iso, parse_duration, parse_time

if TYPE_CHECKING:
    import pandas as pd

    from cryptobot.backtest import runner
    from cryptobot.backtest.engine import Costs
    from cryptobot.core.settings import Settings

EPILOG = (
    "Examples:\n\n"
    "  cryptobot backtest --strategy momentum --symbols BTC/USDT:USDT,ETH/USDT:USDT"
    " --timeframe 1h --from 2025-01-01 --to 2025-08-31\n\n"
    "  cryptobot backtest --strategy bos_fvg_fib --top 10 --risk-usd 1 -o runs/bos.parquet\n\n"
    "  cryptobot backtest --strategy momentum --sweep ema_fast=5:15:2 --sweep ema_slow=20:60:5"
    " --jobs 2\n\n"
    "  cryptobot backtest --strategy momentum --walk-forward --train 90d --test 30d\n\n"
    "  cryptobot backtest --strategy ema_cross --symbols BTC/USDT:USDT --timeframe 1m"
    " --stop-atr 1.5\n\n"
    "  cryptobot backtest --strategy ema_cross --symbols ETH/USDT:USDT --timeframe 1h"
    " --stop-atr 2 --risk-usd 3 --stepwise"
)
Opt = typer.Option
SHOWN = ("total_return_pct", "cagr_pct", "max_drawdown_pct", "max_drawdown_days", "sharpe",
         "sortino", "calmar", "trades", "win_rate_pct", "profit_factor", "expectancy_usd",
         "avg_r", "exposure_pct", "trades_per_day", "avg_hold_hours", "fees_usd",
         "funding_paid_usd", "funding_received_usd", "liquidations", "end_equity",
         "signal_filters", "refused_by_regime", "refused_by_funding", "refused_by_htf",
         "refused_by_cooldown", "refused_by_cot")  # fmt: skip


def backtest_command(
    ctx: typer.Context,
    strategy: Annotated[str, Opt(help="ema_cross, momentum, bos_fvg_fib, breakout or cot_crowd.")],
    symbols: Annotated[
        str | None, Opt("--symbols", "--symbol", help="Comma-separated unified symbols.")
    ] = None,
    top: Annotated[
        int | None, Opt(min=1, help="The N stored symbols with the most quote volume (last day).")
    ] = None,
    timeframe: Annotated[
        str | None,
        Opt(
            "--timeframe",
            "--timeframes",
            help="Bar timeframe (default: the strategy's trigger timeframe).",
        ),
    ] = None,
    start: Annotated[
        str | None, Opt("--from", "--since", help="First bar (ISO date/time, UTC).")
    ] = None,
    end: Annotated[str | None, Opt("--to", help="Last bar (ISO date/time, UTC).")] = None,
    units: Annotated[
        float | None,
        Opt(
            parser=number(gt=0, le=MAX_UNITS),
            help="Trade this many base units, no risk engine (ema_cross: 1).",
        ),
    ] = None,
    risk_usd: Annotated[
        float | None, Opt(parser=POSITIVE, help="Fixed $ risk per trade (> 0).")
    ] = None,
    risk_pct: Annotated[
        float | None, Opt(parser=POSITIVE, help="% of equity at risk per trade (> 0).")
    ] = None,
    stop_atr: Annotated[
        float | None,
        Opt(parser=POSITIVE, help="ema_cross: stop at this many ATR(14) from the entry (> 0)."),
    ] = None,
    detail: Annotated[
        str | None, Opt(help="Resolve stop-and-target bars from this stored timeframe, e.g. 1m.")
    ] = None,
    time_stop: Annotated[
        float | None,
        Opt(
            parser=NON_NEGATIVE,
            help="Minutes before a trade going nowhere is closed, for every strategy (0: off; "
            "default: the strategy's manage profile, else 30 bars of its timeframe).",
        ),
    ] = None,
    fee: Annotated[
        float | None,
        Opt(
            "--taker-fee",
            "--fee",
            parser=FEE_RATE,
            help="Taker fee rate for every market (default: each stored market's own, else "
            "config fees.taker); the sizing uses it too.",
        ),
    ] = None,
    slippage_bps: Annotated[
        float | None,
        Opt(parser=number(ge=0, le=MAX_SLIPPAGE_BPS), help="Market/stop slippage in bps."),
    ] = None,
    no_funding: Annotated[bool, Opt("--no-funding", help="Charge no funding.")] = False,
    no_breakers: Annotated[bool, Opt("--no-breakers", help="No circuit breakers.")] = False,
    no_signal_filters: Annotated[
        bool,
        Opt(
            "--no-signal-filters",
            help="Trade every entry of the strategy: none of signal's filters (regime, funding, "
            "higher-timeframe bias, cooldown after a loss, COT), which apply by default as "
            "`signal` applies them.",
        ),
    ] = False,
    sweep_specs: Annotated[
        list[str] | None, Opt("--sweep", help="name=start:stop:step or name=a,b,c (repeatable).")
    ] = None,
    objective: Annotated[
        str, Opt(help="Sort sweeps and pick walk-forward winners by this.")
    ] = "sharpe",
    jobs: Annotated[int, Opt(min=1, help="Parallel processes for sweeps.")] = 1,
    walk_forward: Annotated[
        bool, Opt("--walk-forward", help="Rolling train/test windows.")
    ] = False,
    train: Annotated[str, Opt(help="Walk-forward train window, e.g. 90d.")] = "90d",
    test: Annotated[str, Opt(help="Walk-forward test window, e.g. 30d.")] = "30d",
    fmt: Annotated[Format | None, Opt("--format", "-f", help="Summary format.")] = None,
    output: Annotated[
        Path | None,
        Opt(
            "--output",
            "-o",
            callback=check_output,
            help="Trades to FILE.parquet (+ .equity/.fills.parquet beside); a sweep or a "
            "walk-forward writes its table (.parquet/.csv/.jsonl/.json).",
        ),
    ] = None,
    no_journal: Annotated[bool, Opt("--no-journal", help="Do not record the run.")] = False,
    stepwise: Annotated[
        bool,
        Opt(
            "--stepwise",
            help="Run the composer bar by bar over the replay exchange (orders, fills read "
            "back, management per bar) instead of the fast path, to check they agree; prints "
            "its speed. Every strategy, one or more symbols, sized by --risk-usd or "
            "--risk-pct; not with --units, --detail, --fee, --no-funding, sweeps or "
            "walk-forward.",
        ),
    ] = False,
) -> None:
    """Backtest a strategy over stored candles with slippage, fees, funding, liquidation,
    position management and the risk engine; prints the summary, records the run."""
    with gc_policy.loading():  # the engine's libraries
        from cryptobot.backtest import runner
        from cryptobot.core.venues import lake_exchange
        from cryptobot.data.lake import Lake
        from cryptobot.journal import backtests as journal

    obj: AppContext = ctx.obj
    settings = obj.settings
    single = not (sweep_specs or walk_forward)
    if single and output is not None and output.suffix.lower() != ".parquet":
        raise CryptobotError(
            f"-o {output}: a backtest writes .parquet files (trades, equity, fills)"
        )
    if time_stop is not None:  # for every strategy: the flag beats the profiles too
        manage = settings.manage.overriding(time_stop_minutes=time_stop)
        settings = settings.model_copy(update={"manage": manage})
    root = obj.data_dir(create=False)
    lake = Lake(root)
    try:
        window = (parse_time(start) if start else None, parse_time(end) if end else None)
        train_ms, test_ms = parse_duration(train), parse_duration(test)
    except ValueError as exc:
        raise CryptobotError(str(exc)) from None
    if risk_usd is not None and risk_pct is not None:
        raise CryptobotError("give one of --risk-usd, --risk-pct")
    if not symbols and top is None:
        raise CryptobotError("give --symbols or --top N")
    exchange = lake_exchange(settings)
    params = {} if stop_atr is None else {"stop_atr": stop_atr}
    req = runner.Request(  # --top's symbols are ranked once the flags are found good
        strategy=strategy, symbols=parse_symbols(symbols) if symbols else [],
        exchange=exchange, timeframe=timeframe,
        start=window[0], end=window[1], params=params, units=units, risk_usd=risk_usd,
        risk_pct=risk_pct, detail=detail, funding=not no_funding, breakers=not no_breakers,
        signal_filters=not no_signal_filters,
    )  # fmt: skip
    try:  # a flag past its strategy's bounds (--stop-atr 101) is a usage error, before data
        if params:
            runner.strategy_params(req, settings)
    except ConfigError as exc:
        raise UsageError(str(exc), ctx=get_current_context(silent=True)) from None
    req = runner.with_defaults(req)
    req = replace(req, costs=_costs(req, settings, fee, slippage_bps), market_fees=fee is None)
    if stepwise:
        _check_stepwise(req, fee=fee, sweeps=bool(sweep_specs or walk_forward))
    points = _grid(sweep_specs or [], req, settings) if sweep_specs or walk_forward else []
    if param := runner.missing_stop(req, settings, points):
        raise UsageError(
            f"{strategy} sized by risk needs a stop: give --{param.replace('_', '-')} N (or set "
            f"strategies.{strategy}.{param}), or trade --units",
            ctx=get_current_context(silent=True),
        )
    if not req.symbols:
        req = replace(req, symbols=_top(lake, req, top, settings))
    data = runner.load(lake, req, settings)
    err = Notes(quiet=obj.quiet)  # -q: data and errors only
    for warning in data.warnings:
        err.warn(warning)
    if sweep_specs or walk_forward:
        from cryptobot.backtest import sweep  # its process pool loads only for a sweep

        if walk_forward:
            table, totals = sweep.walk_forward(
                req, data, settings, points, train_ms=train_ms, test_ms=test_ms,
                objective=objective, jobs=jobs,
            )  # fmt: skip
            rows = _times(table, ("train_from", "test_from", "test_to"))
            render(rows, fmt, output, title="walk-forward windows")
            err.say(", ".join(f"{k} {_fmt(v)}" for k, v in totals.items()))
            return
        table = sweep.better_first(sweep.sweep(req, data, settings, points, jobs=jobs), objective)
        if ruined := sweep.ruined(table):
            err.warn(
                f"{ruined} of {len(table)} points' equity fell to or below zero: no sharpe, "
                "sortino, cagr or calmar for them, and they rank last"
            )
        names = list(points[0])
        render(
            table[[*names, *SHOWN]].to_dict("records"), fmt, output, title=f"sweep by {objective}"
        )
        return
    if stepwise:
        result = _run_stepwise(req, data, settings, lake, err)
    else:
        result = runner.run(req, data, settings)
    _show(result, fmt, err)
    if output is not None:
        _write(output, result)
    if not no_journal:
        record = {"strategy": strategy, "symbols": req.symbols, "timeframe": data.timeframe,
                  "from": start, "to": end, "units": units, "risk_usd": risk_usd,
                  "risk_pct": risk_pct, "params": params, "detail": detail,
                  # how it was run: a run is repeatable from its record alone
                  "stepwise": stepwise, "signal_filters": req.signal_filters,
                  "funding": req.funding, "breakers": req.breakers,
                  "fee": fee, "slippage_bps": req.costs.slippage_bps}  # fmt: skip
        run_id = journal.save_run(root, request=record, timeframe=data.timeframe,
                                  summary=result.summary, benchmarks=result.benchmarks,
                                  trades=result.trade_table, equity=result.equity_table,
                                  now_ms=int(time.time() * 1000))  # fmt: skip
        err.say(f"run {run_id} recorded in the journal")


def _check_stepwise(req: runner.Request, *, fee: float | None, sweeps: bool) -> None:
    """What ``--stepwise`` cannot equal yet is refused before any data loads (usage: exit 2)."""
    refusals = (
        (req.units is not None, "--stepwise sizes by risk: give --risk-usd or --risk-pct"),
        (req.detail is not None, "--stepwise does not replay --detail bars yet"),
        (fee is not None, "--stepwise charges each market's own fees: drop --fee"),
        (not req.funding, "--stepwise charges the stored funding: drop --no-funding"),
        (sweeps, "--stepwise runs one backtest, not a sweep or a walk-forward"),
    )  # fmt: skip
    for refused, message in refusals:
        if refused:
            raise UsageError(message, ctx=get_current_context(silent=True))


def _run_stepwise(req: runner.Request, data, settings: Settings, lake, err: Notes):
    """The composer's run over the replay exchange, its speed on stderr (bars stepped per
    second of wall time, measured here: the library takes no clock of its own)."""
    from functools import partial

    from cryptobot.backtest import runner
    from cryptobot.backtest.stepwise import drive

    began = time.perf_counter()
    result = runner.run(req, data, settings, drive=partial(drive, lake=lake))
    took = max(time.perf_counter() - began, 1e-9)
    bars = result.equity_table.num_rows
    err.say(f"stepwise: {bars:,} bars in {took:.2f} s ({bars / took:,.0f} bars/s)")
    return result


def _top(lake, req: runner.Request, top: int, settings: Settings) -> list[str]:
    """The ``top`` stored symbols by volume on the run's trigger timeframe."""
    from cryptobot.backtest import runner
    from cryptobot.data.universe import top_stored  # the ranking only for --top

    tf = runner.trigger_timeframe(req, settings)
    chosen = top_stored(lake, req.exchange, tf, top)
    if not chosen:
        raise CryptobotError(
            f"no stored {tf} candles on {req.exchange}; run `cryptobot fetch` first"
        )
    return chosen


def _costs(req: runner.Request, settings, fee: float | None, slippage: float | None) -> Costs:
    from cryptobot.backtest import runner

    base = runner.costs_for(req, settings)
    changes = {k: v for k, v in (("taker", fee), ("slippage_bps", slippage)) if v is not None}
    return replace(base, **changes)


def _show(result: runner.Result, fmt: Format | None, err: Notes) -> None:
    scopes = {"portfolio": result.summary}
    scopes.update({r["symbol"]: r for r in result.symbol_summaries})
    title = f"{result.request.strategy} backtest"
    if wants_table(fmt=fmt, output=None):  # figures down, scopes across
        rows = [{"figure": k, **{scope: s[k] for scope, s in scopes.items()}} for k in SHOWN]
        render(rows, Format.table, None, title=title)
    else:
        rows = [{"scope": n, **{k: s[k] for k in SHOWN}} for n, s in scopes.items()]
        render(rows, fmt, None)  # render writes a figure that is not defined as null
    err.say(
        "buy and hold: "
        + ", ".join(f"{k.removeprefix('hold ')} {v:+.2f}%" for k, v in result.benchmarks.items())
    )
    filtered = {k.removeprefix("refused_by_"): v for k, v in result.summary.items()
                if k.startswith("refused_by_") and v}  # fmt: skip
    if filtered:
        err.say(
            "refused by signal's filters: " + ", ".join(f"{k} x{v}" for k, v in filtered.items())
        )
    if result.refused:
        err.say(
            "refused by the risk engine: "
            + ", ".join(f"{k} x{v}" for k, v in result.refused.items())
        )
    for note in result.notes:
        err.warn(note, colour="red")
    for ts, reason in result.breaker_trips:
        err.say(f"breaker tripped {iso(ts)}: {reason}")


def _write(output: Path, result: runner.Result) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cryptobot.data.atomic import atomic_write

    stem = output.with_suffix("")
    files = {
        output: result.trade_table,
        stem.with_suffix(".equity.parquet"): result.equity_table,
        stem.with_suffix(".fills.parquet"): result.fill_table,
    }
    for path, table in files.items():
        # dictionary encoding for the text columns only: Arrow's attempt on a million distinct
        # equity values took longer than writing them (-o on 1M bars: 0.24 s -> 0.13 s)
        text = [f.name for f in table.schema if pa.types.is_large_string(f.type)]
        atomic_write(path, lambda tmp, t=table, d=text: pq.write_table(t, tmp, use_dictionary=d))


def _times(table: pd.DataFrame, columns: tuple[str, ...]) -> list[dict]:
    out = table.copy()
    for c in columns:
        out[c] = [iso(int(v)) for v in out[c]]
    return out.to_dict("records")


def _fmt(v) -> str:
    """A figure for a human line on stderr; one that is not defined reads "n/a", not nan."""
    if isinstance(v, float) or getattr(getattr(v, "dtype", None), "kind", "") == "f":
        v = float(v)  # numpy's float32 too
        return f"{v:,.4g}" if math.isfinite(v) else "n/a"
    return str(v)


def _grid(specs: list[str], req: runner.Request, settings: Settings) -> list[dict]:
    """The sweep's points, each checked against the strategy's parameters before any data
    loads: a bad --sweep value is a usage error (exit 2), one line."""
    from cryptobot.backtest import sweep

    try:
        return sweep.grid(specs, check=sweep.point_checker(req, settings))
    except ConfigError as exc:
        raise UsageError(str(exc), ctx=get_current_context(silent=True)) from None
