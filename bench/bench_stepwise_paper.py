"""Speed of ``backtest --stepwise``'s composer over its venues, 300 real ETH/USDT:USDT 1h bars of
2024 (ema_cross by risk with scale-ins: the paper parity test's run, tests/
test_engine_stepwise_paper.py): the replay exchange (account in memory), and the paper broker
(account in a DuckDB journal, one session per bar) with its journal opened by each session's
load and store, or held open for the run (``PaperBroker.held``). Opening the journal's database
costs about 17 ms of CPU, twice per bar; held, each connect reuses the open one.

Median wall time of ``--runs`` runs (default 3) after one warm-up run of each (numba's compiled
step); the paper runs' fills are checked equal to the replay's.
Usage: python bench/bench_stepwise_paper.py [--runs N]

Before and after a simulated call's working copy stopped using ``copy.deepcopy`` (2026-12-01
16:37 UTC, load ~1, bbb3557 then 3afb907, 3 runs each, separate numba caches; medians, s):

    venue                                 before   after
    replay exchange                         0.25    0.15
    paper, journal opened per session      34.00   31.84
    paper, journal held for the run        10.22    6.35

(``AccountState.working_copy``: the ledger and books copied one level, the orders shared; the
deep copy was 42 % of a replayed stepwise backtest's samples. Next in line there: ``select``
scanning every fill for each ``fetch_my_trades``, ~13 %, and the breaker's period labels.)
"""

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.backtest import runner  # noqa: E402
from cryptobot.backtest.stepwise import drive  # noqa: E402
from cryptobot.core.config import load_settings  # noqa: E402
from cryptobot.data.importer import read_candle_file  # noqa: E402
from cryptobot.data.lake import Lake  # noqa: E402
from tests.conftest import BINANCE, SHARED  # noqa: E402
from tests.test_engine_stepwise import START, SYMBOL  # noqa: E402
from tests.test_engine_stepwise_paper import _request, paper_drive  # noqa: E402
from tests.venues import market  # noqa: E402

BARS = 300  # the first bars of 2024: this bench's own window (the test now trades a shorter one)


def lake_of(root: Path) -> Lake:
    """The parity tests' lake: ETH 1h candles from 2024 and their funding."""
    candles = read_candle_file(BINANCE / "ETH_USDT_USDT" / "1h.parquet")
    lake = Lake(root)
    lake.write_candles("sim", SYMBOL, "1h", candles[candles.timestamp >= START][:8000])
    lake.write_markets("sim", [market(SYMBOL, tick_size=None, min_notional=None)])
    funding = pd.read_parquet(SHARED / "funding/binance/ETH_USDT_USDT.parquet")
    lake.write_funding("sim", SYMBOL, funding)
    return lake


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    if not (BINANCE / "ETH_USDT_USDT" / "1h.parquet").exists():
        sys.exit("../shared/data is not present (real candles)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-stepwise-"))
    lake = lake_of(tmp / "lake")
    req, settings = _request(load_settings(None, {}, env={}), BARS, first=0)
    data = runner.load(lake, req, settings)
    venues = {
        "replay exchange": lambda k: partial(drive, lake=lake),
        "paper, journal opened per session": lambda k: partial(
            paper_drive, lake=lake, root=tmp / f"opened{k}", held=False
        ),
        "paper, journal held for the run": lambda k: partial(
            paper_drive, lake=lake, root=tmp / f"held{k}", held=True
        ),
    }
    reference = None
    medians = {}
    for name, driver in venues.items():
        times = []
        for k in range(runs + 1):  # run 0: the warm-up
            began = time.perf_counter()
            result = runner.run(req, data, settings, drive=driver(k))
            times.append(time.perf_counter() - began)
            reference = result if reference is None else reference
            pd.testing.assert_frame_equal(result.fills, reference.fills)
        medians[name] = statistics.median(times[1:])
    base = medians["paper, journal opened per session"]
    print(f"{'venue':36s} {'bars':>5s} {'median s':>9s} {'bars/s':>8s} {'x opened':>9s}")
    for name, took in medians.items():
        print(f"{name:36s} {BARS:5d} {took:9.2f} {BARS / took:8.1f} {base / took:9.1f}")


if __name__ == "__main__":
    main()
