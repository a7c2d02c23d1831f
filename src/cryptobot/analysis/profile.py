"""Volume profile of a window of bars: point of control and value area.

Each bar's volume is spread evenly over its low..high range and binned by price (a bar with no
range puts it all in its bin). The point of control (POC) is the middle of the busiest bin. The
value area grows from the POC one bin at a time towards the busier neighbour until it holds
``value_area`` (70% by default) of the volume; VAH/VAL are its upper and lower bin edges.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class VolumeProfile:
    poc: float
    vah: float
    val: float
    edges: np.ndarray
    volume: np.ndarray


def volume_profile(frame: pd.DataFrame, bins: int = 50, value_area: float = 0.7) -> VolumeProfile:
    high = frame["high"].to_numpy(dtype="float64")
    low = frame["low"].to_numpy(dtype="float64")
    vol = frame["volume"].to_numpy(dtype="float64")
    if len(frame) == 0:
        raise ValueError("a volume profile needs at least one bar")
    edges = np.linspace(low.min(), high.max(), bins + 1)
    if edges[-1] == edges[0]:
        edges = edges[0] + np.arange(bins + 1) * 1e-12
    overlap = np.clip(
        np.minimum(high[:, None], edges[None, 1:]) - np.maximum(low[:, None], edges[None, :-1]),
        0,
        None,
    )
    span = high - low
    share = np.where(span[:, None] > 0, overlap / np.where(span > 0, span, 1)[:, None], 0.0)
    flat = span == 0
    if flat.any():
        idx = np.clip(np.searchsorted(edges, low[flat], side="right") - 1, 0, bins - 1)
        share[np.flatnonzero(flat), idx] = 1.0
    per_bin = (share * vol[:, None]).sum(axis=0)
    lo_bin, hi_bin = _value_area(per_bin, value_area)
    poc_bin = int(np.argmax(per_bin))
    return VolumeProfile(
        poc=float((edges[poc_bin] + edges[poc_bin + 1]) / 2),
        vah=float(edges[hi_bin + 1]),
        val=float(edges[lo_bin]),
        edges=edges,
        volume=per_bin,
    )


def _value_area(per_bin: np.ndarray, share: float) -> tuple[int, int]:
    lo = hi = int(np.argmax(per_bin))
    target, held = share * per_bin.sum(), per_bin[lo]
    while held < target and (lo > 0 or hi < len(per_bin) - 1):
        below = per_bin[lo - 1] if lo > 0 else -1.0
        above = per_bin[hi + 1] if hi < len(per_bin) - 1 else -1.0
        if above >= below:
            hi += 1
            held += above
        else:
            lo -= 1
            held += below
    return lo, hi
