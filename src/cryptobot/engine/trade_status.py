"""``trade --status``: the venue's account as a trader reads it, one row per symbol holding a
position or working orders: the position (size, entry, mark, unrealised PnL, leverage, margin
mode, liquidation price and how far the mark is from it) with its stops, its take-profits and
any other working order. Everything is read from the venue (the truth); nothing is changed or
stored."""

from dataclasses import dataclass
from typing import Any

from cryptobot.core.account import Balance, Order, Position
from cryptobot.exchange.base import TradingExchange


@dataclass(frozen=True)
class StatusReport:
    balance: Balance
    rows: list[dict[str, Any]]


async def account_status(venue: TradingExchange) -> StatusReport:
    balance = await venue.fetch_balance()
    positions = {p.symbol: p for p in await venue.fetch_positions()}
    working = await venue.fetch_open_orders()
    symbols = sorted(set(positions) | {o.symbol for o in working})
    rows = [_row(s, positions.get(s), [o for o in working if o.symbol == s]) for s in symbols]
    return StatusReport(balance=balance, rows=rows)


def _row(symbol: str, position: Position | None, orders: list[Order]) -> dict[str, Any]:
    p = position
    liq = p.liquidation_price if p is not None else None
    distance = abs(p.mark_price - liq) / p.mark_price * 100 if p and liq and p.mark_price else None
    return {
        "symbol": symbol,
        "side": p.side if p else "flat",
        "contracts": p.contracts if p else 0.0,
        "entry_price": p.entry_price if p else None,
        "mark_price": p.mark_price if p else None,
        "unrealized_pnl": p.unrealized_pnl if p else 0.0,
        "leverage": p.leverage if p else None,
        "margin_mode": p.margin_mode if p else None,
        "liquidation_price": liq,
        "liquidation_distance_pct": distance,
        "stops": [_order(o) for o in orders if o.type == "stop_market"],
        "targets": [_order(o) for o in orders if o.type == "take_profit"],
        "orders": [_order(o) for o in orders if o.type not in ("stop_market", "take_profit")],
    }


def _order(o: Order) -> dict[str, Any]:
    return {
        "client_order_id": o.client_order_id,
        "type": o.type,
        "side": o.side,
        "amount": o.amount,
        "filled": o.filled,
        "price": o.price,
        "trigger_price": o.trigger_price,
        "reduce_only": o.reduce_only,
    }


__all__ = ["StatusReport", "account_status"]
