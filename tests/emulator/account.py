"""The emulated trading account both venues keep: one USDT wallet, one-way positions per symbol
with their own leverage and margin mode, and the ledger of everything that moved the wallet.

Every change of the wallet is a ledger row (``realized_pnl``, ``fee``, ``funding``,
``liquidation_clear``) that each venue lists in its own words (Binance's ``/fapi/v1/income``,
Bitget's account bills), so a test can check that the wallet is the start balance plus the sum
of those rows, whatever sequence of orders got it there.

Isolated positions hold their initial margin (entry notional / leverage) in an isolated wallet
that is part of the wallet balance but not of the cross wallet; a partial close releases it
pro rata. Prices are the emulator's one price path per symbol: the mark price is the last
price (the stored mark candles are hourly at best, too coarse for a matching engine).

What a venue refuses is a :class:`Refused` with a reason in the venues' common words; each
venue answers it with its own HTTP status, code and message.
"""

from dataclasses import dataclass, field
from typing import Any

from tests.emulator.margin import Bracket, liquidation_price, maintenance_margin


class Refused(Exception):
    """The venue says no. ``reason`` is one of the matching engine's words (``duplicate_id``,
    ``insufficient_margin``...), ``detail`` what the venue's message may quote."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


class Rejected(Exception):
    """A refusal in a venue's own words: HTTP status, error code (an int on Binance, a string
    on Bitget) and message. A venue's routes raise it for what they parse; what the engine
    refuses (:class:`Refused`) is translated by the venue's table of codes."""

    def __init__(self, code: int | str, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass
class Position:
    symbol: str
    leverage: int
    isolated: bool = False
    qty: float = 0.0  # signed: long > 0
    entry: float = 0.0
    isolated_wallet: float = 0.0
    update_time: int = 0
    open_time: int = 0

    def upnl(self, mark: float) -> float:
        return self.qty * (mark - self.entry)


@dataclass
class Trade:
    id: int
    order_id: int
    symbol: str
    side: str  # BUY / SELL
    price: float
    qty: float
    closing: float  # the part of ``qty`` that reduced the position
    realized: float
    commission: float
    maker: bool
    time: int


@dataclass
class Account:
    """Wallet, positions and ledger. Not thread-safe: the engine holds the lock.

    ``close_fee`` is the rate a venue counts into the maintenance margin for closing at the
    liquidation price (Bitget: its taker fee; Binance: none)."""

    brackets: list[Bracket]
    balance: float = 10_000.0
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    close_fee: float = 0.0
    default_leverage: int = 20
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    start_balance: float = field(init=False)

    def __post_init__(self) -> None:
        self.start_balance = self.balance

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol, self.default_leverage))

    def _book(self, symbol: str, kind: str, amount: float, time: int, trade: int = 0) -> None:
        if amount == 0:
            return
        self.balance += amount
        self.ledger.append(
            {
                "id": len(self.ledger) + 1,
                "symbol": symbol,
                "kind": kind,
                "amount": amount,
                "time": time,
                "trade": trade,  # the trade's id for realized_pnl and fee rows, else 0
            }
        )

    # ---- settings ---------------------------------------------------------------------------
    def set_leverage(self, symbol: str, leverage: int) -> None:
        if not 1 <= leverage <= self.brackets[0].max_leverage:
            raise Refused("leverage_invalid", leverage=leverage)
        self.position(symbol).leverage = leverage

    def set_isolated(self, symbol: str, isolated: bool, busy: bool) -> bool:
        """Whether the mode changed (False: it was so already). ``busy``: the symbol has open
        orders (both venues refuse the change then, as with a position)."""
        pos = self.position(symbol)
        if pos.isolated == isolated:
            return False
        if pos.qty or busy:
            raise Refused("margin_mode_busy")
        pos.isolated = isolated
        return True

    # ---- margin -----------------------------------------------------------------------------
    def cross_wallet(self) -> float:
        return self.balance - sum(p.isolated_wallet for p in self.positions.values())

    def initial_margin(self, marks: dict[str, float]) -> float:
        return sum(
            abs(p.qty) * marks.get(s, p.entry) / p.leverage
            for s, p in self.positions.items()
            if p.qty and not p.isolated
        )

    def available(self, marks: dict[str, float], order_margin: float) -> float:
        """What a new order may use: cross wallet + cross uPnL - cross initial margin - the
        margin held by open orders."""
        cross_upnl = sum(
            p.upnl(marks.get(s, p.entry))
            for s, p in self.positions.items()
            if p.qty and not p.isolated
        )
        return self.cross_wallet() + cross_upnl - self.initial_margin(marks) - order_margin

    def maintenance(self, notional: float) -> float:
        return maintenance_margin(self.brackets, notional, self.close_fee)

    def liquidation(self, symbol: str, marks: dict[str, float]) -> float:
        pos = self.positions.get(symbol)
        if pos is None or not pos.qty:
            return 0.0
        if pos.isolated:
            return liquidation_price(
                qty=pos.qty,
                entry=pos.entry,
                wallet=pos.isolated_wallet,
                brackets=self.brackets,
                close_fee=self.close_fee,
            )
        others = [p for s, p in self.positions.items() if s != symbol and p.qty and not p.isolated]
        return liquidation_price(
            qty=pos.qty,
            entry=pos.entry,
            wallet=self.cross_wallet(),
            brackets=self.brackets,
            close_fee=self.close_fee,
            other_maintenance=sum(
                self.maintenance(p.qty * marks.get(p.symbol, p.entry)) for p in others
            ),
            other_upnl=sum(p.upnl(marks.get(p.symbol, p.entry)) for p in others),
        )

    # ---- fills, funding, liquidation ----------------------------------------------------------
    def fill(
        self,
        *,
        symbol: str,
        side: str,
        qty: float,
        price: float,
        maker: bool,
        order_id: int,
        time: int,
        fee_rate: float | None = None,
    ) -> Trade:
        """Book one execution: realise PnL on the closing part, average the entry on the
        opening part, charge the maker or taker fee (or ``fee_rate``) on the whole."""
        pos = self.position(symbol)
        way = 1.0 if side == "BUY" else -1.0
        closing = min(qty, abs(pos.qty)) if pos.qty * way < 0 else 0.0
        opening = qty - closing
        realized = closing * (price - pos.entry) * -way
        if closing:
            pos.isolated_wallet -= pos.isolated_wallet * closing / abs(pos.qty)
            pos.qty += way * closing
            if abs(pos.qty) < 1e-12:
                pos.qty, pos.entry, pos.isolated_wallet = 0.0, 0.0, 0.0
        if opening:
            if not pos.qty:
                pos.open_time = time
            new_qty = pos.qty + way * opening
            pos.entry = (abs(pos.qty) * pos.entry + opening * price) / abs(new_qty)
            pos.qty = new_qty
            if pos.isolated:
                pos.isolated_wallet += opening * price / pos.leverage
        pos.update_time = time
        rate = self.maker_fee if maker else self.taker_fee
        trade = Trade(
            id=len(self.trades) + 1,
            order_id=order_id,
            symbol=symbol,
            side=side,
            price=price,
            qty=qty,
            closing=closing,
            realized=realized,
            commission=qty * price * (fee_rate if fee_rate is not None else rate),
            maker=maker,
            time=time,
        )
        self.trades.append(trade)
        self._book(symbol, "realized_pnl", realized, time, trade.id)
        self._book(symbol, "fee", -trade.commission, time, trade.id)
        return trade

    def fund(self, symbol: str, rate: float, mark: float, time: int) -> None:
        """Funding at a settlement time: longs pay shorts when the rate is positive."""
        pos = self.positions.get(symbol)
        if pos is not None and pos.qty:
            self._book(symbol, "funding", -pos.qty * mark * rate, time)

    def clear(self, symbol: str, notional: float, time: int) -> None:
        """A liquidation leaves the position's maintenance margin at the liquidation price
        (what margin + PnL still held there) to the insurance fund: the clearance fee."""
        self._book(symbol, "liquidation_clear", -self.maintenance(notional), time)
