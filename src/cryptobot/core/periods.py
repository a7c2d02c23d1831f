"""The rows that end each calendar period (UTC day, hour) of a rising time column.

A run's metrics take the equity's last value of each day and its record the last of each hour
(``backtest.metrics``, ``journal.backtests``). The periods are found by searching the column
for each period's end, not by dividing a million bar times into a million period numbers and
comparing neighbours: those were two fresh arrays of 8 MB and 1 MB for a million bars, and
fresh memory is most of what such a pass costs.
"""

import numpy as np


def period_ends(stamps: np.ndarray, period_ms: int) -> np.ndarray:
    """Positions of the last row of each period of ``period_ms`` (periods start at multiples
    of it, as ``stamps // period_ms`` counts them) that holds any row, in order. ``stamps``:
    int64 ms, rising (equal times allowed)."""
    if len(stamps) == 0:
        return np.empty(0, np.intp)
    first, last = int(stamps[0]) // period_ms, int(stamps[-1]) // period_ms
    if last - first >= len(stamps):  # fewer rows than periods: the division is the smaller pass
        numbers = stamps // period_ms
        return np.flatnonzero(np.append(numbers[1:] != numbers[:-1], True))
    edges = np.arange(first + 1, last + 2, dtype=np.int64) * period_ms
    ends = np.searchsorted(stamps, edges, side="left") - 1
    return ends[np.append(True, ends[1:] != ends[:-1])]  # a period without rows repeats one
