"""The setup record: what a strategy saw and the trade it proposes.

A setup is ``triggered`` when its entry rule fired on the bar ``ts`` (enter at ``entry``), or
``armed`` when its context is in place and ``entry`` is the price level that would trigger it.
Its ``id`` hashes what identifies the opportunity (venue, symbol, strategy, side, status and the
bar where its context formed, ``anchor_ts``), so scanning the same bars again yields the same
ids and the journal never stores a setup twice.

On the wire (JSONL) times are ISO-8601 UTC; in Parquet rows they are int64 milliseconds and
``reasons`` is a JSON string. ``schema`` names the version: ``setup/1``.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cryptobot.core.errors import DataError
from cryptobot.core.numbers import plain, record_number
from cryptobot.core.timeutil import iso, parse_time

SETUP_SCHEMA = "setup/1"
Side = Literal["long", "short"]
Status = Literal["triggered", "armed"]


def setup_id(
    *,
    exchange: str,
    symbol: str,
    strategy: str,
    timeframe: str,
    side: str,
    status: str,
    anchor_ts: int,
) -> str:
    """A setup's id, from what makes it the same setup bar after bar (its anchor, not the bar
    it was seen on). The backtest names its signals with it too, so a backtest's client order
    id is the one ``size`` gives the same signal live."""
    key = "|".join(map(str, (exchange, symbol, strategy, timeframe, side, status, anchor_ts)))
    return hashlib.sha1(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Setup:
    exchange: str
    symbol: str
    strategy: str
    timeframe: str
    side: Side
    status: Status
    ts: int
    anchor_ts: int
    entry: float
    stop: float
    targets: list[float]
    confidence: int
    reasons: dict[str, Any] = field(default_factory=dict)
    schema: str = SETUP_SCHEMA

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", json_safe(self.reasons))
        object.__setattr__(self, "targets", [float(t) for t in self.targets])

    @property
    def id(self) -> str:
        return setup_id(
            exchange=self.exchange, symbol=self.symbol, strategy=self.strategy,
            timeframe=self.timeframe, side=self.side, status=self.status,
            anchor_ts=self.anchor_ts,
        )  # fmt: skip

    @property
    def risk(self) -> float:
        """Price distance from entry to stop (> 0 for a valid setup)."""
        return self.entry - self.stop if self.side == "long" else self.stop - self.entry

    @property
    def r_targets(self) -> list[float]:
        """Each target in multiples of the risk (R)."""
        sign = 1 if self.side == "long" else -1
        return [round(sign * (t - self.entry) / self.risk, 2) for t in self.targets]

    def to_json(self) -> dict[str, Any]:
        out = {"schema": self.schema, "id": self.id, **asdict(self)}
        out["ts"], out["anchor_ts"] = iso(self.ts), iso(self.anchor_ts)
        return out

    def to_row(self) -> dict[str, Any]:
        out = {"schema": self.schema, "id": self.id, **asdict(self)}
        out["reasons"] = json.dumps(self.reasons, sort_keys=True)
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Setup":
        """Parse a JSONL or Parquet record; a wrong or missing field is one clear error."""
        if record.get("schema") != SETUP_SCHEMA:
            raise DataError(f"not a {SETUP_SCHEMA} record (schema={record.get('schema')!r})")
        try:
            reasons = record.get("reasons") or {}
            setup = cls(
                exchange=str(record["exchange"]),
                symbol=str(record["symbol"]),
                strategy=str(record["strategy"]),
                timeframe=str(record["timeframe"]),
                side=_choice(record["side"], ("long", "short"), "side"),
                status=_choice(record["status"], ("triggered", "armed"), "status"),
                ts=_time(record["ts"]),
                anchor_ts=_time(record.get("anchor_ts", record["ts"])),
                entry=record_number(record["entry"], name="entry", gt=0),
                stop=record_number(record["stop"], name="stop", gt=0),
                targets=[
                    record_number(t, name="target", gt=0) for t in _list(record.get("targets"))
                ],
                confidence=_confidence(record["confidence"]),
                reasons=json.loads(reasons) if isinstance(reasons, str) else dict(reasons),
            )
        except KeyError as exc:
            raise DataError(f"{SETUP_SCHEMA} record without {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise DataError(f"bad {SETUP_SCHEMA} record: {exc}") from None
        check_stop(symbol=setup.symbol, side=setup.side, entry=setup.entry, stop=setup.stop)
        check_targets(
            symbol=setup.symbol, side=setup.side, entry=setup.entry, targets=setup.targets
        )
        return setup


def check_stop(*, symbol: str, side: str, entry: float, stop: float) -> None:
    """A stop that leaves no risk to size, or sits on the profit side, is named as such."""
    if stop == entry:
        raise DataError(f"{symbol} {side}: the stop equals the entry ({entry:g}); no risk to size")
    if (stop > entry) if side == "long" else (stop < entry):
        where = "below" if side == "long" else "above"
        raise DataError(
            f"{symbol} {side}: the stop must be {where} the entry ({stop:g} vs {entry:g})"
        )


def check_targets(*, symbol: str, side: str, entry: float, targets: Sequence[float]) -> None:
    """A take-profit at or beyond the entry on the losing side would close the trade at a loss
    (or at once) while reading as a profit target: named, like a misplaced stop."""
    for target in targets:
        if (target <= entry) if side == "long" else (target >= entry):
            where = "above" if side == "long" else "below"
            raise DataError(
                f"{symbol} {side}: a target must be {where} the entry ({target:g} vs {entry:g})"
            )


MAX_CONFIDENCE = 5  # every strategy scores 0..5 (the bound of the confidence settings too)


def _confidence(value: object) -> int:
    """A setup's score: a whole number 0..5. A fraction or a score out of range is no
    strategy's (it would pass ``--min-confidence`` and the leverage ladder's confidence step
    as a setup scored 5 does), so it is refused rather than cut."""
    number = record_number(value, name="confidence", ge=0, le=MAX_CONFIDENCE)
    if number != int(number):
        raise ValueError(f"confidence must be a whole number, got {number:g}")
    return int(number)


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _time(value: Any) -> int:
    if isinstance(value, int | float):
        return int(record_number(value, name="ts", ge=0))
    return parse_time(str(value))


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return json.loads(value)
    return list(value)


def json_safe(value: Any) -> Any:
    """Reasons and figures as plain JSON values, floats trimmed to 10 significant digits (what
    a detector computed, without float noise)."""
    return plain(value, digits=10)
