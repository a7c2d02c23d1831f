"""TA-Lib, imported without its pandas and polars wrappers.

``talib/__init__`` imports pandas (0.15-0.2 s) when it is installed, only to wrap every function
so that a pandas Series in gives a Series out. cryptobot passes NumPy arrays everywhere and
wraps results itself (``indicators``), so TA-Lib is imported here with pandas and polars
hidden: a backtest of the reference strategy then never loads pandas. Import ``talib`` from
this module; if another import got to TA-Lib first, its module is used as it is.
"""

import sys

_HIDDEN = [name for name in ("pandas", "polars") if name not in sys.modules]
for _name in _HIDDEN:
    sys.modules[_name] = None  # type: ignore[assignment]  # import reads it as not installed
try:
    import talib
finally:
    for _name in _HIDDEN:
        del sys.modules[_name]

__all__ = ["talib"]
