"""The live trading adapter with the REAL ccxt client against the emulators on loopback. The
cases every venue must pass run on both Binance USDⓈ-M and Bitget USDT-M (the ``venue``
fixture: an emulator and its wire facts, ``live_venues.Wire``): fills, funding, look-ups and
cancels, refusals by the venue's code, each fault, secrets, and that no order is ever placed
twice. What goes on Binance's wire, and the live switches, are Binance's own cases here;
Bitget's are in ``test_ccxt_trading_bitget``."""

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cryptobot.core.config import Secrets, load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange
from cryptobot.exchange.errors import (
    DuplicateClientOrderId,
    InsufficientMargin,
    InvalidOrder,
    OrderNotFound,
    OrderNotOpen,
    OrderNotPlaced,
    OrderStatusUnknown,
    PostOnlyWouldTake,
    ReduceOnlyWouldIncrease,
    StepViolation,
)
from cryptobot.exchange.factory import live_switches, open_venue
from cryptobot.exchange.paper import PaperBroker
from cryptobot.risk.orders import leg_order_id
from tests import live_venues
from tests.emulator import BinanceEmulator, Faults
from tests.emulator.serving import VenueServer
from tests.live_venues import (
    BTC,
    BTCID,
    KEY,
    PASSPHRASE,
    SECRET,
    VENUES,
    WIRES,
    Sleeps,
    Wire,
    emulator,
)

__all__ = ["KEY", "SECRET", "Sleeps", "adapter", "last", "posted", "run"]


# ---- Binance's helpers (other tests' too) -----------------------------------------------------
def adapter(emu: BinanceEmulator, sleeps: Sleeps | None = None, **kw) -> CcxtTradingExchange:
    return live_venues.adapter(emu, "binanceusdm", sleeps=sleeps, **kw)


def run(emu: BinanceEmulator, script, **kw):
    """Run ``script(ex)`` on a fresh Binance adapter and close it."""
    return live_venues.run(emu, "binanceusdm", script, **kw)


def last(emu: VenueServer) -> float:
    return live_venues.last(emu)


def posted(emu: BinanceEmulator) -> list:
    return WIRES["binanceusdm"].posted(emu)


@pytest.fixture
def emu(shared: Path) -> Iterator[BinanceEmulator]:
    with emulator("binanceusdm") as server:
        yield server  # type: ignore[misc]


# ---- either venue -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Venue:
    """One venue for a shared case: its id, its emulator and its wire facts."""

    id: str
    emu: VenueServer
    wire: Wire

    def run(self, script, **kw):
        """``script(ex)`` on a fresh adapter; the symbol's margin mode as the venue has it."""
        return live_venues.run(self.emu, self.id, script, **{"margin": False} | kw)

    def posted(self) -> list:
        return self.wire.posted(self.emu)

    @property
    def book(self):
        return self.emu.engine.book


@pytest.fixture(params=VENUES)
def venue(request, shared: Path) -> Iterator[Venue]:
    with emulator(request.param) as server:
        yield Venue(request.param, server, WIRES[request.param])


def on(*cases: tuple) -> list:
    """``(venue, case..)`` rows as parameters, the venue fed to the ``venue`` fixture."""
    return [pytest.param(*case, id="-".join(map(str, case))) for case in cases]


# ---- Binance: each method on the wire --------------------------------------------------------
def test_bracket_orders_carry_the_right_parameters_and_ids(emu):
    price = last(emu)
    entry = "cb-ema-BTC-1744027200"
    stop, tp1 = leg_order_id(entry, "sl"), leg_order_id(entry, "tp1")

    async def script(ex):
        await ex.set_margin_mode(BTC, "isolated")
        await ex.set_margin_mode(BTC, "isolated")  # already so: no error
        await ex.set_leverage(BTC, 10)
        opened = await ex.create_order(
            symbol=BTC, type="market", side="buy", amount=0.02, client_order_id=entry
        )
        sl = await ex.create_order(symbol=BTC, type="stop_market", side="sell", amount=0.02,
                                   trigger_price=round(price - 500, 1), reduce_only=True,
                                   client_order_id=stop)  # fmt: skip
        tp = await ex.create_order(symbol=BTC, type="take_profit", side="sell", amount=0.01,
                                   price=round(price + 500, 1), reduce_only=True,
                                   client_order_id=tp1)  # fmt: skip
        rest = await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                     price=round(price - 300, 1), post_only=True,
                                     client_order_id="cb-bid")  # fmt: skip
        return opened, sl, tp, rest, await ex.fetch_open_orders(BTC), await ex.fetch_positions()

    opened, sl, tp, rest, open_orders, positions = run(emu, script)
    wire = posted(emu)
    assert [h.path for h in wire] == ["/fapi/v1/order", "/fapi/v1/algoOrder",
                                      "/fapi/v1/algoOrder", "/fapi/v1/order"]  # fmt: skip
    market, sl_req, tp_req, gtx = (h.params for h in wire)
    assert market["type"] == "MARKET" and market["newClientOrderId"] == entry
    assert "reduceOnly" not in market
    assert sl_req["type"] == "STOP_MARKET" and sl_req["algoType"] == "CONDITIONAL"
    assert sl_req["clientAlgoId"] == stop and sl_req["reduceOnly"] == "true"
    assert float(sl_req["triggerPrice"]) == pytest.approx(price - 500)
    assert sl_req["workingType"] == "CONTRACT_PRICE" and float(sl_req["quantity"]) == 0.02
    assert tp_req["type"] == "TAKE_PROFIT_MARKET" and tp_req["clientAlgoId"] == tp1
    assert float(tp_req["triggerPrice"]) == pytest.approx(price + 500)
    assert gtx["timeInForce"] == "GTX" and gtx["newClientOrderId"] == "cb-bid"
    assert opened.status == "closed" and opened.filled == 0.02 and opened.client_order_id == entry
    assert (sl.type, sl.trigger_price, sl.reduce_only, sl.status) == (
        "stop_market", pytest.approx(price - 500), True, "open")  # fmt: skip
    assert (tp.type, tp.price, tp.trigger_price) == (
        "take_profit",
        pytest.approx(price + 500),
        None,
    )
    assert rest.post_only and rest.status == "open"
    # open orders = plain + algo, in the order they were placed
    assert [o.client_order_id for o in open_orders] == [stop, tp1, "cb-bid"]
    (pos,) = positions
    assert (pos.side, pos.contracts, pos.margin_mode, pos.leverage) == (
        "long",
        0.02,
        "isolated",
        10,
    )
    assert emu.account.position(BTCID).leverage == 10


def test_close_position_stop_sends_no_quantity(emu):
    price = last(emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="sell", amount=0.03)
        return await ex.create_order(symbol=BTC, type="stop_market", side="buy", amount=0.03,
                                     trigger_price=round(price + 400, 1), reduce_only=True,
                                     client_order_id="cp", close_position=True)  # fmt: skip

    stop = run(emu, script)
    params = posted(emu)[-1].params
    assert params["closePosition"] == "true" and "quantity" not in params
    assert "reduceOnly" not in params and stop.reduce_only and stop.type == "stop_market"


# ---- Binance: the live switches --------------------------------------------------------------
KEYS = Secrets(api_key=KEY, api_secret=SECRET)


@pytest.mark.parametrize(
    ("mode", "flag", "secrets", "missing"),
    [
        ("paper", True, KEYS, "missing: `mode: live` in the config"),
        ("live", False, KEYS, "missing: --live on the command line"),
        ("live", True, Secrets(), "missing: CRYPTOBOT_API_KEY and CRYPTOBOT_API_SECRET"),
        ("live", True, Secrets(api_key=KEY), "missing: CRYPTOBOT_API_KEY and CRYPTOBOT_API_SECRET"),
        ("live", True, Secrets(api_key="  ", api_secret="\t"), "missing: CRYPTOBOT_API_KEY"),
    ],
)
def test_each_missing_live_switch_refuses_naming_it(tmp_path, mode, flag, secrets, missing):
    config = load_settings(env={}, overrides={"data_dir": str(tmp_path), "mode": mode})
    with pytest.raises(ConfigError, match=missing.replace("?", r"\?")) as no:
        open_venue(config, secrets, live=flag)
    assert KEY not in str(no.value) and SECRET not in str(no.value)


def test_live_needs_all_three_switches_and_paper_is_the_default(tmp_path, emu):
    paper = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    assert live_switches(paper, KEYS, live=False) is False
    assert isinstance(open_venue(paper, KEYS), PaperBroker)
    live = load_settings(
        env={},
        overrides={"data_dir": str(tmp_path), "mode": "live",
                   "exchanges.binanceusdm.api_base": emu.url},
    )  # fmt: skip
    venue = open_venue(live, KEYS, live=True)
    try:
        assert isinstance(venue, CcxtTradingExchange)
        assert asyncio.run(venue.fetch_balance()).wallet == 10_000.0
    finally:
        asyncio.run(venue.close())


# ---- fills, funding, look-ups and cancels ---------------------------------------------------
def test_fills_funding_lookup_and_cancel(venue: Venue):
    emu = venue.emu
    price = last(emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="sell", amount=0.05,
                              client_order_id="short")  # fmt: skip
        await ex.create_order(symbol=BTC, type="take_profit", side="buy", amount=0.02,
                              price=round(price - 200, 1), reduce_only=True,
                              client_order_id="short-tp1")  # fmt: skip
        await ex.create_order(symbol=BTC, type="stop_market", side="buy", amount=0.05,
                              trigger_price=round(price * 1.2, 1), reduce_only=True,
                              client_order_id="short-sl")  # fmt: skip
        await ex.create_order(symbol=BTC, type="limit", side="sell", amount=0.01,
                              price=round(price * 1.3, 1), client_order_id="ask")  # fmt: skip
        emu.engine.tick(BTCID, round(price - 250, 1))  # the take-profit fires
        emu.engine.advance(emu.now_ms + 6 * 3_600_000)  # one funding settlement
        fired = await ex.fetch_order("short-tp1")
        canceled = await ex.cancel_order("ask")
        assert await ex.cancel_order("ask") == canceled  # a retry or a second cancel: same
        stop = await ex.cancel_order("short-sl")
        assert await ex.cancel_order("short-sl") == stop
        with pytest.raises(OrderNotOpen, match="closed"):
            await ex.cancel_order("short")
        with pytest.raises(OrderNotOpen, match="closed"):
            await ex.cancel_order("short-tp1")
        with pytest.raises(OrderNotFound):
            await ex.fetch_order("never-sent", symbol=BTC)
        with pytest.raises(OrderNotFound):
            await ex.fetch_order("never-sent")
        fresh = live_venues.adapter(emu, venue.id)  # another process: knows no symbols,
        try:  # finds done ones by symbol
            again = await fresh.fetch_order("short-tp1", symbol=BTC)
        finally:
            await fresh.close()
        return (fired, canceled, stop, again, await ex.fetch_my_trades(),
                await ex.fetch_funding_payments(), await ex.fetch_balance())  # fmt: skip

    fired, canceled, stop, again, fills, funding, balance = venue.run(script)
    assert fired.status == "closed" and fired.filled == 0.02 and fired.average is not None
    assert again == fired
    assert canceled.status == "canceled" and canceled.client_order_id == "ask"
    assert stop.status == "canceled" and stop.type == "stop_market"
    assert [(f.client_order_id, f.order_type, f.side) for f in fills] == [
        ("short", "market", "sell"), ("short-tp1", "take_profit", "buy")]  # fmt: skip
    assert fills[1].realized_pnl > 0
    assert fills[0].fee == pytest.approx(fills[0].cost * venue.wire.taker_fee)
    # without a symbol: every symbol traded or held, in one request per symbol
    assert len(funding) == 1 and funding[0].symbol == BTC and funding[0].amount != 0
    assert emu.count(venue.wire.funding) == 1
    assert balance.wallet == pytest.approx(emu.account.balance)
    assert balance.total == pytest.approx(balance.wallet + balance.unrealized_pnl)


# ---- refusals, by the venue's code -------------------------------------------------------------
def test_refusals_are_classified_by_code_and_change_nothing(venue: Venue):
    """Binance refuses a post-only order that would take (-5022: never placed); Bitget cancels
    it on arrival (placed, the id spent): the adapter says ``PostOnlyWouldTake`` either way."""
    price = last(venue.emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                              price=round(price - 300, 1), client_order_id="dup")  # fmt: skip
        cases = {
            DuplicateClientOrderId: dict(type="limit", side="buy", amount=0.01,
                                         price=round(price - 300, 1), client_order_id="dup"),
            PostOnlyWouldTake: dict(type="limit", side="buy", amount=0.01,
                                    price=round(price + 0.1, 1), post_only=True,
                                    client_order_id="po"),
            InsufficientMargin: dict(type="market", side="buy", amount=5.0),
            ReduceOnlyWouldIncrease: dict(type="market", side="sell", amount=0.01,
                                          reduce_only=True),
            StepViolation: dict(type="market", side="buy", amount=0.0105),  # checked locally
        }  # fmt: skip
        for kind, order in cases.items():
            with pytest.raises(kind):
                await ex.create_order(symbol=BTC, **order)

    venue.run(script)
    placed = {c: n for c, n in venue.book.placements.items() if n}
    assert placed == ({"dup": 1} if venue.id == "binanceusdm" else {"dup": 1, "po": 1})
    assert len(venue.posted()) == 5  # the step violation never left the process


# ---- faults ----------------------------------------------------------------------------------
def test_reads_are_retried_honouring_retry_after(venue: Venue):
    sleeps = Sleeps()
    venue.emu.faults = Faults(kinds=("429",), paths=(venue.wire.balance,), first=2,
                              retry_after_s=3)  # fmt: skip

    async def script(ex):
        return await ex.fetch_balance()

    assert venue.run(script, sleeps=sleeps).wallet == 10_000.0
    assert sleeps.pauses == [3, 3]


@pytest.mark.parametrize(
    ("venue", "kind"), on(("binanceusdm", "429"), ("binanceusdm", "418"), ("bitget", "429")),
    indirect=["venue"],
)  # fmt: skip
def test_a_rate_limited_order_is_not_placed_and_not_resent(venue: Venue, kind: str):
    venue.emu.faults = Faults(kinds=(kind,), paths=(venue.wire.place,), first=1,
                              retry_after_s=5)  # fmt: skip

    async def script(ex):
        with pytest.raises(OrderNotPlaced) as no:
            await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                  client_order_id="rl")  # fmt: skip
        return no.value

    refused = venue.run(script)
    assert refused.retry_after == 5 and venue.book.placements["rl"] == 0
    assert len(venue.posted()) == 1


@pytest.mark.parametrize(
    ("venue", "kind", "route"),
    on(*((v, k, r) for v in VENUES for k, r in (("drop", "place"), ("late", "place"),
                                                 ("drop", "stop")))),
    indirect=["venue"],
)  # fmt: skip
def test_a_lost_answer_is_resolved_by_client_id_not_by_sending_again(venue, kind, route):
    """The answer is lost (the connection dropped after the venue processed it, or answered
    after the client gave up), and the venue lists the order "not found" twice more: it is
    looked up, found, and never sent again."""
    price = last(venue.emu)
    path = venue.wire.place if route == "place" else venue.wire.stop

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01)
        venue.emu.faults = Faults(kinds=(kind,), paths=(path,), first=1, slow_s=0.5,
                                  not_found=2)  # fmt: skip
        if route == "place":
            return await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                         client_order_id="lost")  # fmt: skip
        return await ex.create_order(symbol=BTC, type="stop_market", side="sell", amount=0.01,
                                     trigger_price=round(price - 500, 1), reduce_only=True,
                                     client_order_id="lost")  # fmt: skip

    order = venue.run(script)
    assert order.client_order_id == "lost" and venue.book.placements["lost"] == 1
    assert order.status == ("closed" if route == "place" else "open")
    assert len([h for h in venue.posted() if "lost" in h.params.values()]) == 1


def test_an_absent_order_is_reported_only_after_the_tolerated_lookups(venue: Venue):
    venue.emu.faults = Faults(kinds=("500",), paths=(venue.wire.stop,), first=1)
    sleeps = Sleeps()
    price = last(venue.emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01)
        with pytest.raises(OrderNotPlaced, match="4 look-ups"):
            await ex.create_order(symbol=BTC, type="stop_market", side="sell", amount=0.01,
                                  trigger_price=round(price - 500, 1), reduce_only=True,
                                  client_order_id="gone")  # fmt: skip

    venue.run(script, sleeps=sleeps, not_found_tolerance=3, settle_s=0.02)
    assert venue.book.placements["gone"] == 0 and sum(sleeps.pauses) >= 0.02
    for route in venue.wire.stop_lookups:  # each look-up asks every route a stop may be on
        assert venue.emu.count(route, "ok") == 4, route


def test_an_unresolvable_failure_says_unknown_and_sends_nothing_more(venue: Venue):
    async def script(ex):
        venue.emu.faults = Faults(kinds=("drop", "503"), paths=(venue.wire.orders,), first=50)
        with pytest.raises(OrderStatusUnknown, match="reconcile"):
            await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                  client_order_id="fog")  # fmt: skip

    venue.run(script)
    assert len(venue.posted()) == 1


def test_a_cancel_whose_answer_was_lost_returns_the_canceled_order(venue: Venue):
    price = last(venue.emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01)
        await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                              price=round(price - 400, 1), client_order_id="bid")  # fmt: skip
        await ex.create_order(symbol=BTC, type="stop_market", side="sell", amount=0.01,
                              trigger_price=round(price - 400, 1), reduce_only=True,
                              client_order_id="stop")  # fmt: skip
        cancels = [h.path for h in venue.wire.cancels(venue.emu)]
        assert cancels == []
        paths = (venue.wire.place, venue.wire.stop, f"{venue.wire.orders}cancel")
        venue.emu.faults = Faults(kinds=("drop",), paths=paths, first=1)
        return await ex.cancel_order("bid"), await ex.cancel_order("stop")

    bid, stop = venue.run(script)
    assert bid.status == "canceled" and stop.status == "canceled"
    assert [h.outcome for h in venue.wire.cancels(venue.emu)] == ["drop", "ok", "drop", "ok"]


# ---- secrets -----------------------------------------------------------------------------------
def test_secrets_never_appear_in_logs_errors_or_reprs(venue: Venue, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    async def script(ex):
        venue.emu.faults = Faults(kinds=("drop", "500", "429"), paths=venue.wire.trading,
                                  rate=0.5, seed=3)  # fmt: skip
        texts.append(repr(ex))
        for i in range(12):
            try:
                order = await ex.create_order(symbol=BTC, type="market", side="buy",
                                              amount=0.01, client_order_id=f"s{i}")  # fmt: skip
                texts.append(repr(order))
                texts.append(repr(await ex.fetch_positions()))
            except Exception as exc:  # every kind of failure the adapter raises
                texts.append(f"{type(exc).__name__}: {exc!r} {exc}")  # fmt: skip
        try:
            await ex.create_order(symbol=BTC, type="market", side="buy", amount=99.0)
        except Exception as exc:
            texts.append(str(exc))

    venue.run(script)
    everything = "\n".join(texts) + caplog.text
    assert venue.wire.margin_refusal in everything  # the errors were there to be read
    assert all(s not in everything for s in (KEY, SECRET, PASSPHRASE))
    assert all("signature=" not in t for t in texts)


# ---- chaos: never a duplicate order ------------------------------------------------------------
ORDERS = st.lists(
    st.tuples(
        st.sampled_from(["market", "limit", "stop"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(2, 20),  # amount in steps of 0.001
        st.integers(3, 30),  # a limit's or a stop's distance from the market, in units of 10
    ),
    min_size=4,
    max_size=10,
)


@pytest.mark.parametrize("venue_id", VENUES)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(orders=ORDERS, seed=st.integers(0, 10_000))
def test_random_orders_under_faults_are_never_placed_twice(shared, venue_id, orders, seed):
    """A trader's loop: send each order; when the adapter says it was certainly not placed,
    send it again (same client id), up to three times; when it says unknown, leave it. A venue
    refuses an id it has seen, so an adapter that called a placed order "not placed" would meet
    DuplicateClientOrderId on the resend: that never happens either."""
    wire = WIRES[venue_id]
    with emulator(venue_id) as emu:
        price = last(emu)

        async def script(ex):
            emu.faults = Faults(
                kinds=(*wire.rate_limits, "500", "503", "drop", "late"), paths=wire.trading,
                rate=0.35, seed=seed, retry_after_s=0, slow_s=0.35, not_found=1, partial=0.3,
            )  # fmt: skip
            outcomes = []
            for n, (kind, side, steps, away) in enumerate(orders):
                far = price - away * 10 if side == "buy" else price + away * 10
                order = dict(symbol=BTC, type=kind, side=side, amount=steps / 1000,
                             client_order_id=f"chaos-{n}",
                             price=round(far, 1) if kind == "limit" else None)  # fmt: skip
                if kind == "stop":  # protects a position on the other side, if there is one
                    order |= dict(type="stop_market", trigger_price=round(2 * price - far, 1),
                                  reduce_only=True, price=None)  # fmt: skip
                for _ in range(3):
                    try:
                        outcomes.append((await ex.create_order(**order)).client_order_id)
                        break
                    except OrderNotPlaced:
                        continue
                    except OrderStatusUnknown:
                        outcomes.append("unknown")
                        break
                    except (ReduceOnlyWouldIncrease, InvalidOrder) as no:
                        assert not isinstance(no, DuplicateClientOrderId), no
                        outcomes.append("refused")
                        break
            return outcomes

        outcomes = live_venues.run(emu, venue_id, script, not_found_tolerance=2)
        book = emu.engine.book
        faulted = sum(1 for h in emu.hits if h.outcome != "ok")
        assume(faulted >= 1)  # a draw the seeded faults spared (seed 0, 4 orders) tests nothing
        assert book.duplicates_refused == 0 and all(n <= 1 for n in book.placements.values())
        # every order the adapter returned exists on the venue, exactly once
        assert all(book.placements[c] == 1 for c in outcomes if c not in ("unknown", "refused"))
