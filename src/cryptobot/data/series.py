"""The lake's observation series besides candles: what each kind holds and which values it may.

Files (under ``data_dir``) and value columns, ``[optional]``:

- ``funding/<exchange>/<symbol-id>.parquet``: funding_rate [mark_price]
- ``open_interest/<exchange>/<symbol-id>/<period>.parquet``: open_interest [open_interest_value]
- ``long_short/...``, ``top_long_short_accounts/...``, ``top_long_short_positions/...`` (the
  layout of open_interest): long_short_ratio [long_account, short_account]
- ``taker_volume/<exchange>/<symbol-id>/<period>.parquet``: buy_volume, sell_volume
- ``fear_greed/<source>.parquet`` (daily): value

Every row is keyed by ``timestamp`` (int64 ms, UTC), the venue's own stamp: the settlement time
of a funding, the moment of an open-interest or long/short snapshot, the day of a Fear & Greed
value, and for a taker volume the period it sums, read as the period's start so the value counts
as known only when the period has closed (:attr:`Kind.summed`: if the venue stamps the end, that
costs one period of delay, never a look-ahead). Optional columns may be NaN, never infinite.

``long_short`` is the ratio of all accounts (Binance ``globalLongShortAccountRatio``; OKX's
"rubik" account ratio); the two ``top_`` kinds are Binance's top traders by account and by
position. ``long_account``/``short_account`` are fractions of accounts (0.66 = 66 %).

What a write refuses (:func:`problems`): times that are no plausible epoch ms (before 2009 or
after 2099), NaN or infinite values, values out of their range (a negative volume, a share above
1, a Fear & Greed above 100, a funding rate beyond :data:`FUNDING_CAP`: rates are fractions,
0.0001 = 0.01 %), times off the period grid (funding, irregular, on the whole hour: Binance,
Bybit, OKX and Hyperliquid all settle on the hour, after the ms jitter is folded away), rows
that are not known yet at the writer's clock (a funding time or snapshot after it; a taker
period not closed by it) and, for imports, a file whose rows are further apart than its period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cryptobot.core.timeframes import off_grid
from cryptobot.core.timeutil import iso
from cryptobot.data.validate import implausible_times, span

if TYPE_CHECKING:  # pandas loads when a series is written (the lake's readers of candles need none)
    import pandas as pd

#: The largest funding rate a venue charges in one settlement. Exchanges clamp funding at a few
#: per cent (Binance 0.3 % to 3 % by contract, Bybit and OKX alike, Hyperliquid 4 % an hour); the
#: shared real histories never exceed 0.25 %. A rate above 5 % is a file in percent.
FUNDING_CAP = 0.05

#: Venues settle a contract's funding every 8 h at most (Binance, Bitget, Bybit, OKX; some
#: contracts every 4 h or every hour): two stored settlements further apart than that (and a
#: minute, for a stamp a little late) have lost one between them. ``fetch`` asks for it again,
#: ``--status`` counts the gap.
FUNDING_HOLE_MS = 8 * 3_600_000 + 60_000

#: (low, high, low is allowed) of a column's values; None: unbounded on that side.
Bounds = tuple[float | None, float | None, bool]


@dataclass(frozen=True)
class Kind:
    name: str
    required: tuple[str, ...]  # value columns every row has
    optional: tuple[str, ...] = ()  # value columns stored when the source has them
    bounds: dict[str, Bounds] = field(default_factory=dict)
    periodic: bool = True  # filed per period; timestamps on its grid
    per_symbol: bool = True  # False: one series per source (fear_greed)
    summed: bool = False  # values add up over the period: known when the period closes
    period: str | None = None  # the one period of a kind published at a fixed pace
    #: names other tools give the columns (an import matches them case-insensitively)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the grid an irregular kind's times still sit on (funding: the whole hour)
    grid_ms: int | None = None
    #: the widest step between two of an irregular kind's times that loses none between them
    hole_ms: int | None = None
    #: what a column's values mean, said when one is refused (a rate in percent, not a fraction)
    units: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return ["timestamp", *self.required, *self.optional]


_RATIO_BOUNDS: dict[str, Bounds] = {
    "long_short_ratio": (0.0, None, True),
    "long_account": (0.0, 1.0, True),
    "short_account": (0.0, 1.0, True),
}
_RATIO_ALIASES = {
    "long_short_ratio": ("longshortratio", "long_short_account_ratio", "ratio"),
    "long_account": ("longaccount", "long_ratio", "buyratio"),
    "short_account": ("shortaccount", "short_ratio", "sellratio"),
}


def _ratio(name: str) -> Kind:
    return Kind(
        name,
        ("long_short_ratio",),
        ("long_account", "short_account"),
        _RATIO_BOUNDS,
        aliases=_RATIO_ALIASES,
    )


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "funding",
            ("funding_rate",),
            ("mark_price",),
            {"funding_rate": (-FUNDING_CAP, FUNDING_CAP, True), "mark_price": (0.0, None, False)},
            periodic=False,
            aliases={"funding_rate": ("fundingrate", "rate"), "mark_price": ("markprice",)},
            grid_ms=3_600_000,
            hole_ms=FUNDING_HOLE_MS,
            units={"funding_rate": "a fraction (0.0001 = 0.01 %), not a percent"},
        ),
        Kind(
            "open_interest",
            ("open_interest",),
            ("open_interest_value",),
            {"open_interest": (0.0, None, True), "open_interest_value": (0.0, None, True)},
            aliases={
                "open_interest": ("sumopeninterest", "openinterest", "oi"),
                "open_interest_value": ("sumopeninterestvalue", "openinterestvalue"),
            },
        ),
        _ratio("long_short"),
        _ratio("top_long_short_accounts"),
        _ratio("top_long_short_positions"),
        Kind(
            "taker_volume",
            ("buy_volume", "sell_volume"),
            bounds={"buy_volume": (0.0, None, True), "sell_volume": (0.0, None, True)},
            summed=True,
            aliases={
                "buy_volume": ("buyvol", "taker_buy_volume", "taker_buy_vol"),
                "sell_volume": ("sellvol", "taker_sell_volume", "taker_sell_vol"),
            },
        ),
        Kind(
            "fear_greed",
            ("value",),
            bounds={"value": (0.0, 100.0, True)},
            per_symbol=False,
            period="1d",
            aliases={"value": ("fear_greed", "fng", "index")},
        ),
    )
}


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown series kind {name!r}; use one of {', '.join(KINDS)}") from None


def normalise(kind: Kind, frame: pd.DataFrame) -> pd.DataFrame:
    """The kind's columns as int64 ms and float64 (optional ones NaN when absent); times to the
    nearest second. Binance stamps about a fifth of its funding settlements a few milliseconds
    late (``08:00:00.008``): one event is one row, filed at its second."""
    import pandas as pd

    out = pd.DataFrame({"timestamp": nearest_second(frame["timestamp"].to_numpy())})
    for col in (*kind.required, *kind.optional):
        values = frame.get(col, np.nan)
        out[col] = pd.Series(values, index=frame.index, dtype="float64").to_numpy()
    if not kind.optional:
        return out
    present = [c for c in kind.optional if c in frame]  # an optional column nobody gave is
    return out[["timestamp", *kind.required, *present]]  # not stored as a column of NaN


def problems(
    kind: Kind,
    frame: pd.DataFrame,
    *,
    period_ms: int | None,
    now_ms: int | None,
    check_spacing: bool = False,
) -> list[str]:
    """The hard problems of normalised rows, worded for one line (empty: fine to store).

    ``now_ms`` is the writer's clock (None skips that check); ``check_spacing`` refuses rows
    that are nowhere one period apart (a daily file imported as hourly), as for candles. Times
    that are no plausible epoch ms are the only problem named then (they have no date to show)."""
    ts = frame["timestamp"].to_numpy()
    if odd := implausible_times(ts):
        return [odd]
    bad = np.zeros(len(frame), dtype=bool)
    found = []
    for col in (*kind.required, *kind.optional):
        if col not in frame:
            continue
        values = frame[col].to_numpy()
        missing = np.isnan(values) if col in kind.optional else np.zeros(len(values), bool)
        broken = (~np.isfinite(values) | _outside(values, kind.bounds.get(col))) & ~missing
        if broken.any():
            unit = f" ({kind.units[col]})" if col in kind.units else ""
            found.append(f"{int(broken.sum())} rows with {col} {_allowed(col, kind)}{unit}")
            bad |= broken
    grid_ms = period_ms or kind.grid_ms
    if grid_ms and (off := off_grid(ts, grid_ms)).any():
        found.append(f"{int(off.sum())} timestamps off the {span(grid_ms)} grid{_why(kind)}")
        bad |= off
    if found:
        found.append(f"the first bad row is at {iso(int(ts[bad].min()))}")
    if now_ms is not None and len(ts):
        known = ts + (period_ms if kind.summed and period_ms else 0)
        late = known > now_ms
        if late.any():
            found.append(
                f"{int(late.sum())} rows not known yet at {iso(now_ms)} (the first at"
                f" {iso(int(ts[late].min()))}{_closing(kind, period_ms)})"
            )
    if check_spacing and period_ms and not found:
        closest = _closest(ts)
        if closest is not None and closest > period_ms:
            tf = span(period_ms)
            found.append(
                f"no two rows are {tf} apart (closest: {span(closest)}): these are not {tf}"
                " rows; check the period (--timeframe)"
            )
    return found


def nearest_second(ts: np.ndarray) -> np.ndarray:
    """Times folded to their second: how a series files a venue's jittered stamps."""
    return ((ts.astype("int64") + 500) // 1000) * 1000


def _outside(values: np.ndarray, bounds: Bounds | None) -> np.ndarray:
    if bounds is None:
        return np.zeros(len(values), dtype=bool)
    low, high, low_ok = bounds
    with np.errstate(invalid="ignore"):
        out = np.zeros(len(values), dtype=bool)
        if low is not None:
            out |= values < low if low_ok else values <= low
        if high is not None:
            out |= values > high
    return out


def _allowed(col: str, kind: Kind) -> str:
    """``"NaN, infinite or below 0"``: what a bad value of ``col`` was not allowed to be."""
    said = ["infinite"] if col in kind.optional else ["NaN", "infinite"]
    low, high, low_ok = kind.bounds.get(col, (None, None, True))
    if low is not None and high is not None:
        said.append(f"outside {low:g}..{high:g}")
    elif low is not None:
        said.append(f"below {low:g}" if low_ok else f"not above {low:g}")
    return " or ".join([", ".join(said[:-1]), said[-1]]) if len(said) > 1 else said[0]


def _why(kind: Kind) -> str:
    """Why an irregular kind still has a grid (every venue settles funding on the hour)."""
    return f" (every venue settles {kind.name} on the hour)" if not kind.periodic else ""


def _closing(kind: Kind, period_ms: int | None) -> str:
    if kind.summed and period_ms:
        return f", a {span(period_ms)} period known when it closes"
    return ""


def _closest(ts: np.ndarray) -> int | None:
    steps = np.diff(np.unique(ts))
    return int(steps.min()) if len(steps) else None


def holes(
    ts: np.ndarray, period_ms: int | None, *, kind: Kind | None = None
) -> tuple[int | None, int | None]:
    """(gaps, missing rows) of a periodic series; of an irregular ``kind`` with a widest step
    (funding) the gaps, its missing rows unknown (None); (None, None) for another."""
    steps = np.diff(np.unique(ts))
    if not period_ms:
        if kind is None or kind.hole_ms is None:
            return None, None
        return int((steps > kind.hole_ms).sum()), None
    wide = steps[steps > period_ms]
    return len(wide), int((wide // period_ms - 1).sum())
