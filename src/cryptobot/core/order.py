"""The sized-order record: a signal (or a manual intent) with its quantity, margin, leverage,
liquidation price, $ risk, fees, and the verdict of every pre-trade gate.

``sized_order/2`` is what ``size`` writes and ``trade`` reads. Since /2 its ``targets`` are the
take-profit rungs ``manage`` runs for the strategy (its profile's ladder priced from the entry
and stop, ``target_qty`` each; ``manage.targets``), the detector's own in ``setup_targets`` (/1
carried the detector's targets as ``targets``). ``status`` is ``sized`` (every
gate passed; the order may be sent) or ``refused`` (``reason`` says which rule and why; nothing
may be sent). ``client_order_id`` is derived from the signal (or the manual intent), so sizing
the same signal again gives the same id and the exchange can never open it twice.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cryptobot.core.errors import DataError
from cryptobot.core.numbers import record_number
from cryptobot.core.setup import SETUP_SCHEMA, Setup, json_safe
from cryptobot.core.signal import SIGNAL_SCHEMA, Signal
from cryptobot.core.timeutil import iso

SIZED_ORDER_SCHEMA = "sized_order/2"


@dataclass(frozen=True)
class Intent:
    """What to size: where it came from and the trade it proposes."""

    exchange: str
    symbol: str
    side: Literal["long", "short"]
    entry: float
    stop: float | None
    targets: tuple[float, ...] = ()
    strategy: str = "manual"
    timeframe: str | None = None
    ts: int | None = None
    confidence: int | None = None
    signal_id: str | None = None
    volatility_pct: float | None = None  # ATR / price in %, when the setup reported its ATR
    # the setup's status, carried into the sized order: an armed setup's entry has not fired,
    # so its order is refused (``trade`` must never send it as if it had)
    setup_status: Literal["triggered", "armed"] = "triggered"
    # the strategy's own targets once ``targets`` are the management ladder's (sized_order/2)
    setup_targets: tuple[float, ...] = ()

    @classmethod
    def from_setup(cls, setup: Setup) -> "Intent":
        atr = setup.reasons.get("atr")
        try:
            atr = record_number(atr, name="reasons.atr", ge=0) if atr is not None else None
        except ValueError as exc:
            raise DataError(str(exc)) from None
        return cls(
            exchange=setup.exchange,
            symbol=setup.symbol,
            side=setup.side,
            entry=setup.entry,
            stop=setup.stop,
            targets=tuple(setup.targets),
            strategy=setup.strategy,
            timeframe=setup.timeframe,
            ts=setup.ts,
            confidence=setup.confidence,
            signal_id=setup.id,
            volatility_pct=atr / setup.entry * 100 if atr else None,
            setup_status=setup.status,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Intent":
        """A ``signal/1`` or ``setup/1`` record (so ``scan | size`` works as well as
        ``signal | size``)."""
        schema = record.get("schema")
        if schema == SIGNAL_SCHEMA:
            setup = Signal.from_record(record).setup
        elif schema == SETUP_SCHEMA:
            setup = Setup.from_record(record)
        else:
            raise DataError(
                f"expected {SIGNAL_SCHEMA} or {SETUP_SCHEMA} records, got schema={schema!r}"
            )
        _check_strategy(setup.strategy)
        return cls.from_setup(setup)

    def client_order_id(self, prefix: str) -> str:
        """Deterministic: the signal's id, or every field of a manual intent. 27 characters,
        within every venue's limit (Binance 36, Bybit 36, Bitget 50)."""
        key = self.signal_id or json.dumps(
            [self.exchange, self.symbol, self.side, self.entry, self.stop, list(self.targets)]
        )
        return f"{prefix}-{hashlib.sha1(f'open|{key}'.encode()).hexdigest()[:24]}"


def _check_strategy(name: str) -> None:
    """A record's strategy picks its ``risk.profiles`` entry: a misspelled or unknown one would
    be sized with the base settings without a word, so it is refused. ``manual`` (a trade no
    strategy proposed) is sized with the base settings, as ``size --symbol ...`` sizes one."""
    from cryptobot.core.settings import RiskProfiles  # pydantic: only when records are read

    known = ("manual", *RiskProfiles.model_fields)
    if name not in known:
        raise DataError(f"unknown strategy {name!r} (its risk profile would be a guess); "
                        f"use one of {', '.join(known)}")  # fmt: skip


@dataclass(frozen=True)
class SizedOrder:
    intent: Intent
    client_order_id: str
    status: Literal["sized", "refused"]
    reason: str
    figures: dict[str, Any]  # qty, notional, margin, leverage, liquidation, risk, fees, bracket
    gates: dict[str, str]
    steps: tuple[str, ...] = field(default=(), compare=False)  # the arithmetic, for --explain

    def to_json(self) -> dict[str, Any]:
        intent = asdict(self.intent)
        intent["targets"] = list(self.intent.targets)
        intent["setup_targets"] = list(self.intent.setup_targets)
        intent["ts"] = iso(self.intent.ts) if self.intent.ts is not None else None
        return json_safe(
            {
                "schema": SIZED_ORDER_SCHEMA,
                "client_order_id": self.client_order_id,
                "status": self.status,
                "reason": self.reason,
                **intent,
                **self.figures,
                "gates": self.gates,
            }
        )

    def to_row(self) -> dict[str, Any]:
        """Parquet: times in ms, the gate verdicts as one JSON string."""
        row = self.to_json()
        row["ts"] = self.intent.ts
        row["gates"] = json.dumps(self.gates)
        return row
