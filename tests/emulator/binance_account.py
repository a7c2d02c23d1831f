"""The emulated Binance USDⓈ-M account: one USDT wallet, one-way (BOTH) positions per symbol
with their own leverage and margin type, and the ledger of everything that moved the wallet.

Every change of the wallet is an income row as Binance's ``/fapi/v1/income`` lists it
(REALIZED_PNL, COMMISSION, FUNDING_FEE, INSURANCE_CLEAR), so a test can check that the wallet
is the start balance plus the sum of those rows, whatever sequence of orders got it there.

Isolated positions hold their initial margin (entry notional / leverage) in an isolated wallet
that is part of the wallet balance but not of the cross wallet; a partial close releases it
pro rata. Prices are the emulator's one price path per symbol: the mark price is the last
price (the stored mark candles are hourly at best, too coarse for a matching engine).
"""

from dataclasses import dataclass, field
from typing import Any

from tests.emulator.binance_margin import (
    Bracket,
    bracket_of,
    liquidation_price,
    maintenance_margin,
)

MAKER_FEE = 0.0002
TAKER_FEE = 0.0005
DEFAULT_LEVERAGE = 20


class Rejected(Exception):
    """Binance's answer to a request it refuses: HTTP status, error code and message."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    @property
    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


@dataclass
class Position:
    symbol: str
    leverage: int = DEFAULT_LEVERAGE
    isolated: bool = False
    qty: float = 0.0  # signed: long > 0
    entry: float = 0.0
    isolated_wallet: float = 0.0
    update_time: int = 0

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
    realized: float
    commission: float
    maker: bool
    time: int


@dataclass
class Account:
    """Wallet, positions and ledger. Not thread-safe: the exchange holds the lock."""

    balance: float = 10_000.0
    brackets: list[Bracket] = field(default_factory=list)
    maker_fee: float = MAKER_FEE
    taker_fee: float = TAKER_FEE
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    income: list[dict[str, Any]] = field(default_factory=list)
    start_balance: float = field(init=False)

    def __post_init__(self) -> None:
        self.start_balance = self.balance

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol))

    def _book(self, symbol: str, kind: str, amount: float, time: int, info: str = "") -> None:
        if amount == 0:
            return
        self.balance += amount
        self.income.append(
            {
                "symbol": symbol,
                "incomeType": kind,
                "income": amount,
                "asset": "USDT",
                "info": info,
                "time": time,
                "tranId": len(self.income) + 1,
                "tradeId": info if kind in ("REALIZED_PNL", "COMMISSION") else "",
            }
        )

    # ---- settings ---------------------------------------------------------------------------
    def set_leverage(self, symbol: str, leverage: int) -> None:
        if not 1 <= leverage <= self.brackets[0].max_leverage:
            raise Rejected(-4028, f"Leverage {leverage} is not valid")
        self.position(symbol).leverage = leverage

    def set_isolated(self, symbol: str, isolated: bool, busy: bool) -> None:
        """``busy``: the symbol has open orders (Binance refuses the change then too)."""
        pos = self.position(symbol)
        if pos.isolated == isolated:
            raise Rejected(-4046, "No need to change margin type.")
        if pos.qty or busy:
            raise Rejected(-4048, "Margin type cannot be changed if there exists position.")
        pos.isolated = isolated

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

    def liquidation(self, symbol: str, marks: dict[str, float]) -> float:
        pos = self.positions.get(symbol)
        if pos is None or not pos.qty:
            return 0.0
        if pos.isolated:
            return liquidation_price(
                qty=pos.qty, entry=pos.entry, wallet=pos.isolated_wallet, brackets=self.brackets
            )
        others = [p for s, p in self.positions.items() if s != symbol and p.qty and not p.isolated]
        return liquidation_price(
            qty=pos.qty,
            entry=pos.entry,
            wallet=self.cross_wallet(),
            brackets=self.brackets,
            other_maintenance=sum(
                maintenance_margin(self.brackets, p.qty * marks.get(p.symbol, p.entry))
                for p in others
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
            realized=realized,
            commission=qty * price * (fee_rate if fee_rate is not None else rate),
            maker=maker,
            time=time,
        )
        self.trades.append(trade)
        self._book(symbol, "REALIZED_PNL", realized, time, str(trade.id))
        self._book(symbol, "COMMISSION", -trade.commission, time, str(trade.id))
        return trade

    def fund(self, symbol: str, rate: float, mark: float, time: int) -> None:
        """Funding at a settlement time: longs pay shorts when the rate is positive."""
        pos = self.positions.get(symbol)
        if pos is not None and pos.qty:
            self._book(symbol, "FUNDING_FEE", -pos.qty * mark * rate, time)

    def clear(self, symbol: str, notional: float, time: int) -> None:
        """A liquidation leaves the position's maintenance margin at the liquidation price
        (what margin + PnL still held there) to the insurance fund: Binance's clearance fee."""
        self._book(symbol, "INSURANCE_CLEAR", -maintenance_margin(self.brackets, notional), time)

    def risk_row(self, symbol: str, marks: dict[str, float], time: int) -> dict[str, Any]:
        """One row of ``/fapi/v2/positionRisk`` (v3 adds margins and drops leverage)."""
        pos = self.position(symbol)
        mark = marks.get(symbol, pos.entry)
        notional = pos.qty * mark
        bracket = bracket_of(self.brackets, abs(notional))
        return {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": _n(pos.qty),
            "entryPrice": _n(pos.entry),
            "breakEvenPrice": _n(pos.entry * (1 + self.taker_fee * (1 if pos.qty > 0 else -1))),
            "markPrice": _n(mark),
            "unRealizedProfit": _n(pos.upnl(mark)),
            "liquidationPrice": _n(self.liquidation(symbol, marks)),
            "leverage": str(pos.leverage),
            "maxNotionalValue": _n(bracket.cap),
            "marginType": "isolated" if pos.isolated else "cross",
            "isolatedMargin": _n(pos.isolated_wallet + pos.upnl(mark) if pos.isolated else 0.0),
            "isAutoAddMargin": "false",
            "notional": _n(notional),
            "isolatedWallet": _n(pos.isolated_wallet),
            "initialMargin": _n(abs(notional) / pos.leverage),
            "maintMargin": _n(maintenance_margin(self.brackets, notional) if pos.qty else 0.0),
            "positionInitialMargin": _n(abs(notional) / pos.leverage),
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "marginAsset": "USDT",
            "updateTime": pos.update_time or time,
        }


def _n(x: float) -> str:
    """Binance prints numbers as strings with a fixed number of decimals."""
    return f"{float(x) + 0.0:.8f}"
