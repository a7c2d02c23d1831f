"""What ``trade`` reads: a sized order (``sized_order/1`` or ``/2``, as ``size`` writes it),
checked field by field before anything reaches a venue.

A record is input, so every number is refused when it is not a finite number of the right sign
(a NaN quantity would slip through every comparison and reach the venue as ``nan``); a stop on
the profit side, a target on the losing side or a ladder larger than the order is a bad record
too. ``cli.inputs.parse_records`` names the line of a bad one; nothing of its batch is sent
unless ``--skip-bad`` leaves it out.

``sized_order/2`` carries the take-profit ladder ``manage`` runs for the strategy (``targets``
with each rung's ``target_qty``, in whole steps); ``/1`` carries the detector's targets only,
and ``trade`` splits the quantity over them (``engine.bracket``). A record ``size`` refused
(``status: refused``) is read too, so ``trade`` can say it was skipped and why.
"""

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cryptobot.core.account import MARGIN_MODES, MarginMode
from cryptobot.core.errors import DataError
from cryptobot.core.numbers import record_number, short
from cryptobot.core.setup import check_stop, check_targets
from cryptobot.exchange import CLIENT_ID_CHARS

SCHEMAS = ("sized_order/1", "sized_order/2")

_CLIENT_ID = re.compile(f"[{CLIENT_ID_CHARS}]+")


@dataclass(frozen=True, kw_only=True)
class TradeOrder:
    """One sized order as ``trade`` acts on it."""

    client_order_id: str
    status: Literal["sized", "refused"]
    reason: str
    exchange: str
    symbol: str
    side: Literal["long", "short"]
    strategy: str
    entry: float
    stop: float | None
    qty: float
    leverage: float
    margin_mode: MarginMode
    notional: float
    margin: float
    risk_usd: float | None
    targets: tuple[float, ...]
    target_qty: tuple[float, ...] | None  # sized_order/2: each rung's quantity; /1: None
    size_mult: float = 1.0  # the breaker's size multiplier it was sized under (recovery: <1)

    @property
    def buy(self) -> bool:
        """Whether the entry buys (a long)."""
        return self.side == "long"

    def to_record(self) -> dict[str, Any]:
        """The record this order was read from (its schema's fields): what the journal keeps
        so a later run can rebuild the order with :meth:`from_record`."""
        schema = SCHEMAS[0] if self.target_qty is None else SCHEMAS[1]
        return {"schema": schema, **asdict(self)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "TradeOrder":
        """The record checked, or ``DataError`` saying which field is wrong and why."""
        try:
            return _parse(record)
        except ValueError as exc:
            raise DataError(str(exc)) from None


def _parse(r: Mapping[str, Any]) -> TradeOrder:
    schema = r.get("schema")
    if schema not in SCHEMAS:
        raise ValueError(f"expected {' or '.join(SCHEMAS)} records (from `cryptobot size`), "
                         f"got schema={short(schema)}")  # fmt: skip
    side = _choice(r.get("side"), ("long", "short"), "side")
    symbol = _text(r, "symbol")
    entry = record_number(r.get("entry"), name="entry", gt=0)
    stop = None if r.get("stop") is None else record_number(r["stop"], name="stop", gt=0)
    if stop is not None:
        check_stop(symbol=symbol, side=side, entry=entry, stop=stop)
    qty = record_number(r.get("qty"), name="qty", gt=0)
    targets = tuple(record_number(t, name="targets", gt=0) for t in _list(r, "targets"))
    check_targets(symbol=symbol, side=side, entry=entry, targets=targets)
    risk = r.get("risk_usd")
    return TradeOrder(
        client_order_id=_client_id(r),
        status=_choice(r.get("status"), ("sized", "refused"), "status"),
        reason=_printable(str(r.get("reason") or ""), "reason"),
        exchange=_text(r, "exchange"),
        symbol=symbol,
        side=side,
        strategy=_text(r, "strategy"),
        entry=entry,
        stop=stop,
        qty=qty,
        leverage=record_number(r.get("leverage"), name="leverage", ge=1),
        margin_mode=_choice(r.get("margin_mode"), MARGIN_MODES, "margin_mode"),
        notional=record_number(r.get("notional"), name="notional", ge=0),
        margin=record_number(r.get("margin"), name="margin", ge=0),
        risk_usd=None if risk is None else record_number(risk, name="risk_usd", ge=0),
        targets=targets,
        target_qty=_rungs(r, schema=schema, targets=targets, qty=qty),
        # the breaker's multiplier it was sized under (a record of before: full size)
        size_mult=record_number(r.get("size_mult", 1.0), name="size_mult", gt=0, le=1),
    )


def _rungs(
    r: Mapping[str, Any], *, schema: str, targets: tuple[float, ...], qty: float
) -> tuple[float, ...] | None:
    """The ladder's quantities of a ``sized_order/2`` (one per target, together at most the
    order's quantity: a ladder larger than the position would close more than it holds)."""
    if schema == "sized_order/1":
        return None
    rungs = tuple(record_number(q, name="target_qty", ge=0) for q in _list(r, "target_qty"))
    if len(rungs) != len(targets):
        raise ValueError(f"target_qty has {len(rungs)} quantities for {len(targets)} targets")
    if sum(rungs) > qty * (1 + 1e-9):
        raise ValueError(f"target_qty adds up to {sum(rungs):g}, more than the qty {qty:g}")
    return rungs


def _text(r: Mapping[str, Any], name: str) -> str:
    value = r.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is missing" if value in (None, "") else
                         f"{name} must be text, got {short(value)}")  # fmt: skip
    if not value[0].isalnum():  # = + - @ first: a formula in the journal's CSV in a spreadsheet
        raise ValueError(f"{name} must begin with a letter or a digit, got {value[:40]!r}")
    return _printable(value, name)


def _client_id(r: Mapping[str, Any]) -> str:
    """The sized order's client id, in the characters venues take (its legs add ``-sl2``..;
    the length is checked with the longest leg, ``engine.bracket``): refused when read, not
    after ``--dry-run`` has shown requests no venue would accept."""
    value = _text(r, "client_order_id")
    if not _CLIENT_ID.fullmatch(value):
        raise ValueError(f"client_order_id {short(value)} must be characters of "
                         f"{CLIENT_ID_CHARS} only (what venues take)")  # fmt: skip
    return value


def _printable(value: str, name: str) -> str:
    """``value`` without control characters: a record's text is journaled and printed, and
    an escape sequence in a client id or a strategy name would drive the reader's terminal
    (set its title, hide the lines after it) from ``trade``'s errors and ``journal``'s tables."""
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"{name} holds a control character ({bad!r}): {value!r}")
    return value


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {short(value)}")
    return value


def _list(r: Mapping[str, Any], name: str) -> list[Any]:
    """A list field: a JSON list, a Parquet list, or JSON text (a CSV cell); missing: empty."""
    value = r.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{name} must be a list, got {short(value)}") from None
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list, got {short(value)}")
    return list(value)


__all__ = ["SCHEMAS", "TradeOrder"]
