"""The emulator's Binance USDⓈ-M trading account, driven by the real ccxt client over loopback:
each operation gets what Binance would answer (shapes from ../shared/data/exchange-fixtures),
each fault happens as asked (the refusing and response-lost faults on either venue:
``test_emulator_faults``), liquidation comes at the documented formula's price, funding is
booked at the stored funding times, and the wallet always equals its start plus realised PnL,
minus fees, plus funding.

Refusals are matched by Binance's error code, not by ccxt's exception class: ccxt picks its
USDⓈ-M code table from the host name (``fapi.binance.com``), so on the loopback host it falls
back to its generic table and raises, for instance, ExchangeError for -2022 where the real host
would give InvalidOrder. Product code that must tell refusals apart should read the code."""

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator import BinanceEmulator, Faults
from tests.emulator.binance_client import binance_client
from tests.emulator.binance_usdm import SHARED

BTC, BTCID = "BTC/USDT:USDT", "BTCUSDT"
FIXTURES = (
    SHARED / "exchange-fixtures/nautilus_trader/crates/adapters/binance/test_data/futures/http_json"
)
TICK = 0.1


def fixture(name: str):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{name} is not in ../shared/data/exchange-fixtures")
    return json.loads(path.read_text())


def keys(obj) -> set[str]:
    return set((obj[0] if isinstance(obj, list) else obj).keys())


@pytest.fixture
def emu(shared: Path) -> Iterator[BinanceEmulator]:
    with BinanceEmulator(shared) as server:
        yield server


@pytest.fixture
def ex(emu: BinanceEmulator):
    return binance_client(emu)


def last(emu: BinanceEmulator) -> float:
    emu.engine.spec(BTCID)  # the first use prices the symbol from the stored candles
    return emu.engine.book.prices[BTCID]


def position_qty(ex) -> float:
    rows = ex.fapiPrivateV2GetPositionRisk({"symbol": BTCID})
    return float(rows[0]["positionAmt"]) if rows else 0.0


# ---- shapes ----------------------------------------------------------------------------------
def test_account_routes_answer_the_recorded_binance_shapes(emu, ex):
    assert ex.fetch_balance()["USDT"] == {"free": 10_000.0, "used": 0.0, "total": 10_000.0}
    assert keys(fixture("balance.json")) <= keys(ex.fapiPrivateV2GetBalance())
    ex.set_leverage(20, BTC)
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert keys(fixture("order_response.json")) <= keys(order["info"])
    assert keys(fixture("account_info_v2.json")) <= keys(ex.fapiPrivateV2GetAccount())
    account = ex.fapiPrivateV2GetAccount()
    assert keys(fixture("account_info_v2.json")["assets"]) <= keys(account["assets"])
    assert keys(fixture("account_info_v2.json")["positions"]) <= keys(account["positions"])
    assert keys(fixture("position_risk.json")) <= keys(ex.fapiPrivateV2GetPositionRisk())
    stop = ex.create_order(BTC, "market", "sell", 0.01, params={"stopLossPrice": 60_000})
    # the recorded algo order says "type"; Binance's documentation says "orderType"
    recorded = keys(fixture("open_algo_orders.json")) - {"type"}
    listed = ex.fapiPrivateGetOpenAlgoOrders({"symbol": BTCID})
    assert recorded <= keys(listed) and listed[0]["orderType"] == "STOP_MARKET"
    assert stop["info"]["algoId"] == listed[0]["algoId"]
    # every number is a string, as Binance sends them
    risk = ex.fapiPrivateV3GetPositionRisk({"symbol": BTCID})[0]
    assert all(isinstance(risk[k], str) for k in ("positionAmt", "entryPrice", "markPrice"))


def test_signed_routes_need_key_timestamp_and_signature_and_never_log_them(emu, ex):
    url = f"{emu.url}/fapi/v3/account?timestamp=1"
    with pytest.raises(urllib.error.HTTPError) as no_key:
        urllib.request.urlopen(url)
    assert no_key.value.code == 401 and json.load(no_key.value)["code"] == -2015
    request = urllib.request.Request(url, headers={"X-MBX-APIKEY": "k"})
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request)
    assert unsigned.value.code == 400 and "signature" in json.load(unsigned.value)["msg"]
    ex.fetch_balance()
    ex.create_order(BTC, "market", "buy", 0.01)
    signed = [h for h in emu.hits if h.path in ("/fapi/v3/account", "/fapi/v1/order")]
    assert signed and all("signature" not in h.params for h in signed)
    assert all("emulator-secret" not in json.dumps(h.params) for h in emu.hits)


# ---- orders ----------------------------------------------------------------------------------
def test_market_limit_and_post_only(emu, ex):
    price = last(emu)
    fee = ex.fetch_trading_fee(BTC)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)
    buy = ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "m1"})
    assert buy["status"] == "closed" and buy["average"] == pytest.approx(price + TICK)
    assert buy["clientOrderId"] == "m1"
    # a bid below the market rests; it fills as maker once the price trades below it
    bid = ex.create_order(BTC, "limit", "buy", 0.01, price - 100, params={"clientOrderId": "l1"})
    assert bid["status"] == "open" and [o["id"] for o in ex.fetch_open_orders(BTC)] == [bid["id"]]
    emu.engine.tick(BTCID, price - 50)
    assert ex.fetch_order(bid["id"], BTC)["status"] == "open"
    emu.engine.tick(BTCID, price - 150)
    filled = ex.fetch_order(bid["id"], BTC)
    assert filled["status"] == "closed" and filled["average"] == pytest.approx(price - 100)
    trades = ex.fetch_my_trades(BTC)
    assert [t["takerOrMaker"] for t in trades] == ["taker", "maker"]
    assert trades[1]["fee"]["cost"] == pytest.approx(0.01 * (price - 100) * 0.0002)
    # post-only that would cross is refused with -5022; at the bid it rests
    now = price - 150
    with pytest.raises(ccxt.ExchangeError, match="-5022"):
        ex.create_order(BTC, "limit", "buy", 0.01, now + TICK, params={"postOnly": True})
    gtx = ex.create_order(BTC, "limit", "sell", 0.01, now + TICK, params={"postOnly": True})
    assert gtx["postOnly"] and gtx["status"] == "open"
    # amend in place, then cancel
    moved = ex.edit_order(gtx["id"], BTC, "limit", "sell", 0.01, now + 10 * TICK)
    assert moved["id"] == gtx["id"] and moved["price"] == pytest.approx(now + 10 * TICK)
    assert ex.cancel_order(gtx["id"], BTC)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(gtx["id"], BTC)
    assert position_qty(ex) == pytest.approx(0.02)


def test_bad_orders_get_binance_errors(emu, ex):
    price = last(emu)
    with pytest.raises(ccxt.ExchangeError, match="-2022"):  # reduce-only without a position
        ex.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError, match="-4164"):  # below the minimum notional
        ex.create_order(BTC, "market", "buy", 0.001)
    with pytest.raises(ccxt.ExchangeError, match="-2019"):  # 10k at 20x: 200k at most
        ex.create_order(BTC, "market", "buy", round(300_000 / price, 3))
    with pytest.raises(ccxt.BadSymbol):
        ex.create_order("DOGE/USDT:USDT", "market", "buy", 1)
    raw = {"symbol": BTCID, "side": "BUY", "type": "LIMIT", "quantity": "0.01"}
    for bad in ("nan", "inf", "-1"):
        with pytest.raises(ccxt.ExchangeError, match="-1102"):
            ex.fapiPrivatePostOrder(raw | {"price": bad, "timeInForce": "GTC"})
    with pytest.raises(ccxt.ExchangeError, match="-4014"):
        ex.fapiPrivatePostOrder(raw | {"price": f"{price - 0.05:.2f}", "timeInForce": "GTC"})
    assert emu.engine.book.orders == {} and emu.account.balance == 10_000.0


def test_conditional_orders_go_through_the_algo_api_and_fill_at_the_gap(emu, ex):
    price = last(emu)
    ex.create_order(BTC, "market", "buy", 0.02)
    stop = ex.create_order(
        BTC,
        "market",
        "sell",
        0.02,
        params={"stopLossPrice": price - 500, "reduceOnly": True, "clientOrderId": "stop-1"},
    )
    target = ex.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        params={"takeProfitPrice": price + 500, "reduceOnly": True, "clientOrderId": "tp-1"},
    )
    posted = [h for h in emu.hits if h.method == "POST"]
    assert [h.path for h in posted] == [
        "/fapi/v1/order",
        "/fapi/v1/algoOrder",
        "/fapi/v1/algoOrder",
    ]
    assert (
        posted[1].params["type"] == "STOP_MARKET" and posted[1].params["algoType"] == "CONDITIONAL"
    )
    assert posted[1].params["clientAlgoId"] == "stop-1" and posted[1].params["reduceOnly"] == "true"
    assert posted[2].params["type"] == "TAKE_PROFIT_MARKET"
    # listed only by the algo route
    assert ex.fetch_open_orders(BTC) == []
    algos = ex.fetch_open_orders(BTC, params={"trigger": True})
    assert {o["clientOrderId"] for o in algos} == {"stop-1", "tp-1"}
    assert (
        ex.fetch_order(target["id"], BTC, params={"trigger": True})["triggerPrice"] == price + 500
    )
    # the take-profit fires at its trigger and is reduced to nothing more than the position
    emu.engine.tick(BTCID, price + 500)
    assert position_qty(ex) == pytest.approx(0.01)
    # the path gaps 800 below the stop: it fills at the gap price, not at the trigger
    emu.engine.tick(BTCID, price - 1300)
    fired = ex.fetch_order(stop["id"], BTC, params={"trigger": True})
    assert fired["status"] == "closed"
    market = ex.fetch_order(fired["info"]["actualOrderId"], BTC)
    assert market["average"] == pytest.approx(price - 1300) and market["filled"] == 0.01
    assert position_qty(ex) == 0.0
    # the old conditional endpoint answers -4120 since December 2025
    with pytest.raises(ccxt.ExchangeError, match="-4120"):
        ex.fapiPrivatePostOrder(
            {
                "symbol": BTCID,
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "stopPrice": f"{price - 2000:.1f}",
            }
        )
    with pytest.raises(ccxt.ExchangeError, match="-2021"):  # would trigger at once
        ex.create_order(BTC, "market", "sell", 0.01, params={"stopLossPrice": price})


def test_close_position_stop_and_orphans_after_a_manual_close(emu, ex):
    price = last(emu)
    ex.create_order(BTC, "market", "sell", 0.03)
    stop = ex.create_order(
        BTC, "market", "buy", None, params={"stopLossPrice": price + 400, "closePosition": True}
    )
    assert stop["info"]["closePosition"] is True and stop["info"]["quantity"] == "0.00000000"
    ex.create_order(BTC, "market", "buy", 0.01)  # the position grows smaller by hand
    emu.engine.tick(BTCID, price + 450)
    assert position_qty(ex) == 0.0  # closePosition closed what was there: 0.02
    # a manual close leaves a reduce-only stop orphaned; when it fires it expires, opening nothing
    ex.create_order(BTC, "market", "buy", 0.01)
    orphan = ex.create_order(
        BTC, "market", "sell", 0.01, params={"stopLossPrice": price, "reduceOnly": True}
    )
    ex.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    assert ex.fetch_open_orders(BTC, params={"trigger": True})[0]["id"] == orphan["id"]
    emu.engine.tick(BTCID, price - 100)
    assert ex.fetch_order(orphan["id"], BTC, params={"trigger": True})["status"] == "expired"
    assert position_qty(ex) == 0.0
    assert ex.cancel_all_orders(BTC, params={"trigger": True}) is not None


def test_duplicate_client_ids_are_refused_while_open_and_counted(emu, ex):
    price = last(emu)
    ex.create_order(BTC, "limit", "buy", 0.01, price - 300, params={"clientOrderId": "dup"})
    with pytest.raises(ccxt.ExchangeError, match="-4116"):
        ex.create_order(BTC, "limit", "buy", 0.01, price - 300, params={"clientOrderId": "dup"})
    ex.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        params={"stopLossPrice": price - 900, "clientOrderId": "algo-dup"},
    )
    with pytest.raises(ccxt.ExchangeError, match="-4116"):
        ex.create_order(
            BTC,
            "market",
            "sell",
            0.01,
            params={"stopLossPrice": price - 900, "clientOrderId": "algo-dup"},
        )
    assert emu.engine.book.duplicates_refused == 2
    # as on Binance, ids are unique among OPEN orders: a filled one's id makes a second order
    ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "again"})
    ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "again"})
    book = emu.engine.book
    assert book.placements == {"dup": 1, "algo-dup": 1, "again": 2}
    assert len(book.by_client_id("again")) == 2
    fetched = ex.fetch_order(None, BTC, params={"clientOrderId": "dup"})
    assert fetched["clientOrderId"] == "dup" and fetched["status"] == "open"


# ---- faults ----------------------------------------------------------------------------------
def test_partial_fill_on_demand_completes_at_the_next_tick(emu, ex):
    price = last(emu)
    emu.faults = Faults(paths=(), partial=1.0, partial_share=0.4)
    order = ex.create_order(BTC, "market", "buy", 0.05)
    assert order["status"] == "open" and order["filled"] == 0.02
    assert position_qty(ex) == pytest.approx(0.02)
    emu.engine.tick(BTCID, price + 30)
    done = ex.fetch_order(order["id"], BTC)
    assert done["status"] == "closed" and done["filled"] == 0.05
    assert [t["price"] for t in ex.fetch_my_trades(BTC)] == [
        pytest.approx(price + TICK),
        pytest.approx(price + 30 + TICK),
    ]


def test_new_orders_are_not_found_for_their_first_lookups(emu, ex):
    emu.faults = Faults(paths=(), not_found=2)
    order = ex.create_order(
        BTC, "limit", "buy", 0.01, last(emu) - 200, params={"clientOrderId": "nf"}
    )
    stop = ex.create_order(BTC, "market", "sell", 0.01, params={"stopLossPrice": last(emu) - 900})
    for _ in range(2):
        with pytest.raises(ccxt.OrderNotFound):
            ex.fetch_order(None, BTC, params={"clientOrderId": "nf"})
        with pytest.raises(ccxt.OrderNotFound):
            ex.fetch_order(stop["id"], BTC, params={"trigger": True})
    assert ex.fetch_order(order["id"], BTC)["clientOrderId"] == "nf"
    assert ex.fetch_order(stop["id"], BTC, params={"trigger": True})["status"] == "open"


# ---- liquidation and funding ----------------------------------------------------------------
def binance_liquidation(qty: float, entry: float, wallet: float, mmr: float, cum: float) -> float:
    """Binance's documented one-way isolated formula for a long in the first bracket."""
    return (wallet + cum - qty * entry) / (qty * mmr - qty)


def test_isolated_long_is_liquidated_at_the_formula_price(emu, ex):
    price = last(emu)
    ex.set_margin_mode("isolated", BTC)
    ex.set_leverage(50, BTC)
    ex.create_order(BTC, "market", "buy", 0.3)
    entry = price + TICK
    margin = 0.3 * entry / 50
    expected = binance_liquidation(0.3, entry, margin, mmr=0.004, cum=0.0)
    position = ex.fetch_positions([BTC])[0]
    assert position["marginMode"] == "isolated"
    assert position["liquidationPrice"] == pytest.approx(expected, rel=1e-9)
    emu.engine.tick(BTCID, expected + 1)
    assert position_qty(ex) == 0.3
    emu.engine.tick(BTCID, expected - 1)
    assert position_qty(ex) == 0.0
    assert emu.engine.book.liquidations == [(BTCID, pytest.approx(expected), emu.now_ms)]
    # the whole isolated margin is gone (PnL to the liquidation price + the clearance fee)
    entry_fee = 0.3 * entry * 0.0005
    assert emu.account.balance == pytest.approx(10_000 - entry_fee - margin)
    kinds = {r["incomeType"] for r in ex.fapiPrivateGetIncome({"symbol": BTCID})}
    assert kinds == {"COMMISSION", "REALIZED_PNL", "INSURANCE_CLEAR"}


def test_cross_short_liquidation_uses_the_cross_wallet(emu, ex):
    price = last(emu)
    ex.set_leverage(100, BTC)
    ex.create_order(BTC, "market", "sell", 1.2)  # ~92k notional: the second bracket
    entry = price
    wallet = 10_000 - 1.2 * entry * 0.0005
    level = float(ex.fapiPrivateV3GetPositionRisk({"symbol": BTCID})[0]["liquidationPrice"])
    # LP = (WB + cum + qty*EP) / (qty*MMR + qty) with the bracket holding qty*LP (0.5%, cum 50)
    assert level == pytest.approx((wallet + 50 + 1.2 * entry) / (1.2 * 0.005 + 1.2), rel=1e-9)
    emu.engine.tick(BTCID, math.floor(level) - 1)
    assert position_qty(ex) == -1.2
    emu.engine.tick(BTCID, math.ceil(level) + 1)
    assert position_qty(ex) == 0.0 and emu.engine.book.liquidations[0][1] == pytest.approx(level)


def test_funding_is_booked_at_the_stored_funding_times(emu, ex):
    price = last(emu)
    ex.create_order(BTC, "market", "sell", 0.05)
    bid = ex.create_order(BTC, "limit", "buy", 0.01, round(price * 0.99, 1))
    start = emu.now_ms
    emu.engine.advance(start + 6 * 3_600_000)
    stored = [(t, r) for t, r in emu.funding("BTC") if start < t <= emu.now_ms]
    assert len(stored) == 1  # one settlement in six hours
    history = ex.fetch_funding_history(BTC)
    assert [h["timestamp"] for h in history] == [stored[0][0]]
    bars = emu.closed("BTC", "5m")
    settle_price = bars[bars[:, 0] < stored[0][0]][-1, 4]
    held = -0.05 + (0.01 if ex.fetch_order(bid["id"], BTC)["status"] == "closed" else 0.0)
    assert history[0]["amount"] == pytest.approx(-held * settle_price * stored[0][1], abs=1e-6)
    # the stored candles drove the book: the limit filled iff the path went down to it
    low = bars[(bars[:, 0] >= start) & (bars[:, 0] < emu.now_ms)][:, 3].min()
    assert (ex.fetch_order(bid["id"], BTC)["status"] == "closed") == (low < round(price * 0.99, 1))
    assert emu.engine.book.prices[BTCID] == bars[bars[:, 0] < emu.now_ms][-1, 4]


# ---- the ledger invariant ---------------------------------------------------------------------
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["market", "limit", "stop", "reduce", "tick", "advance", "isolated"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 40),  # quantity in steps of 0.001
        st.floats(-0.03, 0.03, allow_nan=False),  # price offset, fraction of the last price
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=12,  # each example is a dozen real HTTP round trips
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=ACTIONS)
def test_wallet_is_start_plus_realised_pnl_minus_fees_plus_funding(shared, actions):
    with BinanceEmulator(shared) as emu:
        ex = binance_client(emu)
        for kind, side, steps, offset in actions:
            price = last(emu)
            qty = max(steps, 2) / 1000
            try:
                if kind == "market":
                    ex.create_order(BTC, "market", side, qty)
                elif kind == "limit":
                    ex.create_order(BTC, "limit", side, qty, round(price * (1 + offset), 1))
                elif kind == "stop":
                    trigger = round(
                        price * (1 + abs(offset) + 0.001) ** (1 if side == "buy" else -1), 1
                    )
                    ex.create_order(BTC, "market", side, qty, params={"stopLossPrice": trigger})
                elif kind == "reduce":
                    ex.create_order(BTC, "market", side, qty, params={"reduceOnly": True})
                elif kind == "tick":
                    emu.engine.tick(BTCID, round(price * (1 + offset), 1))
                elif kind == "advance":
                    emu.engine.advance(emu.now_ms + steps * 900_000)
                else:
                    ex.set_margin_mode("isolated" if side == "buy" else "cross", BTC)
            except ccxt.ExchangeError:
                pass  # refused by the venue: nothing may have changed for it
        trades = ex.fetch_my_trades(BTC, params={"limit": 1000})
        funding = ex.fetch_funding_history(BTC, params={"limit": 1000})
        clears = ex.fapiPrivateGetIncome({"incomeType": "INSURANCE_CLEAR"})
        realised = sum(float(t["info"]["realizedPnl"]) for t in trades)
        fees = sum(t["fee"]["cost"] for t in trades)
        paid = sum(f["amount"] for f in funding) + sum(float(c["income"]) for c in clears)
        wallet = float(ex.fapiPrivateV2GetAccount()["totalWalletBalance"])
        assert wallet == pytest.approx(10_000 + realised - fees + paid, abs=1e-5)
        signed = sum(t["amount"] * (1 if t["side"] == "buy" else -1) for t in trades)
        assert position_qty(ex) == pytest.approx(signed, abs=1e-9)


# ---- two processes at once --------------------------------------------------------------------
def _race(url: str, prices: list[float], out) -> None:
    """One trader process: place the same client ids the other process places."""
    from tests.emulator.binance_client import client_for

    ex = client_for(url)
    placed = 0
    for i, price in enumerate(prices):
        try:
            ex.create_order(BTC, "limit", "buy", 0.01, price, params={"clientOrderId": f"race-{i}"})
            placed += 1
        except ccxt.ExchangeError as no:
            assert "-4116" in str(no)
    out.put(placed)


def test_two_processes_sending_the_same_client_ids_make_one_order_each(emu):
    import multiprocessing

    price = last(emu)
    prices = [round(price - 200 - i, 1) for i in range(15)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_race, args=(emu.url, prices, out)) for _ in range(2)]
    for w in workers:
        w.start()
    placed = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert sum(placed) == 15 and emu.engine.book.duplicates_refused == 15
    assert all(n == 1 for n in emu.engine.book.placements.values())
    assert len(emu.engine.book.open_orders(BTCID)) == 15
