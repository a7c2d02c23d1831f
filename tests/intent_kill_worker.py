"""``cryptobot trade`` killed by ``kill -9`` (SIGKILL, sent to itself) right after its first
intent is on disk and before that request leaves: the one moment the write-ahead intent must
cover alone. Everything else is the real command; the arguments are ``cryptobot``'s.

    intent_kill_worker.py trade ORDERS -f jsonl --taker --live
"""

import os
import signal

from cryptobot.journal import intents

_append = intents.IntentLog.append


def _append_then_die(self: intents.IntentLog, intent: intents.Intent) -> None:
    _append(self, intent)  # written and fsync'd
    os.kill(os.getpid(), signal.SIGKILL)


intents.IntentLog.append = _append_then_die  # type: ignore[method-assign]

from cryptobot.cli.app import run  # noqa: E402

run()
