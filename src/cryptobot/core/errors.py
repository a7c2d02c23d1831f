"""Errors a user can act on.

Anything derived from :class:`CryptobotError` is printed by the CLI as one line on stderr and
exits 1; other exceptions are bugs and keep their traceback (shown with ``-v``).
"""


class CryptobotError(Exception):
    """An error caused by input, configuration or the environment, with a message to act on."""


class ConfigError(CryptobotError):
    """The configuration is invalid; the message names the key, the value and what is allowed."""


class DataError(CryptobotError):
    """Input data (a file, a record, a stored partition) is malformed or inconsistent."""


class OutOfOrder(DataError):
    """An event dated before what a stored state already holds (the circuit breaker's day):
    refused, the state unchanged; a caller that only feeds it a reading may go on without."""


class UnknownSymbolError(CryptobotError):
    """A symbol the exchange (or the stored markets) does not list."""


class ExchangeFailure(CryptobotError):
    """The exchange kept failing after the retries the policy allows."""
