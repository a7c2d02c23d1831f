"""CFTC Commitments of Traders for CME Bitcoin and Ether: download, parse, store, bias.

``reports`` names the four report types and their fields, ``parse`` reads both spellings (the
yearly files' headers and the Socrata API's), ``release`` says when each report became public,
``store`` keeps raw and parsed copies in the lake, ``source`` downloads, ``bias`` reads it.
"""
