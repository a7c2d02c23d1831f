"""Pictures and pages for people: setup charts now, the performance report later.

matplotlib draws everything (PNG files, and the same PNGs inlined in self-contained HTML), so
one library serves both and a page opens without network or scripts. It is imported only by
the functions that draw, never at CLI start-up. It draws what it is given and decides nothing.
"""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "cot_chart": ("history_page",),
        "setup_charts": ("write_setup_charts",),
        "text": ("price_text", "reasons_text"),
    },
)
