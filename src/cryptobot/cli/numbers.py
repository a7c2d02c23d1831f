"""Numeric flag parsers: finite numbers with the bound the help text states.

Click's FLOAT accepts ``nan`` and ``inf``, and its ranges let NaN through (every comparison with
NaN is False), so every numeric flag and argument of every command parses through one of these
(``typer.Option(parser=POSITIVE)``). A bad value is a usage error (exit 2) naming the flag.
"""

from collections.abc import Callable

import typer

from cryptobot.core.numbers import finite

Parser = Callable[[str], float]


def number(*, gt: float | None = None, ge: float | None = None, le: float | None = None) -> Parser:
    """A parser for a finite float above ``gt`` (strictly) or at least ``ge``, at most ``le``."""

    def parse(value: str) -> float:
        try:
            return finite(value, name="value", gt=gt, ge=ge, le=le)
        except ValueError as exc:
            raise typer.BadParameter(str(exc).removeprefix("value ")) from None

    return parse


FINITE = number()
POSITIVE = number(gt=0)  # prices, amounts, risk: zero means nothing to trade
NON_NEGATIVE = number(ge=0)  # fees, slippage, minutes where 0 means "off"
FEE_RATE = number(ge=0, le=0.01)  # a rate per fill, as config fees.taker: 1 % or less
PERCENT = number(gt=0, le=100)  # a share of the account: more than all of it is a typo
