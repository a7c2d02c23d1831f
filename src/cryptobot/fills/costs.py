"""What a fill costs: fees, slippage, the liquidation fee and the limit rule, as one record.

The backtest, the replay exchange and the paper broker all read these settings (``fees`` and
``backtest.*`` in the config), so a trade costs the same wherever it is simulated.
``Costs.array`` is the layout the compiled functions of ``fills.model`` read (the ``C_*``
indices); this module loads neither numba nor the settings schema, so a venue that only serves
candles stays light.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cryptobot.core.market import Market
    from cryptobot.core.settings import Settings

# positions in ``Costs.array()``
C_TAKER, C_MAKER, C_SLIPPAGE, C_SLIPPAGE_VOLUME, C_LIQUIDATION_FEE, C_THROUGH = range(6)


@dataclass(frozen=True)
class Costs:
    taker: float = 0.0
    maker: float = 0.0
    slippage_bps: float = 0.0
    slippage_bps_per_pct_volume: float = 0.0
    liquidation_fee: float = 0.0
    limit_through: bool = False

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Costs":
        """The configured costs: the default fees (``fees``, where a market states none) and
        the backtest's slippage, liquidation fee and limit rule."""
        b = settings.backtest
        return cls(
            taker=settings.fees.taker,
            maker=settings.fees.maker,
            slippage_bps=b.slippage_bps,
            slippage_bps_per_pct_volume=b.slippage_bps_per_pct_volume,
            liquidation_fee=b.liquidation_fee,
            limit_through=b.limit_fill == "through",
        )

    def for_market(self, market: "Market | None") -> "Costs":
        """These costs with the market's own maker/taker fees where it states them (as the
        exchange reports them in ``load_markets``): a venue charges each market its own."""
        if market is None:
            return self
        return replace(
            self,
            taker=self.taker if market.taker is None else market.taker,
            maker=self.maker if market.maker is None else market.maker,
        )

    def array(self) -> np.ndarray:
        return np.array(
            [
                self.taker,
                self.maker,
                self.slippage_bps,
                self.slippage_bps_per_pct_volume,
                self.liquidation_fee,
                float(self.limit_through),
            ]
        )


__all__ = [
    "C_LIQUIDATION_FEE",
    "C_MAKER",
    "C_SLIPPAGE",
    "C_SLIPPAGE_VOLUME",
    "C_TAKER",
    "C_THROUGH",
    "Costs",
]
