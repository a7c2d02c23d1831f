"""The best bid/ask and the in-place amend of the live adapter: the REAL ccxt client against the
Binance and Bitget emulators. What each puts on the wire (depth, merge-depth, Binance's PUT by
the venue's order id), Binance's documented amend rules (a GTX that would take is canceled,
an amend to what the order is already is -5027), faults on the amend (a lost answer looked up,
a 429 that changed nothing), and why Bitget gets no amend in place: ccxt's ``edit_order``
replaces the order under a random client id."""

import pytest

from cryptobot.exchange.errors import (
    AmendNotSupported,
    OrderNotOpen,
    PostOnlyWouldTake,
    TickViolation,
    TradingError,
)
from tests.emulator import Faults
from tests.emulator.bitget_client import bitget_client
from tests.live_venues import BTC, BTCID, VENUES, emulator, last, run


@pytest.mark.parametrize("venue", VENUES)
def test_the_best_bid_and_ask_are_the_top_of_the_venues_book(shared, venue):
    with emulator(venue) as emu:
        emu.engine.book.top_qty[BTCID] = 3.5

        async def script(ex):
            return await ex.fetch_best_bid_ask(BTC)

        quote = run(emu, venue, script)
        price = last(emu)
        assert (quote.bid, quote.ask) == (price, pytest.approx(price + 0.1))
        assert (quote.bid_size, quote.ask_size, quote.timestamp) == (3.5, 3.5, emu.now_ms)
        assert quote.usable
        (hit,) = [h for h in emu.hits if "depth" in h.path]
        assert hit.params["limit"] == "5"
        assert hit.path == {"binanceusdm": "/fapi/v1/depth",
                            "bitget": "/api/v2/mix/market/merge-depth"}[venue]  # fmt: skip


def test_binance_amends_in_place_by_the_venues_order_id(shared):
    """One PUT with the order's id, side, unchanged quantity and new price: the same order and
    client id at the new price (never a second order); an amend to its own price is -5027 and
    answered with the order as it is."""
    with emulator("binanceusdm") as emu:
        price = last(emu)

        async def script(ex):
            placed = await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                           price=round(price - 100, 1), post_only=True,
                                           client_order_id="cb-x")  # fmt: skip
            moved = await ex.amend_order("cb-x", price=round(price - 50, 1), symbol=BTC)
            same = await ex.amend_order("cb-x", price=round(price - 50, 1))
            return placed, moved, same

        placed, moved, same = run(emu, "binanceusdm", script)
        puts = [h for h in emu.hits if h.method == "PUT"]
        assert [h.params["orderId"] for h in puts] == [placed.id, placed.id]
        assert puts[0].params["quantity"] == "0.01" and puts[0].params["side"] == "BUY"
        assert float(puts[0].params["price"]) == pytest.approx(price - 50)
        assert [h.status for h in puts] == [200, 400]  # the second: -5027, no change
        assert (moved.client_order_id, moved.id, moved.status) == ("cb-x", placed.id, "open")
        assert moved.price == pytest.approx(price - 50) and same == moved
        assert emu.engine.book.placements["cb-x"] == 1 and emu.engine.book.amends["cb-x"] == 1


def test_binance_cancels_a_post_only_order_the_amend_would_make_take(shared):
    with emulator("binanceusdm") as emu:
        price = last(emu)

        async def script(ex):
            await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                  price=round(price - 100, 1), post_only=True,
                                  client_order_id="cb-x")  # fmt: skip
            with pytest.raises(PostOnlyWouldTake):
                await ex.amend_order("cb-x", price=round(price + 0.1, 1))
            return await ex.fetch_order("cb-x")

        assert run(emu, "binanceusdm", script).status == "canceled"
        assert emu.engine.book.placements["cb-x"] == 1


def test_an_amend_refused_or_too_late_sends_nothing_and_changes_nothing(shared):
    """Off the tick: refused before the wire. A filled order: OrderNotOpen from the look-up
    that precedes the amend, no PUT."""
    with emulator("binanceusdm") as emu:
        price = last(emu)

        async def script(ex):
            await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                  price=round(price - 100, 1), post_only=True,
                                  client_order_id="cb-x")  # fmt: skip
            with pytest.raises(TickViolation):
                await ex.amend_order("cb-x", price=price - 50.05)
            emu.engine.tick(BTCID, round(price - 200, 1))  # trades through the bid: filled
            with pytest.raises(OrderNotOpen):
                await ex.amend_order("cb-x", price=round(price - 50, 1))
            return await ex.fetch_order("cb-x")

        assert run(emu, "binanceusdm", script).status == "closed"
        assert not [h for h in emu.hits if h.method == "PUT"]


@pytest.mark.parametrize("kind", ["drop", "late", "500"])
def test_a_lost_amend_answer_is_looked_up_never_sent_again(shared, kind):
    """The PUT processed and its answer lost (or a 5xx whose outcome is unknown): the adapter
    sends it once and looks the order up; the order is returned as the venue has it (amended or
    not). aiohttp itself re-sends a PUT whose connection dropped (an idempotent method): the
    venue answers the repeat -5027 (nothing to change), taken as done: one amend applied."""
    with emulator("binanceusdm") as emu:
        price = last(emu)
        wanted = round(price - 50, 1)

        async def script(ex):
            await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                  price=round(price - 100, 1), post_only=True,
                                  client_order_id="cb-x")  # fmt: skip
            emu.faults = Faults(kinds=(kind,), paths=("/fapi/v1/order",), methods=("PUT",),
                                first=1, slow_s=0.6)  # fmt: skip
            return await ex.amend_order("cb-x", price=wanted)

        order = run(emu, "binanceusdm", script)
        puts = [h for h in emu.hits if h.method == "PUT"]
        assert puts[0].outcome == kind
        assert [h.status for h in puts[1:]] == ([400] if kind == "drop" else [])
        applied = kind != "500"  # a 5xx is answered before the route runs
        assert order.price == pytest.approx(wanted if applied else price - 100)
        assert emu.engine.book.amends["cb-x"] == int(applied)
        assert emu.engine.book.placements["cb-x"] == 1


def test_a_rate_limited_amend_is_refused_unchanged(shared):
    with emulator("binanceusdm") as emu:
        price = last(emu)

        async def script(ex):
            await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                  price=round(price - 100, 1), post_only=True,
                                  client_order_id="cb-x")  # fmt: skip
            emu.faults = Faults(kinds=("429",), paths=("/fapi/v1/order",), methods=("PUT",),
                                first=1)  # fmt: skip
            with pytest.raises(TradingError, match="unchanged"):
                await ex.amend_order("cb-x", price=round(price - 50, 1))
            return await ex.fetch_order("cb-x")

        assert run(emu, "binanceusdm", script).price == pytest.approx(price - 100)
        assert len([h for h in emu.hits if h.method == "PUT"]) == 1


def test_bitget_has_no_amend_in_place_and_sends_nothing(shared):
    """Bitget's modify-order (what ccxt's ``edit_order`` sends) cancels the order and places a
    new one under ``newClientOid``, a uuid ccxt makes up: the deterministic client id is gone.
    So the adapter refuses to amend (AmendNotSupported) and a caller cancels and places anew."""
    with emulator("bitget") as emu:
        price = last(emu)

        async def script(ex):
            await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                  price=round(price - 100, 1), post_only=True,
                                  client_order_id="cb-x")  # fmt: skip
            assert ex.amends_in_place is False
            with pytest.raises(AmendNotSupported, match="new client id"):
                await ex.amend_order("cb-x", price=round(price - 50, 1))
            return await ex.fetch_order("cb-x")

        assert run(emu, "bitget", script).price == pytest.approx(price - 100)
        assert not [h for h in emu.hits if "modify" in h.path]
        client = bitget_client(emu)
        order = emu.engine.book.orders[max(emu.engine.book.orders)]
        edited = client.edit_order(str(order.id), BTC, "limit", "buy", 0.01,
                                   round(price - 50, 1), {"clientOrderId": "cb-x"})  # fmt: skip
        assert edited["id"] is None and edited["clientOrderId"] != "cb-x"
        statuses = {o.client_id: o.status for o in emu.engine.book.orders.values()}
        assert statuses == {"cb-x": "CANCELED", edited["clientOrderId"]: "NEW"}


def test_bitget_modify_order_takes_a_new_unfilled_limit_only_with_size_and_price(shared):
    with emulator("bitget") as emu:
        price = last(emu)
        client = bitget_client(emu)
        client.set_margin_mode("isolated", BTC)
        client.create_order(BTC, "limit", "buy", 0.01, round(price - 100, 1),
                            {"clientOrderId": "a", "marginMode": "isolated"})  # fmt: skip
        modify = "/api/v2/mix/order/modify-order"
        body = {"symbol": BTCID, "productType": "USDT-FUTURES", "clientOid": "a",
                "newClientOid": "b"}  # fmt: skip
        status, answer = emu.route(modify, body | {"newPrice": "1000"}, "POST", AUTH)
        assert (status, answer["code"]) == (400, "40017")
        status, answer = emu.route(modify, body | {"newPrice": "70000.0", "newSize": "0.01"},
                                   "POST", AUTH)  # fmt: skip
        assert (status, answer["data"]) == (200, {"orderId": None, "clientOid": "b"})
        status, answer = emu.route(modify, body | {"clientOid": "a", "newClientOid": "c",
                                                   "newPrice": "70000.0", "newSize": "0.01"},
                                   "POST", AUTH)  # fmt: skip
        assert (status, answer["code"]) == (400, "40017")  # a canceled order is not "new"


AUTH = {"ACCESS-KEY": "k", "ACCESS-SIGN": "s", "ACCESS-TIMESTAMP": "1", "ACCESS-PASSPHRASE": "p"}
