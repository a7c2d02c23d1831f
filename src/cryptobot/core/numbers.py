"""Finite numbers at every edge: flags, records, files.

``float("nan")`` and ``float("inf")`` parse without complaint, and NaN then slips through every
``<``/``>`` check (each comparison is False), so a NaN equity or entry silently disables the
limit it meets. Every number a user or a file hands in passes through :func:`finite` first.
"""

import json
import math
from typing import Any

MAX_SLIPPAGE_BPS = 1_000.0  # a fill 10 % off its price is another market, not slippage
MAX_UNITS = 1e12  # base units a --units run trades: more than any market lists, still finite


def finite(
    value: Any,
    *,
    name: str,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> float:
    """``value`` as a finite float, above ``gt`` / at least ``ge`` / at most ``le``; else
    ValueError naming ``name`` and the value, worded for a trader."""
    if value is None or (isinstance(value, str) and not value.strip()):  # null, an empty cell
        raise ValueError(f"{name} is missing")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {short(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a float's range (JSON and CSV allow one)
        raise ValueError(f"{name} must be a finite number, got {short(value)}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {short(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {short(value)}")
    if gt is not None and not number > gt:
        bound = "positive" if gt == 0 else f"greater than {gt:g}"
        raise ValueError(f"{name} must be {bound}, got {_beside(number, gt)}")
    if ge is not None and not number >= ge:
        bound = "zero or more" if ge == 0 else f"at least {ge:g}"
        raise ValueError(f"{name} must be {bound}, got {_beside(number, ge)}")
    if le is not None and not number <= le:
        raise ValueError(f"{name} must be at most {le:g}, got {_beside(number, le)}")
    return number


def _beside(number: float, bound: float) -> str:
    """``number`` for a message beside ``bound``: 6 digits, or all of them where 6 would print
    the bound itself ("at most 1e+12, got 1e+12" for 1.0000001e12)."""
    return repr(number) if number != bound and f"{number:g}" == f"{bound:g}" else f"{number:g}"


def record_number(
    value: Any,
    *,
    name: str,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> float:
    """A number from a JSON or Parquet record, where a number has its own type: the string
    ``"1_0"`` or ``" 12.5 "`` is text, not a number (Python's ``float`` would read both), so
    it is refused. CSV cells are all text: the CSV reader turns the cells spelled as JSON
    numbers into numbers before they get here."""
    if isinstance(value, str) and value.strip():
        raise ValueError(f"{name} must be a number, got {short(value)} (text, not a number)")
    return finite(value, name=name, gt=gt, ge=ge, le=le)


def strict_json(text: str | bytes) -> Any:
    """``text`` parsed as strict JSON: ValueError for ``NaN``/``Infinity`` and for a number
    too large for a float (``1e400`` parses to ``inf`` otherwise), as strict parsers refuse
    them. For files this program wrote and a hand may have edited (intents, run rows)."""
    return json.loads(text, parse_constant=_not_json, parse_float=_finite_float)


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a finite number")
    return number


def short(value: Any) -> str:
    """A figure for a message: floats to 6 significant digits (``1e+308``, not 309 digits),
    anything else as its repr cut to 40 characters."""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def plain(value: Any, *, digits: int | None = None) -> Any:
    """Plain JSON values, recursively: numpy scalars and arrays to Python, NaN and +-infinity
    to None (strict JSON has neither), floats to ``digits`` significant digits when given."""
    if isinstance(value, dict):
        return {str(k): plain(v, digits=digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, digits=digits) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalars and arrays
        return plain(value.tolist(), digits=digits)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}") if digits else value
    return value
