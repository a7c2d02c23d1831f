"""Reading someone else's candle files: CSV, Parquet, freqtrade feather, JSON/JSONL.

Column names are matched case-insensitively; the time column may be called timestamp, date,
time, datetime, open_time or ts and may hold epoch seconds, epoch milliseconds, or datetimes
(naive ones are taken as UTC). Times are bar **open** times.
"""

from pathlib import Path

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
    otherwise start a series nobody can fetch into). ``now_ms`` is the wall clock: bars dated
    later than one bar after it are refused. ``changed`` counts stored bars whose values the
    file replaced (also kept in the series' revision log); an identical re-import says 0.
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
    """Load and normalise a candle file; raises :class:`DataError` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    raw = _read_any(path)
    return normalise_columns(raw, str(path))


def normalise_columns(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    lower = {str(c).strip().lower(): c for c in raw.columns}
    time_col = next((lower[n] for n in _TIME_NAMES if n in lower), None)
    if time_col is None:
        raise DataError(f"{source}: no time column (expected one of {', '.join(_TIME_NAMES)})")
    missing = [c for c in OHLCV[1:] if c not in lower]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame({"timestamp": _to_ms(raw[time_col], source)})
    for col in OHLCV[1:]:
        values = pd.to_numeric(raw[lower[col]], errors="coerce")
        out[col] = values.astype("float64").to_numpy()
    return out


def _read_any(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pandas()
        if suffix in (".feather", ".arrow", ".ipc"):
            return feather.read_table(path).to_pandas()
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
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


def _to_ms(col: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        stamps = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        return pd.Series(stamps.dt.as_unit("ms").astype("int64").to_numpy())
    if pd.api.types.is_numeric_dtype(col):
        if col.isna().any():
            raise DataError(f"{source}: empty values in the time column")
        values = col.astype("int64")
        return values * 1000 if len(values) and values.max() < _SECONDS_BELOW else values
    parsed = pd.to_datetime(col, utc=True, errors="coerce")
    if parsed.isna().any():
        bad = col[parsed.isna()].iloc[0]
        raise DataError(f"{source}: cannot read time value {bad!r}")
    return pd.Series(parsed.dt.as_unit("ms").astype("int64").to_numpy())
