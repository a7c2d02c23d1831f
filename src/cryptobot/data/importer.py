"""Reading someone else's files into the lake: candles, mark-price candles and the observation
series of :mod:`cryptobot.data.series`, from CSV, Parquet, freqtrade feather or JSON/JSONL.

Column names are matched case-insensitively; the time column may be called timestamp, date,
time, datetime, open_time or ts and may hold epoch seconds, epoch milliseconds, or datetimes
(naive ones are taken as UTC). Candle times are bar **open** times. A value that cannot be read
(a time that is not one, an empty, NaN or infinite price, volume or series value) stops the
import naming its row; a file of another kind (no column the kind needs) is named with the
columns it lacks. An empty file is refused: importing nothing is never what was meant.

Funding files may be freqtrade's, which store each funding as a candle with the rate in ``open``
and ``high``/``low``/``close`` at 0: the rate is read from ``open`` then (a price candle file is
not mistaken for one). Mark-price candles carry no volume (Binance serves 0); a volume column in
the file is ignored and 0 is stored.
"""

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from cryptobot.core.errors import DataError, UnknownSymbolError
from cryptobot.core.symbols import check_symbol
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.core.timeutil import iso
from cryptobot.data.lake import OHLCV, Lake, WriteResult
from cryptobot.data.series import Kind, holes, kind_of, nearest_second
from cryptobot.data.validate import first_conflict, implausible

_TIME_NAMES = ("timestamp", "date", "time", "datetime", "open_time", "ts", "fundingtime")
_SECONDS_BELOW = 100_000_000_000  # epoch values below this are seconds (before 1973 in ms)
_MS_FRACTION = 0.01  # ms: a number further than this from a whole millisecond has a fraction
#: what ``fetch --import --kind`` takes: the two candle kinds and every observation series
CANDLE_KINDS = ("candles", "mark")


def import_candles(
    lake: Lake, exchange: str, symbol: str, timeframe: str, path: str | Path, *, now_ms: int
) -> dict[str, object]:
    """Read, validate and merge a candle file into the lake; returns a summary row.

    When markets for ``exchange`` are stored, the symbol must be one of them (a typo would
    otherwise start a series nobody can fetch into). ``now_ms`` is the wall clock: bars that
    have not closed at it are refused, as the fetcher drops the bar still forming. ``changed``
    counts stored bars whose values the file replaced (also kept in the series' revision log);
    an identical re-import says 0.
    """
    return import_file(
        lake, "candles", exchange, path, symbol=symbol, period=timeframe, now_ms=now_ms
    )


def import_file(
    lake: Lake,
    kind: str,
    source: str,
    path: str | Path,
    *,
    symbol: str | None,
    period: str | None,
    now_ms: int,
) -> dict[str, object]:
    """Store a file of ``kind`` (``candles``, ``mark`` or a series kind) filed under ``source``
    (the exchange; for Fear & Greed the index's publisher); returns a summary row with what was
    ``read``, ``new`` and ``changed`` (stored values the file replaced: 0 on a re-import).

    ``period`` is the timeframe of candles and of periodic series; rows not known yet at
    ``now_ms`` (the wall clock) are refused, as is a file spaced wider than its period."""
    spec = None if kind in CANDLE_KINDS else kind_of(kind)
    if spec is None or spec.per_symbol:
        _check_symbol(lake, source, symbol, kind)
    if spec is None:
        timeframe_ms(period or "")
        frame = read_candle_file(path, volume=kind == "candles")
        _refuse_conflicts(frame, frame["timestamp"].to_numpy(), path)
        prices = lake if kind == "candles" else lake.mark_prices()
        written = prices.write_candles(
            source, symbol, period, frame, now_ms=now_ms, source=f"import {path}"
        )
        report = prices.candle_report(source, symbol, period)
        extent = {"gaps": report.gaps, "first": iso(report.first), "last": iso(report.last)}
    else:
        period = spec.period or (period if spec.periodic else None)
        frame = read_series_file(path, spec)
        _refuse_conflicts(frame, nearest_second(frame["timestamp"].to_numpy()), path)
        written = lake.write_series(
            kind, source, symbol, period, frame,
            now_ms=now_ms, origin=f"import {path}", check_spacing=True,
        )  # fmt: skip
        extent = _extent(lake.read_series(kind, source, symbol, period), period, spec)
    return _summary(kind, source, symbol, period, len(frame), written) | extent


def _refuse_conflicts(frame: pd.DataFrame, stamps: np.ndarray, path: str | Path) -> None:
    """Refuse a file holding two rows for one time with different values
    (``validate.first_conflict``), naming both lines: keeping the last would pick one
    silently."""
    clash = first_conflict(frame, stamps)
    if clash is None:
        return
    first, second, ts = clash
    where = _where(Path(path))
    raise DataError(
        f"{where(first)} and {where(second)} hold different values for the same time"
        f" {iso(ts)}; keep one of them (identical repeated rows are dropped)"
    )


def _check_symbol(lake: Lake, exchange: str, symbol: str | None, kind: str) -> None:
    if not symbol:
        raise DataError(f"{kind} is stored per symbol; say which with --symbol")
    check_symbol(symbol)
    markets = lake.read_markets(exchange)
    if markets and symbol not in markets:
        raise UnknownSymbolError(f"{exchange} lists no contract {symbol} (stored markets)")


def _summary(
    kind: str, source: str, symbol: str | None, period: str | None, read: int, w: WriteResult
) -> dict[str, object]:
    return {
        "exchange": source,
        "symbol": symbol,
        "timeframe": period,
        "kind": kind,
        "read": read,
        "new": w.new_rows,
        "changed": w.changed_rows,
        "total": w.total_rows,
    }


def _extent(stored: pd.DataFrame, period: str | None, kind: Kind) -> dict[str, object]:
    ts = stored["timestamp"].to_numpy()
    gaps, _ = holes(ts, timeframe_ms(period) if period else None, kind=kind)
    return {
        "gaps": gaps,
        "first": iso(int(ts.min())) if len(ts) else None,
        "last": iso(int(ts.max())) if len(ts) else None,
    }


def read_candle_file(path: str | Path, *, volume: bool = True) -> pd.DataFrame:
    """Load and normalise a candle file; raises :class:`DataError` naming the first bad row
    (``line N`` of a CSV, counting the header as line 1; ``row N`` of other files) and why.
    ``volume=False`` (mark prices) reads no volume column and stores 0."""
    raw, where = _load(path)
    columns = OHLCV[1:] if volume else OHLCV[1:-1]
    out = normalise_columns(raw, str(path), where=where, columns=columns)
    return out if volume else out.assign(volume=0.0)


def read_series_file(path: str | Path, kind: Kind) -> pd.DataFrame:
    """Load a file of an observation series: its time column and the kind's value columns
    (under their names or the aliases other tools use; see :mod:`cryptobot.data.series`)."""
    raw, where = _load(path)
    lower = {str(c).strip().lower(): c for c in raw.columns}
    found = {}
    for col in (*kind.required, *kind.optional):
        name = next((n for n in (col, *kind.aliases.get(col, ())) if n in lower), None)
        if name is not None:
            found[col] = lower[name]
    if kind.name == "funding" and "funding_rate" not in found:
        found |= _freqtrade_funding(raw, lower, str(path))
    missing = [c for c in kind.required if c not in found]
    if missing:
        shown = ", ".join(map(str, list(raw.columns)[:12]))
        raise DataError(
            f"{path}: not {kind.name} data: missing column(s) {', '.join(missing)};"
            f" the file has {shown}"
        )
    renamed = raw.rename(columns={v: k for k, v in found.items()})
    optional = [c for c in kind.optional if c in found]
    return normalise_columns(
        renamed, str(path), where=where, columns=kind.required, optional=optional
    )


def _freqtrade_funding(raw: pd.DataFrame, lower: dict[str, str], source: str) -> dict[str, str]:
    """freqtrade's funding candles: the rate in ``open``, ``high``/``low``/``close`` 0."""
    if "open" not in lower:
        return {}
    others = [pd.to_numeric(raw[lower[c]], errors="coerce") for c in ("high", "low", "close")
              if c in lower]  # fmt: skip
    if any((col.fillna(0) != 0).any() for col in others):
        raise DataError(
            f"{source}: not funding data: no funding_rate column, and its open/high/low/close"
            " are prices (freqtrade's funding files hold the rate in open, the rest 0)"
        )
    return {"funding_rate": lower["open"]}


def _load(path: str | Path) -> tuple[pd.DataFrame, Callable[[int], str]]:
    """The file's rows and how to name row ``i`` in a message; an empty file is refused."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give one file")
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; nothing stored")
    raw = _read_any(path)
    if raw.empty:
        raise DataError(f"{path} holds no rows; nothing stored")
    return raw, _where(path)


def _where(path: Path) -> Callable[[int], str]:
    """How to name the row at index label ``i`` of ``path`` in a message."""
    if path.suffix.lower() in (".csv", ".txt"):
        return lambda i: f"{path} line {i + 2}"
    return lambda i: f"{path} row {i + 1}"


def normalise_columns(
    raw: pd.DataFrame,
    source: str,
    *,
    where: Callable[[int], str],
    columns: Sequence[str] = tuple(OHLCV[1:]),
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """``timestamp`` and ``columns`` (+ ``optional``) of ``raw`` as int64 ms and float64;
    ``where(i)`` names the row at index label ``i``. A required value must be a finite number;
    an optional one may be empty (NaN), never text or infinite."""
    lower = {str(c).strip().lower(): c for c in raw.columns}
    time_col = next((lower[n] for n in _TIME_NAMES if n in lower), None)
    if time_col is None:
        raise DataError(f"{source}: no time column (expected one of {', '.join(_TIME_NAMES)})")
    missing = [c for c in columns if c not in lower]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    stamps = _to_ms(raw[time_col], where)
    _refuse_implausible(raw[time_col], stamps, where)
    out = pd.DataFrame({"timestamp": stamps}, index=raw.index)  # labels name the rows later
    names = [*columns, *optional]
    cells = [raw[lower[c]] for c in names]
    values = [pd.to_numeric(c, errors="coerce").astype("float64").to_numpy() for c in cells]
    bad = np.column_stack(
        [
            ~np.isfinite(v) & (c.notna().to_numpy() if name in optional else True)
            for name, c, v in zip(names, cells, values, strict=True)
        ]
    )
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        at = int(np.flatnonzero(bad[row])[0])
        shown = cells[at].iloc[row]
        text = "empty or NaN" if pd.isna(shown) else f"{_shown(shown)}, not a finite number"
        raise DataError(f"{where(raw.index[row])}: {names[at]} is {text}")
    for name, column in zip(names, values, strict=True):
        out[name] = column
    return out


def _read_any(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pandas()
        if suffix in (".feather", ".arrow", ".ipc"):
            return feather.read_table(path).to_pandas()
        if suffix in (".csv", ".txt"):  # blank lines kept, then dropped, so line numbers hold
            return pd.read_csv(path, skip_blank_lines=False).dropna(how="all")
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path)
    except (pa.ArrowInvalid, OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read {path}: {first}") from None
    raise DataError(
        f"{path}: unknown file type {suffix!r}; use .parquet, .feather, .csv, .json or .jsonl"
    )


def _to_ms(col: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    """Epoch seconds or milliseconds, or datetimes, to int64 ms. Whether the column holds
    numbers or dates is decided by its first value, so a bad value further down is named
    itself (not mistaken for a date column whose first value cannot be read)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        stamps = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        _refuse_missing(col, stamps.isna().to_numpy(), where)
        return _dates_ms(col, stamps, where)
    numbers = pd.to_numeric(col, errors="coerce")
    if pd.api.types.is_numeric_dtype(col) or (len(col) and pd.notna(numbers.iloc[0])):
        floats = numbers.astype("float64").to_numpy()
        _refuse_missing(col, ~np.isfinite(floats), where)
        if pd.api.types.is_integer_dtype(numbers):  # exact, whatever their size
            values = numbers.astype("int64").to_numpy()
            return values * 1000 if len(values) and values.max() < _SECONDS_BELOW else values
        seconds = len(floats) and floats.max() < _SECONDS_BELOW
        ms = floats * 1000 if seconds else floats
        whole = np.rint(ms)
        _refuse_fraction(col, np.abs(ms - whole) > _MS_FRACTION, where)
        return whole.astype("int64")
    with warnings.catch_warnings():  # pandas warns when it parses element by element
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(col, utc=True, errors="coerce")
    _refuse_missing(col, parsed.isna().to_numpy(), where)
    return _dates_ms(col, parsed, where)


def _dates_ms(col: pd.Series, stamps: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    """UTC datetimes as int64 ms, read at their own resolution (no rounding first)."""
    raw = stamps.astype("int64").to_numpy()
    per_ms = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}[stamps.dt.unit]
    if per_ms is None:
        return raw * 1000
    _refuse_fraction(col, raw % per_ms != 0, where)
    return raw // per_ms


def _refuse_fraction(col: pd.Series, fraction: np.ndarray, where: Callable[[int], str]) -> None:
    """Raise naming the first time with a fraction of a millisecond: cutting it would move
    the bar onto the grid (12:00:00.5 stored as 12:00:00) where a time half a bar off is
    refused. A number's float error (seconds with three decimals) is far below the limit."""
    if fraction.any():
        row = int(np.flatnonzero(fraction)[0])
        raise DataError(f"{where(col.index[row])}: time value {_shown(col.iloc[row])} is not a "
                        "whole millisecond")  # fmt: skip


def _refuse_missing(col: pd.Series, bad: np.ndarray, where: Callable[[int], str]) -> None:
    """Raise naming the first time value that could not be read."""
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    value = col.iloc[row]
    text = "empty" if pd.isna(value) else f"{_shown(value)}, not a time"
    raise DataError(f"{where(col.index[row])}: time value is {text}")


def _refuse_implausible(col: pd.Series, stamps: np.ndarray, where: Callable[[int], str]) -> None:
    """Raise naming the first time that is no epoch ms of market data (before 2009 or after
    2099: a negative number, microseconds): it has no date and would break every later read."""
    bad = implausible(stamps)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where(col.index[row])}: time value {_shown(col.iloc[row])} is before 2009 or"
            " after 2099; give epoch seconds, epoch milliseconds or a date"
        )


def _shown(value: object) -> str:
    """A cell as the user wrote it: strings quoted, numbers plain (``inf``, not a numpy repr)."""
    return repr(value) if isinstance(value, str) else str(value)
