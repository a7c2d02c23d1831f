"""One executor process for the tests: it works an entry onto a paper account (journal) whose
prices are a stored 1m lake, its clock kept in a file so a re-run after ``kill -9`` goes on
from where the dead one was. Each wait moves the clock and sleeps a moment for real (the
window a test kills it in). The report goes to stdout as one JSON line.

    execution_worker.py LAKE JOURNAL CLOCK_FILE QTY
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from cryptobot.core.execution import ExecutionRequest
from cryptobot.core.settings import ExecutionRules
from cryptobot.data.lake import Lake
from cryptobot.engine.execution import execute
from cryptobot.exchange.paper import PaperBroker
from cryptobot.exchange.replay import ReplayClock, ReplayExchange
from cryptobot.exchange.simulated import SimSetup
from cryptobot.fills.costs import Costs

SYMBOL = "X/USDT:USDT"
SETUP = SimSetup(costs=Costs(maker=0.0002, taker=0.0005), timeframe="1m", spread_ticks=1,
                 top_of_book_pct=5.0)  # fmt: skip
RULES = ExecutionRules(maker_first=True, reprice_every_s=20, reprice_ticks=1,
                       give_up_after_s=300, max_book_impact_pct=50)  # fmt: skip


class FileClock:
    """The time in ms, kept in a file (written whole, then renamed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def now(self) -> int:
        return int(self.path.read_text())

    def advance(self, ms: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(int(self.path.read_text()) + ms))
        os.replace(tmp, self.path)


async def main(lake: str, journal: str, clock_file: str, qty: str) -> None:
    clock = FileClock(Path(clock_file))
    prices = ReplayExchange(Lake(Path(lake)), "sim", ReplayClock(2**42), setup=SETUP)
    broker = PaperBroker(prices, journal_dir=Path(journal), setup=SETUP, clock=clock)

    async def sleep(seconds: float) -> None:
        clock.advance(round(seconds * 1000))
        time.sleep(0.02)

    request = ExecutionRequest(symbol=SYMBOL, side="buy", qty=float(qty),
                               client_order_id="cb-kill", expected_price=100.0)  # fmt: skip
    report = await execute(broker, request=request, rules=RULES, sleep=sleep)
    print(json.dumps(report.to_record(), allow_nan=False), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
