"""cryptobot: a command-line toolkit for crypto-futures traders (paper trading by default)."""

__version__ = "0.1.0"
