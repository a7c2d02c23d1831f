"""What a reconcile cycle reports: one record per difference between the journal and the
venue, with what the cycle did about it (``engine.reconcile``, ``engine.breaker_actions``)."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One difference between the journal and the venue, and what the cycle did about it."""

    kind: str
    symbol: str
    client_order_id: str | None
    action: str
    message: str
    failed: bool = False
    key: str | None = None  # the same difference seen again has the same key: reported once

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbol": self.symbol,
                "client_order_id": self.client_order_id, "action": self.action,
                "message": self.message, "failed": self.failed}  # fmt: skip


__all__ = ["Difference"]
