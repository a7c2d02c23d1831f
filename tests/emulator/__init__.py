"""Loopback emulators for tests (127.0.0.1 only): Binance USDⓈ-M REST (market data, a trading
account with its matching engine, crowd statistics and alternative.me's Fear & Greed) and
Binance's liquidation WebSocket stream."""

from tests.emulator.binance_client import binance_client
from tests.emulator.binance_usdm import TRADING_PATHS, BinanceEmulator, Faults
from tests.emulator.binance_ws import LiquidationStream

__all__ = ["TRADING_PATHS", "BinanceEmulator", "Faults", "LiquidationStream", "binance_client"]
