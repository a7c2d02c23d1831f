"""The venue names cryptobot knows, in a module light enough for the CLI's start-up (the
``--exchange`` flag checks its value before any settings are loaded)."""

#: Venues reached through ccxt; ``replay`` serves a stored lake through the same interface.
CCXT_VENUES = ("binanceusdm", "bybit", "bitget")
VENUES = (*CCXT_VENUES, "replay")
