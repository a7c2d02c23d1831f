"""Bitget USDT-M's own cases for the live trading adapter (the REAL ccxt client against the
Bitget emulator on loopback, through the same :class:`CcxtTradingExchange` as Binance, only
the dialect differs): what goes on its wire (the symbol's margin mode on every plain order,
TP/SL plan orders, ``clientOid``), its refusals of a TP/SL, an order it lists late, and the
live switches with its passphrase. The cases every venue shares run on Bitget too, in
``test_ccxt_trading``."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptobot.core.config import Secrets, load_settings
from cryptobot.core.errors import ConfigError
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange
from cryptobot.exchange.errors import (
    DuplicateClientOrderId,
    InvalidOrder,
    ReduceOnlyWouldIncrease,
    TradingError,
)
from cryptobot.exchange.factory import open_venue
from cryptobot.risk.orders import leg_order_id
from tests import live_venues
from tests.emulator.bitget_usdt import BitgetEmulator
from tests.emulator.faults import Faults
from tests.live_venues import BTC, BTCID, KEY, KEYS, SECRET, V2, WIRES, emulator

PLACE, TPSL = WIRES["bitget"].place, WIRES["bitget"].stop


def run(emu: BitgetEmulator, script, **kw):
    """Run ``script(ex)`` on a fresh adapter (nothing set before it) and close it."""
    return live_venues.run(emu, "bitget", script, margin=False, **kw)


@pytest.fixture
def emu(shared: Path) -> Iterator[BitgetEmulator]:
    with emulator("bitget") as server:
        yield server  # type: ignore[misc]


def last(emu: BitgetEmulator) -> float:
    return live_venues.last(emu)


def posted(emu: BitgetEmulator, *paths: str) -> list:
    return [h for h in emu.hits if h.method == "POST" and h.path in (paths or (PLACE, TPSL))]


# ---- each method on the wire -----------------------------------------------------------------
def test_bracket_orders_carry_the_margin_mode_plan_types_and_ids(emu):
    price = last(emu)
    entry = "cb-ema-BTC-1744027200"
    stop, tp1 = leg_order_id(entry, "sl"), leg_order_id(entry, "tp1")

    async def script(ex):
        await ex.set_margin_mode(BTC, "isolated")
        await ex.set_margin_mode(BTC, "isolated")  # so already: no error
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
    settings_wire = [h.params for h in emu.hits if "/account/set-" in h.path]
    assert [p.get("marginMode") for p in settings_wire] == ["isolated", "isolated", None]
    assert (
        settings_wire[2]["leverage"] == "10" and settings_wire[2]["productType"] == "USDT-FUTURES"
    )
    wire = posted(emu)
    assert [h.path for h in wire] == [PLACE, TPSL, TPSL, PLACE]
    market, sl_req, tp_req, post = (h.params for h in wire)
    assert (market["orderType"], market["side"], market["size"]) == ("market", "buy", "0.02")
    assert market["clientOid"] == entry and market["marginMode"] == "isolated"
    assert "reduceOnly" not in market and "tradeSide" not in market  # one-way mode
    assert (sl_req["planType"], sl_req["holdSide"], sl_req["clientOid"]) == (
        "loss_plan", "buy", stop)  # fmt: skip
    assert float(sl_req["triggerPrice"]) == pytest.approx(price - 500)
    assert sl_req["triggerType"] == "fill_price" and sl_req["size"] == "0.02"
    assert (tp_req["planType"], tp_req["clientOid"], tp_req["size"]) == ("profit_plan", tp1, "0.01")
    assert float(tp_req["triggerPrice"]) == pytest.approx(price + 500)
    assert post["force"] == "post_only" and post["marginMode"] == "isolated"
    assert opened.status == "closed" and opened.filled == 0.02 and opened.client_order_id == entry
    assert opened.average == pytest.approx(price + 0.1) and opened.fee > 0
    assert (sl.type, sl.trigger_price, sl.reduce_only, sl.status) == (
        "stop_market", pytest.approx(price - 500), True, "open")  # fmt: skip
    assert (tp.type, tp.price, tp.trigger_price, tp.reduce_only) == (
        "take_profit", pytest.approx(price + 500), None, True)  # fmt: skip
    assert rest.post_only and rest.status == "open" and rest.type == "limit"
    # open orders = plain + TP/SL, in the order they were placed
    assert [o.client_order_id for o in open_orders] == [stop, tp1, "cb-bid"]
    (pos,) = positions
    assert (pos.side, pos.contracts, pos.margin_mode, pos.leverage) == (
        "long", 0.02, "isolated", 10)  # fmt: skip
    assert pos.liquidation_price is not None and pos.liquidation_price < price


def test_the_symbols_margin_mode_is_on_every_plain_order_and_looked_up_once(emu):
    async def setup(ex):
        await ex.set_margin_mode(BTC, "isolated")

    run(emu, setup)
    price = last(emu)

    async def another_process(ex):  # it set nothing: it asks the venue once
        for n in range(3):
            await ex.create_order(symbol=BTC, type="limit", side="buy", amount=0.01,
                                  price=round(price - 200 - n, 1),
                                  client_order_id=f"bid-{n}")  # fmt: skip
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01)
        await ex.create_order(symbol=BTC, type="stop_market", side="sell", amount=0.01,
                              trigger_price=round(price - 900, 1), reduce_only=True)  # fmt: skip
        await ex.create_order(symbol=BTC, type="market", side="sell", amount=0.01,
                              reduce_only=True)  # fmt: skip

    run(emu, another_process)
    plain = posted(emu, PLACE)
    assert len(plain) == 5 and all(h.params["marginMode"] == "isolated" for h in plain)
    assert "marginMode" not in posted(emu, TPSL)[0].params  # a TP/SL is the position's
    assert emu.count(f"{V2}/account/account") == 1

    async def cross(ex):  # back to cross (the stop died with the position): orders say crossed
        for n in range(3):
            await ex.cancel_order(f"bid-{n}")
        await ex.set_margin_mode(BTC, "cross")
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01)

    run(emu, cross)
    assert posted(emu, PLACE)[-1].params["marginMode"] == "crossed"


def test_close_position_stop_is_the_positions_own_tpsl(emu):
    price = last(emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="sell", amount=0.03)
        stop = await ex.create_order(symbol=BTC, type="stop_market", side="buy", amount=0.03,
                                     trigger_price=round(price + 400, 1), reduce_only=True,
                                     client_order_id="cp", close_position=True)  # fmt: skip
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01)
        emu.engine.tick(BTCID, round(price + 450, 1))
        return stop, await ex.fetch_positions(), await ex.fetch_order("cp")

    stop, positions, fired = run(emu, script)
    assert posted(emu, TPSL)[0].params["planType"] == "pos_loss"
    assert posted(emu, TPSL)[0].params["holdSide"] == "sell"  # a short
    assert stop.reduce_only and stop.type == "stop_market" and stop.status == "open"
    assert positions == [] and fired.status == "closed" and fired.filled == 0.02


# ---- refusals of its own -----------------------------------------------------------------------
def test_an_id_is_never_taken_again_and_a_tpsl_is_refused_by_its_own_rules(emu):
    """Bitget refuses an id it has seen even once its order filled; a TP/SL bigger than the
    position, a long's stop above the price (40917) and a working type it has no word for are
    refused, and the last never leaves the process."""
    price = last(emu)

    async def script(ex):
        await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                              client_order_id="dup")  # fmt: skip
        with pytest.raises(DuplicateClientOrderId):
            await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                  client_order_id="dup")  # fmt: skip
        with pytest.raises(ReduceOnlyWouldIncrease):  # a long's reduce-only buy
            await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                  reduce_only=True)  # fmt: skip
        stop = dict(symbol=BTC, type="stop_market", side="sell", reduce_only=True)
        with pytest.raises(ReduceOnlyWouldIncrease):  # a TP/SL bigger than the position
            await ex.create_order(**stop, amount=0.02, trigger_price=round(price - 500, 1))
        with pytest.raises(InvalidOrder, match="40917"):  # a long's stop above the price
            await ex.create_order(**stop, amount=0.01, trigger_price=round(price + 500, 1))
        ex.working_type = "LAST_PRICE"
        with pytest.raises(TradingError, match="working type"):
            await ex.create_order(**stop, amount=0.01, trigger_price=round(price - 500, 1))

    run(emu, script)
    assert dict(emu.engine.book.placements) == {"dup": 1}
    assert len(posted(emu)) == 5  # the working type never left


# ---- faults of its own -------------------------------------------------------------------------
def test_an_order_listed_late_is_looked_up_and_else_returned_as_accepted(emu):
    """Bitget answers a placed order with its ids: the adapter looks it up, tolerating a few
    "not found"; past the tolerance the venue's acceptance stands (never "not placed")."""
    emu.faults = Faults(not_found=2)

    async def script(ex):
        found = await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                      client_order_id="late")  # fmt: skip
        emu.faults = Faults(not_found=9)
        accepted = await ex.create_order(symbol=BTC, type="market", side="buy", amount=0.01,
                                         client_order_id="later")  # fmt: skip
        return found, accepted

    found, accepted = run(emu, script, not_found_tolerance=2)
    assert found.status == "closed" and found.filled == 0.01
    assert (accepted.client_order_id, accepted.status, accepted.amount) == ("later", "open", 0.01)
    assert accepted.id == str(max(emu.engine.book.orders)) and accepted.timestamp == 0
    assert emu.engine.book.placements == {"late": 1, "later": 1}


# ---- live switches -----------------------------------------------------------------------------
def bitget_config(tmp_path: Path, **overrides) -> object:
    base = {"data_dir": str(tmp_path), "exchange": "bitget", "mode": "live"}
    return load_settings(env={}, overrides=base | overrides)


@pytest.mark.parametrize(
    "secrets",
    [Secrets(api_key=KEY, api_secret=SECRET), Secrets(api_key=KEY, api_secret=SECRET,
                                                      api_password="  ")],
)  # fmt: skip
def test_bitget_needs_the_passphrase_among_the_keys(tmp_path, secrets):
    with pytest.raises(ConfigError, match=r"missing: .*CRYPTOBOT_API_PASSWORD") as no:
        open_venue(bitget_config(tmp_path), secrets, live=True)
    assert KEY not in str(no.value) and SECRET not in str(no.value)


def test_the_configs_exchange_id_chooses_bitget_behind_the_same_switches(tmp_path, emu):
    with pytest.raises(ConfigError, match="missing: --live"):
        open_venue(bitget_config(tmp_path), KEYS, live=False)
    config = bitget_config(tmp_path, **{"exchanges.bitget.api_base": emu.url})
    venue = open_venue(config, KEYS, live=True)
    try:
        assert isinstance(venue, CcxtTradingExchange) and venue.id == "bitget"
        assert asyncio.run(venue.fetch_balance()).wallet == 10_000.0
    finally:
        asyncio.run(venue.close())
