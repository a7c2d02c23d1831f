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
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.core.config import load_settings  # noqa: E402
from cryptobot.core.execution import ExecutionRequest  # noqa: E402
from cryptobot.engine.execution import execute  # noqa: E402
from cryptobot.engine.trade import TradeSetup, trade_orders  # noqa: E402
from cryptobot.engine.trade_record import TradeOrder  # noqa: E402
from cryptobot.core.settings import ExchangeSettings  # noqa: E402
from cryptobot.exchange.ccxt_trading import CcxtTradingExchange  # noqa: E402
from cryptobot.exchange.retry import RetryPolicy  # noqa: E402
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


async def one(emu, ex, venue: str, n: int, how: str, root: Path) -> tuple[float, int, list]:
    """Seconds from the call to the order's arrival, the requests before it, their trips."""
    order = sized_order(emu, venue, n)
    before = len(emu.hits)
    began = time.monotonic()
    try:
        if how == "desk":
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
    hits = emu.hits[before:]
    first = next(i for i, h in enumerate(hits) if h.path == PLACE[venue])
    for open_order in await ex.fetch_open_orders(BTC):  # clean up, unmeasured
        await ex.cancel_order(open_order.client_order_id, symbol=BTC)
    trips = [b.t - a.t for a, b in zip(hits[:first], hits[1 : first + 1], strict=True)]
    return hits[first].t - began, first, trips


async def measure(venue: str, how: str, runs: int) -> tuple[list[float], int, float]:
    with emulator(venue) as emu, tempfile.TemporaryDirectory() as tmp:
        ex = adapter(emu, venue)
        try:
            await ex.load_markets()
            await ex.set_margin_mode(BTC, "isolated")
            took, counts, trips = [], [], []
            for n in range(runs + 3):
                t, count, trip = await one(emu, ex, venue, n, how, Path(tmp))
                if n >= 3:
                    took.append(t)
                    counts.append(count)
                    trips += trip
                if how != "desk":  # a market order fills: flat again for the next run
                    for p in await ex.fetch_positions([BTC]):
                        await ex.create_order(symbol=BTC, type="market", side="sell",
                                              amount=p.contracts, reduce_only=True,
                                              client_order_id=f"cb-flat{n:020d}")  # fmt: skip
        finally:
            await ex.close()
    return took, round(statistics.median(counts)), statistics.median(trips) if trips else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    print(f"{'path':24s} {'venue':12s} {'median ms':>10s} {'p90 ms':>8s} {'requests':>9s} "
          f"{'per request ms':>15s} {'< 5 ms':>7s}")  # fmt: skip
    for how in ("executor", "taker", "desk"):
        for venue in VENUES if how != "desk" else ("binanceusdm",):  # Bitget's emulator
            # serves no tickers, which the gates read
            took, count, trip = asyncio.run(measure(venue, how, runs))
            ms = sorted(t * 1000 for t in took)
            median, p90 = statistics.median(ms), ms[int(0.9 * (len(ms) - 1))]
            label = {"executor": "executor, maker-first", "taker": "executor, taker",
                     "desk": "desk (gates, journal)"}[how]  # fmt: skip
            print(f"{label:24s} {venue:12s} {median:10.2f} {p90:8.2f} {count:9d} "
                  f"{trip * 1000:15.2f} {'yes' if median < 5 else 'no':>7s}")  # fmt: skip


if __name__ == "__main__":
    main()
