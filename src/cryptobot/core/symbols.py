"""ccxt unified symbols and the file-system ids the lake uses for them.

``BTC/USDT:USDT`` (USDT-margined perpetual) is stored as ``BTC_USDT_USDT`` and ``BTC/USDT``
(spot) as ``BTC_USDT`` -- the same convention as ``../shared/data`` and freqtrade.
"""

import re

from cryptobot.core.errors import UnknownSymbolError

_UNIFIED = re.compile(r"^[A-Za-z0-9.\-]+/[A-Za-z0-9]+(:[A-Za-z0-9]+(-[A-Za-z0-9\-]+)?)?$")


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is shaped like a unified symbol, else a user error."""
    if not _UNIFIED.match(symbol):
        raise UnknownSymbolError(
            f"{symbol!r} is not a ccxt unified symbol; write it like BTC/USDT:USDT (perpetual)"
            " or BTC/USDT (spot)"
        )
    return symbol


def symbol_to_id(symbol: str) -> str:
    return check_symbol(symbol).replace("/", "_").replace(":", "_")


def id_to_symbol(symbol_id: str) -> str:
    parts = symbol_id.split("_")
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 3:
        return f"{parts[0]}/{parts[1]}:{parts[2]}"
    return symbol_id


def parse_symbols(text: str) -> list[str]:
    """``"BTC/USDT:USDT,ETH/USDT:USDT"`` -> validated list without duplicates; a list that
    names none (``","``, blanks) is an error, never "no symbols" (every caller reads an empty
    list as "not given")."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part and part not in out:
            out.append(check_symbol(part))
    if not out:
        raise UnknownSymbolError(f"{text!r} names no symbol; write e.g. BTC/USDT:USDT")
    return out
