"""Round trips (``journal trades``) derived from the journal's fills.

Why derived, not stored: the fills are what the venue reports (``trade`` and reconciliation
keep them in line with it), so a trade list computed from them cannot disagree with them, and
a fill recorded late (a run offline) corrects the trades it belongs to on the next read.

The rule: positions are one-way (one per venue and symbol), so the fills of a venue's symbol,
in time order, move one signed position. A round trip opens when the position leaves zero and
closes when it is back at zero; a fill that crosses zero (a manual order larger than the
position) closes one trip with the part that reaches zero and opens the next with the rest
(its fee split by quantity). Fills that grow the position are its entries, fills that shrink it
its exits. A trip still open at the end is listed with ``status: open`` and no exit.

Each trip carries: the sized order it belongs to (``client_order_id``: the family of its first
entry, ``core.legs.leg_of_order`` folding ``-e2``.. into the entry's id) with its strategy and
the venue's id of the order whose fill opened it (a maker-first entry's first child may have
been cancelled unfilled, its ``-e2`` filled); side, quantity, the average entry and exit
prices; ``expected_price`` (the sized entry, where ``trade`` recorded it) and the slippage
against it (``slippage_bps``: positive = paid more than expected, either side; ``slippage``:
the money of it); fees (``fee_currency``: the settle currency, as ``core.account`` books fees);
funding (the venue's payments on the symbol while the trip was open, each counted once);
``pnl`` (price move - fees + funding) and ``gross_pnl``; ``exit_reason`` (the leg of the fill
that closed it: ``stop``, ``tp<n>``, ``close``, ``manual`` for a ``trade --close``,
``liquidation``) and ``exit_legs``, every exit's leg in order; ``linked_trades``: other order
families whose fills fell into the trip (a manual close, a second sized order on the same
position).
"""

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptobot.core.legs import leg_of_order
from cryptobot.data import catalog
from cryptobot.journal.query import Filters, Record, Selection, venue_test
from cryptobot.journal.trading import LIQUIDATION

COLUMNS = (
    "opened_at", "closed_at", "venue", "symbol", "strategy", "side", "status", "qty",
    "entry_price", "exit_price", "expected_price", "slippage_bps", "slippage", "fee",
    "fee_currency", "funding", "gross_pnl", "pnl", "exit_reason", "exit_legs",
    "client_order_id", "exchange_order_id", "exit_client_order_id", "linked_trades",
)  # fmt: skip
TIMES = ("opened_at", "closed_at")
_EPS = 1e-9  # relative: a position within this share of its size is flat (float sums)


@dataclass
class _Trip:
    """One round trip being built (money in the settle currency; ``cost``: amount x contract
    size x price, as a fill states it)."""

    venue: str
    symbol: str
    sign: int  # +1 long, -1 short
    family: str
    opened_at: int
    opened_by: str | None  # the client id of the order whose fill opened it
    entry_qty: float = 0.0
    entry_cost: float = 0.0
    entry_value: float = 0.0  # sum of price x qty: the average price, whatever the contract
    exit_qty: float = 0.0
    exit_cost: float = 0.0
    exit_value: float = 0.0
    fee: float = 0.0
    closed_at: int | None = None
    exits: list[Mapping[str, Any]] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    @property
    def held(self) -> float:
        return self.entry_qty - self.exit_qty


def trades(root: Path, filters: Filters) -> Selection:
    """The round trips of the journal matching ``filters`` (time: when a trip opened), oldest
    first (the newest ``limit`` of them)."""
    with catalog.reader(root) as con:
        if con is None:
            return Selection([], absent=f"no journal in {root} yet")
        if "fills" not in catalog.tables(con):
            return Selection([], absent="the journal holds no fills yet")
        symbols = None if filters.symbol is None else [filters.symbol]
        fills, orders, payments = _read(con, venue=filters.venue, symbols=symbols)
    found = [t for t in derive(fills, orders=orders, payments=payments) if _wanted(t, filters)]
    if filters.limit is not None:
        found = found[max(0, len(found) - filters.limit) :]
    return Selection(found)


def closed(
    con: Any, *, symbols: Collection[str] | None = None, venue: str | None = None
) -> list[Record]:
    """The closed round trips on ``symbols`` (None: every symbol), of ``venue`` (an account's
    journal name, or its kind; None: every venue), oldest first: the results the safety
    rules read (``signal``'s cooldown after a loss, ``journal.setups.signal_history``;
    sizing's recent loss, ``risk.context``, of its account), so a loss taken through
    ``trade`` is seen by them as ``journal trades`` shows it. ``con``: the
    caller's read connection (``catalog.reader``; None: no journal yet), so ``signal`` opens
    the journal once. A journal without fills (``signal`` before any trade) is no trips, read
    without deriving anything."""
    if con is None or (symbols is not None and not symbols):
        return []
    if "fills" not in catalog.tables(con):
        return []
    fills, orders, payments = _read(con, venue=venue, symbols=symbols)
    trips = derive(fills, orders=orders, payments=payments)
    return [t for t in trips if t["closed_at"] is not None]


def _read(
    con: Any, *, venue: str | None, symbols: Collection[str] | None
) -> tuple[list[Record], dict, list[Record]]:
    """Every fill of the venue and symbols asked (a trip may have opened before ``since``),
    the orders by (venue, client id) and the funding payments."""
    where, params = ["TRUE"], []
    if venue is not None:
        where.append(venue_test("venue"))
        params += [venue, venue]
    if symbols is not None:
        where.append(f"symbol IN ({', '.join('?' * len(symbols))})")
        params += sorted(symbols)
    clause = " AND ".join(where)
    fills = _rows(con, f"SELECT * FROM fills WHERE {clause} ORDER BY venue, symbol, ts, id",
                  params)  # fmt: skip
    orders = {(o["venue"], o["client_order_id"]): o
              for o in _rows(con, f"SELECT * FROM orders WHERE {clause}", params)}  # fmt: skip
    present = catalog.tables(con)
    payments = (_rows(con, f"SELECT * FROM funding_payments WHERE {clause} ORDER BY ts", params)
                if "funding_payments" in present else [])  # fmt: skip
    return fills, orders, payments


def _rows(con: Any, sql: str, params: list[Any]) -> list[Record]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _wanted(trip: Record, filters: Filters) -> bool:
    t = trip["opened_at"]
    return (
        (filters.since is None or t >= filters.since)
        and (filters.until is None or t < filters.until)
        and (filters.strategy is None or trip["strategy"] == filters.strategy)
    )


def derive(
    fills: Iterable[Mapping[str, Any]],
    *,
    orders: Mapping[tuple[str, str], Mapping[str, Any]],
    payments: Iterable[Mapping[str, Any]] = (),
) -> list[Record]:
    """The round trips of ``fills`` (journal rows, any order), oldest first (module
    docstring). ``orders``: the journal's orders by (venue, client order id)."""
    trips: list[_Trip] = []
    open_: dict[tuple[str, str], _Trip] = {}
    for f in sorted(fills, key=lambda f: (f["ts"], str(f["id"]))):
        _book(f, open_, trips)
    trips += open_.values()
    trips.sort(key=lambda t: (t.opened_at, t.venue, t.symbol))
    funding = _funding_of(trips, payments)
    return [_record(t, orders, funding[i]) for i, t in enumerate(trips)]


def _book(f: Mapping[str, Any], open_: dict[tuple[str, str], _Trip], done: list[_Trip]) -> None:
    """One fill onto its symbol's trip: an entry, an exit, or an exit then a new trip."""
    key = (f["venue"], f["symbol"])
    sign = 1 if f["side"] == "buy" else -1
    amount = _number(f["amount"])
    left = amount
    while left > _EPS * amount:
        trip = open_.get(key)
        if trip is None:
            trip = open_[key] = _Trip(venue=f["venue"], symbol=f["symbol"], sign=sign,
                                      family=_family(f), opened_at=f["ts"],
                                      opened_by=f.get("client_order_id"))  # fmt: skip
        used = left if sign == trip.sign else min(left, trip.held)
        _part(trip, f, used, used / amount, entry=sign == trip.sign)
        left -= used
        if trip.held <= _EPS * trip.entry_qty:
            trip.closed_at = f["ts"]
            done.append(open_.pop(key))


def _part(trip: _Trip, f: Mapping[str, Any], qty: float, share: float, *, entry: bool) -> None:
    """``qty`` of fill ``f`` (``share`` of it) booked to ``trip``. A NaN or missing price or
    cost stays NaN (the trip's prices and pnl read null: unknown, not 0); a missing fee is 0
    (a venue that reported none)."""
    cost, value = _stored(f["cost"]) * share, _stored(f["price"]) * qty
    trip.fee += _number(f["fee"]) * share
    family = _family(f)
    if family != trip.family and family not in trip.families:
        trip.families.append(family)
    if entry:
        trip.entry_qty += qty
        trip.entry_cost += cost
        trip.entry_value += value
        return
    trip.exit_qty += qty
    trip.exit_cost += cost
    trip.exit_value += value
    trip.exits.append(f)


def _family(f: Mapping[str, Any]) -> str:
    """The order family a fill belongs to: its sized order (the journal's ``parent_id``), a
    liquidation its own."""
    if f.get("order_type") == LIQUIDATION:
        return f"{LIQUIDATION}:{f['id']}"
    return f.get("parent_id") or leg_of_order(f.get("client_order_id") or str(f["id"]))


def _funding_of(trips: list[_Trip], payments: Iterable[Mapping[str, Any]]) -> list[float]:
    """Each trip's funding: the payments on its venue's symbol from its open to its close
    (still open: every later one), each payment counted for the first trip that holds it."""
    totals = [0.0] * len(trips)
    for p in payments:
        for i, t in enumerate(trips):
            end = t.closed_at if t.closed_at is not None else math.inf
            if (t.venue, t.symbol) == (p["venue"], p["symbol"]) and t.opened_at <= p["ts"] <= end:
                totals[i] += _number(p["amount"])
                break
    return totals


def _record(
    t: _Trip, orders: Mapping[tuple[str, str], Mapping[str, Any]], funding: float
) -> Record:
    entry_order = orders.get((t.venue, t.family), {})
    opening = orders.get((t.venue, t.opened_by), entry_order) if t.opened_by else entry_order
    entry_price = t.entry_value / t.entry_qty
    exit_price = t.exit_value / t.exit_qty if t.exit_qty else None
    per_unit = t.entry_cost / t.entry_qty if t.entry_qty else math.nan
    gross = t.sign * (t.exit_cost - per_unit * t.exit_qty)
    expected = entry_order.get("expected_price")
    slip_bps = slip = None
    if expected and math.isfinite(expected) and math.isfinite(entry_price) and entry_price:
        slip_bps = t.sign * (entry_price - expected) / expected * 10_000
        slip = t.sign * (t.entry_cost - t.entry_cost * expected / entry_price)
    last = t.exits[-1] if t.exits else None
    return {
        "opened_at": t.opened_at, "closed_at": t.closed_at, "venue": t.venue,
        "symbol": t.symbol, "strategy": _strategy(t, entry_order),
        "side": "long" if t.sign > 0 else "short",
        "status": "closed" if t.closed_at is not None else "open", "qty": t.entry_qty,
        "entry_price": entry_price, "exit_price": exit_price,
        "expected_price": expected, "slippage_bps": slip_bps, "slippage": slip, "fee": t.fee,
        "fee_currency": settle_currency(t.symbol), "funding": funding, "gross_pnl": gross,
        "pnl": gross - t.fee + funding,
        "exit_reason": exit_reason(last, orders) if last is not None else None,
        "exit_legs": [exit_reason(f, orders) for f in t.exits],
        "client_order_id": t.family, "exchange_order_id": opening.get("exchange_order_id"),
        "exit_client_order_id": last.get("client_order_id") if last is not None else None,
        "linked_trades": t.families,
    }  # fmt: skip


def _strategy(t: _Trip, entry_order: Mapping[str, Any]) -> str | None:
    if entry_order:
        return entry_order.get("strategy")
    return LIQUIDATION if t.family.startswith(f"{LIQUIDATION}:") else None


def exit_reason(
    fill: Mapping[str, Any], orders: Mapping[tuple[str, str], Mapping[str, Any]]
) -> str:
    """Why a fill left the position, from the leg of its client id: ``stop`` (every ``-sl``
    version), ``tp<n>``, ``close``; ``manual`` for a ``trade --close`` or an order no sized
    order of the journal sent; ``liquidation``."""
    if fill.get("order_type") == LIQUIDATION:
        return LIQUIDATION
    cid = fill.get("client_order_id") or ""
    order = orders.get((fill["venue"], cid), {})
    parent = fill.get("parent_id")
    if not order or not parent or (parent == cid and order.get("leg") == "close"):
        return "manual"  # a close of its own (``trade --close``), or not an order of ours
    leg = leg_of_order(cid).removeprefix(f"{parent}-")
    return {"sl": "stop"}.get(leg, leg if leg != parent else "entry")


def settle_currency(symbol: str) -> str:
    """The currency a ccxt unified symbol settles (and pays its fees) in: ``USDT`` of
    ``BTC/USDT:USDT``; a symbol without a settle part, its quote."""
    head, _, settle = symbol.partition(":")
    return settle or head.partition("/")[2]


def _stored(value: Any) -> float:
    """A stored number as a float, NULL as NaN."""
    return math.nan if value is None else float(value)


def _number(value: Any) -> float:
    """A stored number for sums: a NULL or NaN counts as 0 (a venue that did not report a
    fee), so one bad cell does not turn a trade's whole pnl into NaN."""
    return float(value) if value is not None and math.isfinite(value) else 0.0


__all__ = ["COLUMNS", "TIMES", "closed", "derive", "exit_reason", "settle_currency", "trades"]
