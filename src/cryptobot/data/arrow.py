"""NumPy columns to Arrow and back, without pandas.

pyarrow imports pandas (0.15-0.2 s) the first time ``pa.array`` or ``Array.to_numpy`` is
called, to check whether its input is a pandas object. A backtest of the reference strategy
reads a million bars and writes its trades, fills and equity without any pandas object, so it
goes through Arrow's buffers instead: numbers share NumPy's memory, booleans are packed to
bits, text is built from a dictionary of the few words a column holds.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

_TYPES = {
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.float64): pa.float64(),
}


def numbers(values: np.ndarray, *, nan_is_null: bool = False) -> pa.Array:
    """An int8/int32/int64/float64/bool array as Arrow; with ``nan_is_null``, NaN is stored as
    null (what pandas' conversion stores, and what SQL readers see as NULL)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    missing = np.isnan(values) if nan_is_null else None
    nulls = int(np.count_nonzero(missing)) if missing is not None else 0
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(
        _TYPES[values.dtype], len(values), [validity, pa.py_buffer(values)], null_count=nulls
    )


def text(codes: np.ndarray, names: Sequence[str]) -> pa.Array:
    """``names[codes]`` as a large_string column (the type pandas' strings are written as),
    its bytes placed from the few words a column holds, byte position by byte position (a
    NumPy string array per column took 0.02 s of a run, gathering padded rows of bytes 0.01 s,
    and Arrow's dictionary decoding loads ``pyarrow.compute``, 0.05 s)."""
    codes = np.asarray(codes, dtype=np.intp)
    encoded = [name.encode() for name in names]
    lengths = np.array([len(b) for b in encoded], dtype=np.int64)
    offsets = np.zeros(len(codes) + 1, np.int64)
    np.cumsum(lengths[codes], out=offsets[1:])
    data = np.empty(int(offsets[-1]), np.uint8)
    for code, word in enumerate(encoded):
        starts = offsets[:-1][codes == code] if word else offsets[:0]
        for position, byte in enumerate(word):
            data[starts + position] = byte
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.large_string(), len(codes), buffers)


def column(table: "pa.Table | pd.DataFrame", name: str, dtype: Any = None) -> np.ndarray:
    """One column of an Arrow table (through ``to_numpy``) or of a pandas frame, as NumPy."""
    values = table[name]
    if isinstance(values, pa.ChunkedArray):
        values = to_numpy(values)
    return np.asarray(values, dtype=dtype)


def to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A column as one NumPy array: numbers (null as NaN in floats), booleans, or text (an
    object array). Numbers of a single chunk share Arrow's read-only memory."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [_chunk(chunk) for chunk in chunks]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, _numpy_type(column.type))


def _chunk(array: pa.Array) -> np.ndarray:
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.array(array.to_pylist(), dtype=object)
    if pa.types.is_boolean(kind):
        bits = np.frombuffer(array.buffers()[1], np.uint8)
        unpacked = np.unpackbits(bits, bitorder="little", count=array.offset + len(array))
        return unpacked[array.offset :].astype(np.bool_)
    dtype = _numpy_type(kind)
    values = np.frombuffer(array.buffers()[1], dtype, len(array), array.offset * dtype.itemsize)
    if array.null_count and dtype.kind == "f":
        bits = np.frombuffer(array.buffers()[0], np.uint8)
        valid = np.unpackbits(bits, bitorder="little", count=array.offset + len(array))
        return np.where(valid[array.offset :].astype(np.bool_), values, np.nan)
    if array.null_count:
        raise ValueError(f"a {kind} column with nulls has no NumPy form here")
    return values


def _numpy_type(kind: pa.DataType) -> np.dtype:
    for dtype, arrow in _TYPES.items():
        if arrow == kind:
            return dtype
    if pa.types.is_boolean(kind):
        return np.dtype(np.bool_)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.dtype(object)
    raise ValueError(f"no NumPy form for Arrow {kind}")
