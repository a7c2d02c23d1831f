"""What goes wrong on an emulated venue, on demand, and the log of every request it served.

Both venues (Binance USDⓈ-M, Bitget USDT-M) take the same switches, so one chaos test can be
run against either: the HTTP handler (:mod:`serving`) applies the per-request faults, the
matching engine (:mod:`matching`) the per-order ones."""

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """What goes wrong, and how often (``rate`` is the chance per request).

    Per request (``kinds``): 429 and 418 with Retry-After, 500/502/503, ``slow`` (the request
    waits ``slow_s`` before it is processed: an order still lands after the client gave up),
    ``late`` (processed at once, answered after ``slow_s``: the client times out on an order
    that exists), ``drop`` (processed, then the connection is closed without an answer: the
    response is lost after the order was accepted), ``malformed`` (a truncated JSON body).
    Only requests to ``paths`` fail (a prefix each; ``""`` matches every path; none named, none
    fails), and of those only the HTTP ``methods`` named (none named: every method; ``PUT``
    alone faults Binance's amend, not the look-ups on the same path). Per order (the matching
    engine reads these): ``partial`` is the chance that an order's first fill is only
    ``partial_share`` of it (the rest fills at the next tick) and every new order is reported
    "not found" (the venue's code) by its first ``not_found`` lookups."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500")  # 429 418 500 502 503 slow late malformed drop
    retry_after_s: int = 1
    slow_s: float = 2.0
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    seed: int = 7
    first: int = 0  # the first N requests to each path fail for sure (then ``rate`` decides)
    partial: float = 0.0
    partial_share: float = 0.5
    not_found: int = 0
    rng: random.Random = field(init=False)
    seen: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def pick(self, path: str, method: str = "GET") -> str | None:
        if not any(path.startswith(p) for p in self.paths):
            return None
        if self.methods and method not in self.methods:
            return None
        self.seen[path] = self.seen.get(path, 0) + 1
        if self.seen[path] <= self.first:
            return self.rng.choice(self.kinds)
        if not self.rate:
            return None
        return self.rng.choice(self.kinds) if self.rng.random() < self.rate else None


@dataclass
class Hit:
    t: float
    path: str
    params: dict[str, Any]
    outcome: str  # "ok" or the fault kind
    retry_after: int | None = None
    method: str = "GET"
    status: int | None = None  # what the route answered (None: faulted before routing)
