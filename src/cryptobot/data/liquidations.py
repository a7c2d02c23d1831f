"""Recording the exchange's liquidation stream into the lake, and reading it back.

Binance keeps no public history of liquidations: they exist only as the ``!forceOrder@arr``
stream, which ``fetch --liquidations --watch`` records (:func:`record`). **Counts are a lower
bound**: the stream sends at most one liquidation per symbol per second (the latest of that
second), so a cascade of many orders within a second is seen as one.

Layout: one file per UTC day of the trade time, all symbols in it,
``liquidations/<exchange>/<YYYY-MM-DD>.parquet``: ``timestamp`` (the liquidation order's trade
time, ms), ``symbol``, ``side`` (the **order's** side: ``sell`` closes a long, so a long was
liquidated; ``buy`` a short), ``price`` (average fill), ``quantity`` (base units filled). Days
keep the files small (a write rewrites one day) and make old days easy to archive.

What was watched, and when, is ``liquidations/<exchange>/coverage.parquet``: one row per unbroken
recording span (``timestamp`` = its start, ``end`` = the last flush, ``symbols`` = ``*`` for the
all-market stream or the symbols watched). A span starts with the first message after a
(re)connection -- a conservative start: the quiet seconds before it, and a connection attempt
that failed, claim no coverage -- and a dropped connection ends it. :func:`liquidation_totals`
reads a period as missing (NaN), not as calm (0), when no span covered all of it: a recorder
that was down saw nothing, which is not "no liquidations".

Rows are buffered and written every ``flush_every_ms`` and at exit (SIGINT/SIGTERM, ``--for``,
``--max-messages``): a ``kill -9`` loses at most the unflushed seconds, never a stored row. A row
equal to one already stored (same time, symbol, side, price and quantity) is a duplicate -- a
venue re-sending after a reconnect, or two recorders overlapping in a cron rotation -- and is
dropped. A message without a positive finite price and quantity, a side or a symbol, or stamped
more than a minute after the recorder's clock, is rejected, counted and logged; the recording
goes on.
"""

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from cryptobot.core.errors import CryptobotError
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import DAY_MS, iso
from cryptobot.data.lake import Lake, locked_upsert, merge_events, read_parquet

log = logging.getLogger(__name__)

COLUMNS = ["timestamp", "symbol", "side", "price", "quantity"]
ALL_SYMBOLS = "*"
SKEW_MS = 60_000  # a venue's clock may run this far ahead of ours


@runtime_checkable
class LiquidationVenue(Protocol):
    """An exchange adapter that streams liquidations (the live ccxt one does)."""

    id: str

    async def watch_liquidations(self, symbols: list[str]) -> list[dict[str, Any]]:
        """The next batch; raises :class:`CryptobotError` when the connection drops."""
        ...


@dataclass
class RecordResult:
    exchange: str
    dataset: str = "liquidations"
    received: int = 0  # liquidations the stream delivered
    new: int = 0  # stored rows added
    duplicates: int = 0  # already stored (re-sent)
    rejected: int = 0  # not valid liquidations
    reconnects: int = 0
    first: str | None = None  # trade times of the first and last liquidation received
    last: str | None = None


def folder(lake: Lake, exchange: str) -> Path:
    return lake.root / "liquidations" / exchange


def valid_rows(rows: list[dict[str, Any]], *, now_ms: int) -> tuple[pd.DataFrame, int]:
    """The rows that are liquidations, as a frame of :data:`COLUMNS`, and how many were not."""
    good = []
    for r in rows:
        if (why := _problem(r, now_ms)) is None:
            good.append(r)
        else:
            log.warning("liquidation rejected (%s): %.200r", why, r)
    frame = pd.DataFrame(good, columns=COLUMNS).astype(
        {"timestamp": "int64", "price": "float64", "quantity": "float64"}
    )
    return frame, len(rows) - len(good)


def write(lake: Lake, exchange: str, rows: pd.DataFrame) -> tuple[int, int]:
    """Store valid rows into their days' files; returns (new, duplicates)."""
    new = 0
    days = np.datetime_as_string(rows["timestamp"].to_numpy().astype("datetime64[ms]"), unit="D")
    for day in np.unique(days):
        part = rows[days == day]
        new += merge_events(folder(lake, exchange) / f"{day}.parquet", part, COLUMNS).new_rows
    return new, len(rows) - new


def write_span(
    lake: Lake, exchange: str, *, recorder: str, start: int, end: int, symbols: list[str]
) -> None:
    """Record (or extend) the span ``recorder`` began at ``start`` (a recorder's own token, so
    two recorders that start in the same millisecond keep a span each)."""
    span = pd.DataFrame({"timestamp": [start], "end": [end], "recorder": [recorder],
                         "symbols": [",".join(symbols) or ALL_SYMBOLS]})  # fmt: skip
    locked_upsert(folder(lake, exchange) / "coverage.parquet", span, ["timestamp", "recorder"])


async def record(
    venue: LiquidationVenue,
    lake: Lake,
    *,
    symbols: list[str],
    stop: asyncio.Event,
    now_ms: Callable[[], int],
    max_messages: int | None = None,
    flush_every_ms: int = 5_000,
    backoff: Callable[[int], float] = lambda n: min(30.0, 0.5 * 2 ** (n - 1)),
) -> RecordResult:
    """Record ``venue``'s liquidations (all symbols when ``symbols`` is empty) until ``stop``
    is set or ``max_messages`` liquidations arrived. A dropped connection is reconnected after
    ``backoff(n)`` seconds (n: failures in a row). ``now_ms`` is the wall clock (coverage, the
    future check, when to flush)."""
    result = RecordResult(venue.id)
    recorder = _Recorder(lake, venue.id, symbols, now_ms, result)
    stopped = asyncio.ensure_future(stop.wait())
    pending: asyncio.Future | None = None
    failures = 0
    try:
        while not stop.is_set() and (max_messages is None or result.received < max_messages):
            if pending is None:
                pending = asyncio.ensure_future(venue.watch_liquidations(symbols))
            wait = max(0.0, (recorder.flush_due(flush_every_ms) - now_ms()) / 1000)
            await asyncio.wait(
                {pending, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if pending.done():
                batch, pending = pending, None
                try:
                    recorder.take(batch.result())
                    failures = 0
                except CryptobotError as exc:
                    failures += 1
                    result.reconnects += 1
                    recorder.dropped()
                    log.warning("%s; reconnecting (%d)", exc, failures)
                    await _sleep(backoff(failures), stop)
            if now_ms() >= recorder.flush_due(flush_every_ms):
                recorder.flush()
        if stop.is_set():  # what arrived before the stop and waits in the venue's buffer
            await _drain(venue, symbols, recorder)
    finally:
        for task in (pending, stopped):
            if task is not None and not task.done():
                task.cancel()
        recorder.flush()
    return result


class _Recorder:
    """The buffer and the current recording span of one :func:`record` run."""

    def __init__(
        self,
        lake: Lake,
        exchange: str,
        symbols: list[str],
        now_ms: Callable[[], int],
        result: RecordResult,
    ) -> None:
        self.lake, self.exchange, self.symbols = lake, exchange, symbols
        self.now_ms, self.result = now_ms, result
        self.buffer: list[dict[str, Any]] = []
        self.span_start: int | None = None
        self.recorder = uuid.uuid4().hex[:12]  # this run's spans, told from another's
        self.last_flush = now_ms()

    def take(self, batch: list[dict[str, Any]]) -> None:
        if self.span_start is None:
            self.span_start = self.now_ms()
        self.buffer += batch
        self.result.received += len(batch)
        stamps = [r["timestamp"] for r in batch if isinstance(r.get("timestamp"), int)]
        if stamps:
            self.result.first = self.result.first or iso(min(stamps))
            self.result.last = iso(max(stamps))

    def dropped(self) -> None:
        """The connection died: what was recorded is stored, and its span ends now."""
        self.flush()
        self.span_start = None

    def flush_due(self, every_ms: int) -> int:
        return self.last_flush + every_ms

    def flush(self) -> None:
        now = self.now_ms()
        rows, rejected = valid_rows(self.buffer, now_ms=now)
        self.buffer = []
        self.result.rejected += rejected
        if len(rows):
            new, duplicates = write(self.lake, self.exchange, rows)
            self.result.new += new
            self.result.duplicates += duplicates
        if self.span_start is not None:
            write_span(self.lake, self.exchange, recorder=self.recorder, start=self.span_start,
                       end=now, symbols=self.symbols)  # fmt: skip
        self.last_flush = now


def read_liquidations(
    lake: Lake,
    *,
    exchange: str,
    symbol: str | None = None,
    start: int | None = None,
    end: int | None = None,
) -> pd.DataFrame:
    """Recorded liquidations with ``start <= timestamp <= end`` (all symbols when ``symbol``
    is None), oldest first, with ``notional`` (price x quantity, quote currency) and
    ``liquidated`` (``long`` for a sell order, ``short`` for a buy)."""
    files = sorted(folder(lake, exchange).glob("????-??-??.parquet"))
    lo = -math.inf if start is None else start
    hi = math.inf if end is None else end
    files = [f for f in files if _day_overlaps(f.stem, lo, hi)]
    frames = [read_parquet(f) for f in files]
    events = pd.concat(frames, ignore_index=True) if frames else _empty()
    keep = (events["timestamp"] >= lo) & (events["timestamp"] <= hi)
    if symbol is not None:
        keep &= events["symbol"] == symbol
    events = events[keep].sort_values("timestamp", kind="stable").reset_index(drop=True)
    return events.assign(
        notional=events["price"] * events["quantity"],
        liquidated=np.where(events["side"] == "sell", "long", "short"),
    )


def read_coverage(lake: Lake, *, exchange: str, symbol: str | None = None) -> pd.DataFrame:
    """The recording spans (``timestamp`` start, ``end``) that watched ``symbol``."""
    path = folder(lake, exchange) / "coverage.parquet"
    spans = (
        read_parquet(path)
        if path.exists()
        else pd.DataFrame(columns=["timestamp", "end", "recorder", "symbols"])
    )
    if symbol is not None:
        watched = spans["symbols"].map(lambda s: s == ALL_SYMBOLS or symbol in s.split(","))
        spans = spans[watched.astype(bool)]
    return spans.sort_values("timestamp").reset_index(drop=True)


def liquidation_totals(
    lake: Lake,
    *,
    exchange: str,
    symbol: str,
    period: str,
    start: int,
    end: int,
) -> pd.DataFrame:
    """Liquidations per closed period between ``start`` and ``end``: ``timestamp`` (the period's
    close, when its total is known), ``long_count, long_usd, short_count, short_usd``. A period
    no recording span covered entirely is NaN (unknown), not 0; counts are a lower bound."""
    p_ms = timeframe_ms(period)
    opens = np.arange(-(-start // p_ms) * p_ms, end - p_ms + 1, p_ms, dtype="int64")
    events = read_liquidations(
        lake, exchange=exchange, symbol=symbol, start=int(opens[0]) if len(opens) else start,
        end=end,
    )  # fmt: skip
    out = pd.DataFrame({"timestamp": opens + p_ms})
    slot = (events["timestamp"].to_numpy() - (opens[0] if len(opens) else 0)) // p_ms
    for side in ("long", "short"):
        mine = (events["liquidated"] == side).to_numpy() & (slot < len(opens))
        out[f"{side}_count"] = np.bincount(slot[mine], minlength=len(opens)).astype("float64")
        usd = events["notional"].to_numpy()[mine]
        out[f"{side}_usd"] = np.bincount(slot[mine], weights=usd, minlength=len(opens))
    covered = _covered(read_coverage(lake, exchange=exchange, symbol=symbol), opens, p_ms)
    out.loc[~covered, ["long_count", "long_usd", "short_count", "short_usd"]] = np.nan
    return out


def status_rows(lake: Lake) -> list[dict[str, Any]]:
    """One ``fetch --status`` row per exchange recorded."""
    rows = []
    for directory in sorted((lake.root / "liquidations").glob("*")):
        if directory.is_dir():
            rows.append(_status_row(lake, directory.name))
    return rows


def _status_row(lake: Lake, exchange: str) -> dict[str, Any]:
    row: dict[str, Any] = {"exchange": exchange, "problems": None}
    try:
        events = read_liquidations(lake, exchange=exchange)
        spans = read_coverage(lake, exchange=exchange)
    except CryptobotError as exc:
        return row | {"problems": str(exc)}
    ts = events["timestamp"]
    bad = ~np.isfinite(events["notional"].to_numpy()) | (events["notional"].to_numpy() <= 0)
    row |= {
        "bars": len(events),
        "first": iso(int(ts.min())) if len(ts) else None,
        "last": iso(int(ts.max())) if len(ts) else None,
        "gaps": max(0, len(spans) - 1),  # breaks between recording spans
        "problems": f"{int(bad.sum())} rows without a positive price and quantity"
        if bad.any()
        else None,
    }
    return row


def _problem(r: dict[str, Any], now_ms: int) -> str | None:
    ts, price, qty = r.get("timestamp"), r.get("price"), r.get("quantity")
    if not isinstance(ts, int):
        return "no time"
    if ts > now_ms + SKEW_MS:
        return f"stamped {iso(ts)}, after the clock's {iso(now_ms)}"
    if not r.get("symbol") or r.get("side") not in ("buy", "sell"):
        return "no symbol or side"
    for name, value in (("price", price), ("quantity", qty)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            return f"{name} {value!r}"
    return None


def _covered(spans: pd.DataFrame, opens: np.ndarray, p_ms: int) -> np.ndarray:
    """Which periods lie entirely inside one recording span."""
    inside = np.zeros(len(opens), dtype=bool)
    for lo, hi in zip(spans["timestamp"], spans["end"], strict=True):
        inside |= (opens >= lo) & (opens + p_ms <= hi)
    return inside


def _day_overlaps(stem: str, lo: float, hi: float) -> bool:
    day = int(pd.Timestamp(stem, tz="UTC").value // 1_000_000)
    return day + DAY_MS > lo and day <= hi


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.Series(dtype="int64"),
            "symbol": pd.Series(dtype="object"),
            "side": pd.Series(dtype="object"),
            "price": pd.Series(dtype="float64"),
            "quantity": pd.Series(dtype="float64"),
        }
    )


async def _drain(venue: LiquidationVenue, symbols: list[str], recorder: "_Recorder") -> None:
    """Take what the venue has already received, waiting a moment at most."""
    with contextlib.suppress(TimeoutError, CryptobotError):
        recorder.take(await asyncio.wait_for(venue.watch_liquidations(symbols), 0.2))


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    """Sleep, or less when asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
