"""Chaos acceptance (issue 13): 200 random sized orders traded in rounds with the REAL ccxt
client against the Binance USDⓈ-M emulator, with more than 30 % of the trading requests
faulted (429 and 418 with Retry-After, 500/502/503, a request processed late or answered late
past the client's timeout, an answer lost after the order was accepted, a malformed body),
partial fills, orders "not found" for a while after they were placed, and price gaps through
the stops between rounds. A round that fails outright is a crashed run: the next one goes on.

After one reconcile cycle (the faults off: the venue answers again):

- no client id was ever placed twice on the venue (the emulator counts placements by id), and
  no position holds more than the entry it came from;
- every position has a reduce-only stop on the venue covering it;
- the journal equals the venue: every order it holds as working is open there and every order
  open there is one it holds, each done order carries the venue's status and fill, no request
  is left without an answer, the fills of each order add up to what it filled, and the last
  position snapshot is the venue's positions.
"""

import asyncio
import math
import random
from pathlib import Path

import pytest

from cryptobot.core.config import Secrets, load_settings
from cryptobot.core.errors import CryptobotError
from cryptobot.core.settings import ExchangeSettings
from cryptobot.engine.reconcile import reconcile
from cryptobot.engine.trade import TradeSetup, trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange
from cryptobot.exchange.retry import RetryPolicy
from tests.emulator import TRADING_PATHS, BinanceEmulator, Faults
from tests.emulator.account import Refused
from tests.test_ccxt_trading import KEY, SECRET
from tests.trading import sized, table

ORDERS, ROUNDS = 200, 20
SEED = 20261201
#: every kind of request fault; a late or slow answer costs the client its timeout, so those
#: two come less often than the others (the run stays within a minute on a quiet machine)
KINDS = ("429", "418", "500", "502", "503", "drop", "malformed") * 2 + ("late", "slow")
STATUS = {"NEW": "open", "PARTIALLY_FILLED": "open", "FILLED": "closed", "CANCELED": "canceled",
          "EXPIRED": "canceled", "TRIGGERED": "closed"}  # fmt: skip


async def _no_wait(seconds: float) -> None:
    return None


def desk_setup(journal: Path) -> TradeSetup:
    """Live's patience (a request may be in flight for 10 s), more positions than the
    default 3 so most orders get through the gates, no real waiting. The emulator's tickers
    are its stored candles, which the test's price gaps do not move: the price sanity gate is
    opened wide."""
    overrides = {"risk.gates.max_concurrent_positions": 20,
                 "risk.gates.max_price_deviation_pct": 50}  # fmt: skip
    risk = load_settings(env={}, overrides=overrides).risk
    return TradeSetup(risk=risk, root=journal, venue="binanceusdm", prefix="cb",
                      in_flight_ms=10_000, lookups=2, sleep=_no_wait)  # fmt: skip


def random_order(emu: BinanceEmulator, rng: random.Random, n: int, symbols: list[str]) -> dict:
    """A sized order near $150 of notional on a random symbol and side, its stop 1-3 % away,
    three targets at 1R/2R/3R with a quarter each, all on the venue's tick and step."""
    base = rng.choice(symbols)
    spec = emu.engine.spec(f"{base}USDT")
    price = emu.engine.book.prices[f"{base}USDT"]
    qty = max(spec.floor_qty(150 / price), spec.step)
    side = rng.choice(["long", "short"])
    sign = 1 if side == "long" else -1
    risk = price * rng.uniform(0.01, 0.03)
    digits = max(0, round(-math.log10(spec.tick)))
    stop = round(price - sign * risk, digits)
    targets = [round(price + sign * r * risk, digits) for r in (1, 2, 3)]
    rung = spec.floor_qty(qty / 4)
    return sized(entry=price, side=side, symbol=f"{base}/USDT:USDT", qty=qty,
                 cid=f"cb-chaos{n:019d}", exchange="binanceusdm", stop=stop, targets=targets,
                 target_qty=[rung] * 3 if rung > 0 else [0.0] * 3,
                 risk_usd=qty * abs(price - stop), notional=qty * price,
                 margin=qty * price / 5)  # fmt: skip


def gap(emu: BinanceEmulator, rng: random.Random, symbols: list[str]) -> None:
    """Each symbol's price jumps up to 4 % at once: stops and targets in between fire at the
    new price (a gap through a stop), resting orders fill."""
    for base in symbols:
        symbol = f"{base}USDT"
        spec = emu.engine.spec(symbol)
        moved = emu.engine.book.prices[symbol] * (1 + rng.uniform(-0.04, 0.04))
        emu.engine.tick(symbol, round(round(moved / spec.tick) * spec.tick, 10))


async def _short_sleep(seconds: float) -> None:
    """The retry policy's pauses as they are (at most 0.05 s between look-ups: the adapter's
    look-ups really wait for a late order to land), a Retry-After (1 s, above any pause of the
    policy) cut to 0.01 s: a rate limit refuses a request unprocessed, so the wait it asks for
    lets nothing land that the test waits for (it was 0.05 s: ~11 s of the run asleep)."""
    await asyncio.sleep(0.01 if seconds >= 1 else seconds)


def venue_of(emu: BinanceEmulator) -> CcxtTradingExchange:
    """The live adapter scaled down in time: a 0.1 s timeout (a slow or late answer, 0.12 s,
    is a lost one) and 0.25 s of look-ups before an order counts as absent (live: 10 s, the
    venue's recvWindow), longer than a slow request takes to land."""
    settings = ExchangeSettings(api_base=emu.url, enable_rate_limit=False, timeout_ms=100)
    policy = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=0.05, sleep=_short_sleep)
    return CcxtTradingExchange("binanceusdm", settings, policy, Secrets(KEY, SECRET),
                               not_found_tolerance=2, settle_s=0.25)  # fmt: skip


def run_round(emu: BinanceEmulator, journal: Path, orders: list[TradeOrder]) -> None:
    async def go():
        venue = venue_of(emu)
        try:
            await trade_orders(venue, orders, setup=desk_setup(journal), dry_run=False)
        except CryptobotError:
            pass  # the venue kept failing past every retry: a crashed run, the next goes on
        finally:
            await venue.close()

    asyncio.run(go())


@pytest.mark.slow
@pytest.mark.timeout(600)  # about a minute on a quiet machine; a busy one takes longer
def test_200_random_orders_under_faults_end_reconciled_without_a_duplicate(
    shared: Path, tmp_path: Path
):
    rng = random.Random(SEED)
    journal = tmp_path / "data"
    journal.mkdir()
    with BinanceEmulator(shared) as emu:
        symbols = [s for s in emu.symbols if _priced(emu, s)][:12]
        sent: dict[str, TradeOrder] = {}
        for r in range(ROUNDS):
            emu.faults = Faults(kinds=KINDS, paths=TRADING_PATHS, rate=0.35, seed=SEED + r,
                                retry_after_s=1, slow_s=0.12, partial=0.3,
                                not_found=1)  # fmt: skip
            batch = [TradeOrder.from_record(random_order(emu, rng, r * 10 + i, symbols))
                     for i in range(ORDERS // ROUNDS)]  # fmt: skip
            sent |= {o.client_order_id: o for o in batch}
            run_round(emu, journal, batch)
            gap(emu, rng, symbols)
            emu.now_ms += 11_000  # what a killed or failed run had in flight cannot land now
        trading = [h for h in emu.hits if any(h.path.startswith(p) for p in TRADING_PATHS)]
        faulted = sum(1 for h in trading if h.outcome != "ok")
        emu.faults = Faults(partial=0.0)

        async def one_cycle():
            venue = venue_of(emu)
            try:
                return await reconcile(venue, setup=desk_setup(journal), dry_run=False)
            finally:
                await venue.close()

        found, _ = asyncio.run(one_cycle())
        print(f"{len(emu.hits)} requests, {faulted} of {len(trading)} trading ones faulted")
        # a stop the price has passed meanwhile cannot be placed (the venue refuses one that
        # would trigger at once): the position is then closed (issue 13, brackets), reported
        # as failed since its stop was not placed. Safe, so allowed; whether the path leads
        # there depends on which requests a loaded machine's timing let through (seen twice).
        # The outcome is in the message; the action lists the legs sent (``close2 placed``)
        closed = [d for d in found if d.failed and d.kind == "no_stop"
                  and "was closed by a reduce-only market order" in d.message]  # fmt: skip
        assert [d for d in found if d.failed and d not in closed] == [], found
        book, account = emu.engine.book, emu.account
        for d in closed:
            assert account.position(d.symbol.replace("/USDT:USDT", "USDT")).qty == 0, d
        assert len(sent) == ORDERS and faulted / len(trading) >= 0.30, (faulted, len(trading))
        assert {h.outcome for h in trading} >= {"429", "418", "500", "late", "drop", "slow"}
        # 0 duplicates: no client id placed twice; no position larger than one entry
        assert book.placements and max(book.placements.values()) == 1, book.placements
        entries = [c for c in sent if book.placements[c] == 1]
        assert len(entries) >= 20, "the chaos must let a fair share of the orders through"
        held = {s: p for s in book.prices if (p := account.position(s)).qty != 0}
        biggest = {}
        for cid in entries:
            order = sent[cid]
            sym = order.symbol.replace("/USDT:USDT", "USDT")
            biggest[sym] = max(biggest.get(sym, 0.0), order.qty)
        for sym, position in held.items():
            assert abs(position.qty) <= biggest[sym] + 1e-9, (sym, position.qty)
        # 0 positions without a stop on the venue after the cycle
        for sym, position in held.items():
            exit_side = "SELL" if position.qty > 0 else "BUY"
            stops = [c for c in book.open_conditionals(sym) if c.type == "STOP_MARKET"
                     and c.reduce_only and c.side == exit_side]  # fmt: skip
            assert any(c.qty >= abs(position.qty) - 1e-9 for c in stops), (sym, position.qty)
        # the journal = the venue; a fill whose order the venue still reports "not found"
        # (it lists new orders late) is owed, and read by the next cycle, which finds nothing
        found, _ = asyncio.run(one_cycle())
        assert [d for d in found if d.kind != "offline_fill"] == [], found
        _journal_equals_the_venue(journal, emu)


def _journal_equals_the_venue(journal: Path, emu: BinanceEmulator) -> None:
    book = emu.engine.book
    venue_open = {o.client_id for o in book.open_orders()} | {
        c.client_id for c in book.open_conditionals()
    }
    rows = table(journal, "SELECT client_order_id, status, filled FROM orders "
                          "WHERE venue = 'binanceusdm'")  # fmt: skip
    assert not [r for r in rows if r[1] in ("sending", "unknown")], "a request left unanswered"
    journal_open = {cid for cid, status, _ in rows if status == "open"}
    assert journal_open == venue_open
    for cid, status, filled in rows:
        if status in ("refused", "rejected", "not_placed"):
            assert book.placements[cid] == 0, cid  # never placed: the venue has none
            continue
        (placed,) = book.by_client_id(cid)
        state = STATUS[placed.status]
        done = placed.executed if hasattr(placed, "executed") else _conditional_fill(book, placed)
        assert (status, filled) == (state, pytest.approx(done)), (cid, status, filled, placed)
    fills = dict(table(journal, "SELECT client_order_id, sum(amount) FROM fills "
                                "GROUP BY client_order_id"))  # fmt: skip
    for cid, _, filled in rows:
        if filled:
            assert fills.get(cid) == pytest.approx(filled), cid
    (last,) = table(journal, "SELECT max(ts) FROM positions")
    snapshot = {s: c for s, c in table(journal, f"SELECT symbol, contracts FROM positions "
                                                f"WHERE ts = {last[0]}")}  # fmt: skip
    held = {s.replace("USDT", "/USDT:USDT"): abs(p.qty) for s in book.prices
            if (p := emu.account.position(s)).qty != 0}  # fmt: skip
    assert snapshot == pytest.approx(held)


def _priced(emu: BinanceEmulator, base: str) -> bool:
    """Whether the emulator trades ``base`` (it has stored candles to price it from)."""
    try:
        emu.engine.spec(f"{base}USDT")
    except Refused:
        return False
    return True


def _conditional_fill(book, conditional) -> float:
    """What a stop or a take-profit filled: the market order it became, if it fired."""
    if conditional.actual_order_id is None:
        return 0.0
    return book.orders[conditional.actual_order_id].executed
