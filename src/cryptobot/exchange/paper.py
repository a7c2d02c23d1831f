"""The paper broker: the trading interface on live prices, with simulated fills and an account
kept in the journal.

It wraps a read-only exchange (market data, contract specs) and never calls anything but its
read-only methods: no order leaves this module for a real venue. Orders fill by ``fills/``'s
rules on the bars of a price feed (``exchange.sim``: market orders at the next bar's open with
slippage, stops and take-profits by the backtest's exit rules, maker/taker fees per market,
funding, isolated liquidation), exactly as the replay exchange fills them on stored bars.

- **Prices**: by default the wrapped exchange's closed candles of ``setup.timeframe`` (1m) and
  its funding history; or any ``feed`` the caller gives (``BarFeed``: a callable returning the
  closed bars of a symbol between two times). An order placed now fills once the next bar has
  closed, at that bar's open.
- **Clock**: the caller's (``clock``; by default the wrapped exchange's ``now``). A clock that
  goes back is refused.
- **State**: the journal (``journal.paper``), so the account survives a restart: each call
  loads it, matches the bars that closed since, does its work and stores the result in one
  transaction. A process killed at any point leaves the last stored state; the bars it had not
  stored are matched again by the next call, so nothing is lost or booked twice.
- **Processes**: calls on one account take turns on a lock file beside the journal
  (``paper-<account>.lock``, ``flock``: released by the kernel even on ``kill -9``), held for the
  whole call, feed requests included; the journal connection is held only to read and to write.
  The lock is taken blocking: a call waits for another process's call to finish.
- **Cycles** (``batch``): a caller making several calls in one cycle (the composer: about five
  per bar) holds one session for all of them: the lock and one load at the start, every call
  on the state in memory (each on a copy, kept only when it succeeds: a failed call still
  changes nothing), and one transaction at the end storing all of it. A process killed inside
  the cycle leaves the state stored before it; another process waits for the whole cycle. Reads
  of fills and funding payments newer than the stored clock (the bars closed since) need no
  journal query in either mode: nothing stored can be that new.
- **Held** (``held``): a run that owns its journal (bars replayed through the broker) keeps it
  open for the whole run: each cycle's load and store then reuse the open database instead of
  opening the file twice per cycle (``data.catalog.held``: about 3x faster over replayed bars).
  No other process can open the journal meanwhile.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryptobot.core.account import AccountState, Balance, Fill, FundingPayment, Order
from cryptobot.core.errors import ConfigError
from cryptobot.core.market import Market
from cryptobot.core.timeframes import timeframe_ms
from cryptobot.data import catalog, locks
from cryptobot.exchange.base import Clock, Exchange, FundingRate, OhlcvRow, OpenInterest, Ticker
from cryptobot.exchange.simulated import Bar, SimSetup, SimulatedExchange, select
from cryptobot.fills.funding import funding_charges
from cryptobot.journal import paper as journal

if TYPE_CHECKING:
    from cryptobot.exchange.sim import SimAccount

#: (symbol, since, until) -> closed bars with open time >= since, closed by until, oldest first.
BarFeed = Callable[[str, int, int], Awaitable[list[Bar]]]
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
PRICE_LOOKBACK_BARS = 10  # how far back a new order looks for the last closed bar


class CandleFeed:
    """Closed candles and funding of a read-only exchange, as the bars orders match against."""

    def __init__(self, exchange: Exchange, timeframe: str) -> None:
        self.exchange, self.timeframe = exchange, timeframe
        self._tf_ms = timeframe_ms(timeframe)

    async def __call__(self, symbol: str, since: int, until: int) -> list[Bar]:
        rows = await self._candles(symbol, since, until)
        if not rows:
            return []
        stamps = np.array([since - 1, *(int(r[0]) for r in rows)], dtype=np.int64)
        funding = await self._funding(symbol, since - 1, until)
        charges = funding_charges(stamps, funding, None)[0][1:]  # after the last matched bar
        return [
            Bar(int(r[0]), *map(float, r[1:6]), float(c[0]), float(c[1]))
            for r, c in zip(rows, charges, strict=True)
        ]

    async def _candles(self, symbol: str, since: int, until: int) -> list[OhlcvRow]:
        out: list[OhlcvRow] = []
        cursor, limit = since, self.exchange.ohlcv_limit
        while cursor + self._tf_ms <= until:
            page = await self.exchange.fetch_ohlcv(symbol, self.timeframe, cursor, limit)
            closed = [r for r in page if r[0] >= cursor and r[0] + self._tf_ms <= until]
            out.extend(closed)
            if len(page) < limit or not closed:
                break
            cursor = int(closed[-1][0]) + 1
        return out

    async def _funding(self, symbol: str, since: int, until: int) -> dict[str, np.ndarray]:
        events: list[FundingRate] = []
        cursor, limit = since, self.exchange.funding_limit
        while True:
            page = await self.exchange.fetch_funding_history(symbol, cursor, limit)
            events.extend(e for e in page if cursor <= e.timestamp <= until)
            if len(page) < limit or not page or page[-1].timestamp >= until:
                break
            cursor = page[-1].timestamp + 1
        return {
            "timestamp": np.array([e.timestamp for e in events], dtype=np.int64),
            "funding_rate": np.array([e.funding_rate for e in events], dtype=np.float64),
        }


class PaperBroker(SimulatedExchange):
    """``TradingExchange`` on ``prices`` (read-only); the account named ``account`` lives in
    the journal of the data dir ``journal_dir``."""

    def __init__(
        self,
        prices: Exchange,
        *,
        journal_dir: Path,
        setup: SimSetup,
        account: str = "paper",
        clock: Clock | None = None,
        feed: BarFeed | None = None,
    ) -> None:
        if not ACCOUNT_NAME.match(account):
            raise ConfigError(f"paper account {account!r}: use 1-32 of A-Z a-z 0-9 _ -")
        self.setup = setup if setup.timeframe else replace(setup, timeframe="1m")
        self.id = prices.id
        self.ohlcv_limit, self.funding_limit = prices.ohlcv_limit, prices.funding_limit
        self.open_interest_limit = prices.open_interest_limit
        self.open_interest_max_days = prices.open_interest_max_days
        self.account = account
        self._prices = prices
        self._clock = clock or prices
        self._feed = feed or CandleFeed(prices, self.setup.timeframe or "1m")
        self._root = Path(journal_dir)
        self._markets: dict[str, Market] | None = None
        self._cycle: _JournalSession | None = None

    # ---- the market, from the wrapped exchange (read-only) -------------------------------
    async def now(self) -> int:
        return await self._clock.now()

    async def wait(self, seconds: float) -> None:
        """On the broker's clock: one that can be waited on (a replayed one, the prices'
        exchange) moves; any other tells real time, which passes by itself."""
        await (asyncio.sleep(seconds) if self.waits_in_real_time() else self._clock.wait(seconds))

    def waits_in_real_time(self) -> bool:
        """As its clock waits: a venue's says itself (a live exchange's prices wait in real
        time, so a trade run lets go of the journal over each wait, ``engine.trade._wait``); a
        bare clock with a ``wait`` is replayed; one without tells real time."""
        own = getattr(self._clock, "waits_in_real_time", None)
        return own() if own is not None else getattr(self._clock, "wait", None) is None

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        if self._markets is None or reload:
            self._markets = await self._prices.load_markets(reload)
        return self._markets

    async def fetch_tickers(self) -> dict[str, Ticker]:
        return await self._prices.fetch_tickers()

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int, limit: int
    ) -> list[OhlcvRow]:
        return await self._prices.fetch_ohlcv(symbol, timeframe, since, limit)

    async def fetch_funding_history(self, symbol: str, since: int, limit: int) -> list[FundingRate]:
        return await self._prices.fetch_funding_history(symbol, since, limit)

    async def fetch_open_interest_history(
        self, symbol: str, period: str, since: int, limit: int
    ) -> list[OpenInterest]:
        return await self._prices.fetch_open_interest_history(symbol, period, since, limit)

    async def close(self) -> None:
        await self._prices.close()

    # ---- the simulated account -----------------------------------------------------------
    def session(self) -> "_JournalSession | _CycleCall":
        return _JournalSession(self) if self._cycle is None else _CycleCall(self._cycle)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator["PaperBroker"]:
        """One cycle's calls on one session (the module's *Cycles*): stored together when the
        block ends without an error, not at all otherwise."""
        if self._cycle is not None:
            raise RuntimeError("a paper broker's batch is open already (one cycle at a time)")
        async with _JournalSession(self, cycle=True) as held:
            self._cycle = held
            try:
                yield self
            finally:
                self._cycle = None

    @contextmanager
    def held(self) -> Iterator["PaperBroker"]:
        """Its journal kept open until the block ends (the module's *Held*)."""
        with catalog.held(self._root):
            yield self

    async def bars(self, symbol: str, since: int, until: int) -> list[Bar]:
        return await self._feed(symbol, since, until)

    async def last_bar(self, symbol: str, now: int) -> Bar | None:
        bars = await self._feed(symbol, now - PRICE_LOOKBACK_BARS * self.bar_ms(symbol), now)
        good = [b for b in bars if b.valid]  # a bad bar from the feed is no price
        return good[-1] if good else None

    def bar_ms(self, symbol: str) -> int:
        return timeframe_ms(self.setup.timeframe or "1m")


class _JournalSession:
    """A call (or a cycle of calls: ``cycle``) on the stored account: the account's lock for
    all of it, the journal for the reads and for one write at the end of everything kept."""

    def __init__(self, broker: PaperBroker, *, cycle: bool = False) -> None:
        self._broker, self._cycle = broker, cycle
        self._root, self._name = broker._root, broker.account
        self._lock = locks.exclusive(self._root / f"paper-{self._name}.lock")
        self._kept = False
        self._orders: dict[str, Order] = {}  # placed or changed, not stored yet
        self._fills: list[Fill] = []
        self._payments: list[FundingPayment] = []
        self._balance: Balance | None = None  # after the last kept call that moved money
        self._known: set[str] | None = None  # a cycle's stored client order ids
        self.state: AccountState
        self.stored_clock = 0  # nothing stored happened at or after it

    async def __aenter__(self) -> "_JournalSession":
        self._lock.__enter__()
        try:
            if self._cycle:
                stored, self._known = journal.load_cycle(self._root, self._name)
            else:
                stored = journal.load(self._root, self._name)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self.state = stored if stored is not None else self._broker.setup.new_state()
        self.stored_clock = self.state.ledger.clock
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None and self._kept:
                journal.store(self._root, self._name, self.state, orders=self._orders.values(),
                              new_fills=self._fills, new_payments=self._payments,
                              snapshot=self._balance)  # fmt: skip
        finally:
            self._lock.__exit__(None, None, None)

    async def find_order(self, client_order_id: str) -> Order | None:
        kept = self._orders.get(client_order_id)
        if kept is not None or (self._known is not None and client_order_id not in self._known):
            return kept
        return journal.find_order(self._root, self._name, client_order_id)

    async def fills(self, symbol: str | None, since: int | None) -> list[Fill]:
        stored = [] if self._newer(since) else journal.fills(
            self._root, self._name, symbol=symbol, since=since)  # fmt: skip
        return [*stored, *select(self._fills, symbol, since)]

    async def payments(self, symbol: str | None, since: int | None) -> list[FundingPayment]:
        stored = [] if self._newer(since) else journal.payments(
            self._root, self._name, symbol=symbol, since=since)  # fmt: skip
        return [*stored, *select(self._payments, symbol, since)]

    def keep(self, account: "SimAccount") -> None:
        self._kept = True
        self.state = account.state
        self._orders.update(account.changed)
        self._fills.extend(account.fills)
        self._payments.extend(account.payments)
        if account.fills or account.payments:
            self._balance = account.balance()

    def _newer(self, since: int | None) -> bool:
        """Whether nothing stored can be at or after ``since``: a fill or a payment is booked
        at the open of a bar that closed by the clock the account had seen when stored."""
        return since is not None and since >= self.stored_clock


class _CycleCall:
    """One call inside a cycle: a copy of the cycle's state, handed back only when the call
    succeeds (a failed call leaves the cycle as it was)."""

    def __init__(self, held: _JournalSession) -> None:
        self._held = held
        self.state = held.state.working_copy()

    async def __aenter__(self) -> "_CycleCall":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def find_order(self, client_order_id: str) -> Order | None:
        return await self._held.find_order(client_order_id)

    async def fills(self, symbol: str | None, since: int | None) -> list[Fill]:
        return await self._held.fills(symbol, since)

    async def payments(self, symbol: str | None, since: int | None) -> list[FundingPayment]:
        return await self._held.payments(symbol, since)

    def keep(self, account: "SimAccount") -> None:
        self._held.keep(account)


__all__ = ["BarFeed", "CandleFeed", "PaperBroker"]
