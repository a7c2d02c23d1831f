"""Where crowd data comes from: a small protocol for a vendor of series, and the ones we have."""

#: The folder Fear & Greed values are filed under (alternative.me's index).
FEAR_GREED_SOURCE = "alternative_me"
