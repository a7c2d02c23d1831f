"""Loopback emulators for tests (127.0.0.1 only): Binance USDⓈ-M REST (with its crowd statistics
and alternative.me's Fear & Greed) and Binance's liquidation WebSocket stream."""

from tests.emulator.binance_usdm import BinanceEmulator, Faults
from tests.emulator.binance_ws import LiquidationStream

__all__ = ["BinanceEmulator", "Faults", "LiquidationStream"]
