"""Loopback emulators for tests (127.0.0.1 only): Binance USDⓈ-M REST (market data, a trading
account with its matching engine, crowd statistics and alternative.me's Fear & Greed),
Binance's liquidation WebSocket stream, and Bitget USDT-M (the same account and matching engine
behind Bitget's v2 ``mix`` routes). The venue-neutral parts (account, orders, matching, faults,
serving) are shared; each venue adds its wire format, its error codes and its rules."""

from tests.emulator.binance_client import binance_client
from tests.emulator.binance_usdm import TRADING_PATHS, BinanceEmulator
from tests.emulator.binance_ws import LiquidationStream
from tests.emulator.bitget_client import bitget_client
from tests.emulator.bitget_usdt import BitgetEmulator
from tests.emulator.faults import Faults

__all__ = [
    "TRADING_PATHS",
    "BinanceEmulator",
    "BitgetEmulator",
    "Faults",
    "LiquidationStream",
    "binance_client",
    "bitget_client",
]
