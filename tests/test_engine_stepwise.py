"""``backtest --stepwise`` (the composer over the replay exchange) against the fast path, on real
ETH/USDT:USDT 1h candles and funding of 2024-2025 from ../shared/data.

The two agree trade for trade, fill for fill (time, kind, side, quantity, price, fee), in
funding and in equity, with the take-profit ladder, breakeven, the ATR trail, the time stop,
strategy exits, reversals and circuit-breaker trips in play. One difference remains and is
pinned, not hidden: the kernel knows the entry fill while it lives the entry bar, so targets (R
multiples of the fill) and an ema_cross stop (a distance from the fill) are live there; the
composer learns the fill when that bar has closed, so such an exit reached in the entry bar is
filled by the venue at the next open ("late exit"). Those trades are exactly the fast path's
trades with such an exit in their entry bar, and the equity differs by their net only."""

from functools import partial
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cryptobot.backtest import runner
from cryptobot.backtest.stepwise import LATE_EXIT, drive
from cryptobot.risk.orders import leg_of_order
from tests.venues import market

SYMBOL = "ETH/USDT:USDT"
HOUR = 3_600_000
START = 1_704_067_200_000  # 2024-01-01
TRADE = ["entry_time", "exit_time", "side", "qty", "entry_price", "stop", "exit_price", "fees",
         "funding", "net", "r", "reason", "bars_held", "mfe_r", "mae_r"]  # fmt: skip
# ``order_leg``: the leg of the order each fill filled (the venue's order id without its
# resend number: a moved stop is sent again under the next id of the stop leg)
FILL = ["time", "kind", "side", "qty", "price", "fee", "order_leg"]


def _eth_lake(tmp_path_factory, *, tick_size):
    from cryptobot.data.importer import read_candle_file
    from cryptobot.data.lake import Lake
    from tests.conftest import BINANCE, SHARED

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles for the parity test)")
    candles = read_candle_file(path)
    candles = candles[candles.timestamp >= START].reset_index(drop=True)[:8000]
    lake = Lake(tmp_path_factory.mktemp("stepwise") / "lake")
    lake.write_candles("sim", SYMBOL, "1h", candles)
    lake.write_markets("sim", [market(SYMBOL, tick_size=tick_size, min_notional=None)])
    lake.write_funding(
        "sim", SYMBOL, pd.read_parquet(SHARED / "funding/binance/ETH_USDT_USDT.parquet")
    )
    return lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return _eth_lake(tmp_path_factory, tick_size=None)


@pytest.fixture(scope="module")
def ticked_lake(tmp_path_factory):
    """The same market with a coarse price tick of 0.5 (the candles are on 0.01): most stops
    and targets fall between two ticks."""
    return _eth_lake(tmp_path_factory, tick_size=0.5)


def _both(lake, settings, **request):
    """Both runs; no funding is made up where none is stored (the fast path charges
    ``backtest.funding_fallback_rate`` over the hole between the file's two segments, the replay
    venue only what is stored: a difference of the data, not of the engines)."""
    req, data, settings = _loaded(lake, settings, request)
    fast = runner.run(req, data, settings)
    step = runner.run(req, data, settings, drive=partial(drive, lake=lake))
    return fast, step


def _fast(lake, settings, **request):
    """The fast path's run alone, as :func:`_both` makes it."""
    req, data, settings = _loaded(lake, settings, request)
    return runner.run(req, data, settings)


def _loaded(lake, settings, request: dict):
    """The request, its data and the settings both runs take (no made-up funding)."""
    backtest = settings.backtest.model_copy(update={"funding_fallback_rate": 0.0})
    settings = settings.model_copy(update={"backtest": backtest})
    req = runner.Request(**{"symbols": [SYMBOL], "exchange": "sim", "timeframe": "1h", **request})
    return req, runner.load(lake, req, settings), settings


def _numbered(result):
    """``result`` with each fill's ``trade`` the row of its trade in ``result.trades`` (sorted
    by entry time, then symbol; the drivers number trades in the order they take them, symbol
    after symbol at one close), and its ``order_leg``."""
    fills = result.fills.copy()
    fills["order_leg"] = [leg_of_order(i) if isinstance(i, str) else None
                          for i in fills.client_order_id]  # fmt: skip
    for symbol in result.trades.symbol.unique():
        rows = np.flatnonzero(result.trades.symbol == symbol)
        mine = fills.symbol == symbol
        taken = np.unique(fills.trade[mine])
        fills.loc[mine, "trade"] = rows[np.searchsorted(taken, fills.trade[mine])]
    return SimpleNamespace(
        trades=result.trades,
        fills=fills,
        equity=result.equity,
        notes=result.notes,
        breaker_trips=result.breaker_trips,
    )


def _keys(trades) -> list[tuple[int, str]]:
    return list(zip(trades.entry_time.astype(int), trades.symbol, strict=True))


def _late(result, kinds) -> dict[tuple[int, str], list]:
    """(entry time, symbol) -> the fills of ``kinds`` a trade took in its entry bar."""
    out: dict[tuple[int, str], list] = {}
    for k, trade in result.trades.iterrows():
        fills = result.fills[result.fills.trade == k]
        early = fills[(fills.time == trade.entry_time) & fills.kind.isin(kinds)]
        if len(early):
            out[(int(trade.entry_time), trade.symbol)] = list(early.kind)
    return out


def _late_count(step) -> int:
    notes = [n for n in step.notes if LATE_EXIT in n]
    return int(notes[0].rsplit("x", 1)[1]) if notes else 0


def _check(fast, step, late_kinds, *, pinned=None) -> dict[tuple[int, str], list]:
    """Everything equal but the pinned trades (the late exits of ``late_kinds``, and the trades
    ``pinned(fast)`` names, which the caller checks); returns the late ones. A pinned trade
    that a loss ends in one run and a gain in the other lets the cooldown after a loss
    (``signal.cooldown_after_loss_min``) take a different next signal: the runs are compared
    up to that trade's exit, and the divergence is asserted to start there."""
    fast, step = _numbered(fast), _numbered(step)
    assert not [n for n in step.notes if "exists already" in n]  # no order id sent twice
    late = _late(fast, late_kinds)
    apart = {**late, **(pinned(fast) if pinned else {})}
    flip = np.inf
    if _keys(fast.trades) != _keys(step.trades):
        flip = _first_flip(fast, step, apart)  # where the runs may part
        assert flip < np.inf
    f_trades, s_trades = (r.trades[r.trades.entry_time <= flip] for r in (fast, step))
    assert _keys(f_trades) == _keys(s_trades)
    if flip == np.inf:
        assert _late_count(step) == len(late)
    same = ~pd.Series([key in apart for key in _keys(f_trades)], dtype=bool).to_numpy()
    a, b = f_trades[same][TRADE], s_trades[same][TRADE]
    for column in TRADE:
        if a[column].dtype.kind == "f":
            np.testing.assert_allclose(b[column], a[column], rtol=1e-9, atol=1e-12,
                                       err_msg=column)  # fmt: skip
        else:
            assert list(b[column]) == list(a[column]), column
    for k in np.flatnonzero(same):
        theirs = fast.fills[fast.fills.trade == k][FILL].reset_index(drop=True)
        ours = step.fills[step.fills.trade == k][FILL].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs, rtol=1e-9, atol=1e-12)
    bar = int(np.diff(fast.equity.timestamp).min())
    for (entry_time, symbol), kinds in late.items():  # the same exits, filled at the next open
        k = _keys(step.trades).index((entry_time, symbol))
        ours = step.fills[step.fills.trade == k]
        assert list(ours[ours.time == entry_time].kind) == ["entry"]
        assert set(kinds) <= set(ours[ours.time == entry_time + bar].kind)
    first = min((t for t, _ in apart), default=fast.equity.timestamp.iloc[-1] + 1)
    before = fast.equity.timestamp < first
    np.testing.assert_allclose(step.equity.equity[before], fast.equity.equity[before], rtol=1e-9)
    if flip == np.inf:  # the equity differs by the pinned trades' net only
        gap = (fast.trades.net - step.trades.net).sum()
        end = fast.equity.equity.iloc[-1] - step.equity.equity.iloc[-1]
        assert end == pytest.approx(gap, rel=1e-6, abs=1e-9)
    return late


def _first_flip(fast, step, late: dict[tuple[int, str], list]) -> float:
    """Entry time of the first pinned trade that is a loss in one run only (inf: none)."""
    for key in sorted(late):
        nets = [float(r.trades.net[pd.Series(_keys(r.trades)) == key].iloc[0])
                for r in (fast, step)]  # fmt: skip
        if (nets[0] < 0) != (nets[1] < 0):
            return key[0]
    return np.inf


@pytest.mark.parametrize(
    ("manage", "exits"),
    [({}, {"target", "trail", "stop", "signal"}),
     ({"trail_rest": False}, {"target", "breakeven", "stop", "signal"})],
    ids=["ladder+trail", "ladder+breakeven"],
)  # fmt: skip
def test_ema_cross_by_risk_equals_the_fast_path_but_for_exits_in_the_entry_bar(
    lake, settings, manage, exits
):
    """ema_cross with a 2 ATR stop, $3 at risk, the default ladder 25/25/25 % at 1/2/3R,
    breakeven after 1R and the ATR trail (or no trail: the stop at breakeven stays); its exits
    include the opposite cross (reversals at the same open) and the cooldown after a loss."""
    if manage:
        settings = settings.model_copy(update={"manage": settings.manage.overriding(**manage)})
    fast, step = _both(lake, settings, strategy="ema_cross", risk_usd=3.0,
                       params={"stop_atr": 2.0})  # fmt: skip
    assert exits <= set(fast.fills.kind)
    assert len(fast.trades) > 200
    late = _check(fast, step, ["target", "stop", "breakeven", "trail"])
    assert 0 < len(late) < 20


def test_stops_and_targets_on_a_price_tick_fill_alike_in_both(ticked_lake, settings):
    """On a market with a tick the venue takes stops and targets on the tick only; the kernel
    books them at the same ticked levels (``manage.ticks``: a long's stop rounded up, its
    targets down), so both runs still agree fill for fill."""
    fast, step = _both(ticked_lake, settings, strategy="ema_cross", risk_usd=3.0,
                       params={"stop_atr": 2.0})  # fmt: skip
    exits = fast.fills[fast.fills.kind.isin(["stop", "target", "trail", "breakeven"])]
    assert len(exits) > 100
    targets = fast.fills[fast.fills.kind.isin(["target"])].price.to_numpy()
    np.testing.assert_allclose(targets / 0.5, np.round(targets / 0.5), atol=1e-9)
    assert np.allclose(fast.trades.stop / 0.5, np.round(fast.trades.stop / 0.5), atol=1e-6)
    _check(fast, step, ["target", "stop", "breakeven", "trail"])


def test_momentum_equals_the_fast_path_its_entry_bar_stops_included(lake, settings):
    """momentum's stop is a price known with the signal: it goes with the entry and is live in
    the entry bar on the venue as in the kernel; only targets reached there are late."""
    fast, step = _both(lake, settings, strategy="momentum", risk_usd=3.0)
    assert len(fast.trades) >= 10
    assert {"target", "trail"} <= set(fast.fills.kind)
    _check(fast, step, ["target"])


def test_a_breaker_trip_closes_the_position_at_the_next_open_in_both(lake, settings):
    """A $4 daily loss limit trips four times: the same trips at the same closes, the open
    position forced out at the next open in both runs."""
    r = settings.risk
    breakers = r.breakers.model_copy(update={"daily_loss_usd": 4.0})
    settings = settings.model_copy(update={"risk": r.model_copy(update={"breakers": breakers})})
    fast, step = _both(lake, settings, strategy="ema_cross", risk_usd=3.0,
                       params={"stop_atr": 2.0})  # fmt: skip
    assert len(fast.breaker_trips) >= 2
    assert [t for t, _ in step.breaker_trips] == [t for t, _ in fast.breaker_trips]
    assert (fast.trades.reason == "forced").sum() >= 2
    _check(fast, step, ["target", "stop", "breakeven", "trail"])


def test_a_window_ending_with_a_position_open_leaves_it_open_marked_at_the_close(lake, settings):
    """--to cuts the candles read: the last position is open at the end, marked at the last
    close with no exit fill, in both runs."""
    full = _fast(lake, settings, strategy="momentum", risk_usd=3.0)  # where to cut: no replay
    long = full.trades[full.trades.bars_held > 5].iloc[0]
    end = int(long.entry_time) + 3 * HOUR
    fast, step = _both(lake, settings, strategy="momentum", risk_usd=3.0, end=end)
    assert fast.trades.reason.iloc[-1] == "open"
    _check(fast, step, ["target"])


# ---- the command ----------------------------------------------------------------------------
@pytest.fixture
def stored(data_dir):
    """1,500 real ETH/USDT:USDT 1h bars of 2024 and their funding in the data dir."""
    from cryptobot.data.importer import read_candle_file
    from cryptobot.data.lake import Lake
    from tests.conftest import BINANCE, SHARED

    path = BINANCE / "ETH_USDT_USDT" / "1h.parquet"
    if not path.exists():
        pytest.skip("../shared/data is not present (real candles for the command)")
    candles = read_candle_file(path)
    lake = Lake(data_dir)
    candles = candles[candles.timestamp >= START].reset_index(drop=True)[:1500]
    lake.write_candles("binanceusdm", SYMBOL, "1h", candles)
    lake.write_markets("binanceusdm", [market(SYMBOL, tick_size=None, min_notional=None)])
    funding = pd.read_parquet(SHARED / "funding/binance/ETH_USDT_USDT.parquet")
    lake.write_funding("binanceusdm", SYMBOL, funding)
    return data_dir


RUN = ["backtest", "--strategy", "ema_cross", "--symbols", SYMBOL, "--timeframe", "1h",
       "--stop-atr", "2", "--risk-usd", "3", "--no-journal"]  # fmt: skip


def test_the_command_prints_the_fast_paths_summary_and_its_speed(cli, stored, tmp_path):
    import json

    def strict(text: str) -> list[dict]:
        def refuse(name: str) -> None:
            raise ValueError(f"not strict JSON: {name}")

        return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]

    fast = cli(*RUN, "-f", "jsonl")
    out = tmp_path / "step.parquet"
    step = cli(*RUN, "-f", "jsonl", "--stepwise", "-o", str(out))
    ours, theirs = strict(step.stdout), strict(fast.stdout)
    assert [r["scope"] for r in ours] == ["portfolio", SYMBOL]
    assert ours[0]["trades"] == theirs[0]["trades"] > 5
    assert ours[0]["end_equity"] == pytest.approx(theirs[0]["end_equity"], rel=1e-2)
    assert "stepwise: 1,500 bars in" in step.stderr and "bars/s)" in step.stderr
    assert "stepwise" not in fast.stderr
    trades = pd.read_parquet(out)
    assert len(trades) == ours[0]["trades"]
    assert len(pd.read_parquet(tmp_path / "step.fills.parquet")) > len(trades)
    assert len(pd.read_parquet(tmp_path / "step.equity.parquet")) == 1500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--risk-usd", "3", "--units", "1"], "--stepwise sizes by risk"),
        (["--fee", "0.001"], "drop --fee"),
        (["--no-funding"], "drop --no-funding"),
        (["--detail", "1m"], "--detail"),
        (["--sweep", "fast=5,9"], "not a sweep"),
    ],
)  # fmt: skip
def test_what_stepwise_cannot_equal_yet_is_a_usage_error(cli, data_dir, tmp_path, change,
                                                         message):  # fmt: skip
    out = tmp_path / "t.parquet"
    args = [*RUN, *change, "--stepwise", "-o", str(out)]
    result = cli(*args, ok=None)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_ema_cross_without_a_risk_size_is_its_units_reference_and_refused(cli, data_dir):
    args = [a for a in RUN if a not in ("--risk-usd", "3")]
    result = cli(*args, "--stepwise", ok=None)
    assert result.exit_code == 2 and "--stepwise sizes by risk" in result.stderr
