"""One async exchange interface: ccxt (live venues), replay (stored candles + a clock)."""

from cryptobot.exchange.base import Exchange, Ticker

__all__ = ["Exchange", "Ticker"]
