"""How prices and a setup's reasons read for people: one spelling for tables and charts."""

from typing import Any

import numpy as np


def price_text(value: float) -> str:
    """8 significant digits, never an exponent: 0.00001234 and 90000.12 as written, so a
    $0.00001 market reads as well as a $90,000 one."""
    return np.format_float_positional(value, precision=8, fractional=False, trim="-")


def reasons_text(reasons: dict[str, Any]) -> str:
    """``key=value; ...`` of the flat reasons; times and nested detail (every Fib level) stay
    in the JSON record."""
    parts = []
    for key, value in reasons.items():
        if value is None or value == [] or key.endswith("_ts") or isinstance(value, dict):
            continue
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, list):
            value = ",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)
