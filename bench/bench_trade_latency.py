"""Decision latency of ``trade``: a sized order in -> its first order request on the wire, the
REAL ccxt client against the loopback emulators (Binance USDⓈ-M and Bitget USDT-M), the adapter
warm (markets loaded, the connection open), as a daemon holds it.

Rows:
- **executor**: ``engine.execution.execute`` given the request (maker-first: one look-up of the
  entry's id, the clock, the best bid/ask, then the post-only order; ``taker``: the look-up and
  the market order);
- **desk**: ``trade_orders`` given the sized order: the account read for the gates (balance,
  positions, open orders, tickers), the journal (DuckDB) read and written, the entry's id
  looked up, margin mode and leverage set, then the executor as above.

Each run is stopped at the executor's first wait (the order is canceled after, unmeasured).
Median and p90 of ``--runs`` runs (default 30) after 3 warm-ups; ``requests`` counts what the
emulator answered before the order arrived; ``per request`` is the median loopback round trip
(client + emulator, one process) of those requests, so latency ~ requests x per request + the
rest (journal, gates). The target (issue 13): median < 5 ms.
Usage: python bench/bench_trade_latency.py [--runs N]

Measured 2026-12-01, 30 runs, at load average 9 on 2 cores (six engineers' tests running):

    path                     venue         median ms   p90 ms  requests  per request ms  < 5 ms
    executor, maker-first    binanceusdm        6.40     7.70         4            0.62      no
    executor, maker-first    bitget             2.72     3.65         5            0.43     yes
    executor, taker          binanceusdm        4.92     9.74         4            0.54     yes
    executor, taker          bitget             5.85    21.89         5            0.66      no
    desk (gates, journal)    binanceusdm      542.79   667.88        17            1.88      no

(an earlier run at load 8: the executor rows 0.7-2.7 ms, all under 5, the desk 265 ms.)

- **The executor** meets the target on a quiet machine and is near it under load: 4-5 loopback
  round trips (Binance: the entry's id looked up as an algo order and as a plain one, the
  clock, the book; Bitget: its plain, pending-plan and plan-history look-ups, the clock, the
  book) at ~0.5 ms each, the client and the emulator sharing one process's GIL; the profile
  is socket sends and ccxt's request building, nothing of ours. Before the emulator set
  TCP_NODELAY every round trip cost 40-45 ms (Nagle's algorithm against the client's delayed
  ACK on loopback): 230 ms to the first order, all of it that wait.
- **The desk misses it by two orders of magnitude**, and the journal dominates: each journal
  write opens the DuckDB file (``data.catalog.connect``: 20-50 ms at this load, ~16 a run: the
  breaker's state, the account's ids, the entry's ``sending`` row before it leaves, margin
  mode and leverage requests, ...), ~85 % of the time in the profile; the account read for the
  gates (balance, positions, open orders, tickers) is ~10 requests at ~1 ms. What would cut it:
  the journal held open for a run (as ``PaperBroker.held``), so a write is a transaction on an
  open connection (~1 ms), and the account read once per daemon cycle, not per order.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import suppress
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.core.account import OrderRequest  # noqa: E402
from cryptobot.core.config import load_settings  # noqa: E402
from cryptobot.core.execution import ExecutionRequest  # noqa: E402
from cryptobot.core.settings import ExchangeSettings  # noqa: E402
from cryptobot.engine.execution import execute  # noqa: E402
from cryptobot.engine.trade import TradeSetup, open_desk, trade_orders  # noqa: E402
from cryptobot.engine.trade_record import TradeOrder  # noqa: E402
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange  # noqa: E402
from cryptobot.exchange.retry import RetryPolicy  # noqa: E402
from cryptobot.journal.trading import TradeJournal  # noqa: E402
from tests.live_venues import BTC, KEYS, VENUES, emulator, last  # noqa: E402
from tests.trading import sized  # noqa: E402

PLACE = {"binanceusdm": "/fapi/v1/order", "bitget": "/api/v2/mix/order/place-order"}
SETTINGS = load_settings(env={})
RULES = SETTINGS.execution.for_strategy("manual")


def adapter(emu, venue: str) -> CcxtTradingExchange:
    """The live adapter on the emulator, patient (the emulator builds its tickers slowly)."""
    settings = ExchangeSettings(api_base=emu.url, enable_rate_limit=False, timeout_ms=10_000)
    return CcxtTradingExchange(venue, settings, RetryPolicy(attempts=1), KEYS, settle_s=0.0)


class Measured(Exception):
    """The first wait: the order is on the wire."""


async def stop(seconds: float) -> None:
    raise Measured


def sized_order(emu, venue: str, n: int) -> TradeOrder:
    record = sized(entry=last(emu), symbol=BTC, qty=0.002, stop_pct=1.0, cid=f"cb-lat{n:020d}",
                   exchange=venue, target_qty=[0.0005] * 3)  # fmt: skip
    return TradeOrder.from_record(record)


def first_post(emu, venue: str, before: int) -> tuple[int, list]:
    """The requests the emulator answered before the order's arrival, and that arrival."""
    hits = emu.hits[before:]
    first = next(i for i, h in enumerate(hits) if h.method == "POST" and h.path == PLACE[venue])
    return first, hits


async def clean_up(ex) -> None:
    """The order canceled, unmeasured (the journal keeps it open: the next order is another)."""
    for open_order in await ex.fetch_open_orders(BTC):
        await ex.cancel_order(open_order.client_order_id, symbol=BTC)


async def one(emu, ex, venue: str, n: int, how: str, root: Path) -> tuple[float, int, list]:
    """Seconds from the call to the order's arrival, the requests before it, their trips."""
    order = sized_order(emu, venue, n)
    before = len(emu.hits)
    began = time.monotonic()
    try:
        if how == "run":
            setup = TradeSetup(risk=SETTINGS.risk, root=root, venue=venue, prefix="cb",
                               execution=SETTINGS.execution)  # fmt: skip
            ex.wait = stop
            await trade_orders(ex, [order], setup=setup, dry_run=False)
        else:
            request = ExecutionRequest(symbol=BTC, side="buy", qty=order.qty,
                                       client_order_id=order.client_order_id,
                                       expected_price=order.entry)  # fmt: skip
            await execute(ex, request=request, rules=RULES, sleep=stop, taker=how == "taker")
    except Measured:
        pass
    first, hits = first_post(emu, venue, before)
    await clean_up(ex)
    trips = [b.t - a.t for a, b in pairwise(hits[: first + 1])]
    return hits[first].t - began, first, trips


async def desk_orders(emu, ex, venue: str, runs: int, root: Path, *, fresh: bool):
    """Each run a batch of one order on a desk held open (the journal held, markets loaded):
    the batch's reads (account, open orders) unmeasured, then the order's way out measured.
    ``fresh``: the symbol's margin mode and leverage not known set (a first order on it)."""
    setup = TradeSetup(risk=SETTINGS.risk, root=root, venue=venue, prefix="cb",
                       execution=SETTINGS.execution)  # fmt: skip
    ex.wait = stop
    out = []
    async with open_desk(ex, setup=setup, dry_run=False) as desk:
        for n in range(runs + 3):
            order = sized_order(emu, venue, n)
            if fresh:
                setup.settings.forget(BTC)
            batch = await desk.batch([order])
            before = len(emu.hits)
            began = time.monotonic()
            with suppress(Measured):
                await desk.place(order, batch)
            first, hits = first_post(emu, venue, before)
            await clean_up(ex)
            trips = [b.t - a.t for a, b in pairwise(hits[: first + 1])]
            out.append((hits[first].t - began, first, trips))
    return out


async def measure(venue: str, how: str, runs: int) -> tuple[list[float], int, float]:
    with emulator(venue) as emu, tempfile.TemporaryDirectory() as tmp:
        ex = adapter(emu, venue)
        try:
            await ex.load_markets()
            await ex.set_margin_mode(BTC, "isolated")
            if how in ("desk", "desk, fresh"):
                results = await desk_orders(emu, ex, venue, runs, Path(tmp),
                                            fresh=how == "desk, fresh")  # fmt: skip
            else:
                results = []
                for n in range(runs + 3):
                    results.append(await one(emu, ex, venue, n, how, Path(tmp)))
                    if how != "run":  # a market order fills: flat again for the next run
                        await flatten(ex, n)
        finally:
            await ex.close()
    took = [t for t, _, _ in results[3:]]
    counts = [c for _, c, _ in results[3:]]
    trips = [x for _, _, trip in results[3:] for x in trip]
    return took, round(statistics.median(counts)), statistics.median(trips) if trips else 0.0


async def flatten(ex, n: int) -> None:
    for p in await ex.fetch_positions([BTC]):
        await ex.create_order(symbol=BTC, type="market", side="sell", amount=p.contracts,
                              reduce_only=True, client_order_id=f"cb-flat{n:020d}")  # fmt: skip


def journal_write(runs: int) -> list[float]:
    """Seconds of the entry's ``sending`` row (with its sized order and request row), one
    transaction on a held journal: what the desk must commit before the order leaves."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = TradeJournal(Path(tmp), "binanceusdm")
        took = []
        with rows.held():
            for n in range(runs + 3):
                record = sized(entry=50_000.0, symbol=BTC, qty=0.002, stop_pct=1.0,
                               cid=f"cb-jw{n:021d}", exchange="binanceusdm",
                               target_qty=[0.0005] * 3)  # fmt: skip
                order = TradeOrder.from_record(record)
                req = OrderRequest(symbol=BTC, type="limit", side="buy", amount=order.qty,
                                   price=50_000.0, post_only=True,
                                   client_order_id=order.client_order_id)  # fmt: skip
                began = time.perf_counter()
                rows.asking(req, parent_id=order.client_order_id, leg="entry",
                            strategy="manual", ts=n, gates={"all": "pass"},
                            expected_price=50_000.0, sized=order.to_record())  # fmt: skip
                took.append(time.perf_counter() - began)
    return took[3:]


LABELS = {"executor": "executor, maker-first", "taker": "executor, taker",
          "desk": "desk, order of a batch", "desk, fresh": "desk, first on symbol",
          "run": "trade run (start-up)"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    print(f"{'path':24s} {'venue':12s} {'median ms':>10s} {'p90 ms':>8s} {'requests':>9s} "
          f"{'per request ms':>15s} {'< 5 ms':>7s}")  # fmt: skip
    for how in LABELS:
        for venue in VENUES if how in ("executor", "taker") else ("binanceusdm",):  # Bitget's
            # emulator serves no tickers, which the gates read
            took, count, trip = asyncio.run(measure(venue, how, runs))
            ms = sorted(t * 1000 for t in took)
            median, p90 = statistics.median(ms), ms[int(0.9 * (len(ms) - 1))]
            print(f"{LABELS[how]:24s} {venue:12s} {median:10.2f} {p90:8.2f} {count:9d} "
                  f"{trip * 1000:15.2f} {'yes' if median < 5 else 'no':>7s}")  # fmt: skip
    ms = sorted(t * 1000 for t in journal_write(runs))
    print(f"\n{'journal: sending row':37s} {statistics.median(ms):10.2f} "
          f"{ms[int(0.9 * (len(ms) - 1))]:8.2f}   (held journal, one transaction)")  # fmt: skip


if __name__ == "__main__":
    main()
