"""What sizing needs from storage: market rules (stored, or given as flags), brackets, the
breaker state, equity history for the ladder, open-order ids and return correlations.

Everything is read from the lake and the journal; nothing here reaches an exchange, so ``size``
works offline and in a pipe. The journal's modules (and DuckDB) load when a function reads it:
a backtest uses the market rules here and never the journal.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from cryptobot.core.market import Market
from cryptobot.core.settings import RiskSettings
from cryptobot.data.lake import Lake
from cryptobot.fills import brackets as bracket_rules
from cryptobot.fills.liquidation import Venue
from cryptobot.risk.bracket_files import read_file
from cryptobot.risk.breakers import Action, BreakerState, Clock, Equity, Event, step
from cryptobot.risk.correlation import return_correlations
from cryptobot.risk.gates import AccountState
from cryptobot.risk.ladder import LeverageContext


@dataclass(frozen=True, kw_only=True)
class MarketFlags:
    """Market rules given on the command line; each replaces the stored value."""

    tick_size: float | None = None
    step_size: float | None = None
    min_qty: float | None = None
    min_notional: float | None = None
    max_leverage: float | None = None
    contract_size: float | None = None
    taker: float | None = None
    brackets_file: Path | None = None

    def given(self) -> dict:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "brackets_file" and getattr(self, f.name) is not None
        }


def resolve_markets(
    lake: Lake | None, exchange: str, symbols: Iterable[str], flags: MarketFlags
) -> dict[str, Market]:
    """Stored markets with the flags applied; a symbol not stored becomes a market built from
    the flags alone when they give at least its step size."""
    stored = lake.read_markets(exchange) if lake else {}
    out = {}
    for symbol in set(symbols):
        market = stored.get(symbol)
        if market is not None:
            out[symbol] = replace(market, **flags.given())
        elif flags.step_size is not None:
            out[symbol] = flag_market(symbol, flags)
    return out


def flag_market(symbol: str, flags: MarketFlags) -> Market:
    base, rest = symbol.split("/", 1) if "/" in symbol else (symbol, "USDT")
    quote = rest.split(":")[0]
    return Market(
        symbol=symbol,
        id=symbol.replace("/", "").split(":")[0],
        base=base,
        quote=quote,
        settle=quote,
        type="swap",
        linear=True,
        active=True,
        contract_size=flags.contract_size or 1.0,
        tick_size=flags.tick_size,
        step_size=flags.step_size,
        min_qty=flags.min_qty,
        min_notional=flags.min_notional,
        max_leverage=flags.max_leverage,
        maker=None,
        taker=flags.taker,
    )


def brackets_resolver(
    venue: Venue, default_max_leverage: float, brackets_file: Path | None
) -> Callable[[Market], list[bracket_rules.Bracket]]:
    def resolve(market: Market) -> list[bracket_rules.Bracket]:
        if brackets_file is not None:
            tiers = read_file(brackets_file, market.symbol, market.id)
            return bracket_rules.from_tiers(tiers, derive_amounts=venue != "bitget")
        return bracket_rules.for_market(market, venue, default_max_leverage)

    return resolve


def current_breaker(
    root: Path | None, risk: RiskSettings, now: int, *, account: str
) -> BreakerState:
    """``account``'s journaled state judged now: the releases time (or a change of the loss
    limits) has brought, and the trips the configured limits call for."""
    from cryptobot.journal import breakers as breaker_journal

    record = breaker_journal.load_state(root, account=account) if root else None
    return step(_stored(record), Clock(now), risk)[0]


def _stored(record: object) -> BreakerState:
    """No row yet is a fresh breaker; any stored row, even ``[]`` or ``{}``, is judged as a
    state (an empty one is corrupt, not a fresh start)."""
    return BreakerState() if record is None else BreakerState.from_record(record)


def apply_event(
    root: Path, event: Event, risk: RiskSettings, label: str, *, account: str
) -> tuple[BreakerState, tuple[Action, ...]]:
    """Feed one event to ``account``'s journaled breaker: read, step and store in one
    transaction (two processes at once cannot lose each other's trip)."""
    from cryptobot.journal import breakers as breaker_journal

    outcome: list[tuple[BreakerState, tuple[Action, ...]]] = []

    def change(record: object) -> breaker_journal.Update:
        before = _stored(record)
        after, actions = step(before, event, risk)
        outcome.append((after, actions))
        acts = [a.value for a in actions]
        return breaker_journal.Update(before.to_record(), after.to_record(), event.ts, label, acts)

    breaker_journal.update_state(root, change, account=account)
    return outcome[0]


def observe_equity(
    root: Path, *, account: str, equity: float, now: int, risk: RiskSettings, label: str
) -> tuple[BreakerState, tuple[Action, ...]]:
    """One equity reading of ``account`` fed to its journaled breaker: ``risk equity`` (the
    trader's or a cron's reading) and every reconcile (the venue's, ``engine.reconcile``) call
    this, so a drawdown trips the breaker the same way whoever saw it. ``label`` names the
    reading in the breaker's events."""
    return apply_event(root, Equity(now, equity), risk, label, account=account)


def account_state(
    root: Path | None,
    *,
    account: str,
    exchange: str,
    symbols: Iterable[str],
    equity: float | None,
    risk: RiskSettings,
    now: int,
) -> tuple[AccountState, LeverageContext]:
    """The gates' account (``account``'s breaker) and the ladder's context. ``recent_loss``
    is read only when dynamic leverage is on (``risk.ladder``, its one reader): it derives the
    round trips from every journaled fill, a cost ``trade``'s gates need not pay otherwise."""
    breaker = current_breaker(root, risk, now, account=account)
    correlations = {}
    if root is not None:
        correlations = return_correlations(
            Lake(root), exchange, symbols, risk.gates.correlation_lookback_days
        )
    state = AccountState(equity=equity, correlations=correlations, breaker=breaker)
    growth = LeverageContext(
        equity=equity,
        start_equity=breaker.start_equity,
        peak_equity=max(breaker.peak_equity or 0.0, equity or 0.0) or None,
        recent_loss=risk.dynamic_leverage.enabled and _last_trade_lost(root, account=account),
    )
    return state, growth


def _last_trade_lost(root: Path | None, *, account: str) -> bool:
    """Whether ``account``'s newest closed round trip (``journal.roundtrips.closed``: derived
    from the fills ``trade`` journaled, any symbol; a paper loss says nothing of a live
    account) lost money, net of fees and funding (a trip whose pnl is unknown is not a
    loss)."""
    if root is None:
        return False
    from cryptobot.data import catalog
    from cryptobot.journal import roundtrips

    with catalog.reader(root) as con:
        trips = roundtrips.closed(con, venue=account)
    if not trips:
        return False
    return bool(max(trips, key=lambda t: t["closed_at"])["pnl"] < 0)
