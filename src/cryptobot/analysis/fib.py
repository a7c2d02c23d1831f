"""Fibonacci retracements of an impulse leg.

A leg runs from ``start`` (where the impulse began) to ``end`` (how far it has reached); the
retracement r sits ``r`` of the way back: ``end - r * (end - start)``. The same formula serves
bullish legs (start low, end high: levels below the high) and bearish ones.
"""

from collections.abc import Sequence


def retracements(start: float, end: float, levels: Sequence[float]) -> dict[float, float]:
    return {r: end - r * (end - start) for r in levels}


def zone(start: float, end: float, levels: Sequence[float]) -> tuple[float, float]:
    """The price band between the shallowest and the deepest retracement (bottom, top)."""
    a, b = (end - r * (end - start) for r in (min(levels), max(levels)))
    return (a, b) if a <= b else (b, a)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float] | None:
    """The common part of two (bottom, top) bands, or None when they do not meet."""
    bottom, top = max(a[0], b[0]), min(a[1], b[1])
    return (bottom, top) if bottom <= top else None
