"""The client order ids of a sized order's legs, and the leg an id belongs to.

Plain rules on text, kept in ``core`` so every layer reads ids the same way: sizing and the
backtest make them (``risk.orders``), ``trade`` sends them (``engine``), and the journal's round
trips (``journal.roundtrips``) read a fill's leg back from its id.
"""

#: legs one sized order may send more than once, numbered from the second order on
RESENT_LEGS = ("sl", "close")
#: the entry's own orders after its first (the maker-first executor's children, re-quotes and
#: reprices, ``engine.execution_plan``): ``<id>-e2``, ``<id>-e3``..; all of them the entry
ENTRY_ORDERS = "e"


def leg_order_id(client_order_id: str, leg: str, *, sent: int = 1) -> str:
    """The client order id of one leg of a sized order: deterministic from the order's id
    (``Intent.client_order_id``) and the leg (``sl``, ``tp1``.., ``add1``.., ``close``), so a
    retry of a leg can never place it twice. ``sent``: which order of a ``RESENT_LEGS`` leg
    this is. A venue refuses an id it has seen, open or done, so a stop that moves (breakeven,
    the trail) or grows, or a second close, is a new order under a new id: ``-sl``, then
    ``-sl2``, ``-sl3``..; all of them are that one leg (:func:`leg_of_order`). 27 + at most 8
    characters: within every venue's 36 (a close up to its 99th order, a stop its 99,999th)."""
    if sent > 1 and leg not in RESENT_LEGS:  # tp1 sent twice would read as tp12
        raise ValueError(f"leg {leg!r} is sent once; only {RESENT_LEGS} are sent again")
    leg_id = f"{client_order_id}-{leg}" if leg else client_order_id
    return leg_id if sent == 1 else f"{leg_id}{sent}"


def leg_of_order(order_id: str) -> str:
    """The id of the leg an order was sent for (:func:`leg_order_id` with ``sent=1``): what
    ``risk.orders.fill_order_ids`` names a fill by, whichever of the leg's orders filled
    (the entry's ``-e2``.. are the sized order's own id)."""
    head, _, tail = order_id.rpartition("-")
    leg = tail.rstrip("0123456789")
    if head and leg == ENTRY_ORDERS and tail != leg:
        return head
    return f"{head}-{leg}" if head and leg != tail and leg in RESENT_LEGS else order_id


__all__ = ["ENTRY_ORDERS", "RESENT_LEGS", "leg_of_order", "leg_order_id"]
