"""The emulated Bitget USDT-M account, driven by the real ccxt ``bitget`` client over loopback:
each route answers in Bitget's envelope and shapes, each refusal carries Bitget's code, Bitget's
rules hold (margin mode on every order, one-way mode, TP/SL that need and follow a position,
client ids never reused, post-only canceled on arrival), each fault happens as asked (the
refusing and response-lost faults on either venue: ``test_emulator_faults``),
liquidation comes at Bitget's formula's price, and the wallet is always its start plus
realised PnL, minus fees, plus funding and liquidation clearance.

Refusals are matched by Bitget's code (in the message ccxt raises), not by ccxt's class."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.bitget_client import bitget_client
from tests.emulator.bitget_usdt import TAKER_FEE, BitgetEmulator
from tests.emulator.faults import Faults

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"
V2 = "/api/v2/mix"
TICK = 0.1
# the fields Bitget documents for each answer (its v2 API reference, as gocryptotrader's Bitget
# types mirror it): the emulator may add, never miss one
DETAIL = {"symbol", "size", "orderId", "clientOid", "baseVolume", "priceAvg", "fee", "price",
          "state", "side", "force", "totalProfits", "posSide", "marginCoin", "quoteVolume",
          "presetStopSurplusPrice", "presetStopLossPrice", "orderType", "leverage", "marginMode",
          "reduceOnly", "enterPointSource", "tradeSide", "posMode", "orderSource", "cTime",
          "uTime"}  # fmt: skip
PENDING = DETAIL - {"state", "reduceOnly"} | {"status"}
POSITION = {"marginCoin", "symbol", "holdSide", "openDelegateSize", "marginSize", "available",
            "locked", "total", "leverage", "achievedProfits", "openPriceAvg", "marginMode",
            "posMode", "unrealizedPL", "liquidationPrice", "keepMarginRate", "markPrice",
            "marginRatio", "cTime"}  # fmt: skip
PLAN = {"planType", "symbol", "size", "orderId", "clientOid", "price", "callbackRatio",
        "triggerPrice", "triggerType", "planStatus", "side", "posSide", "marginCoin",
        "marginMode", "enterPointSource", "tradeSide", "posMode", "orderType", "orderSource",
        "cTime", "uTime", "presetStopSurplusPrice", "stopSurplusTriggerPrice",
        "stopSurplusTriggerType", "presetStopLossPrice", "stopLossTriggerPrice",
        "stopLossTriggerType"}  # fmt: skip
PLAN_DONE = PLAN | {"executeOrderId", "priceAvg", "baseVolume"}
FILL = {"tradeId", "symbol", "orderId", "price", "baseVolume", "feeDetail", "side",
        "quoteVolume", "profit", "enterPointSource", "tradeSide", "posMode", "tradeScope",
        "cTime"}  # fmt: skip
ACCOUNT = {"marginCoin", "locked", "available", "crossedMaxAvailable", "isolatedMaxAvailable",
           "maxTransferOut", "accountEquity", "usdtEquity", "btcEquity", "crossedRiskRate",
           "unrealizedPL", "coupon", "crossedUnrealizedPL", "isolatedUnrealizedPL"}  # fmt: skip
CONTRACT = {"symbol", "baseCoin", "quoteCoin", "makerFeeRate", "takerFeeRate",
            "supportMarginCoins", "minTradeNum", "priceEndStep", "volumePlace", "pricePlace",
            "sizeMultiplier", "symbolType", "minTradeUSDT", "symbolStatus", "minLever",
            "maxLever"}  # fmt: skip


@pytest.fixture
def emu(shared: Path) -> Iterator[BitgetEmulator]:
    with BitgetEmulator(shared) as server:
        yield server


@pytest.fixture
def ex(emu: BitgetEmulator):
    return bitget_client(emu)


def last(emu: BitgetEmulator) -> float:
    emu.engine.spec(BTCID)  # the first use prices the symbol from the stored candles
    return emu.engine.book.prices[BTCID]


def req(**kw) -> dict:
    return {"symbol": BTCID, "productType": "USDT-FUTURES", "marginCoin": "USDT", **kw}


def order(ex, side: str, size: float, **kw) -> dict:
    """A raw place-order on the crossed default (the wire as it is, no ccxt defaults)."""
    body = req(side=side, orderType="market", size=str(size), marginMode="crossed") | kw
    return ex.privateMixPostV2MixOrderPlaceOrder(body)["data"]


def tpsl(ex, plan: str, trigger: float, size: float | None = None, hold: str = "buy", **kw):
    body = req(planType=plan, triggerPrice=f"{trigger:.1f}", triggerType="fill_price",
               holdSide=hold, **kw) | ({"size": str(size)} if size else {})  # fmt: skip
    return ex.privateMixPostV2MixOrderPlaceTpslOrder(body)["data"]


def plans(ex, status: str = "pending", plan: str = "profit_loss") -> list[dict]:
    call = getattr(ex, f"privateMixGetV2MixOrderOrdersPlan{status.capitalize()}")
    return call(req(planType=plan))["data"]["entrustedList"] or []


def position_qty(ex) -> float:
    rows = ex.privateMixGetV2MixPositionAllPosition(req())["data"]
    return sum(float(r["total"]) * (1 if r["holdSide"] == "long" else -1) for r in rows)


def refused(code: str, call, *args, **kw) -> None:
    """``call`` is refused with Bitget's ``code``."""
    with pytest.raises(ccxt.ExchangeError) as no:
        call(*args, **kw)
    body = json.loads(str(no.value).split(" ", 1)[1])
    assert body["code"] == code and body["data"] is None, body


# ---- shapes ----------------------------------------------------------------------------------
def test_routes_answer_bitgets_envelope_and_documented_fields(emu, ex):
    price = last(emu)
    markets = ex.load_markets()
    assert set(markets[BTC]["info"]) >= CONTRACT and markets[BTC]["precision"]["price"] == TICK
    assert markets[BTC]["limits"]["cost"]["min"] == 5 and markets[BTC]["taker"] == TAKER_FEE
    assert ex.fetch_balance()["USDT"] == {"free": 10_000.0, "used": 0.0, "total": 10_000.0}
    answer = ex.privateMixGetV2MixAccountAccounts({"productType": "USDT-FUTURES"})
    assert answer["code"] == "00000" and answer["requestTime"] == emu.now_ms
    assert set(answer["data"][0]) >= ACCOUNT
    placed = order(ex, "buy", 0.01, clientOid="shape-1")
    assert placed == {"orderId": placed["orderId"], "clientOid": "shape-1"}  # ids only
    detail = ex.privateMixGetV2MixOrderDetail(req(clientOid="shape-1"))["data"]
    assert set(detail) >= DETAIL and detail["state"] == "filled"
    ex.privateMixPostV2MixOrderPlaceOrder(
        req(
            side="buy",
            orderType="limit",
            size="0.01",
            price=f"{price - 500:.1f}",
            marginMode="crossed",
        )
    )
    pending = ex.privateMixGetV2MixOrderOrdersPending(req())["data"]["entrustedList"]
    assert set(pending[0]) >= PENDING and pending[0]["status"] == "live"
    (held,) = ex.privateMixGetV2MixPositionAllPosition(req())["data"]
    assert set(held) >= POSITION and held["posMode"] == "one_way_mode"
    tpsl(ex, "loss_plan", price - 400, 0.01, clientOid="shape-sl")
    (live,) = plans(ex)
    assert set(live) >= PLAN and live["planStatus"] == "live" and live["planType"] == "loss_plan"
    emu.engine.tick(BTCID, round(price - 450, 1))
    (done,) = plans(ex, "history")
    assert set(done) >= PLAN_DONE and done["planStatus"] == "executed"
    fills = ex.privateMixGetV2MixOrderFills(req())["data"]["fillList"]
    assert all(set(f) >= FILL for f in fills) and len(fills) == 2
    # every number is a string, as Bitget sends them
    assert all(isinstance(held[k], str) for k in ("total", "openPriceAvg", "markPrice"))


def test_signed_routes_need_the_access_headers_and_never_log_them(emu, ex):
    url = f"{emu.url}{V2}/account/accounts?productType=USDT-FUTURES"
    with pytest.raises(urllib.error.HTTPError) as no_key:
        urllib.request.urlopen(url)
    assert json.load(no_key.value)["code"] == "40001"
    headers = {"ACCESS-KEY": "k", "ACCESS-SIGN": "s", "ACCESS-TIMESTAMP": "1"}
    with pytest.raises(urllib.error.HTTPError) as no_pass:
        urllib.request.urlopen(urllib.request.Request(url, headers=headers))
    assert json.load(no_pass.value)["code"] == "40011"
    ex.fetch_balance()
    order(ex, "buy", 0.01)
    logged = json.dumps([h.params for h in emu.hits])
    assert not any(s in logged for s in ("emulator-secret", "emulator-passphrase", "emulator-key"))


# ---- orders ----------------------------------------------------------------------------------
def test_every_plain_order_names_the_symbols_margin_mode_in_one_way_mode(emu, ex):
    ex.load_markets()
    ex.set_margin_mode("isolated", BTC)
    refused("40808", ex.create_order, BTC, "market", "buy", 0.01)  # ccxt's default: crossed
    refused("40808", order, ex, "buy", 0.01)
    refused("40019", order, ex, "buy", 0.01, marginMode="")
    refused("40774", order, ex, "buy", 0.01, marginMode="isolated", tradeSide="open")
    filled = ex.create_order(BTC, "market", "buy", 0.01, params={"marginMode": "isolated"})
    assert ex.fetch_order(filled["id"], BTC)["status"] == "closed"
    assert emu.account.position(BTCID).isolated and position_qty(ex) == pytest.approx(0.01)
    refused("45117", ex.set_margin_mode, "cross", BTC)  # not with a position
    assert ex.set_margin_mode("isolated", BTC)["code"] == "00000"  # so already: success


def test_market_limit_post_only_and_reduce_only(emu, ex):
    price = last(emu)
    buy = ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "m1"})
    assert buy == {**buy, "clientOrderId": "m1", "status": None}  # ids only: look it up
    bought = ex.fetch_order(None, BTC, {"clientOrderId": "m1"})
    assert bought["status"] == "closed" and bought["average"] == pytest.approx(price + TICK)
    assert bought["fee"]["cost"] == pytest.approx(0.01 * (price + TICK) * TAKER_FEE)
    bid = ex.create_order(BTC, "limit", "buy", 0.01, price - 100, params={"clientOrderId": "l1"})
    emu.engine.tick(BTCID, price - 50)
    assert ex.fetch_order(bid["id"], BTC)["status"] == "open"
    emu.engine.tick(BTCID, price - 150)
    rested = ex.fetch_order(bid["id"], BTC)
    assert rested["status"] == "closed" and rested["average"] == pytest.approx(price - 100)
    assert [t["takerOrMaker"] for t in ex.fetch_my_trades(BTC)] == ["taker", "maker"]
    # post-only across the book: accepted, then canceled on arrival; at the bid it rests
    now = price - 150
    crossing = ex.create_order(BTC, "limit", "buy", 0.01, now + TICK, params={"postOnly": True})
    assert ex.fetch_order(crossing["id"], BTC)["status"] == "canceled"
    resting = ex.create_order(BTC, "limit", "sell", 0.01, now + TICK, params={"postOnly": True})
    assert ex.fetch_order(resting["id"], BTC)["postOnly"] is True
    assert ex.cancel_order(resting["id"], BTC)["id"] == resting["id"]
    refused("40768", ex.cancel_order, resting["id"], BTC)
    refused("22002", order, ex, "buy", 0.05, reduceOnly="YES")  # nothing short to reduce
    assert ex.create_order(BTC, "market", "sell", 0.02, params={"reduceOnly": True})
    assert position_qty(ex) == 0.0


def test_bad_orders_get_bitget_codes_and_change_nothing(emu, ex):
    price = last(emu)
    refused("45110", order, ex, "buy", 0.001, orderType="limit", price="1000.0")  # 1 USDT
    refused("40762", order, ex, "buy", round(300_000 / price, 3))  # 10k at 20x: 200k at most
    refused("45115", order, ex, "buy", 0.01, orderType="limit", price=f"{price - 0.05:.2f}")
    refused("22038", order, ex, "buy", 0.0105)
    for bad in ("nan", "inf", "-1", "x"):
        refused("40020", order, ex, "buy", bad)
    refused("40034", order, ex, "buy", 1, symbol="DOGEUSDT")
    refused("40020", order, ex, "buy", 0.01, productType="COIN-FUTURES")
    refused("40017", order, ex, "buy", 0.01, presetStopLossPrice="1000")
    refused("40017", ex.privateMixPostV2MixOrderPlacePlanOrder, req(planType="normal_plan"))
    assert emu.engine.book.orders == {} and emu.account.balance == 10_000.0


def test_tpsl_orders_need_a_position_trigger_on_its_side_and_follow_it(emu, ex):
    price = last(emu)
    refused("40891", tpsl, ex, "loss_plan", price - 500, 0.02)  # no position yet
    order(ex, "buy", 0.03)
    refused("40891", tpsl, ex, "loss_plan", price - 500, 0.05)  # more than the position
    refused("40774", tpsl, ex, "loss_plan", price - 500, 0.02, hold="long")  # hedge words
    refused("40917", tpsl, ex, "loss_plan", price + 10, 0.02)  # a stop above the price
    refused("40915", tpsl, ex, "profit_plan", price - 10, 0.01)  # a target below it
    refused("40891", tpsl, ex, "loss_plan", price + 500, 0.02, hold="sell")  # no short
    stop = tpsl(ex, "loss_plan", price - 500, 0.03, clientOid="sl")
    tpsl(ex, "profit_plan", price + 300, 0.01, clientOid="tp1")
    tpsl(ex, "profit_plan", price + 600, 0.01, clientOid="tp2")
    tpsl(ex, "pos_loss", price - 900, clientOid="whole")
    refused("43031", tpsl, ex, "pos_loss", price - 950)  # one per position
    assert {p["clientOid"] for p in plans(ex)} == {"sl", "tp1", "tp2", "whole"}
    assert plans(ex, plan="normal_plan") == []  # ccxt's {'trigger': True} listing
    listed = ex.fetch_open_orders(BTC, params={"planType": "profit_loss"})
    assert {o["clientOrderId"]: o["triggerPrice"] for o in listed}["sl"] == pytest.approx(
        price - 500
    )
    emu.engine.tick(BTCID, round(price + 310, 1))  # the first target fires
    assert position_qty(ex) == pytest.approx(0.02)
    # the path gaps below the stop: it fills at the gap price, and the rest dies with the position
    emu.engine.tick(BTCID, round(price - 1300, 1))
    assert position_qty(ex) == 0.0
    history = {p["clientOid"]: p for p in plans(ex, "history")}
    assert {k: v["planStatus"] for k, v in history.items()} == {
        "tp1": "executed", "sl": "executed", "tp2": "cancelled", "whole": "cancelled"}  # fmt: skip
    made = ex.privateMixGetV2MixOrderDetail(req(orderId=history["sl"]["executeOrderId"]))
    assert float(made["data"]["priceAvg"]) == pytest.approx(price - 1300)
    assert history["sl"]["orderId"] == stop["orderId"] and plans(ex) == []


def test_cancel_plan_orders_by_their_plan_type(emu, ex):
    price = last(emu)
    order(ex, "buy", 0.02)
    tpsl(ex, "loss_plan", price - 500, 0.02, clientOid="sl")
    listed = [{"clientOid": "sl"}]
    missed = ex.privateMixPostV2MixOrderCancelPlanOrder(req(orderIdList=listed))["data"]
    assert missed["successList"] == [] and missed["failureList"][0]["errorCode"] == "43025"
    done = ex.privateMixPostV2MixOrderCancelPlanOrder(
        req(orderIdList=listed, planType="loss_plan")
    )["data"]
    assert [d["clientOid"] for d in done["successList"]] == ["sl"] and plans(ex) == []
    again = ex.cancel_order(None, BTC, {"trigger": True, "clientOrderId": "sl",
                                        "planType": "loss_plan"})  # fmt: skip
    assert again["id"] is None  # ccxt parses the empty success list: the failure is in info


def test_client_ids_are_never_reused_and_placements_are_counted(emu, ex):
    price = last(emu)
    order(ex, "buy", 0.01, clientOid="once")
    refused("40786", order, ex, "buy", 0.01, clientOid="once")  # filled, still taken
    tpsl(ex, "loss_plan", price - 500, 0.01, clientOid="stop-once")
    refused("40786", tpsl, ex, "loss_plan", price - 600, 0.01, clientOid="stop-once")
    book = emu.engine.book
    assert book.placements == {"once": 1, "stop-once": 1} and book.duplicates_refused == 2


# ---- faults ----------------------------------------------------------------------------------
def test_new_orders_are_not_found_for_their_first_lookups(emu, ex):
    price = last(emu)
    emu.faults = Faults(not_found=2)
    order(ex, "buy", 0.01, clientOid="nf")
    tpsl(ex, "loss_plan", price - 500, 0.01, clientOid="nf-sl")
    for _ in range(2):
        refused("40109", ex.privateMixGetV2MixOrderDetail, req(clientOid="nf"))
        hidden = req(planType="profit_loss", clientOid="nf-sl")
        assert ex.privateMixGetV2MixOrderOrdersPlanPending(hidden)["data"]["entrustedList"] is None
    assert ex.fetch_order(None, BTC, {"clientOrderId": "nf"})["clientOrderId"] == "nf"
    assert plans(ex)[0]["clientOid"] == "nf-sl"


def test_partial_fill_on_demand_completes_at_the_next_tick(emu, ex):
    price = last(emu)
    emu.faults = Faults(partial=1.0, partial_share=0.4)
    placed = order(ex, "buy", 0.05)
    first = ex.fetch_order(placed["orderId"], BTC)
    assert first["status"] == "open" and first["filled"] == 0.02
    emu.engine.tick(BTCID, price + 30)
    assert ex.fetch_order(placed["orderId"], BTC)["filled"] == 0.05


# ---- liquidation and funding ----------------------------------------------------------------
def test_isolated_long_is_liquidated_at_bitgets_formula_price(emu, ex):
    price = last(emu)
    ex.load_markets()
    ex.set_margin_mode("isolated", BTC)
    ex.set_leverage(50, BTC)
    order(ex, "buy", 0.3, marginMode="isolated")
    entry = price + TICK
    margin = 0.3 * entry / 50
    # Bitget: LP = (margin - qty * EP) / (qty * (MMR + taker fee) - qty), first tier's 0.4 %
    expected = (margin - 0.3 * entry) / (0.3 * (0.004 + TAKER_FEE) - 0.3)
    (held,) = ex.fetch_positions([BTC])
    assert held["marginMode"] == "isolated" and held["liquidationPrice"] == pytest.approx(expected)
    emu.engine.tick(BTCID, round(expected + 1, 1))
    assert position_qty(ex) == 0.3
    emu.engine.tick(BTCID, round(expected - 1, 1))
    assert position_qty(ex) == 0.0 and emu.engine.book.liquidations[0][1] == pytest.approx(expected)
    # the whole isolated margin is gone (PnL to the liquidation price + the clearance)
    assert emu.account.balance == pytest.approx(10_000 - 0.3 * entry * TAKER_FEE - margin)
    (burst,) = [f for f in ex.privateMixGetV2MixOrderFills(req())["data"]["fillList"]
                if f["tradeSide"].startswith("burst")]  # fmt: skip
    assert burst["tradeSide"] == "burst_sell_single"


def test_funding_is_billed_at_the_stored_funding_times(emu, ex):
    last(emu)
    order(ex, "sell", 0.05)
    start = emu.now_ms
    emu.engine.advance(start + 6 * 3_600_000)
    stored = [(t, r) for t, r in emu.funding("BTC") if start < t <= emu.now_ms]
    history = ex.fetch_funding_history(BTC)
    assert len(stored) == 1 and [h["timestamp"] for h in history] == [stored[0][0]]
    bars = emu.closed("BTC", "5m")
    settle_price = bars[bars[:, 0] < stored[0][0]][-1, 4]
    assert history[0]["amount"] == pytest.approx(0.05 * settle_price * stored[0][1], abs=1e-6)


# ---- the ledger invariant ---------------------------------------------------------------------
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["market", "limit", "stop", "target", "reduce", "tick", "advance"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 40),  # quantity in steps of 0.001
        st.floats(-0.03, 0.03, allow_nan=False),  # price offset, fraction of the last price
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=8,  # each example is a dozen real HTTP round trips
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=ACTIONS)
def test_wallet_is_start_plus_realised_pnl_minus_fees_plus_funding(shared, actions):
    with BitgetEmulator(shared) as emu:
        ex = bitget_client(emu)
        for kind, side, steps, offset in actions:
            price = last(emu)
            qty = max(steps, 2) / 1000
            away = price * (1 + abs(offset) + 0.001) ** (1 if side == "buy" else -1)
            try:
                if kind in ("market", "reduce"):
                    order(ex, side, qty, reduceOnly="YES" if kind == "reduce" else "NO")
                elif kind == "limit":
                    order(ex, side, qty, orderType="limit", price=f"{price * (1 + offset):.1f}")
                elif kind in ("stop", "target"):
                    long = position_qty(ex) > 0
                    up = (kind == "target") == long
                    level = price * (1 + abs(offset) + 0.001) ** (1 if up else -1)
                    plan = "loss_plan" if kind == "stop" else "profit_plan"
                    tpsl(ex, plan, level, qty, hold="buy" if long else "sell")
                elif kind == "tick":
                    emu.engine.tick(BTCID, round(away, 1))
                else:
                    emu.engine.advance(emu.now_ms + steps * 900_000)
            except ccxt.ExchangeError:
                pass  # refused by the venue: nothing may have changed for it
        fills = ex.privateMixGetV2MixOrderFills(req())["data"]["fillList"] or []
        bills = ex.privateMixGetV2MixAccountBill(req())["data"]["bills"]
        realised = sum(float(f["profit"]) for f in fills)
        fees = sum(float(f["feeDetail"][0]["totalFee"]) for f in fills)  # negative
        moved = [
            b
            for b in bills
            if b["businessType"] in ("contract_settle_fee", "risk_captital_user_transfer")
        ]
        account = ex.privateMixGetV2MixAccountAccounts(req())["data"][0]
        wallet = float(account["accountEquity"]) - float(account["unrealizedPL"])
        paid = sum(float(b["amount"]) for b in moved)
        assert wallet == pytest.approx(10_000 + realised + fees + paid, abs=1e-5)
        if bills:  # newest first: the last bill leaves the wallet as it is
            assert float(bills[0]["balance"]) == pytest.approx(wallet)
        signed = sum(float(f["baseVolume"]) * (1 if f["side"] == "buy" else -1) for f in fills)
        assert position_qty(ex) == pytest.approx(signed, abs=1e-9)
