"""From intents to sized orders: ladder, breaker, sizing and the gate chain, in that order.

This is the one path every order takes before it may reach an exchange (``size`` now; ``trade``,
``manage``, ``daemon`` and the backtest later). Orders of one batch are gated in sequence, each
seeing the account as if the earlier ones were placed, so a pipe of five signals cannot open
five positions when the limit is three.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from cryptobot.core.errors import UnknownSymbolError
from cryptobot.core.legs import ENTRY_ORDERS as ENTRY_ORDERS
from cryptobot.core.legs import RESENT_LEGS as RESENT_LEGS
from cryptobot.core.legs import leg_of_order as leg_of_order
from cryptobot.core.legs import leg_order_id
from cryptobot.core.market import Market
from cryptobot.core.order import Intent, SizedOrder
from cryptobot.core.settings import ManageSettings, RiskSettings
from cryptobot.core.setup import check_targets
from cryptobot.fills.brackets import Bracket
from cryptobot.fills.liquidation import Venue
from cryptobot.manage.targets import Rung, ladder_targets, rung_quantities
from cryptobot.manage.ticks import on_tick
from cryptobot.risk import gates
from cryptobot.risk.ladder import LeverageContext, ladder_decision
from cryptobot.risk.sizing import SizeRequest, Sizing, size_position, validate_request


@dataclass(frozen=True)
class SizingSetup:
    """What stays the same for every order of a batch."""

    risk: RiskSettings
    venue: Venue
    client_order_prefix: str
    taker_fee: float = 0.0005  # where a market states none (config fees.taker)
    # False: ``taker_fee`` is every market's (``backtest --fee``: the fills charge it, so the
    # sizing must count it too, not the market's own)
    market_fees: bool = True
    leverage: float | None = None  # forced leverage (--leverage)
    growth: LeverageContext = field(default_factory=LeverageContext)  # for the ladder
    # Why the breaker's journal could not be read (no data dir), if so: its gate then reads
    # "n/a: no journal (...)" and refuses, unless the caller accepts sizing blind to it.
    no_journal: str | None = None
    accept_no_journal: bool = False
    slippage_bps: float = 0.0  # the backtest's slippage, counted in the $ at risk
    # the management profiles: the order's targets are its strategy's ladder
    # (``manage.targets``); None keeps the intent's own (the backtest: its kernel runs the ladder)
    manage: ManageSettings | None = None


def size_orders(
    intents: Iterable[Intent],
    markets: Mapping[str, Market],
    brackets_of: Callable[[Market], list[Bracket]],
    account: gates.AccountState,
    setup: SizingSetup,
) -> list[SizedOrder]:
    out = []
    for intent in intents:
        market = markets.get(intent.symbol)
        if market is None:
            raise UnknownSymbolError(
                f"{intent.symbol} is not among the stored {intent.exchange} markets; run "
                "`cryptobot fetch` for it, or give --tick/--step/--min-notional"
            )
        order, proposal = _size_one(intent, market, brackets_of(market), account, setup)
        if order.status == "sized":
            account = account.with_order(proposal)
        out.append(order)
    return out


def _size_one(
    intent: Intent,
    market: Market,
    brackets: list[Bracket],
    account: gates.AccountState,
    setup: SizingSetup,
) -> tuple[SizedOrder, gates.OrderProposal]:
    risk = setup.risk.for_order(strategy=intent.strategy, asset=market.base)
    growth = replace(
        setup.growth, confidence=intent.confidence, volatility_pct=intent.volatility_pct
    )
    ladder = ladder_decision(risk, growth)
    request = SizeRequest(
        symbol=intent.symbol,
        side=intent.side,
        entry=intent.entry,
        stop=intent.stop,
        targets=intent.targets,
        equity=account.equity,
        leverage=setup.leverage,
        max_leverage=ladder.max_leverage,
        risk_pct=ladder.risk_pct,
        size_mult=account.breaker.size_mult(risk.breakers),
        slippage_bps=setup.slippage_bps,
    )
    request, sizing, rungs = _size_with_ladder(
        request, intent=intent, market=market, brackets=brackets, risk=risk, setup=setup
    )
    cid = intent.client_order_id(setup.client_order_prefix)
    proposal = gates.OrderProposal(
        symbol=intent.symbol,
        side=intent.side,
        entry=intent.entry,
        notional=sizing.notional,
        leverage=sizing.leverage,
        risk_usd=sizing.risk_usd,
        client_order_id=cid,
        max_leverage=sizing.bracket.max_leverage,
        size_mult=request.size_mult,
    )
    verdicts = [_unread_breaker(v, setup) for v in gates.check(proposal, account, risk)]
    breaker = next(v for v in verdicts if v.gate == "circuit_breaker")
    reason = (
        _not_triggered(intent)
        or gates.first_rejection([breaker])
        or sizing.refused
        or gates.first_rejection(verdicts)
    )  # an entry that never fired, then a tripped breaker: what a trader must act on first
    figures = _figures(sizing, risk, request.size_mult)
    if rungs is not None:
        figures["target_qty"] = rung_quantities(qty=sizing.qty, rungs=rungs,
                                                step=market.step_size)  # fmt: skip
        intent = replace(intent, targets=request.targets, setup_targets=intent.targets)
    order = SizedOrder(
        intent=intent,
        client_order_id=cid,
        status="refused" if reason else "sized",
        reason=reason or "",
        figures=figures,
        gates={v.gate: str(v) for v in verdicts},
        steps=(*_profile_note(intent, risk, setup.risk), *ladder.reasons, *sizing.steps),
    )
    return order, proposal


def _profile_note(intent: Intent, risk: RiskSettings, base: RiskSettings) -> tuple[str, ...]:
    """Which limits sized this order, when its strategy has its own (``risk.profiles``)."""
    if not base.has_profile(intent.strategy):
        return ()
    return (
        f"risk.profiles.{intent.strategy}: {risk.sizing.method}, {risk.margin_mode}, leverage "
        f"{risk.sizing.leverage:g}x, cap {risk.max_leverage:g}x",
    )


def _size_with_ladder(
    request: SizeRequest,
    *,
    intent: Intent,
    market: Market,
    brackets: list[Bracket],
    risk: RiskSettings,
    setup: SizingSetup,
) -> tuple[SizeRequest, Sizing, tuple[Rung, ...] | None]:
    """The order sized with its strategy's ladder as its targets (None: the intent's own are
    kept). An order without a stop takes its R from ``manage.manual_risk_pct`` or else from its
    liquidation price, as the backtest's position does; that price comes out of the sizing, so
    such an order is sized once for it and again with the targets it prices (a target changes
    no other figure). A rung the market's tick puts on or behind the entry (an R of about a
    tick) refuses the order: such a take-profit takes no profit."""
    validate_request(request, risk)  # before a rung is priced from its numbers
    rungs = _rungs(intent, market, setup, liquidation=None)
    sizing = _size(request, market, brackets, risk, setup, rungs)
    if rungs == () and intent.stop is None and sizing.liquidation_price is not None:
        rungs = _rungs(intent, market, setup, liquidation=sizing.liquidation_price)
        if rungs:
            sizing = _size(request, market, brackets, risk, setup, rungs)
    why = level_past_entry(side=intent.side, entry=intent.entry, stop=intent.stop,
                           targets=(), tick=market.tick_size)  # fmt: skip
    why = why or next(filter(None, (_unplaceable(intent, r.price, market) for r in rungs or ())),
                      None)  # fmt: skip
    if why is not None:
        return replace(request, targets=()), replace(sizing, refused=sizing.refused or why), ()
    if rungs is not None:
        request = replace(request, targets=tuple(r.price for r in rungs))
    return request, sizing, rungs


def level_past_entry(
    *, side: str, entry: float, stop: float | None, targets: Iterable[float], tick: float | None
) -> str | None:
    """Why an order cannot be sent with its protection: a stop or a target that the market's
    tick puts onto (or past) the entry is no stop or target at all (``manage.ticks.on_tick``
    rounds each towards the entry, as the venue's order and the backtest's position have it).
    The one rule ``size`` refuses by and ``trade`` refuses by again before it sends."""
    sign = 1 if side == "long" else -1
    levels = [("stop", stop, True)] if stop is not None else []
    levels += [("target", t, False) for t in targets]
    for name, price, is_stop in levels:
        on = on_tick(sign, price, tick or 0.0, is_stop)
        if (on - entry) * sign * (-1 if is_stop else 1) <= 0.0:
            return (
                f"{name} on the entry's tick: the {name} {price:g} on the tick {tick or 0:g} is "
                f"{on:g}, at the entry {entry:g} or past it (the venue's tick is coarser than "
                "the order)"
            )
    return None


def _beyond(order: Intent | SizeRequest, price: float) -> bool:
    """Whether a target at ``price`` lies on the profit side of the order's entry, above 0."""
    return (price - order.entry) * (1 if order.side == "long" else -1) > 0.0 and price > 0.0


def _unplaceable(intent: Intent, price: float, market: Market) -> str | None:
    """Why a rung cannot be sent as a take-profit (the backtest's position keeps it, never to
    be reached): the tick put it on the entry (an R of about a tick), or a short's far rung
    lies at or below zero (a stop far above the entry)."""
    if _beyond(intent, price):
        return None
    if price <= 0.0:
        return (f"take-profit rung at or below zero: a rung lies at {price:g}; the stop is too "
                "far from the entry for this ladder")  # fmt: skip
    return (f"target on the entry's tick: a take-profit rung on the tick "
            f"{market.tick_size or 0:g} is {price:g}, not beyond the entry {intent.entry:g}; "
            "the stop is too close for this market")  # fmt: skip


def _size(
    request: SizeRequest,
    market: Market,
    brackets: list[Bracket],
    risk: RiskSettings,
    setup: SizingSetup,
    rungs: tuple[Rung, ...] | None,
) -> Sizing:
    """Sized with the rungs' prices as its targets (None: the request's own; rungs that cannot
    be placed are left out: the sizing refuses such a target as a bad record)."""
    if rungs is not None:
        prices = tuple(r.price for r in rungs)
        request = replace(request, targets=tuple(p for p in prices if _beyond(request, p)))
    return size_position(request, market, brackets, risk, venue=setup.venue,
                         taker_fee=setup.taker_fee, market_fees=setup.market_fees)  # fmt: skip


def _rungs(
    intent: Intent, market: Market, setup: SizingSetup, *, liquidation: float | None
) -> tuple[Rung, ...] | None:
    """The take-profit rungs ``manage`` runs for the intent's strategy, priced as the
    backtest's position prices them (``manage.targets``: on the market's tick), or None to
    keep the intent's targets (no profiles given)."""
    if setup.manage is None:
        return None
    # the intent's own targets are still checked: a target on the losing side is a bad record
    check_targets(symbol=intent.symbol, side=intent.side, entry=intent.entry,
                  targets=intent.targets)  # fmt: skip
    rules = setup.manage.for_strategy(intent.strategy)
    return ladder_targets(rules=rules, side=intent.side, entry=intent.entry, stop=intent.stop,
                          liquidation=liquidation, tick=market.tick_size)  # fmt: skip


def _not_triggered(intent: Intent) -> str | None:
    """An armed setup waits for its trigger: sized, it would read as an entry that fired."""
    if intent.setup_status == "triggered":
        return None
    return f"{intent.setup_status}: waiting for its trigger (run through `signal`)"


def _unread_breaker(verdict: gates.Verdict, setup: SizingSetup) -> gates.Verdict:
    """Without a journal the breaker's state is unknown: that is never a silent pass."""
    if verdict.gate != "circuit_breaker" or setup.no_journal is None:
        return verdict
    if setup.accept_no_journal:
        return gates.Verdict(verdict.gate, True, f"n/a: no journal ({setup.no_journal})")
    return gates.Verdict(
        verdict.gate,
        False,
        f"n/a: no journal ({setup.no_journal}); give --data-dir, or --no-journal to size "
        "without the breaker",
    )


def _figures(s: Sizing, risk: RiskSettings, size_mult: float) -> dict:
    return {
        "method": s.method,
        "risk_target_usd": s.risk_target_usd,
        "size_mult": size_mult,
        "qty_raw": s.qty_raw,
        "qty": s.qty,
        "notional": s.notional,
        "leverage": s.leverage,
        "margin": s.margin,
        "margin_mode": risk.margin_mode,
        "liquidation_price": s.liquidation_price,
        "liquidation_distance_pct": s.liquidation_distance_pct,
        "bracket_tier": s.bracket.tier,
        "mmr": s.bracket.mmr,
        "maint_amount": s.bracket.maint_amount,
        "risk_usd": s.risk_usd,
        "fees_usd": s.fees_usd,
        "target_r": [t.r for t in s.targets],
        "target_pnl_usd": [t.pnl_usd for t in s.targets],
    }


#: the order leg each fill kind comes from (``fills.model.KIND_NAMES``): the entry is the
#: sized order itself; a moved stop (breakeven, trail) and a leg's own stop are the one stop
#: leg (each order of it numbered: ``leg_order_id``); a decision to close at the next open is a
#: reduce-only market order. A liquidation is the exchange's.
LEG_OF_KIND = {
    "entry": "", "stop": "sl", "breakeven": "sl", "trail": "sl", "target": "tp",
    "scale_in": "add", "scale_out": "out", "signal": "close", "time_stop": "close",
    "forced": "close", "regime_change": "close", "ema_cross": "close",
    "rsi_divergence": "close",
}  # fmt: skip
NUMBERED_LEGS = ("tp", "add", "out")  # one order per rung: tp1, tp2, ...


def fill_order_ids(
    *, order_ids: list[str], trades: list[int], kinds: list[str]
) -> list[str | None]:
    """The client order id of each fill (a trade's fills in their order): ``order_ids[t]`` is
    trade t's sized order id; the n-th target fill of a trade is leg ``tp<n>`` (rungs fill in
    ladder order), likewise scale-ins and scale-outs. None for a liquidation (no order of
    ours) or a kind no order makes."""
    seen: dict[tuple[int, str], int] = {}
    out: list[str | None] = []
    for trade, kind in zip(trades, kinds, strict=True):
        leg = LEG_OF_KIND.get(kind)
        if leg is None:
            out.append(None)
            continue
        if leg in NUMBERED_LEGS:
            seen[trade, leg] = seen.get((trade, leg), 0) + 1
            leg = f"{leg}{seen[trade, leg]}"
        out.append(leg_order_id(order_ids[trade], leg))
    return out
