"""The contract specification of one market, as sizing and the fill model need it."""

import json
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
