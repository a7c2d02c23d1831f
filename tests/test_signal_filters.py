"""``signal``'s filters in ``backtest`` (issue 12 item 3): one rule each (``strategies.filters``)
that ``signal`` reads at a setup's bar and the backtest over every bar, on real Bybit BTC 1h/4h
candles and funding from ../shared/data; the ``--no-signal-filters`` flag, the summary's strict
JSON, no look-ahead, the warm-up both share (a hole in the history included); and two
hostile-review leftovers: a record with an unknown strategy, and ema_cross sized by risk
without a stop."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from cryptobot.backtest import runner
from cryptobot.core.config import load_settings
from cryptobot.core.settings import RiskProfiles
from cryptobot.core.setup import Setup
from cryptobot.core.signal import Signal
from cryptobot.data.lake import Lake
from cryptobot.strategies import NAMES
from cryptobot.strategies.filters import FILTERS, REGIME_BARS, entry_filters, htf_bars
from cryptobot.strategies.signals import decide
from tests.conftest import SHARED, Cli
from tests.test_size_cli import market

EX, BTC = "bybit", "BTC/USDT:USDT"
HOUR, FOUR = 3_600_000, 4 * 3_600_000
SOURCE = SHARED / "candles" / "bybit" / "BTC_USDT_USDT"
FUNDING = SHARED / "funding" / "bybit" / "BTC_USDT_USDT.parquet"
# the lake with a hole: no bars (1h nor 4h) from 2024-09-01 to 2024-11-01
HOLE = (1_725_148_800_000, 1_730_419_200_000)
BASE = load_settings(None, {})
# one filter at a time; the others can refuse nothing
ALONE = {
    "regime": {"regime_filter": True, "regime_block": {"momentum": ["trending"]},
               "htf_bias": False, "funding_extreme": 1.0},
    "funding": {"regime_filter": False, "htf_bias": False, "funding_extreme": 0.0001},
    "htf": {"regime_filter": False, "htf_bias": True, "funding_extreme": 1.0},
}  # fmt: skip


def _settings(**signal):
    """The packaged settings with ``signal:`` changed; ``signal``'s other gates off."""
    base = {"one_signal_per_symbol": False, "cooldown_after_loss_min": 0,
            "max_setup_age_bars": 1_000_000}  # fmt: skip
    return BASE.model_copy(update={"signal": BASE.signal.model_copy(update=base | signal)})


def _write(root: Path, *, until: int | None = None, hole: bool = False) -> Lake:
    """Bybit BTC 1h and 4h candles and its funding; only what had closed by ``until``."""
    lake = Lake(root)
    for tf, ms in (("1h", HOUR), ("4h", FOUR)):
        bars = pd.read_parquet(SOURCE / f"{tf}.parquet")
        if until is not None:
            bars = bars[bars.timestamp + ms <= until]
        if hole:
            bars = bars[(bars.timestamp < HOLE[0]) | (bars.timestamp >= HOLE[1])]
        lake.write_candles(EX, BTC, tf, bars)
    funding = pd.read_parquet(FUNDING)
    lake.write_funding(EX, BTC, funding if until is None else funding[funding.timestamp <= until])
    return lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    if not SOURCE.is_dir():
        pytest.skip("../shared/data is not present (real market data for fidelity tests)")
    return _write(tmp_path_factory.mktemp("lake"), hole=True)


def _setup(ts: int, side: str, strategy: str = "momentum") -> Setup:
    entry = 50_000.0
    stop = entry - 500 if side == "long" else entry + 500
    return Setup(EX, BTC, strategy, "1h", side, "triggered", ts, ts, entry, stop, [], 3, {})


def _decision(lake: Lake, settings, ts: int, side: str):
    (d,) = decide([_setup(ts, side)], lake, settings.signal, now=ts + HOUR)
    return d


def _filters(lake: Lake, settings, frame: pd.DataFrame | None = None):
    frame = lake.read_candles(EX, BTC, "1h") if frame is None else frame
    return entry_filters(lake=lake, settings=settings, exchange=EX, strategy="momentum",
                         timeframe="1h", frames={BTC: frame}, end=None)  # fmt: skip


def _entries(lake: Lake, settings) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """momentum's entries without and with the filters, on the backtest's path."""
    req = runner.Request("momentum", [BTC], EX, risk_usd=1.0)
    data = runner.load(lake, req, settings)
    (filtered,) = runner.signals_for(req, data, settings)
    (raw,) = runner.signals_for(req, replace(data, filters=None), settings)
    return raw.side, filtered.side, data.frames[BTC]["1h"]


@pytest.mark.parametrize("name", ["regime", "funding", "htf"])
def test_each_filter_refuses_the_same_entries_in_signal_and_backtest(lake: Lake, name: str):
    """With only one filter on, every momentum entry the backtest drops is a setup ``signal``
    refuses at the same bar, for that filter's reason, and every entry it keeps ``signal``
    accepts; the run's summary counts them under that filter."""
    settings = _settings(**ALONE[name])
    raw, kept, frame = _entries(lake, settings)
    entries = np.flatnonzero(raw)
    dropped = entries[kept[entries] == 0]
    assert len(dropped) >= 1 and len(dropped) < len(entries), (name, len(entries))
    for t in entries:
        side = "long" if raw[t] > 0 else "short"
        d = _decision(lake, settings, int(frame.timestamp.iat[t]), side)
        assert d.accepted == (kept[t] != 0), (name, t, d.reason)
        if not d.accepted:
            assert d.reason.startswith(f"{name}:"), d.reason
    req = runner.Request("momentum", [BTC], EX, risk_usd=1.0)
    result = runner.run(req, runner.load(lake, req, settings), settings)
    assert result.summary[f"refused_by_{name}"] == len(dropped)
    others = [result.summary[f"refused_by_{o}"] for o in FILTERS if o != name]
    assert all(n in (0, None) for n in others)  # 0: applied, refusing nothing; None: off


def test_for_random_bars_the_per_bar_rules_and_signal_agree(lake: Lake):
    """Hypothesis picks a bar (among the series' first 1,500, where both read it whole; the
    first 80 after a two-month hole, where a read by time would see too little; or any), a
    side and filter settings: the per-bar masks the backtest applies refuse exactly what
    ``signal`` refuses at that bar, for the same first reason."""
    stamps = lake.read_candles(EX, BTC, "1h").timestamp.to_numpy()
    after_hole = int(np.searchsorted(stamps, HOLE[1]))
    cases: dict[tuple, tuple] = {}

    def case(block: tuple[str, ...], extreme: float, htf: bool) -> tuple:
        if (block, extreme, htf) not in cases:
            settings = _settings(regime_filter=bool(block), funding_extreme=extreme,
                                 regime_block={"momentum": list(block)}, htf_bias=htf)  # fmt: skip
            cases[block, extreme, htf] = (settings, _filters(lake, settings).symbols[BTC])
        return cases[block, extreme, htf]

    near_hole = st.integers(0, 80).map(lambda k: after_hole + k)
    anywhere = st.integers(0, len(stamps) - 1)

    @given(
        at=st.one_of(st.integers(0, 1500), near_hole, anywhere),
        side=st.sampled_from(["long", "short"]),
        block=st.sampled_from([(), ("trending",), ("ranging",), ("volatile", "ranging")]),
        extreme=st.sampled_from([0.00005, 0.0001, 0.001]),
        htf=st.booleans(),
    )
    @hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def agree(at: int, side: str, block: tuple[str, ...], extreme: float, htf: bool) -> None:
        settings, masks = case(block, extreme, htf)
        sides = np.full(len(stamps), 1 if side == "long" else -1)
        code = int(masks.first_refusal(sides)[at])
        d = _decision(lake, settings, int(stamps[at]), side)
        assert d.accepted == (code == 0), (at, side, d.reason)
        if code:
            assert d.reason.startswith(FILTERS[code - 1] + ":"), (at, d.reason)

    agree()


def test_the_warm_up_is_shared_at_the_start_and_after_a_hole(lake: Lake):
    """``signal`` reads the last REGIME_BARS / htf_bars stored bars counted in bars, so right
    after the hole (where a read by time would see a few bars and say "unknown") and at the
    series' first bars it sees the regime and the bias the backtest computed over the whole
    series."""
    settings = _settings(regime_filter=True, regime_block={"momentum": []}, htf_bias=True)
    frame = lake.read_candles(EX, BTC, "1h")
    from cryptobot.strategies.filters import htf_bias, regime_labels

    labels = regime_labels(frame)
    closes = frame.timestamp.to_numpy() + HOUR
    bias = htf_bias(lake.read_candles(EX, BTC, "4h"), closes, timeframe="4h", period=50)
    after = int(np.searchsorted(frame.timestamp.to_numpy(), HOLE[1]))
    assert frame.timestamp.iat[after] == HOLE[1] and frame.timestamp.iat[after - 1] < HOLE[0]
    picks = [0, 30, 60, 300, REGIME_BARS - 1, REGIME_BARS + 5, after, after + 3, after + 40,
             after + 400, len(frame) - 1]  # fmt: skip
    for t in picks:
        d = _decision(lake, settings, int(frame.timestamp.iat[t]), "long")
        assert d.context["regime"] == labels[t], t
        assert d.context["htf_bias"] == {1: "long", -1: "short", 0: "unknown"}[int(bias[t])], t
    assert labels[after] != "unknown" and bias[after] != 0  # the hole did not reset them
    assert labels[0] == "unknown" and bias[0] == 0  # nothing known at the first bar
    assert htf_bars(50) == 1090 and REGIME_BARS == 1221


def test_no_look_ahead_truncating_after_a_bar_changes_nothing_before(lake: Lake, tmp_path):
    """Every rule at bar T (and before) reads only what had closed by T's close: a lake cut
    there gives the same masks for every bar up to T."""
    settings = _settings(regime_filter=True, regime_block={"momentum": ["ranging"]},
                         funding_extreme=0.0001, htf_bias=True)  # fmt: skip
    full = _filters(lake, settings).symbols[BTC].masks
    stamps = lake.read_candles(EX, BTC, "1h").timestamp.to_numpy()
    for t in (2_000, 9_001):
        cut = _write(tmp_path / str(t), until=int(stamps[t]) + HOUR, hole=True)
        part = _filters(cut, settings).symbols[BTC].masks
        assert len(part["regime"]) == t + 1
        for name in ("regime", "funding", "htf"):
            assert np.array_equal(part[name], full[name][: t + 1]), (t, name)
        assert full["funding"].any() and full["htf"].any() and full["regime"].any()


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _portfolio(stdout: str) -> dict:
    """The portfolio's row of a summary printed with ``-f json`` (strict JSON)."""
    (row,) = [r for r in _strict(stdout) if r["scope"] == "portfolio"]
    return row


def test_the_flag_and_the_summary_in_strict_json(lake: Lake):
    """By default the backtest applies signal's filters and its summary names them and counts
    what each refused (COT is off in the config: null); ``--no-signal-filters`` trades every
    entry and says "none"."""
    env = {"CRYPTOBOT_DATA_DIR": str(lake.root), "CRYPTOBOT__SIGNAL__FUNDING_EXTREME": "0.0001"}
    cli = Cli(env)
    args = ("-x", EX, "backtest", "--strategy", "momentum", "--symbols", BTC, "--risk-usd", "1",
            "--from", "2024-01-01", "--to", "2025-06-30", "--no-journal", "-f", "json")  # fmt: skip
    on = cli(*args)
    off = cli(*args, "--no-signal-filters")
    row, bare = _portfolio(on.stdout), _portfolio(off.stdout)
    assert row["signal_filters"] == "regime, funding, htf, cooldown"
    assert row["refused_by_funding"] > 0 and row["refused_by_cot"] is None
    assert all(isinstance(row[f"refused_by_{n}"], int) for n in runner.SIGNAL_FILTERS[:4])
    assert "refused by signal's filters: " in on.stderr and "funding x" in on.stderr
    assert bare["signal_filters"] == "none"
    assert all(bare[f"refused_by_{n}"] is None for n in runner.SIGNAL_FILTERS)
    assert bare["trades"] > row["trades"]


def test_stepwise_takes_the_filtered_entries(lake: Lake):
    """``--stepwise`` runs the runner's (filtered) signals: the same trades and the same
    counts as the fast path."""
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root),
               "CRYPTOBOT__SIGNAL__FUNDING_EXTREME": "0.0001"})  # fmt: skip
    args = ("-x", EX, "backtest", "--strategy", "momentum", "--symbols", BTC, "--risk-usd", "1",
            "--from", "2025-01-01", "--to", "2025-06-30", "--no-journal", "-f", "json")  # fmt: skip
    fast = _portfolio(cli(*args).stdout)
    step = _portfolio(cli(*args, "--stepwise").stdout)
    keys = ["trades", "signal_filters", *(f"refused_by_{n}" for n in runner.SIGNAL_FILTERS)]
    assert {k: step[k] for k in keys} == {k: fast[k] for k in keys}
    assert fast["refused_by_funding"] > 0


def test_ema_cross_loses_no_exit_to_a_filter(lake: Lake):
    """Its signals are also its exits: no filter applies (units: none at all; sized by risk
    only the cooldown after a loss, which blocks entries, never an exit), so with every filter
    set to bite the reference run trades exactly as without them."""
    settings = _settings(
        **ALONE["regime"]
        | {
            "regime_block": {"ema_cross": ["trending"]},
            "funding_extreme": 0.00005,
            "htf_bias": True,
        }
    )
    req = runner.with_defaults(runner.Request("ema_cross", [BTC], EX, timeframe="1h"))
    data = runner.load(lake, req, settings)
    assert data.filters is None
    on = runner.run(req, data, settings)
    off = runner.run(replace(req, signal_filters=False), data, settings)
    assert on.trade_table.equals(off.trade_table) and on.summary["signal_filters"] == "none"
    sized = replace(req, units=None, risk_usd=1.0, params={"stop_atr": 2.0})
    result = runner.run(sized, runner.load(lake, sized, settings), _settings())
    assert result.summary["signal_filters"] == "none"  # cooldown 0 in _settings()
    cooling = runner.run(sized, runner.load(lake, sized, BASE), BASE)
    assert cooling.summary["signal_filters"] == "cooldown"


def test_a_long_cooldown_is_counted(lake: Lake):
    """The cooldown after a loss is applied by the drivers; the summary counts the entries it
    passed over, and ``--no-signal-filters`` lifts it."""
    settings = _settings(cooldown_after_loss_min=60 * 24 * 30, funding_extreme=1.0,
                         regime_filter=False, htf_bias=False)  # fmt: skip
    req = runner.Request("momentum", [BTC], EX, risk_usd=1.0)
    data = runner.load(lake, req, settings)
    cooled = runner.run(req, data, settings)
    free = runner.run(replace(req, signal_filters=False), data, settings)
    assert cooled.summary["refused_by_cooldown"] > 0
    assert free.summary["refused_by_cooldown"] is None
    assert free.summary["trades"] > cooled.summary["trades"]


# ---- hostile-review leftovers ---------------------------------------------------------------
def test_ema_cross_sized_by_risk_without_a_stop_is_a_usage_error(lake: Lake):
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(lake.root)})
    base = ("-x", EX, "backtest", "--strategy", "ema_cross", "--symbols", BTC,
            "--timeframe", "1h", "--no-journal", "-f", "json")  # fmt: skip
    for sizing in (("--risk-usd", "1"), ("--risk-pct", "0.5")):
        result = cli(*base, *sizing, ok=None)
        (line,) = result.stderr.strip().splitlines()
        assert result.exit_code == 2, result.stderr
        assert "needs a stop" in line and "--stop-atr" in line
        assert "strategies.ema_cross.stop_atr" in line
    assert cli(*base, "--risk-usd", "1", "--stop-atr", "2").exit_code == 0
    assert cli(*base, "--units", "1").exit_code == 0  # the reference: no stop needed
    swept = cli(*base, "--risk-usd", "1", "--sweep", "stop_atr=1.5,2", ok=None)
    assert swept.exit_code == 0, swept.stderr  # every point of the sweep has a stop
    mixed = cli(*base, "--risk-usd", "1", "--sweep", "fast=5,9", ok=None)
    assert mixed.exit_code == 2 and "needs a stop" in mixed.stderr


def test_top_is_ranked_only_once_the_flags_are_good(tmp_path: Path):
    """``--top`` reads the whole lake to rank it: a usage error comes first, as with
    ``--symbols``, and a lake without candles is told only for good flags."""
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(tmp_path)})
    base = ("-x", EX, "backtest", "--strategy", "ema_cross", "--top", "3", "--no-journal")
    for flags, said in (
        (("--risk-usd", "1"), "needs a stop"),
        (("--risk-usd", "1", "--stop-atr", "101"), "stop_atr"),
        (("--units", "1", "--stepwise"), "--stepwise"),
    ):
        result = cli(*base, *flags, ok=None)
        assert result.exit_code == 2 and said in result.stderr, result.stderr
    empty = cli(*base, "--risk-usd", "1", "--stop-atr", "2", ok=None)
    assert empty.exit_code == 1 and "no stored 1h candles" in empty.stderr, empty.stderr
    assert cli("-x", EX, "backtest", "--strategy", "ema_cross", ok=None).exit_code == 1


def _record(strategy: str, symbol: str = "ETH/USDT:USDT") -> str:
    ts = 1_748_779_200_000
    setup = Setup("binanceusdm", symbol, strategy, "1h", "long", "triggered", ts, ts, 2500.0,
                  2450.0, [2600.0], 4, {})  # fmt: skip
    return json.dumps(Signal(setup, {}).to_json()) + "\n"


def test_a_record_with_an_unknown_strategy_is_refused_naming_it(data_dir: Path):
    """Its ``risk.profiles`` entry would be a silent guess (the base settings): one line, exit
    1, naming the record; ``--skip-bad`` leaves it out and sizes the rest. ``manual`` is the
    name of a trade no strategy proposed and gets the base settings."""
    Lake(data_dir).write_markets("binanceusdm", [market("ETH/USDT:USDT", min_notional=20.0)])
    cli = Cli({"CRYPTOBOT_DATA_DIR": str(data_dir)})
    flags = ("--risk-usd", "1", "--equity", "1000")
    stdin = _record("momentum") + _record("momentm") + _record("manual")
    bad = cli("size", "-", *flags, "-f", "jsonl", input=stdin, ok=None)
    (line,) = bad.stderr.strip().splitlines()
    assert bad.exit_code == 1 and bad.stdout == ""
    assert "stdin line 2" in line and "unknown strategy 'momentm'" in line
    skipped = cli("size", "-", *flags, "--skip-bad", "-f", "jsonl", input=stdin)
    rows = [json.loads(r) for r in skipped.stdout.splitlines()]
    assert [r["strategy"] for r in rows] == ["momentum", "manual"]
    assert "skipped stdin line 2" in skipped.stderr
    assert set(RiskProfiles.model_fields) == set(NAMES)  # the names a record may carry
