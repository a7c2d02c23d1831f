"""The one matching model: how an order fills against a bar (``model``), what it costs
(``costs``), when funding is paid (``funding``), and where the venue liquidates a position
(``liquidation``, with the maintenance brackets of ``brackets``).

Backtest, paper and replay all fill through these functions. They take prices and settings
and return prices and amounts: no venue, no account, no clock, no sizing policy."""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "brackets": ("Bracket", "bracket_for", "fallback", "for_market", "from_tiers"),
        "costs": ("Costs",),
        "funding": ("funding_charges", "funding_marks"),
        "liquidation": ("Liquidation", "Venue", "liquidation_price", "margin_left_pct", "venue_of"),
    },
    modules=("brackets", "costs", "model"),
)
