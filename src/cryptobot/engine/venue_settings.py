"""The margin mode and leverage a venue has per symbol, as far as ``trade`` set them.

Setting them costs two requests (and two journal rows) before an entry may leave, and the
venue keeps them: a run sets a symbol's only when they differ from what a run of the same
``TradeSetup`` set last. The ``trade`` command makes one setup per run, so each run sets every
symbol's once; a loop that keeps its setup (the daemon, a bench) sets them once per symbol
while it lives. What it does not see: a margin mode or leverage changed by hand on the venue
while it lives (the venue's value then stands until a run of the setup wants another one).
A refused setting forgets the symbol (the venue's state is not known then).
"""

import math
from dataclasses import dataclass, field
from typing import Any

MARGIN_MODE, LEVERAGE = "set_margin_mode", "set_leverage"


@dataclass
class VenueSettings:
    """What was set, by symbol and setting (``MARGIN_MODE``, ``LEVERAGE``)."""

    known: dict[tuple[str, str], Any] = field(default_factory=dict)

    def needed(self, symbol: str, *, margin_mode: str, leverage: float) -> list[tuple[str, Any]]:
        """The settings to send for an entry on ``symbol``, in order (margin mode first)."""
        wanted = ((MARGIN_MODE, margin_mode), (LEVERAGE, leverage))
        return [(action, value) for action, value in wanted
                if not _same(self.known.get((symbol, action)), value)]  # fmt: skip

    def set(self, symbol: str, action: str, value: Any) -> None:
        """The venue accepted ``action`` at ``value``."""
        self.known[(symbol, action)] = value

    def forget(self, symbol: str) -> None:
        for action in (MARGIN_MODE, LEVERAGE):
            self.known.pop((symbol, action), None)


def _same(known: Any, value: Any) -> bool:
    if isinstance(known, float | int) and isinstance(value, float | int):
        return math.isclose(known, value, rel_tol=0, abs_tol=1e-12)
    return known is not None and known == value


__all__ = ["LEVERAGE", "MARGIN_MODE", "VenueSettings"]
