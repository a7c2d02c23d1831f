"""Requests `fetch` makes for N bars: must equal ceil(N / page limit) per symbol and timeframe.

Runs the real Fetcher with the real ccxt client against the loopback Binance emulator
(tests/emulator) for several history lengths, and prints the request count beside the ideal.
"""

import asyncio
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.core.config import load_settings  # noqa: E402
from cryptobot.data.fetcher import Fetcher, FetchPlan  # noqa: E402
from cryptobot.data.lake import Lake  # noqa: E402
from cryptobot.exchange.factory import open_exchange  # noqa: E402
from tests.emulator import BinanceEmulator  # noqa: E402
from tests.emulator.binance_usdm import SHARED  # noqa: E402


async def run(url: str, root: Path, days: float, tf: str):
    settings = load_settings(
        env={},
        overrides={
            "exchanges.binanceusdm.api_base": url,
            "exchanges.binanceusdm.enable_rate_limit": False,
        },
    )
    async with open_exchange(settings) as exchange:
        fetcher = Fetcher(exchange, Lake(root), settings.universe)
        plan = FetchPlan(symbols=["BTC/USDT:USDT"], timeframes=[tf], days=days)
        (result,) = await fetcher.run(plan)
        return result, exchange.ohlcv_limit


def main() -> None:
    if not (SHARED / "candles").is_dir():
        sys.exit("skipped: ../shared/data is not present")
    head = ("tf", "days", "bars", "requests", "ceil(N/limit)")
    print("\n| {:>4} | {:>6} | {:>7} | {:>8} | {:>13} | ratio |".format(*head))
    print(f"|{'-' * 6}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 15}|{'-' * 7}|")
    with BinanceEmulator() as emu:
        for tf, days in (
            ("5m", 1),
            ("5m", 3.4722),
            ("5m", 10),
            ("5m", 30),
            ("15m", 30),
            ("1h", 200),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                result, limit = asyncio.run(run(emu.url, Path(tmp), days, tf))
            ideal = math.ceil(result.new / limit)
            print(
                f"| {tf:>4} | {days:6g} | {result.new:7,} | {result.requests:8} | {ideal:13} |"
                f" {result.requests / ideal:5.2f} |"
            )
    print(f"\npage limit: {limit} candles per request (Binance USDⓈ-M through ccxt)")


if __name__ == "__main__":
    main()
