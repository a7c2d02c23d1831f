"""Pictures and pages for people: setup charts now, the performance report later.

matplotlib draws everything (PNG files, and the same PNGs inlined in self-contained HTML), so
one library serves both and a page opens without network or scripts. It is imported only by
the functions that draw, never at CLI start-up.
"""
