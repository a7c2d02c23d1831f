"""One ``trade`` desk process for the tests: a sized order entered maker-first on a paper
account (journal) whose prices are a stored 1m lake, its clock kept in a file so a re-run after
``kill -9`` goes on from where the dead one was (``execution_worker``'s clock, venue and rules).
Each wait moves the clock and sleeps a moment for real (the window a test kills it in). The
outcomes go to stdout as one JSON line.

    trade_execution_worker.py LAKE DATA_DIR CLOCK_FILE ORDER_JSON
"""

import asyncio
import json
import sys
from pathlib import Path

from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.engine.trade import TradeSetup, trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from tests.execution_worker import RULES, SETUP, FileClock


class WaitingFileClock(FileClock):
    async def wait(self, seconds: float) -> None:
        self.advance(round(seconds * 1000))
        await asyncio.sleep(0.02)


async def main(lake: str, data_dir: str, clock_file: str, order: str) -> None:
    prices = ReplayExchange(Lake(Path(lake)), "sim", ReplayClock(2**42), setup=SETUP)
    broker = PaperBroker(prices, journal_dir=Path(data_dir), setup=SETUP,
                         clock=WaitingFileClock(Path(clock_file)))  # fmt: skip
    settings = load_settings(env={})
    execution = settings.execution.model_copy(update=RULES.model_dump())
    setup = TradeSetup(risk=settings.risk, root=Path(data_dir), venue="paper:paper",
                       prefix="cb", execution=execution)  # fmt: skip
    orders = [TradeOrder.from_record(json.loads(order))]
    outcomes, _ = await trade_orders(broker, orders, setup=setup, dry_run=False)
    print(json.dumps([o.to_json() for o in outcomes], allow_nan=False), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
