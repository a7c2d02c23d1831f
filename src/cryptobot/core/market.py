"""The contract specification of one market, as sizing and the fill model need it, and the top
of its book (the best bid and ask an order is priced from)."""

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

MARKET_SCHEMA = "market/1"


@dataclass(frozen=True)
class Market:
    """Exchange rules for one symbol.

    ``step_size``/``tick_size`` are absolute increments (ccxt's TICK_SIZE precision mode), so
    sizing can round quantities down with plain arithmetic. ``leverage_tiers`` holds the
    exchange's maintenance-margin brackets (ccxt's ``fetch_leverage_tiers`` shape) when known.
    """

    symbol: str
    id: str
    base: str
    quote: str
    settle: str | None
    type: str
    linear: bool | None
    active: bool
    contract_size: float
    tick_size: float | None
    step_size: float | None
    min_qty: float | None
    min_notional: float | None
    max_leverage: float | None
    maker: float | None
    taker: float | None
    maint_margin_rate: float | None = None
    leverage_tiers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_ccxt(cls, m: dict[str, Any], tiers: list[dict[str, Any]] | None = None) -> "Market":
        limits = m.get("limits") or {}
        precision = m.get("precision") or {}
        info = m.get("info") or {}
        mmr = info.get("maintMarginPercent")
        return cls(
            symbol=m["symbol"],
            id=str(m["id"]),
            base=m["base"],
            quote=m["quote"],
            settle=m.get("settle"),
            type=m.get("type") or "swap",
            linear=m.get("linear"),
            active=bool(m.get("active", True)),
            contract_size=float(m.get("contractSize") or 1.0),
            tick_size=_num(precision.get("price")),
            step_size=_num(precision.get("amount")),
            min_qty=_num((limits.get("amount") or {}).get("min")),
            min_notional=_num((limits.get("cost") or {}).get("min")),
            max_leverage=_num((limits.get("leverage") or {}).get("max")),
            maker=_num(m.get("maker")),
            taker=_num(m.get("taker")),
            maint_margin_rate=float(mmr) / 100 if mmr not in (None, "") else None,
            leverage_tiers=[plain_tier(t) for t in tiers or []],
        )

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["leverage_tiers"] = json.dumps(self.leverage_tiers)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Market":
        data = dict(row)
        data["leverage_tiers"] = json.loads(data.get("leverage_tiers") or "[]")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class BestBidAsk:
    """The top of a market's book: the best bid and ask with the size shown at each (in
    contracts, as ccxt counts them) and the venue's time of the book (ms). A side the venue
    shows empty is None. ``usable`` says whether an order may be priced from it: both prices
    finite and positive and the bid below the ask (a crossed or empty book is no quote)."""

    symbol: str
    bid: float | None
    ask: float | None
    bid_size: float | None
    ask_size: float | None
    timestamp: int

    @property
    def usable(self) -> bool:
        bid, ask = self.bid, self.ask
        if bid is None or ask is None or not (math.isfinite(bid) and math.isfinite(ask)):
            return False
        return 0.0 < bid < ask

    def size_against(self, side: str) -> float | None:
        """The size an order of ``side`` (buy/sell) would trade against if it took: the ask's
        for a buy, the bid's for a sell; None when it is not a positive finite number."""
        size = self.ask_size if side == "buy" else self.bid_size
        return size if size is not None and math.isfinite(size) and size > 0 else None


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def plain_tier(tier: dict[str, Any]) -> dict[str, Any]:
    """Keep the documented tier fields; ccxt's ``info`` is exchange noise for storage."""
    keys = ("tier", "minNotional", "maxNotional", "maintenanceMarginRate", "maxLeverage")
    out = {k: tier.get(k) for k in keys}
    info = tier.get("info") or {}
    if tier.get("maintenanceAmount") is not None:
        out["maintenanceAmount"] = float(tier["maintenanceAmount"])
    elif "cum" in info:
        out["maintenanceAmount"] = float(info["cum"])
    return out
