"""A simulated venue's call works on ``AccountState.working_copy`` and keeps it only if the call
succeeds: a change to the copy must never reach the state it came from."""

import copy
import dataclasses

from cryptobot.core.account import AccountState, Book, Ledger, Order


def _state() -> AccountState:
    order = Order(id="1", client_order_id="c1", timestamp=1, updated=1, symbol="X/USDT:USDT",
                  type="limit", side="buy", amount=1.0, price=10.0, trigger_price=None,
                  reduce_only=False, post_only=True, status="open", filled=0.0, average=None,
                  fee=0.0, liquidity="maker")  # fmt: skip
    return AccountState(ledger=Ledger(currency="USDT", deposited=100.0, wallet=100.0),
                        books={"X/USDT:USDT": Book("X/USDT:USDT", 5.0, "isolated")},
                        orders={"c1": order})  # fmt: skip


def test_a_change_to_the_working_copy_never_reaches_the_original():
    state = _state()
    before = copy.deepcopy(state)
    work = state.working_copy()
    work.ledger.wallet -= 7.0
    work.ledger.sequence += 1
    work.books["X/USDT:USDT"].contracts = 3.0
    work.books["Y/USDT:USDT"] = Book("Y/USDT:USDT", 2.0, "cross")
    work.orders.pop("c1")
    assert state == before
    assert work == dataclasses.replace(work)  # still a whole state


def test_the_working_copy_equals_a_deep_copy_and_every_field_is_a_plain_value():
    """What makes a one-level copy enough: the ledger's and the books' fields hold no
    containers, and orders are frozen."""
    state = _state()
    assert state.working_copy() == copy.deepcopy(state)
    for record in (state.ledger, *state.books.values()):
        for f in dataclasses.fields(record):
            assert isinstance(getattr(record, f.name), (str, int, float, type(None)))
    assert Order.__dataclass_params__.frozen
