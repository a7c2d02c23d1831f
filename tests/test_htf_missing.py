"""The higher-timeframe filter with no (or too few) higher-timeframe candles stored: the note
names the symbol, the timeframe that is missing and what to fetch, and the filter refuses
nothing (as ``signal``'s unknown bias), on real Bybit BTC 1h candles from ../shared/data."""

import numpy as np
import pandas as pd
import pytest

from cryptobot.core.config import load_settings
from cryptobot.data.lake import Lake
from cryptobot.strategies.filters import entry_filters
from tests.conftest import SHARED

EX, BTC = "bybit", "BTC/USDT:USDT"
SOURCE = SHARED / "candles" / "bybit" / "BTC_USDT_USDT"


@pytest.fixture
def hourly() -> pd.DataFrame:
    if not SOURCE.is_dir():
        pytest.skip("../shared/data is not present (real market data for fidelity tests)")
    return pd.read_parquet(SOURCE / "1h.parquet").iloc[:600]


def _filters(lake: Lake, frame: pd.DataFrame):
    settings = load_settings(None, {"signal.htf_bias": True}, env={})
    assert settings.signal.htf["1h"] == "4h" and settings.signal.htf_ema == 50
    return entry_filters(lake=lake, settings=settings, exchange=EX, strategy="momentum",
                         timeframe="1h", frames={BTC: frame}, end=None)  # fmt: skip


def _htf_note(filters) -> str:
    (note,) = [n for n in filters.notes if "higher-timeframe" in n]
    return note


def test_no_higher_timeframe_candles_says_which_and_what_to_fetch(tmp_path, hourly):
    lake = Lake(tmp_path)
    lake.write_candles(EX, BTC, "1h", hourly)
    filters = _filters(lake, hourly)
    assert _htf_note(filters) == (
        f"{BTC}: the higher-timeframe filter reads 50 4h candles (signal.htf.1h, EMA 50) and "
        f"none is stored, so it refuses nothing; run `cryptobot fetch --symbols {BTC} "
        "--timeframes 4h` (or set signal.htf_bias: false)"
    )
    htf = filters.symbols[BTC].masks["htf"]
    assert len(htf) == len(hourly) and not np.any(htf)  # no bias: no side refused


def test_too_few_higher_timeframe_candles_say_how_many(tmp_path, hourly):
    lake = Lake(tmp_path)
    lake.write_candles(EX, BTC, "1h", hourly)
    lake.write_candles(EX, BTC, "4h", pd.read_parquet(SOURCE / "4h.parquet").iloc[:12])
    assert "and only 12 are stored, so it refuses nothing" in _htf_note(_filters(lake, hourly))
