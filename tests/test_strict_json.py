"""Files this program writes and a hand may edit (trade's intents, backtest run rows) are read
as strict JSON: ``NaN``, ``Infinity`` and a number too large for a float (``1e400``, which
``json.loads`` turns into ``inf``) are refused, never taken in as a quantity or a figure."""

import json
import math

import pytest

from cryptobot.core.account import OrderRequest
from cryptobot.core.numbers import strict_json
from cryptobot.journal.intents import Intent, IntentLog, IntentNotDurable


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": -Infinity}', '{"a": 1e400}', "[-1e999]"])
def test_a_number_no_strict_parser_takes_is_refused(text):
    assert not math.isfinite(json.loads(text)["a"] if "{" in text else json.loads(text)[0])
    with pytest.raises(ValueError):
        strict_json(text)


def test_finite_numbers_and_text_read_as_json_does():
    text = '{"a": 1.5, "b": [1, -2e-3, null, "x"], "c": 12345678901234567890}'
    assert strict_json(text) == json.loads(text)


def _intent(amount: float) -> Intent:
    req = OrderRequest(symbol="BTC/USDT:USDT", type="market", side="buy", amount=amount,
                       client_order_id="cb-json00000000000000000001")  # fmt: skip
    return Intent.of(req, venue="binanceusdm", parent_id="cb-json00000000000000000001",
                     leg="entry", strategy="manual", ts=1)  # fmt: skip


def test_an_intent_line_with_an_overflowing_amount_is_not_an_intent(tmp_path):
    log = IntentLog(tmp_path, "binanceusdm")
    log.append(_intent(0.02))
    line = _intent(0.02).line().replace(b'"amount": 0.02', b'"amount": 1e400')
    log.path.write_bytes(log.path.read_bytes() + line)
    assert [i.amount for i in log.read()] == [0.02]


def test_an_intent_that_no_line_can_hold_is_not_durable(tmp_path):
    with pytest.raises(IntentNotDurable, match="cannot be written"):
        IntentLog(tmp_path, "binanceusdm").append(_intent(math.inf))
