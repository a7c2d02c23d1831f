"""What bos_fvg_fib's setups look like on the real candles of ../shared/data: the numbers behind
the README's before/after table (issue 15). Reported, not asserted.

Windows (every symbol stored with both 15m and 5m Binance USDT-M candles over the span):
- A: BTC ETH LTC SOL XRP LINK ETC BSV, 2025-03-14 .. 2025-04-07 (24 days)
- B: BTC ETH LTC, 2024-01-01 .. 2024-05-14 (134 days)

Per window: setups per symbol per day (triggered), the share whose entry lies inside the POI
(``reasons.poi``, a tolerance of 0 here), stop distance as % of entry (quartiles, share under
0.3 %) and realised R by confidence bucket: each trigger held from the next 5m bar to its last
target or its stop, whichever the 5m bars reach first (both in one bar: the stop), before fees;
an open trade at the end of the data counts at its last close.

Run: PYTHONPATH=src python bench/bos_setups_table.py [--src DIR]   (``--src`` points at another
checkout's ``src`` to measure the code before a change the same way)
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parents[1] / "../shared/data/candles/binance"
WINDOWS = {
    "A": (
        ["BTC", "ETH", "LTC", "SOL", "XRP", "LINK", "ETC", "BSV"],
        "2025-03-14T08:00:00Z",
        "2025-04-07T08:00:00Z",
    ),
    "B": (["BTC", "ETH", "LTC"], "2024-01-01T00:00:00Z", "2024-05-14T00:00:00Z"),
}


def _frame(base: str, tf: str, start: int, end: int) -> pd.DataFrame:
    table = pq.read_table(DATA / f"{base}_USDT_USDT/{tf}.parquet").to_pandas()
    return table[(table.timestamp >= start) & (table.timestamp < end)].reset_index(drop=True)


def _poi(reasons: dict) -> tuple[float, float] | None:
    poi = reasons.get("poi")
    if isinstance(poi, dict):
        return poi["bottom"], poi["top"]
    return tuple(poi) if poi else None


def _beyond_atr(setup, poi) -> float | None:
    """How far the entry lies outside the POI, in 5m ATR (0 inside); None when the record
    carries no ATR (the code before issue 15)."""
    stop = setup.reasons.get("stop")
    if poi is None or not isinstance(stop, dict):
        return None
    outside = max(poi[0] - setup.entry, setup.entry - poi[1], 0.0)
    return outside / stop["atr"]


def _realised_r(setup, bars: pd.DataFrame) -> float:
    """Held from the bar after the trigger to the last target or the stop (stop first)."""
    after = bars[bars.timestamp > setup.ts]
    sign = 1.0 if setup.side == "long" else -1.0
    risk = abs(setup.entry - setup.stop)
    target = setup.targets[-1]
    for low, high in zip(after.low.to_numpy(), after.high.to_numpy(), strict=True):
        adverse, favourable = (low, high) if sign > 0 else (high, low)
        if sign * (adverse - setup.stop) <= 0:
            return -1.0
        if sign * (favourable - target) >= 0:
            return (target - setup.entry) * sign / risk
    return (after.close.iloc[-1] - setup.entry) * sign / risk if len(after) else 0.0


def run_window(name, bases, start, end, settings, detect, symbol_data) -> dict:
    from cryptobot.core.timeutil import parse_time

    t0, t1 = parse_time(start), parse_time(end)
    rows = []
    for base in bases:
        ctx, entry = _frame(base, "15m", t0, t1), _frame(base, "5m", t0, t1)
        data = symbol_data("binance", f"{base}/USDT:USDT", {"15m": ctx, "5m": entry})
        for s in detect(data, settings.strategies.bos_fvg_fib):
            if s.status != "triggered":
                continue
            poi = _poi(s.reasons)
            rows.append(
                {
                    "base": base,
                    "side": s.side,
                    "confidence": s.confidence,
                    "inside": poi is not None and poi[0] <= s.entry <= poi[1],
                    "beyond_atr": _beyond_atr(s, poi),
                    "stop_pct": abs(s.entry - s.stop) / s.entry * 100,
                    "r": _realised_r(s, entry),
                }
            )
    days = (t1 - t0) / 86_400_000
    return {"window": name, "symbols": len(bases), "days": days, "rows": pd.DataFrame(rows)}


def _bucket(confidence: int) -> str:
    return "<=2" if confidence <= 2 else ("3" if confidence == 3 else ">=4")


def summary(result: dict) -> dict:
    df = result["rows"]
    out = {"window": result["window"], "setups": len(df)}
    out["per_symbol_day"] = round(len(df) / result["symbols"] / result["days"], 3)
    if df.empty:
        return out
    q = np.percentile(df.stop_pct, [25, 50, 75])
    out["inside_poi"] = round(float(df.inside.mean()), 3)
    beyond = df.beyond_atr.dropna()
    if len(beyond):
        out["beyond_poi_atr_max"] = round(float(beyond.max()), 3)
    out["stop_pct_q25_q50_q75"] = [round(float(x), 3) for x in q]
    out["stop_under_0.3pct"] = round(float((df.stop_pct < 0.3).mean()), 3)
    flips = [
        (int(np.sum(s[1:] != s[:-1])), len(s) - 1)
        for s in (part.side.to_numpy() for _, part in df.groupby("base"))
    ]
    out["side_flips_of_consecutive"] = [sum(f for f, _ in flips), sum(n for _, n in flips)]
    buckets = {}
    for key, part in df.groupby(df.confidence.map(_bucket)):
        buckets[key] = {"n": len(part), "mean_r": round(statistics.fmean(part.r), 3)}
    out["realised_r_by_confidence"] = buckets
    out["mean_r"] = round(statistics.fmean(df.r), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", help="the src folder to import cryptobot from")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    from cryptobot.core.config import load_settings
    from cryptobot.strategies.base import SymbolData
    from cryptobot.strategies.bos_fvg_fib import detect

    settings = load_settings()
    for name, (bases, start, end) in WINDOWS.items():
        result = run_window(name, bases, start, end, settings, detect, SymbolData)
        print(json.dumps(summary(result)))


if __name__ == "__main__":
    main()
