"""The write-ahead intents of ``trade``: each create request, made durable before it leaves.

Why not a ``sending`` row in DuckDB, as before: that one transaction cost 5-16 ms on the
trading machine (DuckDB's per-statement parse, bind and plan), between a decision and its
request. An fsync'd line in an append-only file costs one device flush, and is just as
durable: a run killed after the fsync and before the answer leaves the intent on disk; the
next run folds it into the journal as a ``sending`` row and looks the order up by its client
id, never sending it blindly again. No intent, no request: an id with no intent (and no row)
was never sent (``engine.trade`` asks no venue about it).

One file per venue, ``<data dir>/journal/intents-<venue>.jsonl``: its writers are ``trade``
runs of that venue, which hold the venue's run lock, so one process appends at a time (a
dry run never writes; other data dirs and venues have their own file); the fold
(``journal.trading.TradeJournal.take_in``) runs under that lock, before the run's first
append and again as the run ends, and empties the file once every intent is in the journal.
Each line is one strict JSON object (``intent/1``), written by one ``write`` and fsync'd (a
new entry's in a thread, while the executor reads the venue: ``engine.dispatch``). A last
line cut short by a ``kill -9`` during its write was never fsync'd, so its request never
left: it is ignored with a warning; any other line that does not parse, holds a field of the
wrong kind, or names another venue (a file copied from elsewhere) is ignored with a warning
too (never folded into this venue's journal).
"""

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptobot.core.account import OrderRequest
from cryptobot.core.errors import DataError
from cryptobot.core.numbers import strict_json
from cryptobot.core.venues import file_token, token_account
from cryptobot.data.atomic import sync_directory

log = logging.getLogger(__name__)
SCHEMA = "intent/1"


class IntentNotDurable(DataError):
    """The intent could not be made durable: its request is not sent."""


@dataclass(frozen=True, kw_only=True)
class Intent:
    """A create request about to leave, with what the journal keeps of it: the sized order
    it belongs to (``parent_id``) and its ``leg``, the strategy, the venue's clock (``ts``),
    an entry's gate verdicts, expected price and sized order."""

    venue: str
    client_order_id: str
    parent_id: str
    leg: str
    strategy: str
    ts: int
    symbol: str
    side: str
    type: str
    amount: float
    price: float | None
    trigger_price: float | None
    reduce_only: bool
    post_only: bool
    gates: dict[str, str] | None = None
    expected_price: float | None = None
    sized: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        req: OrderRequest,
        *,
        venue: str,
        parent_id: str,
        leg: str,
        strategy: str,
        ts: int,
        gates: Mapping[str, str] | None = None,
        expected_price: float | None = None,
        sized: Mapping[str, Any] | None = None,
    ) -> "Intent":
        return cls(
            venue=venue, client_order_id=req.client_order_id or "", parent_id=parent_id,
            leg=leg, strategy=strategy, ts=ts, symbol=req.symbol, side=req.side,
            type=req.type, amount=req.amount, price=req.price,
            trigger_price=req.trigger_price, reduce_only=req.reduce_only,
            post_only=req.post_only, gates=dict(gates) if gates else None,
            expected_price=expected_price, sized=dict(sized) if sized is not None else None,
        )  # fmt: skip

    @property
    def request(self) -> OrderRequest:
        return OrderRequest(symbol=self.symbol, type=self.type, side=self.side,  # type: ignore[arg-type]
                            amount=self.amount, price=self.price,
                            trigger_price=self.trigger_price, reduce_only=self.reduce_only,
                            post_only=self.post_only,
                            client_order_id=self.client_order_id)  # fmt: skip

    def line(self) -> bytes:
        """One strict JSON line (no NaN or Infinity: a value that is not a number is refused)."""
        return (json.dumps({"schema": SCHEMA, **asdict(self)}, allow_nan=False) + "\n").encode()

    @classmethod
    def parse(cls, text: str) -> "Intent":
        """An intent from its line; ValueError when it is not one."""
        raw = strict_json(text)
        if not isinstance(raw, dict) or raw.pop("schema", None) != SCHEMA:
            raise ValueError(f"not an {SCHEMA} record")
        intent = cls(**raw)
        wrong = [name for name, ok in _CHECKS.items() if not ok(getattr(intent, name))]
        if wrong or not intent.client_order_id:
            raise ValueError(f"bad {', '.join(wrong) or 'client_order_id'}")
        return intent


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _maybe(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


#: what each field of a line must be (a file edited by hand never reaches the journal wrong)
_CHECKS = {
    **dict.fromkeys(("venue", "client_order_id", "parent_id", "leg", "strategy", "symbol",
                     "side", "type"), _text),
    "ts": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "amount": _number,
    **dict.fromkeys(("price", "trigger_price", "expected_price"), _maybe(_number)),
    **dict.fromkeys(("reduce_only", "post_only"), lambda v: isinstance(v, bool)),
    **dict.fromkeys(("gates", "sized"), _maybe(lambda v: isinstance(v, dict))),
}  # fmt: skip


_PREFIX, _SUFFIX = "intents-", ".jsonl"


@dataclass(frozen=True)
class IntentLog:
    """The intents file of ``venue`` in the data dir ``root``."""

    root: Path
    venue: str

    @property
    def path(self) -> Path:
        return Path(self.root) / "journal" / f"{_PREFIX}{file_token(self.venue)}{_SUFFIX}"

    @classmethod
    def every(cls, root: Path) -> list["IntentLog"]:
        """The intents file of every account that has one in ``root`` (by name)."""
        folder = Path(root) / "journal"
        names = sorted(p.name for p in folder.glob(f"{_PREFIX}*{_SUFFIX}") if p.is_file())
        return [cls(root, token_account(n[len(_PREFIX) : -len(_SUFFIX)])) for n in names]

    def append(self, intent: Intent) -> None:
        """``intent`` on disk (written and fsync'd) before this returns; ``IntentNotDurable``
        when it cannot be (its request must not leave). One ``write`` per line, the file
        opened for appending: a line is never interleaved with another."""
        try:
            data = intent.line()
        except ValueError as exc:  # a non-finite number: no line can hold it
            raise IntentNotDurable(f"the order intent cannot be written: {exc}") from None
        try:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:  # the first intent of a data dir (no run folded yet)
                self.ready()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError("short write")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._refused(exc) from None

    def ready(self) -> None:
        """The file checked writable, made first if need be (then it and its folder's entry
        fsync'd): a run refuses to trade at its start, rather than at its first order, when it
        is not."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            made = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if made:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if made:
                sync_directory(self.path.parent)
        except OSError as exc:
            raise self._refused(exc) from None

    def read(self) -> list[Intent]:
        """Every intent of this venue in the file, oldest first (none when there is no file);
        lines that are not intents of this venue are ignored with a warning."""
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:  # a folder in its place, no permission: nothing can be known
            raise self._refused(exc) from None
        return list(self._intents(text))

    def clear(self) -> None:
        """The file emptied (its intents are in the journal now), durably; an empty one is
        left alone (no device flush for nothing)."""
        try:
            fd = os.open(self.path, os.O_WRONLY)
        except FileNotFoundError:
            return
        try:
            if os.fstat(fd).st_size == 0:
                return
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _intents(self, text: str) -> Iterator[Intent]:
        lines = text.split("\n")
        torn = lines.pop()  # after the last newline: "" unless the last write was cut short
        if torn:
            log.warning("%s: its last line was cut short (a run killed while writing it: "
                        "never sent); ignored", self.path)  # fmt: skip
        for n, text_line in enumerate(lines, 1):
            if not text_line.strip():
                continue
            try:
                intent = Intent.parse(text_line)
            except (ValueError, TypeError) as exc:
                log.warning("%s line %d is not an intent (%s); ignored", self.path, n, exc)
                continue
            if intent.venue != self.venue:
                log.warning("%s line %d is an intent of %s, not %s (a file from elsewhere); "
                            "ignored", self.path, n, intent.venue, self.venue)  # fmt: skip
                continue
            yield intent

    def _refused(self, exc: OSError) -> IntentNotDurable:
        return IntentNotDurable(
            f"cannot write the order intents file {self.path} ({exc.strerror or exc}): trade "
            "sends no order before its intent is on disk; make the data dir writable"
        )


__all__ = ["Intent", "IntentLog", "IntentNotDurable"]
