"""NumPy columns to Arrow and back without pandas (data/arrow.py): the same arrays pyarrow's
own conversions make, whatever the values (NaN, infinities, empty, many chunks)."""

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryptobot.data.arrow import column, numbers, text, to_numpy

FLOATS = hnp.arrays(np.float64, st.integers(0, 40), elements=st.floats(allow_nan=True))
INTS = hnp.arrays(np.int64, st.integers(0, 40))
BOOLS = hnp.arrays(np.bool_, st.integers(0, 40))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


@given(values=FLOATS, nan_is_null=st.booleans())
def test_floats_equal_pyarrows_conversion(values, nan_is_null):
    got = numbers(values, nan_is_null=nan_is_null)
    want = pa.array(values, pa.float64(), from_pandas=nan_is_null)
    assert got.type == want.type and got.is_null().equals(want.is_null())
    assert _same(got.to_numpy(zero_copy_only=False), want.to_numpy(zero_copy_only=False))
    assert got.null_count == (int(np.isnan(values).sum()) if nan_is_null else 0)
    assert _same(to_numpy(got), values)  # a null reads back as NaN


@given(values=INTS)
def test_integers_round_trip(values):
    assert numbers(values).equals(pa.array(values))
    assert _same(to_numpy(numbers(values)), values)


@given(values=BOOLS, cut=st.integers(0, 40))
def test_booleans_round_trip_also_from_an_offset_slice(values, cut):
    arrow = numbers(values)
    assert arrow.equals(pa.array(values))
    assert _same(to_numpy(arrow), values)
    assert _same(to_numpy(arrow.slice(min(cut, len(values)))), values[min(cut, len(values)) :])


@given(codes=hnp.arrays(np.int8, st.integers(0, 30), elements=st.integers(0, 2)))
def test_text_from_a_dictionary_equals_the_strings(codes):
    names = ["long", "short", "liquidation ⚠"]
    got = text(codes, names)
    assert got.type == pa.large_string()
    assert got.to_pylist() == [names[c] for c in codes]
    assert to_numpy(got).tolist() == [names[c] for c in codes]


@given(parts=st.lists(FLOATS, max_size=4))
def test_a_column_of_many_chunks_is_one_array(parts):
    chunked = pa.chunked_array([numbers(p, nan_is_null=True) for p in parts], pa.float64())
    want = np.concatenate(parts) if parts else np.empty(0)
    assert _same(to_numpy(chunked), want)
    table = pa.table({"x": chunked})
    assert _same(column(table, "x"), want)
    assert _same(column({"x": want}, "x", np.float64), want)  # anything indexable by name
