"""A tripped circuit breaker's actions, carried out on the venue (``trade``'s start-up and every
reconcile cycle, after the cycle fed the venue's equity to the breaker: ``engine.reconcile``).

The breaker (``risk.breakers``) decides; this only does what it asked. The actions are the
ones its trip stored with it (``journal.breakers.trip_actions``: the ``breaker_events`` row of
the trip), or, for a trip the configured limits call for that no event has stored yet, the
ones ``risk.context.apply_event`` stores now. Whether positions are closed is the backtest
composer's rule (``engine.composer.EXIT_ACTIONS``: any exit action closes them), so a
backtest and a live account react to a trip alike:

- **daily** (``cancel_orders``, ``close_directional``): the opening orders (not reduce-only)
  canceled, every position closed by a reduce-only market order and its symbol's orders
  canceled (``trade --close``'s path). One-way mode holds one net position per symbol, each a
  directional bet, so every position is directional;
- **weekly** and **monthly** (``cancel_orders``, ``flatten_all``): every order canceled and
  every position closed. A monthly stop then refuses every order that is not reduce-only (the
  gate chain's ``circuit_breaker``) until the loss limits change; stops and closes still go;
- a **flash crash** (``exit_all``) and the **margin guard** (``reduce_positions``) close the
  positions too, as the backtest does.

Once per trip: the trip's key (what tripped and when) is journaled with the ``breaker`` event
once every action succeeded, so the next cycle does nothing more (a position opened by hand
during the block is the trader's); a cycle killed half-way, or an order the venue refused to
cancel, leaves the key unjournaled and the next cycle carries the rest out. A dry run stores
nothing (a trip judged on reading is not stored either: its actions wait for a real run).
"""

from typing import TYPE_CHECKING

from cryptobot.core.errors import CryptobotError
from cryptobot.engine.composer import EXIT_ACTIONS
from cryptobot.engine.reconcile_report import Difference
from cryptobot.journal.breakers import trip_actions
from cryptobot.risk.breakers import Action, BreakerState, Clock
from cryptobot.risk.context import apply_event, current_breaker

if TYPE_CHECKING:
    from cryptobot.engine.trade import TradeDesk


async def carry_out(desk: "TradeDesk", *, now: int) -> list[Difference]:
    """The tripped breaker's actions not carried out yet, done: one ``breaker`` difference
    (none while the breaker lets entries through, or once its trip's actions are done)."""
    state, actions = _in_force(desk, now=now)
    if not actions:
        return []
    key = f"{state.tripped_by}@{state.since}"
    if key in desk.journal.event_keys("breaker"):
        return []
    done, failed = await _act(desk, actions)
    message = (f"circuit breaker {state.mode} ({state.reason}): "
               f"{'; '.join(done) or 'nothing to cancel or close'}")  # fmt: skip
    if failed:
        message += f"; FAILED: {'; '.join(failed)} (the next cycle tries again)"
    return [Difference(kind="breaker", symbol="", client_order_id=None,
                       action=", ".join(a.value for a in actions), message=message,
                       failed=bool(failed), key=None if failed else key)]  # fmt: skip


def _in_force(desk: "TradeDesk", *, now: int) -> tuple[BreakerState, tuple[Action, ...]]:
    """The breaker now and the actions of its trip (none while entries are allowed)."""
    root, risk, account = desk.setup.root, desk.setup.risk, desk.setup.venue
    state = current_breaker(root, risk, now, account=account)
    if state.entries_allowed or state.since is None:
        return state, ()
    stored = trip_actions(root, account=account, ts=state.since, mode=state.mode.value)
    if stored is not None:
        return state, tuple(Action(a) for a in stored)
    if desk.send.dry:
        return state, ()
    return apply_event(root, Clock(now), risk, "trade: judged on reading", account=account)


async def _act(desk: "TradeDesk", actions: tuple[Action, ...]) -> tuple[list[str], list[str]]:
    """Orders canceled (all with ``flatten_all``, else the opening ones), then positions
    closed when an exit action asks for it; what was done and what failed."""
    done: list[str] = []
    failed: list[str] = []
    venue = desk.venue
    if Action.cancel_orders in actions:
        every = Action.flatten_all in actions
        for order in await venue.fetch_open_orders():
            if order.reduce_only and not every:
                continue
            try:
                await desk.send.cancel(order, parent_id=None, leg=None)
                done.append(f"canceled {order.symbol} {order.client_order_id}")
            except CryptobotError as exc:
                failed.append(f"cancel {order.symbol} {order.client_order_id}: {exc}")
    if EXIT_ACTIONS & set(actions):
        symbols = sorted({p.symbol for p in await venue.fetch_positions()})
        for out in await desk.close(symbols) if symbols else []:
            line = f"{out.symbol} {out.status}" + (f" ({out.reason})" if out.reason else "")
            (failed if out.failed else done).append(line)
    return done, failed


__all__ = ["carry_out"]
