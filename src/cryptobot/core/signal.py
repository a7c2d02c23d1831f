"""The signal record: a setup that passed the context filters, with the context that passed it.

``signal/1`` carries every field of the setup (so `size` and `trade` need nothing else), the
setup's id as ``setup_id``, and ``context``: what each filter saw (regime, funding rate and
its bias, higher-timeframe bias). The signal's ``id`` is the setup's id: one setup can become
one signal only.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from cryptobot.core.errors import DataError
from cryptobot.core.setup import Setup, json_safe

SIGNAL_SCHEMA = "signal/1"


@dataclass(frozen=True)
class Signal:
    setup: Setup
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.setup.id

    def to_json(self) -> dict[str, Any]:
        record = self.setup.to_json()
        return {
            **record,
            "schema": SIGNAL_SCHEMA,
            "setup_id": record["id"],
            "context": json_safe(self.context),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Signal":
        if record.get("schema") != SIGNAL_SCHEMA:
            raise DataError(f"not a {SIGNAL_SCHEMA} record (schema={record.get('schema')!r})")
        setup = Setup.from_record({**record, "schema": "setup/1"})
        context = record.get("context") or {}
        if isinstance(context, str):  # a Parquet or CSV cell holds it as JSON text
            try:
                context = json.loads(context)
            except json.JSONDecodeError:
                raise DataError(f"{SIGNAL_SCHEMA} context is not valid JSON") from None
        if not isinstance(context, dict):
            raise DataError(f"{SIGNAL_SCHEMA} context must be an object")
        return cls(setup, context)
