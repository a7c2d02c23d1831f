"""Parameter sweeps in parallel processes, and walk-forward analysis on rolling windows.

A sweep runs the same backtest once per point of a grid (``name=start:stop:step`` ranges,
inclusive, or ``name=a,b,c`` lists) and sorts the results by an objective (any summary figure;
higher is better, except drawdown). Workers are forked once and read the loaded dataset from
their parent, so only parameter dicts cross process boundaries.

Walk-forward: windows of ``train`` then ``test`` time roll forward by ``test``. In each, the
grid's best point on the train window (in-sample) is run on the following test window
(out-of-sample). Walk-forward efficiency = mean out-of-sample return per day / mean in-sample
return per day (Pardo): near 100 % means the chosen parameters kept their edge on unseen data,
near 0 or negative that the in-sample result was fitted noise.
"""

import itertools
import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cryptobot.backtest import metrics, runner
from cryptobot.core.errors import ConfigError
from cryptobot.core.numbers import finite
from cryptobot.core.settings import Settings

LOWER_IS_BETTER = {"max_drawdown_pct", "max_drawdown_days"}
DAY_MS = 86_400_000


MAX_POINTS = 10_000  # a grid larger than this is a typo in a range, not a study


def parse_spec(text: str) -> tuple[str, list[float]]:
    """``ema_fast=5:15:2`` -> ("ema_fast", [5, 7, 9, 11, 13, 15]); ``x=1,2.5`` -> a list.
    Every value finite (``nan``, ``inf``, ``1e309`` are refused, never run)."""
    name, sep, values = text.partition("=")
    usage = f"bad --sweep {text!r}; use name=start:stop:step (inclusive) or name=a,b,c"
    try:
        if not sep or not name.strip():
            raise ValueError(usage)
        numbers = [
            finite(v, name=f"--sweep {name.strip()}")
            for v in values.split(":" if ":" in values else ",")
        ]
        points = _range(numbers, usage) if ":" in values else numbers
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return name.strip(), [int(p) if float(p).is_integer() else p for p in points]


def _range(numbers: list[float], usage: str) -> list[float]:
    if len(numbers) not in (2, 3):
        raise ValueError(usage)
    a, b, step = (*numbers, 1.0)[:3]
    if step <= 0 or b < a:
        raise ValueError(usage)
    count = math.floor((b - a) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise ValueError(f"{usage}: {count:.6g} points, at most {MAX_POINTS}")
    return [round(a + i * step, 10) for i in range(count)]


def grid(specs: Sequence[str], *, check: Callable[[dict], None] | None = None) -> list[dict]:
    """Every combination of the parsed specs. ``check`` validates one point against the
    strategy's parameters (raising ConfigError), so a bad value is refused before any data
    loads, not after."""
    parsed = [parse_spec(s) for s in specs]
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise ConfigError("each parameter may be swept once")
    if math.prod(len(v) for _, v in parsed) > MAX_POINTS:
        raise ConfigError(f"the --sweep grid has more than {MAX_POINTS} points; narrow it")
    points = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in parsed))
    ]
    if check is not None:
        for name, values in parsed:
            for value in values:
                check({name: value})
    return points


def point_checker(req: runner.Request, settings: Settings) -> Callable[[dict], None]:
    """Validates one grid point against the strategy's parameter model (its settings
    section's pydantic model)."""

    def check(point: dict) -> None:
        ((name, value),) = point.items()
        try:
            runner.strategy_params(replace(req, params={**req.params, **point}), settings)
        except ConfigError as exc:
            raise ConfigError(f"--sweep {name}={value}: {exc}") from None

    return check


def better_first(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    if objective not in frame.columns:
        raise ConfigError(f"unknown objective {objective}; use a summary figure such as sharpe")
    ascending = objective in LOWER_IS_BETTER
    ranked = frame.sort_values(objective, ascending=ascending, na_position="last", kind="stable")
    wiped = ranked["max_drawdown_pct"].to_numpy() >= metrics.RUIN_DRAWDOWN_PCT
    # a wiped-out run ranks last by any objective (a recovery after zero can end on top)
    return pd.concat([ranked[~wiped], ranked[wiped]], ignore_index=True)


def ruined(frame: pd.DataFrame) -> int:
    """How many runs' equity reached zero or below (``metrics.RUIN_DRAWDOWN_PCT``); their
    ratios are null (``metrics``) and they rank last (``better_first``)."""
    return int((frame["max_drawdown_pct"] >= metrics.RUIN_DRAWDOWN_PCT).sum())


@dataclass(frozen=True)
class _Job:
    req: runner.Request
    data: runner.Dataset
    settings: Settings


_JOB: _Job | None = None


def _run_point(point: tuple[dict, int | None, int | None]) -> dict:
    params, start, end = point
    job = _JOB
    assert job is not None
    req = replace(job.req, params={**job.req.params, **params}, start=start, end=end)
    result = runner.run(req, job.data, job.settings)
    return {**params, **result.summary}


def sweep(
    job_req: runner.Request,
    data: runner.Dataset,
    settings: Settings,
    points: list[dict],
    *,
    jobs: int = 1,
    window: tuple[int | None, int | None] | None = None,
) -> pd.DataFrame:
    """One row per grid point: its parameters and summary figures (in grid order); over
    ``window`` (first, last bar time) or the request's own --from/--to."""
    global _JOB
    _JOB = _Job(job_req, data, settings)
    first, last = window if window is not None else (job_req.start, job_req.end)
    tasks = [(p, first, last) for p in points]
    try:
        if jobs <= 1 or len(points) <= 1:
            rows = [_run_point(t) for t in tasks]
        else:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                rows = list(pool.map(_run_point, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))
    finally:
        _JOB = None
    return pd.DataFrame(rows)


def _bars_in(stamps: np.ndarray, first: int, last: int) -> int:
    return int(np.searchsorted(stamps, last, side="right") - np.searchsorted(stamps, first))


def walk_forward(
    req: runner.Request,
    data: runner.Dataset,
    settings: Settings,
    points: list[dict],
    *,
    train_ms: int,
    test_ms: int,
    objective: str,
    jobs: int = 1,
) -> tuple[pd.DataFrame, dict]:
    """Per window: dates, the chosen parameters, in-sample and out-of-sample figures."""
    stamps = data.bars[0].timestamps
    first = int(stamps[0]) if req.start is None else max(int(stamps[0]), req.start)
    last = int(stamps[-1]) if req.end is None else min(int(stamps[-1]), req.end)
    rows = []
    a = first
    while a + train_ms + test_ms <= last + 1:
        train, test = (a, a + train_ms - 1), (a + train_ms, a + train_ms + test_ms - 1)
        if min(_bars_in(stamps, *train), _bars_in(stamps, *test)) < 2:  # a hole in the data
            a += test_ms
            continue
        ins = better_first(sweep(req, data, settings, points, jobs=jobs, window=train), objective)
        best = {k: ins.iloc[0][k] for k in points[0]} if points and points[0] else {}
        best = {k: (int(v) if float(v).is_integer() else float(v)) for k, v in best.items()}
        out = sweep(req, data, settings, [best], window=test).iloc[0]
        rows.append(
            {
                "train_from": train[0], "test_from": test[0], "test_to": test[1], **best,
                f"is_{objective}": ins.iloc[0][objective], f"oos_{objective}": out[objective],
                "is_return_pct": ins.iloc[0]["total_return_pct"],
                "oos_return_pct": out["total_return_pct"], "oos_trades": out["trades"],
            }
        )  # fmt: skip
        a += test_ms
    if not rows:
        raise ConfigError("the data is shorter than one --train + --test window")
    table = pd.DataFrame(rows)
    is_rate = np.mean(table["is_return_pct"]) / (train_ms / DAY_MS)
    oos_rate = np.mean(table["oos_return_pct"]) / (test_ms / DAY_MS)
    return table, {
        "windows": len(table),
        "walk_forward_efficiency_pct": oos_rate / is_rate * 100 if is_rate else math.nan,
        "oos_return_pct_total": float(np.prod(1 + table["oos_return_pct"] / 100) - 1) * 100,
        f"mean_is_{objective}": float(table[f"is_{objective}"].mean()),
        f"mean_oos_{objective}": float(table[f"oos_{objective}"].mean()),
    }
