"""Round trips from journal fills (``journal.roundtrips.derive``): the cases a real account
produces that the paper run of tests/test_journal_cmd.py does not (a short with slippage, a
manual close, a fill crossing zero, a liquidation, funding between two trips) and the
invariants over random fill sequences (hypothesis)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.journal.roundtrips import derive, settle_currency

VENUE = "binanceusdm"
SYMBOL = "BTC/USDT:USDT"
_ids = iter(range(1, 1_000_000))


def fill(ts: int, side: str, amount: float, price: float, *, cid: str, parent: str | None,
         leg: str | None, fee: float = 0.0, order_type: str = "market") -> dict:  # fmt: skip
    return {
        "venue": VENUE, "id": str(next(_ids)), "client_order_id": cid, "parent_id": parent,
        "leg": leg, "ts": ts, "symbol": SYMBOL, "side": side, "order_type": order_type,
        "amount": amount, "price": price, "cost": amount * price, "fee": fee,
        "fee_rate": 0.0005, "liquidity": "taker", "realized_pnl": 0.0,
    }  # fmt: skip


def order(cid: str, *, parent: str, leg: str, strategy: str = "momentum",
          expected: float | None = None) -> tuple[tuple[str, str], dict]:  # fmt: skip
    return (VENUE, cid), {"venue": VENUE, "client_order_id": cid, "parent_id": parent,
                          "leg": leg, "strategy": strategy, "exchange_order_id": f"x{cid}",
                          "expected_price": expected}  # fmt: skip


def test_a_short_with_slippage_split_entries_and_a_manual_close():
    """Sold at 99.5 and 99.3 (the maker-first executor's -e2 child) against a sized 100: 60 bps
    worse than expected on average (a short selling lower pays); then ``trade --close``."""
    p, close = "cb-short", "cb-x-1234"
    fills = [
        fill(1, "sell", 1.0, 99.5, cid=p, parent=p, leg="entry", fee=0.05),
        fill(2, "sell", 1.0, 99.3, cid=f"{p}-e2", parent=p, leg="e2", fee=0.05),
        fill(9, "buy", 2.0, 95.0, cid=close, parent=close, leg="close", fee=0.1),
    ]
    orders = dict([order(p, parent=p, leg="entry", expected=100.0),
                   order(close, parent=close, leg="close", strategy="manual")])  # fmt: skip
    (trip,) = derive(fills, orders=orders)
    assert trip["side"] == "short" and trip["qty"] == 2.0 and trip["status"] == "closed"
    assert trip["entry_price"] == pytest.approx(99.4) and trip["exit_price"] == 95.0
    assert trip["slippage_bps"] == pytest.approx(60.0)  # (100 - 99.4) / 100, a short's loss
    assert trip["slippage"] == pytest.approx(2 * 0.6, rel=1e-3)
    assert trip["gross_pnl"] == pytest.approx(2 * 4.4) and trip["fee"] == pytest.approx(0.2)
    assert trip["exit_reason"] == "manual" and trip["linked_trades"] == [close]
    assert trip["client_order_id"] == p and trip["exchange_order_id"] == f"x{p}"


def test_the_venue_id_is_the_order_whose_fill_opened_the_trip():
    """A maker-first entry whose post-only child was cancelled unfilled and whose ``-e2``
    filled: the trip names ``-e2``'s venue id, not the cancelled child's."""
    p = "cb-maker"
    fills = [fill(3, "buy", 1.0, 100.1, cid=f"{p}-e2", parent=p, leg="e2")]
    orders = dict([order(p, parent=p, leg="entry", expected=100.0),
                   order(f"{p}-e2", parent=p, leg="e2")])  # fmt: skip
    (trip,) = derive(fills, orders=orders)
    assert trip["client_order_id"] == p and trip["exchange_order_id"] == f"x{p}-e2"
    assert trip["expected_price"] == 100.0 and trip["strategy"] == "momentum"
    unknown = [fill(3, "buy", 1.0, 100.1, cid=f"{p}-e3", parent=p, leg="e3")]
    (trip,) = derive(unknown, orders=orders)  # a fill whose order the journal lacks: the entry's
    assert trip["exchange_order_id"] == f"x{p}"


def test_a_fill_crossing_zero_closes_one_trip_and_opens_the_next_with_the_rest():
    a, b = "cb-a", "cb-b"
    fills = [
        fill(1, "buy", 2.0, 100.0, cid=a, parent=a, leg="entry", fee=0.2),
        fill(5, "sell", 3.0, 110.0, cid=b, parent=b, leg="entry", fee=0.3),
        fill(8, "buy", 1.0, 105.0, cid=f"{b}-sl2", parent=b, leg="sl2", fee=0.1),
    ]
    orders = dict([order(a, parent=a, leg="entry"), order(b, parent=b, leg="entry"),
                   order(f"{b}-sl2", parent=b, leg="sl2")])  # fmt: skip
    first, second = derive(fills, orders=orders)
    assert (first["side"], first["qty"], first["closed_at"]) == ("long", 2.0, 5)
    assert first["gross_pnl"] == pytest.approx(20.0) and first["exit_legs"] == ["entry"]
    assert first["fee"] == pytest.approx(0.2 + 0.2)  # two thirds of the crossing fill's fee
    assert (second["side"], second["qty"], second["opened_at"]) == ("short", 1.0, 5)
    assert second["exit_reason"] == "stop" and second["gross_pnl"] == pytest.approx(5.0)
    assert second["fee"] == pytest.approx(0.1 + 0.1)


def test_a_liquidation_closes_the_trip_and_funding_goes_to_the_trip_that_held_it():
    a, b = "cb-a", "cb-b"
    fills = [
        fill(10, "buy", 1.0, 100.0, cid=a, parent=a, leg="entry"),
        fill(20, "sell", 1.0, 80.0, cid="", parent=None, leg=None, order_type="liquidation"),
        fill(20, "buy", 1.0, 81.0, cid=b, parent=b, leg="entry"),
        fill(40, "sell", 1.0, 90.0, cid=f"{b}-tp1", parent=b, leg="tp1"),
    ]
    payments = [
        {"venue": VENUE, "symbol": SYMBOL, "ts": ts, "amount": amount}
        for ts, amount in ((5, -9.0), (15, -1.0), (20, -2.0), (30, -4.0), (50, -8.0))
    ]  # fmt: skip
    orders = dict([order(a, parent=a, leg="entry"), order(b, parent=b, leg="entry"),
                   order(f"{b}-tp1", parent=b, leg="tp1")])  # fmt: skip
    first, second = derive(fills, orders=orders, payments=payments)
    assert first["exit_reason"] == "liquidation" and first["gross_pnl"] == pytest.approx(-20)
    assert first["funding"] == -3.0  # 15 and 20 (held at 20 until liquidated); 20 counted once
    assert second["funding"] == -4.0 and second["exit_reason"] == "tp1"
    assert second["pnl"] == pytest.approx(9.0 - 4.0)


def test_an_open_trip_has_no_exit_and_takes_every_later_payment():
    a = "cb-a"
    fills = [fill(1, "buy", 1.0, 100.0, cid=a, parent=a, leg="entry"),
             fill(3, "sell", 0.4, 101.0, cid=f"{a}-tp1", parent=a, leg="tp1")]  # fmt: skip
    payments = [{"venue": VENUE, "symbol": SYMBOL, "ts": 9, "amount": 0.5}]
    orders = dict([order(a, parent=a, leg="entry"), order(f"{a}-tp1", parent=a, leg="tp1")])
    (trip,) = derive(fills, orders=orders, payments=payments)
    assert trip["status"] == "open" and trip["closed_at"] is None
    assert trip["exit_price"] == pytest.approx(101.0) and trip["exit_reason"] == "tp1"
    assert trip["gross_pnl"] == pytest.approx(0.4) and trip["funding"] == 0.5


def test_settle_currency_of_unified_symbols():
    assert settle_currency("BTC/USDT:USDT") == "USDT"
    assert settle_currency("BTC/USD:BTC") == "BTC"
    assert settle_currency("ETH/USDC") == "USDC"


amounts = st.integers(min_value=1, max_value=50).map(lambda n: n / 10)
steps = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), amounts,
                           st.integers(min_value=50, max_value=150)), max_size=30)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(steps)
def test_trips_account_for_every_fill(path: list[tuple[str, float, int]]):
    """Any fill sequence: the trips' entries less exits is the position held; every closed
    trip exits what it entered; at most one trip is open, on the position's side; fees and the
    money of closed trips add up to the fills' (a flat account's pnl is its cash flow)."""
    fills = [fill(t, side, qty, float(price), cid=f"o{t}", parent=f"o{t}", leg="entry",
                  fee=qty * 0.01) for t, (side, qty, price) in enumerate(path)]  # fmt: skip
    trips = derive(fills, orders={})
    held = sum(f["amount"] * (1 if f["side"] == "buy" else -1) for f in fills)
    open_ = [t for t in trips if t["status"] == "open"]
    assert len(open_) <= 1
    if abs(held) > 1e-9:
        (trip,) = open_
        assert trip["side"] == ("long" if held > 0 else "short")
    for t in trips:
        exited = 0.0 if t["exit_price"] is None else _exit_qty(t)
        if t["status"] == "closed":
            assert exited == pytest.approx(t["qty"])
    assert sum(t["fee"] for t in trips) == pytest.approx(sum(f["fee"] for f in fills))
    if not open_:
        cash = sum(f["cost"] * (-1 if f["side"] == "buy" else 1) for f in fills)
        assert sum(t["gross_pnl"] for t in trips) == pytest.approx(cash, abs=1e-6)
    assert all(math.isfinite(t["pnl"]) for t in trips)


def _exit_qty(trip: dict) -> float:
    """What a trip exited, from its money: gross = side x (exit - entry) x qty."""
    sign = 1 if trip["side"] == "long" else -1
    if trip["exit_price"] == trip["entry_price"]:
        return trip["qty"] if trip["status"] == "closed" else 0.0
    return trip["gross_pnl"] / (sign * (trip["exit_price"] - trip["entry_price"]))
