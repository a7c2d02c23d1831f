"""A backtest from the lake: load candles and funding, turn a strategy into signals, run, and
collect trades, fills, equity and metrics. The CLI, sweeps and walk-forward all call this.

Two ways to size:
- **units** (``units`` set): every trade is that many base units, no margin limits and no risk
  engine: a strategy's reference definition (``Strategy.reference``, ``ema_cross``'s), fast
  enough for big sweeps. Symbols run
  independently; the equity is their sum. Nothing stops such a run from losing more than it
  has: the first close that marks the equity at or below zero is reported in ``Result.notes``
  and, with ``backtest.units_below_zero: end``, the run ends there (open positions are closed
  at the next open, the kernel's forced exit at a window's end; nothing trades after). The
  default ``continue`` keeps the PnL of N units running, as the ema_cross reference defines.
- **risk** (default): the portfolio driver sizes every trade through the risk engine (config
  ``risk.sizing``, or ``risk_usd``/``risk_pct``), with the gate chain and circuit breakers in time
  order over all symbols on one equity.

What sets a strategy apart is read from its ``Strategy`` attributes, never from its name: a
strategy with a ``reference`` definition run in units follows it exactly (``ema_cross``: exit on
the opposite cross, stop live from the bar after the entry, no management, its costs); sized by
risk it is managed like any strategy, its stop live from the entry bar, and one whose signals
are its exits (``exits_on_signal``) still exits on them. A strategy with ``bar_entries`` gives
its entries as arrays over the whole history; the others run their detector over it (the same
code as ``scan``; the detectors have no look-ahead). Every strategy's trades follow its own
management profile (``manage.profiles.<strategy>`` over ``manage``, ``management``), with the
per-bar strategy exits and trend strength it asks for (``bar_rules``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from cryptobot.backtest import metrics
from cryptobot.backtest.bars import (
    BarBlock,
    Columns,
    SymbolBars,
    funding_warning,
    symbol_bars,
)
from cryptobot.backtest.engine import (
    Costs,
    Signals,
    equity_table,
    fill_table,
    floats,
    run_units,
    trade_table,
)
from cryptobot.backtest.grid import align
from cryptobot.core.errors import ConfigError, DataError
from cryptobot.core.market import Market
from cryptobot.core.settings import ManageRules, Settings
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import iso
from cryptobot.data.arrow import column
from cryptobot.data.lake import Lake
from cryptobot.manage.policy import Policy
from cryptobot.strategies.registry import lookup
from cryptobot.strategies.spec import Reference

if TYPE_CHECKING:  # the risk stack loads only for a run sized by risk (_portfolio_setup)
    import pandas as pd

    from cryptobot.backtest.portfolio import PortfolioRun, PortfolioSetup
    from cryptobot.strategies.filters import EntryFilters

HELD = ("BTC", "ETH")  # buy-and-hold benchmarks besides each symbol


@dataclass(frozen=True)
class Request:
    strategy: str
    symbols: list[str]
    exchange: str
    timeframe: str | None = None  # the strategy's trigger timeframe by default
    start: int | None = None
    end: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # strategy parameter overrides
    units: float | None = None
    risk_usd: float | None = None
    risk_pct: float | None = None
    detail: str | None = None
    funding: bool = True
    breakers: bool = True
    costs: Costs | None = None  # None: config backtest.* (a reference in units: its own costs)
    market_fees: bool = True  # each stored market's own maker/taker where it states them
    signal_filters: bool = True  # signal's filters on the entries (``filters_for``)


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Everything a run reads, loaded once (sweeps and walk-forward reuse it). Candles are
    NumPy columns (``Lake.read_candle_columns``); the strategies get them as pandas frames
    (``frames``), which the ema_cross reference in units never asks for."""

    timeframe: str
    bars: list[SymbolBars]
    candles: dict[str, dict[str, Columns]]  # per symbol, per timeframe
    benchmark: dict[str, pd.DataFrame]
    markets: dict[str, Market]  # stored contract specs, for sizing
    held: dict[str, Columns]  # BTC's and ETH's times and closes in the timeframe: buy-and-hold
    warnings: tuple[str, ...] = ()
    filters: EntryFilters | None = None  # signal's filters per bar (``filters_for``)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. cot_crowd's crowd

    @cached_property
    def frames(self) -> dict[str, dict[str, pd.DataFrame]]:
        """The candles as frames per symbol, per timeframe (the strategies' input)."""
        return _frames(self.candles)


def _frames(candles: dict[str, dict[str, Columns]], tf: str | None = None) -> dict:
    """Frames over the columns' own arrays (nothing is copied): per symbol, per timeframe, or
    of ``tf`` alone per symbol."""
    import pandas as pd

    if tf is not None:
        return {s: pd.DataFrame(f[tf], copy=False) for s, f in candles.items()}
    return {s: {t: pd.DataFrame(c, copy=False) for t, c in f.items()} for s, f in candles.items()}


@dataclass(kw_only=True)
class Result:
    """A run: its trades, fills and equity as Arrow tables (the CLI prints, records and writes
    them without pandas), and the same as pandas frames on first use (``trades``...)."""

    request: Request
    trade_table: pa.Table
    fill_table: pa.Table
    equity_table: pa.Table
    summary: dict
    symbol_summaries: list[dict]  # per symbol: its symbol and figures
    benchmarks: dict[str, float]
    refused: dict[str, int]
    breaker_trips: list[tuple[int, str]]
    warnings: tuple[str, ...]  # about the data (also printed before the run)
    notes: tuple[str, ...] = ()  # what the run itself found, e.g. equity below zero

    @cached_property
    def trades(self) -> pd.DataFrame:
        return self.trade_table.to_pandas()

    @cached_property
    def fills(self) -> pd.DataFrame:
        return self.fill_table.to_pandas()

    @cached_property
    def equity(self) -> pd.DataFrame:
        return self.equity_table.to_pandas()

    @cached_property
    def per_symbol(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.symbol_summaries)


def with_defaults(req: Request) -> Request:
    """A strategy with a reference definition and no sizing asked for runs that definition:
    its units and funding here (its costs and policy in ``costs_for`` and ``policy_for``)."""
    reference = lookup(req.strategy).reference
    if reference and req.units is None and req.risk_usd is None and req.risk_pct is None:
        return replace(req, units=reference.units, funding=reference.funding)
    return req


def trigger_timeframe(req: Request, settings: Settings) -> str:
    if req.timeframe:
        return req.timeframe
    params = strategy_params(req, settings)
    return min(lookup(req.strategy).timeframes(params), key=timeframe_ms)


def strategy_params(req: Request, settings: Settings) -> Any:
    """The strategy's settings section with the run's overrides (``params``; a strategy that
    runs on any timeframe takes the run's ``timeframe`` as its own), validated alike."""
    strategy = lookup(req.strategy)
    base = getattr(settings.strategies, req.strategy)
    unknown = set(req.params) - set(type(base).model_fields)
    if unknown:
        raise ConfigError(f"{req.strategy} has no parameter {', '.join(sorted(unknown))}")
    if strategy.any_timeframe and "timeframe" in req.params:
        raise ConfigError(f"{req.strategy} runs on the run's --timeframe: it is no parameter")
    overrides = dict(req.params)
    if strategy.any_timeframe and req.timeframe:  # the run's timeframe is the strategy's
        timeframe_ms(req.timeframe)  # an unknown one is a clear error here
        overrides["timeframe"] = req.timeframe
    if all(getattr(base, k) == v for k, v in overrides.items()):  # nothing changes: as
        return base  # validated with the settings (its validator is built on first use)
    values = {**dict(base), **overrides}  # the fields as they are: nested sections stay models
    try:
        return type(base).model_validate(values)
    except ValidationError as exc:  # a flag past the section's bounds (--stop-atr 101)
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ConfigError(f"{req.strategy}.{where}: {first['msg']}") from None


def missing_stop(req: Request, settings: Settings, points: list[dict] | None = None) -> str | None:
    """The parameter a run lacks to size any entry: sized by the loss at the stop ($ or % of
    equity, not by margin) while the strategy's entries carry no stop (``stop_param`` unset,
    as ema_cross's ``stop_atr`` by default), for the request or any of a sweep's ``points``;
    None when every entry can be sized. Such a run would trade nothing."""
    param = lookup(req.strategy).stop_param
    if req.units is not None or param is None:
        return None
    if req.risk_usd is None and req.risk_pct is None:
        method = settings.risk.for_order(strategy=req.strategy).sizing.method
        if method == "margin_pct":  # a margin is sized without a stop
            return None
    for point in points or [{}]:
        params = strategy_params(replace(req, params={**req.params, **point}), settings)
        if getattr(params, param) is None:
            return param
    return None


def load(lake: Lake, req: Request, settings: Settings) -> Dataset:
    params = strategy_params(req, settings)  # an unknown name or parameter fails here, clearly
    tf = trigger_timeframe(req, settings)
    strategy = lookup(req.strategy)
    wanted = sorted({tf, *strategy.timeframes(params)}, key=timeframe_ms)
    candles, bars, warnings = {}, [], []
    for symbol in req.symbols:
        block = BarBlock()  # the prices are read into the bar block (no copy of their own)
        base = lake.read_candle_columns(req.exchange, symbol, tf, None, req.end, into=block)
        if len(base["timestamp"]) == 0:
            raise DataError(
                f"no candles stored for {symbol} ({tf}) on {req.exchange}; run "
                f"`cryptobot fetch --symbols {symbol} --timeframes {tf}`"
            )
        candles[symbol] = {t: _frame(lake, req, symbol, t, base, tf, warnings) for t in wanted}
        funding = lake.read_funding(req.exchange, symbol) if req.funding else None
        detail = (
            lake.read_candle_columns(req.exchange, symbol, req.detail, None, req.end)
            if req.detail
            else None
        )
        if req.detail and (detail is None or len(detail["timestamp"]) == 0):
            warnings.append(f"{symbol}: no stored {req.detail} candles; --detail ignored")
        fallback = settings.backtest.funding_fallback_rate if req.funding else None
        sb = symbol_bars(symbol, tf, base, funding=funding, fallback_rate=fallback, detail=detail,
                         block=block)  # fmt: skip
        bars.append(sb)
        if note := funding_warning(sb, req.start, req.end):
            warnings.append(note)
    bench_symbol = settings.scan.benchmark
    benchmark = {}
    if strategy.reads_benchmark:
        benchmark = {
            t: lake.read_candles(req.exchange, bench_symbol, t, None, req.end) for t in wanted
        }
    markets = {} if reference_units(req) is not None else _markets(lake, req)
    held = {b: _candles(lake, req, f"{b}/USDT:USDT", tf, candles) for b in HELD}
    filters = filters_for(lake, req, settings, tf, candles)
    if filters is not None:
        warnings.extend(filters.notes)
    contexts = _contexts(lake, req, settings, params, candles, warnings)
    return Dataset(timeframe=tf, bars=bars, candles=candles, benchmark=benchmark,
                   markets=markets, held=held, warnings=tuple(warnings), filters=filters,
                   contexts=contexts)  # fmt: skip


def filters_for(lake: Lake, req: Request, settings: Settings, tf: str,
                candles: dict[str, dict[str, Columns]]) -> EntryFilters | None:  # fmt: skip
    """``signal``'s filters over every bar of the run (``strategies.filters``: regime,
    funding, higher-timeframe bias, COT), or None: turned off (``signal_filters``), or a
    strategy whose signals are also its exits (ema_cross), of which none may be dropped."""
    if not req.signal_filters or lookup(req.strategy).exits_on_signal:
        return None
    from cryptobot.strategies.filters import entry_filters

    return entry_filters(lake=lake, settings=settings, exchange=req.exchange,
                         strategy=req.strategy, timeframe=tf, frames=_frames(candles, tf),
                         end=req.end)  # fmt: skip


def _markets(lake: Lake, req: Request) -> dict[str, Market]:
    """The stored contract specs of the run's symbols, for sizing and each market's fees (the
    reference definition in units uses neither: its costs are defined, ``costs_for``)."""
    from cryptobot.risk.context import MarketFlags, resolve_markets

    return resolve_markets(lake, req.exchange, req.symbols, MarketFlags())


def _contexts(lake: Lake, req: Request, settings: Settings, params: Any,
              candles: dict[str, dict[str, Columns]], warnings: list[str]) -> dict:  # fmt: skip
    """What the strategy reads besides candles (cot_crowd: COT bias and crowd series), known
    by the last bar's close; what it lacks in the run's window goes to ``warnings``."""
    strategy = lookup(req.strategy)
    if strategy.context is None:
        return {}
    from cryptobot.strategies.scanner import context_notes, load_contexts

    frames = _frames(candles)
    chosen = [(strategy, params)]
    tf = min(chosen[0][0].timeframes(params), key=timeframe_ms)
    end = max(int(f[tf]["timestamp"].iat[-1]) + timeframe_ms(tf) for f in frames.values())
    contexts = load_contexts(
        lake=lake, settings=settings, exchange=req.exchange, symbols=req.symbols,
        chosen=chosen, frames=frames, end=end,
    )  # fmt: skip
    window = {s: {tf: f[tf][f[tf]["timestamp"] <= (req.end or end)]} for s, f in frames.items()}
    notes = context_notes(contexts=contexts, frames=window, chosen=chosen, start=req.start)
    warnings.extend(notes)
    return contexts


def _candles(lake: Lake, req: Request, symbol: str, tf: str,
             candles: dict[str, dict[str, Columns]]) -> Columns:  # fmt: skip
    """Stored times and closes of ``symbol`` in the trigger timeframe ``tf``: a traded symbol's
    are read already (a second read of BTC's million bars for buy-and-hold cost 0.1-0.4 s),
    another's are read without the columns buy-and-hold does not use."""
    if symbol in candles:
        return candles[symbol][tf]
    return lake.read_candle_columns(req.exchange, symbol, tf, None, req.end, prices=("close",))


def _frame(lake: Lake, req: Request, symbol: str, tf: str, base: Columns, base_tf: str,
           warnings: list[str]) -> Columns:  # fmt: skip
    """Stored candles of ``tf``, else built from the trigger timeframe's (a warning says so)."""
    if tf == base_tf:
        return base
    stored = lake.read_candle_columns(req.exchange, symbol, tf, None, req.end)
    if (
        len(stored["timestamp"]) == 0
        and len(base["timestamp"])
        and timeframe_ms(tf) % timeframe_ms(base_tf) == 0
    ):
        import pandas as pd

        from cryptobot.data.resample import resample

        warnings.append(f"{symbol}: no stored {tf} candles; built them from {base_tf}")
        built = resample(pd.DataFrame(base, copy=False), base_tf, tf)
        return {c: built[c].to_numpy() for c in built.columns}
    return stored


def signals_for(req: Request, data: Dataset, settings: Settings) -> list[Signals]:
    """Per symbol, the strategy's signals over its bars, with ``signal``'s filters applied to
    the entries (``data.filters``)."""
    return [signals for signals, _ in _filtered_signals(req, data, settings)]


def _filtered_signals(req: Request, data: Dataset,
                      settings: Settings) -> list[tuple[Signals, np.ndarray | None]]:  # fmt: skip
    """Per symbol, its signals and, where filters apply, which filter refused each bar's
    entry (``EntryFilters.first_refusal``: 0 none)."""
    params = strategy_params(req, settings)
    rules = management(req, settings)
    strategy = lookup(req.strategy)
    out = []
    if strategy.bar_entries is not None:  # its entries as arrays: no setup per bar
        for sb in data.bars:
            entries = strategy.bar_entries(sb.bars, params)
            side, refused = _filter(data, sb.symbol, entries.side)
            exits, weak = (None, None)  # a reference in units has no rules (nor frames)
            if rules is not None:
                frame = data.frames[sb.symbol][sb.timeframe]
                exits, weak = bar_rules(req, rules, settings, params, frame)
            out.append((Signals.of(side, stop_distance=entries.stop_distance, exits=exits,
                                   weak=weak), refused))  # fmt: skip
        return out
    from cryptobot.strategies.scanner import detect_all

    frames = dict(data.frames)
    if data.benchmark:
        frames.setdefault(settings.scan.benchmark, data.benchmark)
    setups = detect_all(req.exchange, req.symbols, frames, [(strategy, params)],
                        benchmark=settings.scan.benchmark, contexts=data.contexts)  # fmt: skip
    for sb in data.bars:
        side = np.zeros(len(sb), dtype=np.int8)
        stop = np.full(len(sb), np.nan)
        confidence = np.full(len(sb), -1)
        anchor = np.full(len(sb), -1, dtype=np.int64)  # the setup's id: the live order id
        for s in setups:
            if s.symbol != sb.symbol or s.status != "triggered" or s.timeframe != data.timeframe:
                continue
            t = int(np.searchsorted(sb.timestamps, s.ts))
            if t < len(sb) and sb.timestamps[t] == s.ts and s.confidence > confidence[t]:
                side[t], stop[t], confidence[t] = (
                    (1 if s.side == "long" else -1),
                    s.stop,
                    s.confidence,
                )
                anchor[t] = s.anchor_ts
        side, refused = _filter(data, sb.symbol, side)
        exits, weak = bar_rules(req, rules, settings, params, data.frames[sb.symbol][sb.timeframe])
        out.append((Signals.of(side, stop_price=stop, exits=exits, weak=weak, anchor=anchor),
                    refused))  # fmt: skip
    return out


def _filter(data: Dataset, symbol: str, side: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The entries ``data.filters`` let through, and which filter refused each of the rest."""
    if data.filters is None:
        return side, None
    refused = data.filters.first_refusal(symbol, side)
    return np.where(refused == 0, side, 0).astype(np.int8), refused


def reference_units(req: Request) -> Reference | None:
    """The strategy's reference definition when the run is in units (``with_defaults``): fixed
    units, no management, its own costs; None otherwise."""
    return lookup(req.strategy).reference if req.units is not None else None


def management(req: Request, settings: Settings) -> ManageRules | None:
    """The management rules of the run's trades: the strategy's profile over ``manage``; None
    for a reference definition in units, which is defined without any."""
    if reference_units(req) is not None:
        return None
    return settings.manage.for_strategy(req.strategy)


def bar_rules(req: Request, rules: ManageRules | None, settings: Settings, params: Any,
              frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """What the strategy's bars (``frame``, the trade's timeframe) say per bar to the rules:
    one exit column per ``rules.exit_on`` (in that order, as ``Policy.exit_kinds``) and the
    weak-trend flags when a weak-trend trail is configured; None where nothing is asked."""
    if rules is None:
        return None, None
    from cryptobot.manage.exits import regime_exits, weakening

    columns = []
    for name in rules.exit_on:
        if name == "regime_change":
            blocked = settings.signal.regime_block.get(req.strategy, [])
            columns.append(regime_exits(frame, blocked=blocked))
        else:  # the momentum plan's own (only a momentum profile may list them)
            from cryptobot.strategies import momentum

            columns.append(
                momentum.opposite_cross(frame, params)
                if name == "ema_cross"
                else momentum.rsi_divergence(frame, params, swing_bars=rules.divergence_swing_bars)
            )
    exits = np.column_stack(columns) if columns else None
    weak = None
    if rules.trail_rest and rules.trail_weak_atr_mult:
        weak = weakening(frame, strong_adx=rules.strong_trend_adx)
    return exits, weak


def policy_for(req: Request, settings: Settings, timeframe: str) -> Policy:
    exits_on_signal = lookup(req.strategy).exits_on_signal
    reference = reference_units(req)
    if reference is not None:  # e.g. ema_cross's stop from the bar after the entry
        return Policy.none(
            exit_on_signal=exits_on_signal, stop_delay_bars=reference.stop_delay_bars
        )
    # sized by risk, the stop is live on the entry bar, or a stop-out there could lose more
    # than the budget; a strategy whose signals are its exits still exits on them
    return Policy.from_settings(
        management(req, settings), timeframe_ms(timeframe) / 60_000,
        exit_on_signal=exits_on_signal,
    )  # fmt: skip


def costs_for(req: Request, settings: Settings, market: Market | None = None) -> Costs:
    """The run's costs; with ``market``, that market's own maker/taker fees (as the exchange
    reports them in load_markets) replace the configured ones, unless the request turned that
    off (an explicit --fee) or it is a reference definition with its defined fee."""
    reference = reference_units(req)
    if req.costs is not None:
        base = req.costs
    elif reference is not None:
        base = Costs(taker=reference.taker_fee)  # its definition: that fee per fill, nothing else
    else:
        base = Costs.from_settings(settings)
    if market is None or reference is not None or not req.market_fees:
        return base
    return base.for_market(market)


#: a driver of the sized portfolio: (bars, signals, setup, start, end) -> PortfolioRun
Driver = Callable[[list[SymbolBars], list[Signals], "PortfolioSetup", int, int], "PortfolioRun"]


def run(req: Request, data: Dataset, settings: Settings, *, drive: Driver | None = None) -> Result:
    """``drive``: the driver of a run sized by risk (default ``run_portfolio``, the fast path;
    ``backtest.stepwise.drive`` steps the composer over the replay exchange instead)."""
    filtered = _filtered_signals(req, data, settings)
    bars, signals = align(data.bars, [sg for sg, _ in filtered])
    stamps = bars[0].timestamps
    start = int(np.searchsorted(stamps, req.start)) if req.start is not None else 0
    end = (
        int(np.searchsorted(stamps, req.end, side="right")) if req.end is not None else len(stamps)
    )
    if end - start < 2:
        raise DataError("fewer than two bars in the chosen --from/--to window")
    policy, costs = policy_for(req, settings, data.timeframe), costs_for(req, settings)
    fees = {sb.symbol: costs_for(req, settings, data.markets.get(sb.symbol)) for sb in bars}
    initial = settings.backtest.initial_equity
    refused: dict[str, int] = {}
    trips: list = []
    notes: list[str] = []
    cooled = None  # entries the cooldown after a loss refused, per symbol (sized by risk)
    shown = end  # bars the equity curve covers
    if req.units is not None:
        runs = [
            run_units(
                sb, sg, qty=req.units, policy=policy, costs=fees[sb.symbol], start=start, end=end
            )
            for sb, sg in zip(bars, signals, strict=True)
        ]
        pnl = _stacked([r.pnl for r in runs])
        curve = equity_curve(pnl[:, start:end], initial=initial)
        ruin = ruin_bar(curve, start=start)
        ends = ruin is not None and settings.backtest.units_below_zero == "end"
        if ruin is not None:
            value = initial + sum(float(r.pnl[start : ruin + 1].sum()) for r in runs)
            notes.append(
                f"equity fell to {value:,.2f} at the close of {iso(int(stamps[ruin]))} (--units "
                "trades without margin or liquidation): "
                + ("the run ends there; open positions are closed at the next open"
                   if ends else "the run carries on (backtest.units_below_zero: continue)")
            )  # fmt: skip
        if ends:  # the same kernel, its window ending at that bar's close
            runs = [
                run_units(sb, sg, qty=req.units, policy=policy, costs=fees[sb.symbol],
                          start=start, end=ruin + 1)
                for sb, sg in zip(bars, signals, strict=True)
            ]  # fmt: skip
            shown = min(ruin + 2, len(stamps))  # with the next open's forced exits
            pnl = _stacked([r.pnl for r in runs])
            curve = equity_curve(pnl[:, start:shown], initial=initial)
        trades = pa.concat_tables([r.trade_table() for r in runs])
        fills = pa.concat_tables([r.fill_table() for r in runs])
    else:
        from cryptobot.backtest.portfolio import run_portfolio

        setup = _portfolio_setup(req, settings, policy, costs, fees, data)
        out = (drive or run_portfolio)(bars, signals, setup, start, end)
        trades = _portfolio_trades(out)
        fills = _portfolio_fills(out)
        pnl, refused, trips = out.pnl, dict(out.refused), out.breaker_trips
        curve = equity_curve(pnl[:, start:end], initial=initial)
        notes.extend(out.notes)
        if setup.cooldown_bars:
            cooled = cooled_entries(out, signals, bars=setup.cooldown_bars, start=start, end=end)
    window = slice(start, shown)
    equity = equity_table(stamps[window], curve)
    summary = metrics.summary(equity, trades, metrics.exposure(trades, stamps[window]))
    filtering = filter_figures(req, data, [r for _, r in filtered], cooled)
    summary.update(_summed(filtering))
    if len(bars) == 1:  # its figures are the portfolio's: not worked out twice (0.05 s on 1M bars)
        per_symbol = [{"symbol": bars[0].symbol, **summary}]
    else:
        per_symbol = [_symbol_summary(sb.symbol, pnl[i][window], stamps[window], trades, initial)
                      | filtering[i] for i, sb in enumerate(bars)]  # fmt: skip
    return Result(
        request=req, trade_table=trades, fill_table=fills, equity_table=equity,
        summary=summary, symbol_summaries=per_symbol,
        benchmarks=_benchmarks(bars, window, data.held), refused=refused, breaker_trips=trips,
        warnings=data.warnings, notes=tuple(notes),
    )  # fmt: skip


SIGNAL_FILTERS = ("regime", "funding", "htf", "cooldown", "cot")  # signal's order


def filter_figures(req: Request, data: Dataset, refused: list[np.ndarray | None],
                   cooled: list[int] | None) -> list[dict]:  # fmt: skip
    """Per symbol, the filters the run applied to its entries (``signal_filters``: their names,
    or "none") and how many entries of the window each refused (``refused_by_<filter>``; null
    for one not applied): an entry refused by several counts under the first, in ``signal``'s
    order. ``refused``: per symbol (the run's order), ``_filter``'s codes; ``cooled``: the
    entries the cooldown after a loss refused (``cooled_entries``), None when it did not run."""
    applied = set(data.filters.applied) if data.filters is not None else set()
    if cooled is not None:
        applied.add("cooldown")
    names = ", ".join(n for n in SIGNAL_FILTERS if n in applied) or "none"
    out = []
    for i, sb in enumerate(data.bars):
        found = {"cooldown": cooled[i] if cooled is not None else 0}
        codes = refused[i]
        if codes is not None:  # the filters' module loads only for a run they filtered
            from cryptobot.strategies.filters import counts

            first = 0 if req.start is None else int(np.searchsorted(sb.timestamps, req.start))
            last = len(sb) if req.end is None else int(
                np.searchsorted(sb.timestamps, req.end, side="right"))  # fmt: skip
            found |= counts([codes[first:last]])
        figures = {"signal_filters": names}
        for name in SIGNAL_FILTERS:
            figures[f"refused_by_{name}"] = found.get(name, 0) if name in applied else None
        out.append(figures)
    return out


def _summed(per_symbol: list[dict]) -> dict:
    """The portfolio's filter figures: each count summed over the symbols."""
    total = dict(per_symbol[0])
    for key, value in total.items():
        if key.startswith("refused_by_") and value is not None:
            total[key] = sum(f[key] for f in per_symbol)
    return total


def cooled_entries(out: PortfolioRun, signals: list[Signals], *, bars: int, start: int,
                   end: int) -> list[int]:  # fmt: skip
    """Per symbol, the entries of bars ``start:end`` a driver passed over because a losing
    trade's cooldown (``risk.cooldown``, ``bars`` long) had not run out: the signals between
    the bar the trade let a signal follow it (``kernel.next_signal_bar``) and the first the
    cooldown allows (``cooldown.allowed_after``), the drivers' own rule."""
    from cryptobot.backtest import kernel
    from cryptobot.risk import cooldown

    found = [0] * len(signals)
    for row, i in zip(out.trades, out.trade_symbol, strict=True):
        if row[kernel.T_OPEN] != 0:
            continue
        after = int(kernel.next_signal_bar(row))
        until = cooldown.allowed_after(after, row[kernel.T_NET], int(row[kernel.T_EXIT_BAR]), bars)
        lo, hi = max(after, start), min(until, end - 1)  # the drivers consider start:end-1
        if hi > lo:
            found[int(i)] += int(np.count_nonzero(signals[int(i)].side[lo:hi]))
    return found


def equity_curve(pnl: np.ndarray, *, initial: float) -> np.ndarray:
    """The equity at each bar's close from the PnL per symbol (rows) and bar (columns): one
    symbol's is not copied to be summed (the curve is worked out once for the ruin check and
    the table; twice, it was 0.005-0.01 s of a million-bar run); the initial equity is added
    in place (fresh memory costs more than the addition)."""
    curve = np.cumsum(pnl[0] if len(pnl) == 1 else pnl.sum(axis=0))
    curve += initial
    return curve


def _stacked(rows: list[np.ndarray]) -> np.ndarray:
    """Symbols' PnL as rows of one array; one symbol's is a view, not an 8 MB copy."""
    return rows[0][None] if len(rows) == 1 else np.vstack(rows)


def ruin_bar(curve: np.ndarray, *, start: int) -> int | None:
    """The first bar whose close marks the equity (``curve``, from bar ``start`` on) at or
    below zero (a units-mode run has no margin to stop it), or None."""
    below = curve <= 0  # the first by argmax: flatnonzero would list every bar under water
    first = int(np.argmax(below)) if len(below) else 0
    return start + first if len(below) and below[first] else None


def _symbol_summary(
    symbol: str, pnl: np.ndarray, stamps: np.ndarray, trades: pa.Table, initial: float
) -> dict:
    mine = trades.filter(column(trades, "symbol") == symbol)
    curve = equity_table(stamps, equity_curve(pnl[None], initial=initial))
    return {"symbol": symbol, **metrics.summary(curve, mine, metrics.exposure(mine, stamps))}


def _portfolio_setup(
    req: Request, settings: Settings, policy: Policy, costs: Costs, fees: dict[str, Costs],
    data: Dataset,
) -> PortfolioSetup:  # fmt: skip
    """``costs``: the run's (the sizing's fee where a market states none); ``fees``: each
    symbol's, with its market's own maker/taker."""
    from cryptobot.backtest.portfolio import PortfolioSetup
    from cryptobot.fills.liquidation import venue_of
    from cryptobot.risk import cooldown
    from cryptobot.risk.context import MarketFlags, brackets_resolver, flag_market
    from cryptobot.risk.orders import SizingSetup

    risk = settings.risk
    if req.risk_usd is not None:  # a flag beats the strategies' risk profiles too
        risk = risk.overriding(sizing={"method": "fixed_usd", "risk_usd": req.risk_usd})
    elif req.risk_pct is not None:
        risk = risk.overriding(sizing={"method": "pct_equity", "risk_pct": req.risk_pct})
    venue = venue_of(req.exchange)
    markets = dict(data.markets)
    cap = risk.for_order(strategy=req.strategy).max_leverage  # the strategy's leverage cap
    for symbol in req.symbols:  # not stored: no step rounding, the configured leverage cap
        markets.setdefault(symbol, flag_market(symbol, MarketFlags(max_leverage=cap)))
    # the cooldown after a loss is one of signal's filters: off with them (--no-signal-filters)
    minutes = settings.signal.cooldown_after_loss_min if req.signal_filters else 0
    cooldown_ms = round(minutes * 60_000)
    # a --fee is every market's in the fills (``costs_for``): the sizing counts the same fee
    prefix = settings.execution.client_order_prefix
    sizing_setup = SizingSetup(risk, venue, prefix, costs.taker, market_fees=req.market_fees)
    return PortfolioSetup(
        exchange=req.exchange,
        strategy=req.strategy,
        risk=risk,
        sizing=sizing_setup,
        markets=markets,
        brackets_of=brackets_resolver(venue, cap, None),
        policy=policy,
        costs=costs,
        symbol_costs=fees,
        initial_equity=settings.backtest.initial_equity,
        use_breakers=req.breakers,
        cooldown_bars=cooldown.cooldown_bars(cooldown_ms, timeframe_ms(data.timeframe)),
    )


def _portfolio_trades(out) -> pa.Table:
    """The trades with the $ risk each was sized for and its realised R = net / that target
    (``r`` is over the distance from the entry fill to the stop, which a gap or slippage at the
    entry makes differ from what the trader put at risk)."""
    tables = []
    for i, sb in enumerate(out.bars):
        mine = out.trade_symbol == i
        table = trade_table(sb, out.trades[mine])
        risk = out.risk_usd[mine]
        with np.errstate(divide="ignore", invalid="ignore"):
            realised = column(table, "net", np.float64) / risk
        table = table.append_column("risk_usd", floats(risk))
        table = table.append_column("realised_r", floats(realised))
        ids = [out.client_order_ids[k] for k in np.flatnonzero(mine)]
        tables.append(table.append_column("client_order_id", pa.array(ids, pa.large_string())))
    return _sorted(pa.concat_tables(tables), ["entry_time", "symbol"])


def _portfolio_fills(out) -> pa.Table:
    """The fills, each with the client order id of the order leg it filled: the ids the live
    path sends for the same signal (``risk.orders.fill_order_ids``), or those of the orders a
    venue filled (``--stepwise``)."""
    from cryptobot.risk.orders import fill_order_ids

    symbol_of_trade = out.trade_symbol
    rows = out.fills
    tables = []
    for i, sb in enumerate(out.bars):
        chosen = symbol_of_trade[rows[:, 0].astype(int)] == i if len(rows) else slice(None)
        table = fill_table(sb, rows[chosen])
        if out.fill_order_ids is not None:
            ids = list(np.asarray(out.fill_order_ids, dtype=object)[chosen])
        else:
            ids = fill_order_ids(order_ids=out.client_order_ids,
                                 trades=[int(k) for k in column(table, "trade")],
                                 kinds=table.column("kind").to_pylist())  # fmt: skip
        tables.append(table.append_column("client_order_id", pa.array(ids, pa.large_string())))
    return _sorted(pa.concat_tables(tables), ["time"])


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    """Rows in the order of ``keys``, ties in their order (Arrow's sort is stable)."""
    return table.sort_by([(k, "ascending") for k in keys])


def _benchmarks(bars, window: slice, held: dict[str, Columns]) -> dict[str, float]:
    """Buy-and-hold over the run's window: each symbol, BTC and 50/50 BTC/ETH (when stored)."""
    out = {f"hold {sb.symbol}": metrics.buy_and_hold_pct(sb.bars[window, 3]) for sb in bars}
    stamps = bars[0].timestamps[window]
    closes = {}
    for base, columns in held.items():
        times = np.asarray(columns["timestamp"])
        inside = (times >= stamps[0]) & (times <= stamps[-1])
        if np.count_nonzero(inside) > 1:
            closes[base] = np.asarray(columns["close"])[inside]
    if "BTC" in closes:
        out["hold BTC"] = metrics.buy_and_hold_pct(closes["BTC"])
    if len(closes) == 2:
        out["hold 50/50 BTC/ETH"] = metrics.blend_pct(closes["BTC"], closes["ETH"])
    return out
