"""The maker-first executor through the live adapter: the REAL ccxt client against the Binance
and Bitget emulators, the price path scripted per wait. Binance amends in place (one PUT per
reprice); Bitget cancels and places the next client id. A post-only order that would take is
refused (Binance -5022: the id was never used, so it is sent again) or canceled on arrival
(Bitget: the id is spent, the next one goes); a lost answer on a reprice is looked up, never
doubled; a partly filled market order is waited for; children are split by the book's size."""

import asyncio
import json
from collections.abc import Iterator

import pytest

from cryptobot.core.execution import ExecutionReport, ExecutionRequest
from cryptobot.core.settings import ExecutionRules
from cryptobot.engine.execution import execute
from tests.emulator import Faults
from tests.emulator.serving import VenueServer
from tests.live_venues import BTC, BTCID, VENUES, adapter, emulator, last

PLACE = {"binanceusdm": "/fapi/v1/order", "bitget": "/api/v2/mix/order/place-order"}
RULES = ExecutionRules(maker_first=True, reprice_every_s=5, reprice_ticks=1, give_up_after_s=60,
                       max_book_impact_pct=50)  # fmt: skip


def work(
    emu: VenueServer,
    venue: str,
    path: Iterator[float],
    *,
    qty: float = 0.01,
    rules: ExecutionRules = RULES,
    taker: bool = False,
    on_wait=None,
) -> ExecutionReport:
    """The executor on ``venue``'s adapter; each wait moves the emulator's clock and its price
    to the next of ``path`` (then ``on_wait(n)``, the n-th wait)."""
    waits = 0

    async def sleep(seconds: float) -> None:
        nonlocal waits
        waits += 1
        emu.now_ms += round(seconds * 1000)
        emu.engine.tick(BTCID, round(next(path), 1))
        if on_wait is not None:
            on_wait(waits)

    async def go() -> ExecutionReport:
        ex = adapter(emu, venue)
        try:
            if venue == "bitget":
                await ex.set_margin_mode(BTC, "isolated")
            req = ExecutionRequest(symbol=BTC, side="buy", qty=qty, client_order_id="cb-abc",
                                   expected_price=last(emu))  # fmt: skip
            return await execute(ex, request=req, rules=rules, sleep=sleep, taker=taker)
        finally:
            await ex.close()

    report = asyncio.run(go())
    json.dumps(report.to_record(), allow_nan=False)
    return report


def orders(report: ExecutionReport) -> list[tuple[str, str, str, float]]:
    return [(o.client_order_id, o.type, o.status, o.filled) for o in report.orders]


def placed(emu: VenueServer, venue: str) -> list:
    return [h for h in emu.hits if h.method == "POST" and h.path == PLACE[venue]]


@pytest.mark.parametrize("venue", VENUES)
def test_a_reprice_is_an_amend_on_binance_and_cancel_and_new_on_bitget(shared, venue):
    """Bid at P; the market rises half a dollar: the order follows to the new best bid (P+0.5)
    and fills there as a maker when the bid falls back below it."""
    with emulator(venue) as emu:
        price = last(emu)
        report = work(emu, venue, iter([price + 0.5, price + 0.3, price + 0.3]))
        assert report.status == "filled" and report.reprices == 1
        assert report.average_price == pytest.approx(price + 0.5)
        assert report.to_record()["maker_share"] == 1.0
        if venue == "binanceusdm":
            assert orders(report) == [("cb-abc", "limit", "closed", 0.01)]
            (put,) = [h for h in emu.hits if h.method == "PUT"]
            assert put.params["orderId"] == report.orders[0].id
            assert float(put.params["price"]) == pytest.approx(price + 0.5)
        else:
            assert orders(report) == [("cb-abc", "limit", "canceled", 0.0),
                                      ("cb-abc-e2", "limit", "closed", 0.01)]  # fmt: skip
            assert [h.params["force"] for h in placed(emu, venue)] == ["post_only"] * 2
        assert max(emu.engine.book.placements.values()) == 1


@pytest.mark.parametrize("venue", VENUES)
def test_a_post_only_order_that_would_take_is_quoted_again(shared, venue):
    """The market drops a dollar between the quote and the order: the bid quoted is now above
    the ask. Binance refuses it (-5022; the id was never used and goes again with the next
    quote), Bitget cancels it on arrival (the id is spent: the next quote goes as -e2)."""
    with emulator(venue) as emu:
        price = last(emu)
        dropped = []

        def after(method: str, path: str) -> None:
            if "depth" in path and not dropped:
                dropped.append(path)
                emu.engine.tick(BTCID, round(price - 1.0, 1))

        emu.after = after
        report = work(emu, venue, iter([price - 1.0, price - 1.5, price - 1.5]))
        assert report.requotes == 1 and report.status == "filled"
        assert report.average_price == pytest.approx(price - 1.0)
        sent = [h.params.get("newClientOrderId") or h.params.get("clientOid")
                for h in placed(emu, venue)]  # fmt: skip
        if venue == "binanceusdm":
            assert sent == ["cb-abc", "cb-abc"] and placed(emu, venue)[0].status == 400
            assert orders(report) == [("cb-abc", "limit", "closed", 0.01)]
        else:
            assert sent == ["cb-abc", "cb-abc-e2"]
            assert orders(report) == [("cb-abc", "limit", "canceled", 0.0),
                                      ("cb-abc-e2", "limit", "closed", 0.01)]  # fmt: skip
        assert max(emu.engine.book.placements.values()) == 1


@pytest.mark.parametrize("venue", VENUES)
def test_a_lost_answer_on_a_reprice_is_looked_up_never_doubled(shared, venue):
    """The request that reprices (Binance's PUT, Bitget's new order after the cancel) is
    processed and its answer lost: the adapter finds the order by its client id; one amend,
    one order per id, filled once."""
    with emulator(venue) as emu:
        price = last(emu)
        method = "PUT" if venue == "binanceusdm" else "POST"

        def lose_next(wait: int) -> None:
            if wait == 1:
                emu.faults = Faults(kinds=("drop",), paths=(PLACE[venue],), methods=(method,),
                                    first=1)  # fmt: skip

        report = work(emu, venue, iter([price + 0.5, price + 0.3, price + 0.3]),
                      on_wait=lose_next)  # fmt: skip
        assert [h.outcome for h in emu.hits if h.outcome == "drop"] == ["drop"]
        assert report.status == "filled" and report.filled == pytest.approx(0.01)
        assert max(emu.engine.book.placements.values()) == 1
        if venue == "binanceusdm":
            assert emu.engine.book.amends["cb-abc"] == 1
        else:
            assert [o.client_order_id for o in report.orders] == ["cb-abc", "cb-abc-e2"]
        assert sum(t.qty for t in emu.account.trades) == pytest.approx(0.01)


@pytest.mark.parametrize("venue", VENUES)
def test_a_market_order_filled_in_parts_is_waited_for(shared, venue):
    """``--taker``: one market order; the venue fills half at once and the rest at the next
    tick: the executor waits for it and reports both fills as taker."""
    with emulator(venue) as emu:
        price = last(emu)
        emu.faults = Faults(partial=1.0, partial_share=0.5)
        report = work(emu, venue, iter([price, price]), qty=0.02, taker=True)
        assert orders(report) == [("cb-abc", "market", "closed", 0.02)]
        record = report.to_record()
        assert (record["mode"], record["taker_qty"], record["maker_share"]) == ("taker", 0.02, 0.0)
        assert len(emu.account.trades) == 2 and len(report.fills) == 2


@pytest.mark.parametrize("venue", VENUES)
def test_an_entry_bigger_than_the_book_goes_in_children_then_the_rest_at_market(shared, venue):
    """The book shows 0.02 a side: children of 0.01 (half of it). The first rests and fills,
    the second rests while the market climbs (followed by amends on Binance, by cancel and
    new on Bitget); at the give-up it is canceled and the 0.03 left goes at market, again in
    children of 0.01."""
    with emulator(venue) as emu:
        emu.engine.book.top_qty[BTCID] = 0.02
        price = last(emu)
        path = iter([price - 0.5] + [price + 5.0 * n for n in range(1, 40)])
        rules = RULES.model_copy(update={"give_up_after_s": 20})
        report = work(emu, venue, path, qty=0.04, rules=rules)
        kinds = [(o.type, o.status, o.amount, o.filled) for o in report.orders]
        assert kinds[0] == ("limit", "closed", 0.01, 0.01)
        assert kinds[-3:] == [("market", "closed", 0.01, 0.01)] * 3
        assert set(kinds[1:-3]) == {("limit", "canceled", 0.01, 0.0)}
        assert len(kinds[1:-3]) == (1 if venue == "binanceusdm" else 3)
        record = report.to_record()
        assert record["filled"] == pytest.approx(0.04) and record["status"] == "filled"
        assert (record["maker_qty"], record["taker_qty"]) == (0.01, 0.03)
        assert max(emu.engine.book.placements.values()) == 1
