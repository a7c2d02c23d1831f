"""A loopback HTTP emulator of the Binance USDⓈ-M REST API for tests (127.0.0.1 only)."""

from tests.emulator.binance_usdm import BinanceEmulator, Faults

__all__ = ["BinanceEmulator", "Faults"]
