"""The runtime reads golden vectors (TensorProto files) without the onnx package: the same
arrays as onnx.numpy_helper, for every dtype and both ways a TensorProto holds values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, numpy_helper

from baton.runtime._external import MalformedModel
from baton.runtime._golden import parse_tensor

DTYPES = ["float32", "float64", "int64", "int32", "bool", "uint8", "int8", "int16", "uint16",
          "float16", "uint32", "uint64"]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_raw_data_reads_as_onnx_reads_it(dtype: str, data: st.DataObject) -> None:
    a = data.draw(hnp.arrays(np.dtype(dtype), SHAPES))
    proto = numpy_helper.from_array(a, "t")
    name, got = parse_tensor(proto.SerializeToString())
    assert name == "t"
    _same(got, numpy_helper.to_array(proto))


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d not in ("float16", "uint32",
                                                                     "uint64")])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_typed_fields_read_as_onnx_reads_them(dtype: str, data: st.DataObject) -> None:
    a = data.draw(hnp.arrays(np.dtype(dtype), SHAPES))
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    proto = helper.make_tensor("t", elem, a.shape, a.reshape(-1).tolist())
    _, got = parse_tensor(proto.SerializeToString())
    _same(got, numpy_helper.to_array(proto))


@settings(max_examples=50, deadline=None)
@given(texts=st.lists(st.text(st.characters(exclude_categories=("Cs",))), max_size=6))
def test_text_reads_as_str(texts: list[str]) -> None:
    # built by hand: onnx.helper.make_tensor passes text through numpy, which drops
    # trailing NULs
    proto = TensorProto(name="s", data_type=TensorProto.STRING, dims=[len(texts)])
    proto.string_data.extend(t.encode() for t in texts)
    _, got = parse_tensor(proto.SerializeToString())
    assert got.dtype == object and got.tolist() == texts


@pytest.mark.parametrize("damage", ["truncated", "short raw data", "external", "bad type"])
def test_damaged_tensors_are_refused(damage: str) -> None:
    proto = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "t")
    if damage == "short raw data":
        proto.raw_data = proto.raw_data[:-4]
    elif damage == "external":
        proto.data_location = TensorProto.EXTERNAL
    elif damage == "bad type":
        proto.data_type = 999
    data = proto.SerializeToString()
    if damage == "truncated":
        data = data[:-3]
    with pytest.raises((ValueError, MalformedModel)):
        parse_tensor(data)
