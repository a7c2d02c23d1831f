"""One paper-broker process for the tests: a command against the paper account of a journal,
its results on stdout as JSON lines. The prices are a stored lake served by the replay exchange
(exchange id ``sim``) at the clock given on the command line.

    paper_worker.py LAKE JOURNAL place NOW CID SIDE AMOUNT [--hold]
    paper_worker.py LAKE JOURNAL status NOW
    paper_worker.py LAKE JOURNAL spam NOW PREFIX N
    paper_worker.py LAKE JOURNAL churn NOW N
"""

import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from cryptobot.data.lake import Lake
from cryptobot.exchange.errors import DuplicateClientOrderId, TradingError
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs

HOUR = 3_600_000
SYMBOL = "X/USDT:USDT"
SETUP = SimSetup(
    costs=Costs(taker=0.0005, maker=0.0002, slippage_bps=2), timeframe="1h", leverage=5.0
)


def say(value: object) -> None:
    print(json.dumps(value), flush=True)


async def main(lake: str, journal: str, command: str, now: str, *args: str) -> None:
    clock = ReplayClock(int(now))
    prices = ReplayExchange(Lake(Path(lake)), "sim", clock, setup=SETUP)
    broker = PaperBroker(prices, journal_dir=Path(journal), setup=SETUP)
    if command == "place":
        cid, side, amount = args[0], args[1], float(args[2])
        try:
            order = await broker.create_order(symbol=SYMBOL, type="market", side=side,
                                              amount=amount, client_order_id=cid)  # fmt: skip
        except TradingError as exc:
            say({"refused": type(exc).__name__})
            return
        say({"placed": asdict(order)})
        if "--hold" in args:
            time.sleep(60)  # the test kills this process here, between the order and its fill
    elif command == "status":
        fills = await broker.fetch_my_trades()
        say(
            {
                "balance": asdict(await broker.fetch_balance()),
                "positions": [asdict(p) for p in await broker.fetch_positions()],
                "open": [asdict(o) for o in await broker.fetch_open_orders()],
                "fills": [asdict(f) for f in fills],
            }
        )
    elif command == "spam":
        prefix, n = args[0], int(args[1])
        placed = duplicates = 0
        for i in range(n):
            try:
                await broker.create_order(symbol=SYMBOL, type="limit", side="buy", amount=0.2,
                                          price=50.0, client_order_id=f"{prefix}-{i}")  # fmt: skip
                placed += 1
            except DuplicateClientOrderId:
                duplicates += 1
        say({"placed": placed, "duplicates": duplicates})
    elif command == "churn":
        start = int(now)
        for i in range(int(args[0])):
            clock.move_to(start + i * HOUR)
            side = "buy" if i % 3 else "sell"
            try:
                await broker.create_order(symbol=SYMBOL, type="market", side=side, amount=0.5,
                                          client_order_id=f"churn-{i}")  # fmt: skip
                await broker.create_order(symbol=SYMBOL, type="limit", side="buy", amount=0.5,
                                          price=60.0, client_order_id=f"rest-{i}")  # fmt: skip
                await broker.cancel_order(f"rest-{i}")
            except TradingError as exc:
                say({"refused": str(exc)})
            say({"i": i})


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
