"""One async exchange interface for every venue: ccxt (live prices), the replay exchange
(stored candles + a clock) and the paper broker (live prices + simulated fills); the trading
part (``TradingExchange``) is simulated by replay and paper on ``fills/``. ``factory`` opens the
one the settings ask for."""

from cryptobot.exchange.base import Clock, Exchange, Ticker, TradingExchange

__all__ = ["Clock", "Exchange", "Ticker", "TradingExchange"]
