"""``fetcher.missing_spans``: what a fetch asks for, given what is stored (the emulator tests
run it end to end; these pin its rule on a grid and on funding's irregular times)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.data.fetcher import missing_spans
from cryptobot.data.series import FUNDING_HOLE_MS

STEP = 300_000
HOUR = 3_600_000


@given(st.sets(st.integers(0, 60)), st.integers(0, 60), st.integers(0, 60))
def test_the_spans_hold_exactly_the_grid_times_missing_from_the_window(stored, a, b):
    start, end = min(a, b) * STEP, max(a, b) * STEP
    times = np.array(sorted(stored), dtype="int64") * STEP
    spans = missing_spans(times, start=start, end=end, step=STEP)
    asked = [t for lo, hi in spans for t in range(lo, hi + 1, STEP)]
    wanted = [t for t in range(start, end + 1, STEP) if t not in set(times.tolist())]
    assert asked == wanted  # each once, in order, and spans never touch
    assert all(lo % STEP == 0 and hi % STEP == 0 for lo, hi in spans)


def test_funding_settled_every_8h_is_asked_only_where_one_is_lost():
    settled = np.array([0, 8, 16, 24, 40, 48], dtype="int64") * HOUR  # 32h lost
    start = 3 * HOUR  # between two settlements: nothing before it is missing
    spans = missing_spans(settled, start=start, end=50 * HOUR, step=1000, widest=FUNDING_HOLE_MS)
    assert spans == [(24 * HOUR + 1000, 40 * HOUR - 1000), (48 * HOUR + 1000, 50 * HOUR)]
    late = settled + np.array([0, 0, 0, 30_000, 0, 0])  # a stamp half a minute late
    assert missing_spans(late, start=0, end=24 * HOUR + 30_000, step=1000,
                         widest=FUNDING_HOLE_MS) == []  # fmt: skip
    assert missing_spans(settled[:0], start=start, end=9 * HOUR, step=1000) == [(start, 9 * HOUR)]


def test_an_earlier_start_back_fills_a_4h_contract_by_its_own_interval():
    """A leading span is asked when a settlement can be missing before the first stored one:
    one interval of the series away (its first step), not a fixed 8 h (review finding)."""
    every4h = np.array([8, 12, 16, 20], dtype="int64") * HOUR
    spans = missing_spans(every4h, start=4 * HOUR, end=21 * HOUR, step=1000,
                          widest=FUNDING_HOLE_MS)  # fmt: skip
    assert spans == [(4 * HOUR, 8 * HOUR - 1000), (20 * HOUR + 1000, 21 * HOUR)]
    every8h = every4h[::2]  # 8h and 16h: 4h before the first is no missing settlement
    assert missing_spans(every8h, start=4 * HOUR, end=17 * HOUR, step=1000,
                         widest=FUNDING_HOLE_MS) == [(16 * HOUR + 1000, 17 * HOUR)]  # fmt: skip


def test_top_ranks_no_infinite_or_nan_volume():
    """A venue answering "inf" or "1e400" (read as inf) put that market first."""
    from cryptobot.core.market import Market
    from cryptobot.core.settings import UniverseSettings
    from cryptobot.data.source import Ticker
    from cryptobot.data.universe import top_symbols

    def market(base: str) -> Market:
        return Market(symbol=f"{base}/USDT:USDT", id=f"{base}USDT", base=base, quote="USDT",
                      settle="USDT", type="swap", linear=True, active=True, contract_size=1.0,
                      tick_size=0.1, step_size=0.001, min_qty=0.001, min_notional=5.0,
                      max_leverage=100.0, maker=0.0002, taker=0.0005)  # fmt: skip

    volumes = {"BTC": 5e9, "ETH": float("nan"), "LTC": float("inf"), "XRP": 1e8}
    markets = {f"{b}/USDT:USDT": market(b) for b in volumes}
    tickers = {s: Ticker(s, 1.0, volumes[m.base], None) for s, m in markets.items()}
    rules = UniverseSettings(quote="USDT", exclude_bases=["USDC"], min_quote_volume_24h=0.0)
    ranked = top_symbols(markets, tickers, 4, rules)
    assert ranked == ["BTC/USDT:USDT", "XRP/USDT:USDT"]


def test_a_yaml_alias_bomb_in_the_config_is_one_short_line(tmp_path):
    """Nested anchors under a known key: the error repeated the expanded value (254 MB on
    stderr, 1.3 GB of memory, 27 s for one more level than this)."""
    from tests.conftest import Cli

    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for name, inner in zip("bcdef", "abcde", strict=True):
        rows.append(f"{name}: &{name} [{','.join([f'*{inner}'] * 9)}]")
    rows.append(f"fetch:\n  timeframes: [{','.join(['*f'] * 9)}]")
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(rows) + "\n")
    result = Cli({})("-c", str(config), "config", "show", ok=None)
    (line,) = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(line) < 20_000
    assert "fetch.timeframes.0 must be one of" in line and line.endswith("more)")
