"""The pre-trade gate chain: every order, from every path, passes all of these.

Each gate looks at the proposed order and the account and returns a verdict with its reason;
the order goes out only if every verdict passes. A gate that cannot be evaluated (no equity
known, no last price) passes with an ``n/a`` reason, so the output says what was not checked.
The chain is a pure function of its inputs: the same order and account give the same verdicts.

Reduce-only orders (closing or shrinking a position) skip the gates that limit new risk but not
the duplicate-order check.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from cryptobot.core.settings import RiskSettings
from cryptobot.risk.breakers import BreakerState

Side = Literal["long", "short"]


@dataclass(frozen=True)
class OpenPosition:
    symbol: str
    side: Side
    notional: float
    margin: float

    @classmethod
    def opening(
        cls, *, symbol: str, side: Side, notional: float, leverage: float
    ) -> "OpenPosition":
        """The position an entry opens, as the gates see it: the one place its margin is
        worked out (its notional at its leverage). The next order of a batch
        (``AccountState.with_order``) and a backtest's composer (its desks' entries) both
        see a new position through it; a position the venue reports carries the venue's."""
        return cls(symbol, side, notional, notional / leverage)


@dataclass(frozen=True)
class OrderProposal:
    symbol: str
    side: Side
    entry: float
    notional: float
    leverage: float
    risk_usd: float | None
    client_order_id: str
    max_leverage: float  # the market's bracket maximum for this notional
    reduce_only: bool = False
    size_mult: float = 1.0  # the breaker's multiplier the order was sized under

    def opened(self) -> OpenPosition:
        """The position this entry opens once placed."""
        return OpenPosition.opening(symbol=self.symbol, side=self.side, notional=self.notional,
                                    leverage=self.leverage)  # fmt: skip

    @property
    def margin(self) -> float:
        """The margin this order puts up: none for a reduce-only order."""
        return 0.0 if self.reduce_only else self.opened().margin


@dataclass(frozen=True)
class AccountState:
    equity: float | None
    positions: tuple[OpenPosition, ...] = ()
    order_ids: frozenset[str] = frozenset()
    free_margin: float | None = None  # None: equity minus the positions' margin
    last_prices: Mapping[str, float] = field(default_factory=dict)
    correlations: Mapping[frozenset[str], float] = field(default_factory=dict)
    breaker: BreakerState = field(default_factory=BreakerState)

    def with_order(self, order: OrderProposal) -> "AccountState":
        """The account as the next order of a batch sees it, once this one is placed."""
        return replace(
            self,
            positions=(*self.positions, order.opened()),
            order_ids=self.order_ids | {order.client_order_id},
            free_margin=None if self.free_margin is None else self.free_margin - order.margin,
        )


@dataclass(frozen=True)
class Verdict:
    gate: str
    passed: bool
    reason: str

    def __str__(self) -> str:
        return ("pass" if self.passed else "REJECT") + (f": {self.reason}" if self.reason else "")


Gate = Callable[[OrderProposal, AccountState, RiskSettings], Verdict]


def check(order: OrderProposal, account: AccountState, risk: RiskSettings) -> list[Verdict]:
    return [gate(order, account, risk) for gate in GATES]


def approved(verdicts: list[Verdict]) -> bool:
    return all(v.passed for v in verdicts)


def first_rejection(verdicts: list[Verdict]) -> str | None:
    return next((f"{v.gate}: {v.reason}" for v in verdicts if not v.passed), None)


def _pass(name: str, reason: str = "") -> Verdict:
    return Verdict(name, True, reason)


def _limit(name: str, value: float, limit: float, what: str) -> Verdict:
    ok = value <= limit + 1e-9
    return Verdict(name, ok, f"{what} ${value:,.2f} {'<=' if ok else '>'} ${limit:,.2f}")


def circuit_breaker(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    state = account.breaker
    if order.reduce_only or state.entries_allowed:
        mult = state.size_mult(risk.breakers)
        note = f"recovery mode: size x{mult:g}" if mult != 1 else str(state.mode)
        if not order.reduce_only and order.size_mult > mult + 1e-9:  # sized before a trip
            return Verdict("circuit_breaker", False, f"{note}, but the order was sized at "
                           f"x{order.size_mult:g}: size it again")  # fmt: skip
        return _pass("circuit_breaker", note)
    return Verdict("circuit_breaker", False, f"{state.mode}: {state.reason}")


def max_risk_per_trade(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    name = "max_risk_per_trade"
    if order.reduce_only or order.risk_usd is None:
        return _pass(name, "n/a: no stop")
    if account.equity is None:
        return _pass(name, "n/a: no equity given")
    pct = risk.gates.max_risk_per_trade_pct
    return _limit(name, order.risk_usd, account.equity * pct / 100, f"risk at stop ({pct:g}% cap)")


def max_order_notional(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    cap = risk.gates.max_order_notional_usd
    return _limit("max_order_notional", order.notional, cap, "notional")


def total_exposure(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    return _exposure(
        "total_exposure", order, account, risk.gates.max_total_exposure_pct, lambda p: True
    )


def symbol_exposure(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    return _exposure(
        "symbol_exposure",
        order,
        account,
        risk.gates.max_symbol_exposure_pct,
        lambda p: p.symbol == order.symbol,
    )


def correlated_exposure(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    """Same-side positions in symbols whose returns correlate at or above the threshold (the
    symbol itself included) count together: BTC and ETH longs are mostly one bet."""
    threshold = risk.gates.correlation_threshold

    def related(p: OpenPosition) -> bool:
        if p.side != order.side:
            return False
        if p.symbol == order.symbol:
            return True
        return account.correlations.get(frozenset((p.symbol, order.symbol)), 0.0) >= threshold

    return _exposure(
        "correlated_exposure", order, account, risk.gates.max_correlated_exposure_pct, related
    )


def _exposure(
    name: str,
    order: OrderProposal,
    account: AccountState,
    pct: float,
    counts: Callable[[OpenPosition], bool],
) -> Verdict:
    if order.reduce_only:
        return _pass(name, "reduce-only")
    if account.equity is None:
        return _pass(name, "n/a: no equity given")
    held = sum(p.notional for p in account.positions if counts(p))
    return _limit(
        name, held + order.notional, account.equity * pct / 100, f"exposure ({pct:g}% of equity)"
    )


def max_concurrent_positions(
    order: OrderProposal, account: AccountState, risk: RiskSettings
) -> Verdict:
    name = "max_concurrent_positions"
    symbols = {p.symbol for p in account.positions}
    if order.reduce_only or order.symbol in symbols:
        return _pass(name, f"{len(symbols)} open")
    cap = risk.gates.max_concurrent_positions
    ok = len(symbols) < cap
    return Verdict(name, ok, f"{len(symbols)} open, cap {cap}")


def one_position_per_symbol(
    order: OrderProposal, account: AccountState, risk: RiskSettings
) -> Verdict:
    name = "one_position_per_symbol"
    if order.reduce_only or not risk.gates.one_position_per_symbol:
        return _pass(name, "off" if not order.reduce_only else "reduce-only")
    held = any(p.symbol == order.symbol for p in account.positions)
    return Verdict(name, not held, f"a {order.symbol} position is open" if held else "")


def duplicate_order(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    dup = order.client_order_id in account.order_ids
    return Verdict(
        "duplicate_order",
        not dup,
        f"client order id {order.client_order_id} was already sent" if dup else "",
    )


def reserve_cash(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    name = "reserve_cash"
    if order.reduce_only:
        return _pass(name, "reduce-only")
    if account.equity is None:
        return _pass(name, "n/a: no equity given")
    used = sum(p.margin for p in account.positions) + order.margin
    pct = risk.gates.reserve_cash_pct
    return _limit(name, used, account.equity * (1 - pct / 100), f"margin in use ({pct:g}% kept)")


def free_margin(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    name = "free_margin"
    if order.reduce_only:
        return _pass(name, "reduce-only")
    free = account.free_margin
    if free is None and account.equity is not None:
        free = account.equity - sum(p.margin for p in account.positions)
    if free is None:
        return _pass(name, "n/a: no equity given")
    return _limit(name, order.margin, free, "margin")


def leverage_sanity(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    """An entry's leverage within the allowed range. A reduce-only order sets no leverage (a
    position opened by hand at 50x must still be closable under a 20x cap)."""
    if order.reduce_only:
        return _pass("leverage_sanity", "reduce-only")
    cap = min(risk.max_leverage, order.max_leverage)
    ok = 1 <= order.leverage <= cap
    return Verdict("leverage_sanity", ok, f"{order.leverage:g}x, allowed 1x..{cap:g}x")


def price_sanity(order: OrderProposal, account: AccountState, risk: RiskSettings) -> Verdict:
    """An entry priced near the last trade (a fat-fingered price refused). A reduce-only close
    goes at market whatever the price: in a fast market the mark it is proposed at and the last
    trade part, and a breaker's close refused then would leave the loss running."""
    name = "price_sanity"
    if order.reduce_only:
        return _pass(name, "reduce-only")
    last = account.last_prices.get(order.symbol)
    if last is None:
        return _pass(name, "n/a: no last price")
    off = abs(order.entry - last) / last * 100
    cap = risk.gates.max_price_deviation_pct
    ok = off <= cap
    return Verdict(name, ok, f"entry {off:.2f}% from the last price {last:g} (cap {cap:g}%)")


GATES: tuple[Gate, ...] = (
    circuit_breaker,
    max_risk_per_trade,
    max_order_notional,
    total_exposure,
    symbol_exposure,
    correlated_exposure,
    max_concurrent_positions,
    one_position_per_symbol,
    duplicate_order,
    reserve_cash,
    free_margin,
    leverage_sanity,
    price_sanity,
)
