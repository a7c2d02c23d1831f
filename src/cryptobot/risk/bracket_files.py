"""``--brackets FILE``: leverage tiers a trader keeps in a file, in ccxt's shape or as Binance's raw
``/fapi/v1/leverageBracket`` JSON, turned into the tier dicts ``fills.brackets.from_tiers``
reads (sizing's input; the brackets themselves belong to the matching model)."""

import json
from pathlib import Path
from typing import Any

from cryptobot.core.errors import DataError
from cryptobot.core.market import plain_tier


def read_file(path: Path, symbol: str, market_id: str | None = None) -> list[dict[str, Any]]:
    """Tiers for ``symbol`` from a JSON file: ccxt's ``fetch_leverage_tiers`` dict, its
    ``fetch_market_leverage_tiers`` list, or Binance's raw ``/fapi/v1/leverageBracket`` list."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"--brackets {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"--brackets {path}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        if symbol not in data:
            raise DataError(f"--brackets {path} has no tiers for {symbol}")
        data = data[symbol]
    if not isinstance(data, list) or not data:
        raise DataError(f"--brackets {path}: expected a list of tiers")
    if "brackets" in data[0]:
        return _binance_raw(data, path, symbol, market_id)
    return [plain_tier(t) for t in data]


def _binance_raw(
    data: list[dict[str, Any]], path: Path, symbol: str, market_id: str | None
) -> list[dict[str, Any]]:
    wanted = market_id or symbol.split("/")[0] + symbol.split("/")[1].split(":")[0]
    rows = [d for d in data if d.get("symbol") == wanted] if len(data) > 1 else data
    if not rows:
        raise DataError(f"--brackets {path} has no brackets for {wanted}")
    return [
        {
            "tier": b.get("bracket"),
            "minNotional": b.get("notionalFloor"),
            "maxNotional": b.get("notionalCap"),
            "maintenanceMarginRate": b.get("maintMarginRatio"),
            "maxLeverage": b.get("initialLeverage"),
            "maintenanceAmount": b.get("cum"),
        }
        for b in rows[0]["brackets"]
    ]
