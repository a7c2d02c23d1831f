"""CFTC Commitments of Traders for CME Bitcoin and Ether: download, parse, store, bias.

``reports`` names the four report types and their fields, ``parse`` reads both spellings (the
yearly files' headers and the Socrata API's), ``release`` says when each report became public,
``store`` keeps raw and parsed copies in the lake, ``source`` downloads, ``bias`` reads it.
It judges at the caller's clock (a report is seen only once published) and trades nothing:
``strategies/`` and the signal filters use its bias.
"""

from cryptobot.core.lazy import surface

__all__, __getattr__, __dir__ = surface(
    __name__,
    names={
        "bias": ("BiasBook",),
        "reports": ("CATEGORY_LABELS", "ReportType"),
        "source": ("fetch_report", "import_file", "report_named"),
        "store": ("CotLake",),
    },
    modules=("bias",),
)
