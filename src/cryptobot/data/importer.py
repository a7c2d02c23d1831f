"""Reading someone else's candle files: CSV, Parquet, freqtrade feather, JSON/JSONL.

Column names are matched case-insensitively; the time column may be called timestamp, date,
time, datetime, open_time or ts and may hold epoch seconds, epoch milliseconds, or datetimes
(naive ones are taken as UTC). Times are bar **open** times. A value that cannot be read (a
time that is not one, an empty, NaN or infinite price or volume) stops the import naming its row.
"""

import warnings
from collections.abc import Callable
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
from cryptobot.data.lake import OHLCV, Lake

_TIME_NAMES = ("timestamp", "date", "time", "datetime", "open_time", "ts")
_SECONDS_BELOW = 100_000_000_000  # epoch values below this are seconds (before 1973 in ms)


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
    check_symbol(symbol)
    timeframe_ms(timeframe)
    frame = read_candle_file(path)
    markets = lake.read_markets(exchange)
    if markets and symbol not in markets:
        raise UnknownSymbolError(f"{exchange} lists no contract {symbol} (stored markets)")
    written = lake.write_candles(
        exchange, symbol, timeframe, frame, now_ms=now_ms, source=f"import {path}"
    )
    report = lake.candle_report(exchange, symbol, timeframe)
    return {
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe,
        "read": len(frame),
        "new": written.new_rows,
        "changed": written.changed_rows,
        "total": written.total_rows,
        "gaps": report.gaps,
        "first": iso(report.first),
        "last": iso(report.last),
    }


def read_candle_file(path: str | Path) -> pd.DataFrame:
    """Load and normalise a candle file; raises :class:`DataError` naming the first bad row
    (``line N`` of a CSV, counting the header as line 1; ``row N`` of other files) and why."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give one candle file")
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    raw = _read_any(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return normalise_columns(raw, str(path), where=lambda i: f"{path} line {i + 2}")
    return normalise_columns(raw, str(path), where=lambda i: f"{path} row {i + 1}")


def normalise_columns(
    raw: pd.DataFrame, source: str, *, where: Callable[[int], str]
) -> pd.DataFrame:
    """The lake's columns from ``raw``; ``where(i)`` names the row at index label ``i``."""
    lower = {str(c).strip().lower(): c for c in raw.columns}
    time_col = next((lower[n] for n in _TIME_NAMES if n in lower), None)
    if time_col is None:
        raise DataError(f"{source}: no time column (expected one of {', '.join(_TIME_NAMES)})")
    missing = [c for c in OHLCV[1:] if c not in lower]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame({"timestamp": _to_ms(raw[time_col], where)})
    values = {c: pd.to_numeric(raw[lower[c]], errors="coerce").astype("float64") for c in OHLCV[1:]}
    bad = np.column_stack([~np.isfinite(v.to_numpy()) for v in values.values()])
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        col = OHLCV[1:][int(np.flatnonzero(bad[row])[0])]
        shown = raw[lower[col]].iloc[row]
        text = "empty or NaN" if pd.isna(shown) else f"{_shown(shown)}, not a finite number"
        raise DataError(f"{where(raw.index[row])}: {col} is {text}")
    for col, column in values.items():
        out[col] = column.to_numpy()
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
        return stamps.dt.as_unit("ms").astype("int64").to_numpy()
    numbers = pd.to_numeric(col, errors="coerce")
    if pd.api.types.is_numeric_dtype(col) or (len(col) and pd.notna(numbers.iloc[0])):
        _refuse_missing(col, ~np.isfinite(numbers.astype("float64").to_numpy()), where)
        values = numbers.astype("int64").to_numpy()
        return values * 1000 if len(values) and values.max() < _SECONDS_BELOW else values
    with warnings.catch_warnings():  # pandas warns when it parses element by element
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(col, utc=True, errors="coerce")
    _refuse_missing(col, parsed.isna().to_numpy(), where)
    return parsed.dt.as_unit("ms").astype("int64").to_numpy()


def _refuse_missing(col: pd.Series, bad: np.ndarray, where: Callable[[int], str]) -> None:
    """Raise naming the first time value that could not be read."""
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    value = col.iloc[row]
    text = "empty" if pd.isna(value) else f"{_shown(value)}, not a time"
    raise DataError(f"{where(col.index[row])}: time value is {text}")


def _shown(value: object) -> str:
    """A cell as the user wrote it: strings quoted, numbers plain (``inf``, not a numpy repr)."""
    return repr(value) if isinstance(value, str) else str(value)
