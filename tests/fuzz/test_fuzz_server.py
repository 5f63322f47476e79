"""Fuzz ``baton serve``'s request handling, in-process: ``decode_request`` and
``ModelServer.infer`` (with a real onnxruntime Session on the churn bundle) take any body,
JSON or not, well-formed or mutated, with or without binary tensor data, and either answer
(strict JSON, the outputs asked for) or raise :class:`HttpError` with a 4xx status (or 503).
Nothing else may escape: anything else would be a 500 from the server."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st

from baton.serving.protocol import NON_FINITE, HttpError, decode_request
from baton.serving.server import ModelServer
from tests.fuzz import FUZZ

#: the churn bundle's inputs (tests/conftest.py), as the protocol names their datatypes
INPUTS = {"age": "FP64", "tenure_months": "INT64", "monthly_charge": "FP64", "city": "BYTES",
          "plan": "BYTES"}
#: valid values for each input: any float (NaN and the infinities as the protocol's
#: strings), any int64, any text (unseen categories too)
FLOATS = st.one_of(st.floats(-1e300, 1e300), st.sampled_from(["NaN", "Infinity", "-Infinity"]))
VALID = {"age": FLOATS, "tenure_months": st.integers(-2**63, 2**63 - 1),
         "monthly_charge": FLOATS,
         "city": st.one_of(st.sampled_from(["Lyon", "Oslo", "Lima", "Pune"]), st.text()),
         "plan": st.one_of(st.sampled_from(["basic", "plus", "pro"]), st.text(max_size=4))}
OUTPUTS = ["label", "probabilities"]
DATATYPES = ["FP64", "FP32", "FP16", "INT64", "INT32", "INT8", "UINT64", "BOOL", "BYTES"]


def reject(constant: str) -> Any:
    raise AssertionError(f"a bare {constant} in a response: not JSON")


# -- strategies -------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "Oslo", "pro", "", "\ud800"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["name", "shape", "datatype", "data", "parameters",
                                     "inputs", "outputs", "id", "binary_data_size", "x"]),
                    inner, max_size=4)), max_leaves=12)
#: shapes: mostly near the right one, sometimes anything
SHAPES = st.one_of(st.lists(st.integers(-1, 4), min_size=2, max_size=2),
                   st.lists(st.integers(0, 3), max_size=3),
                   st.lists(st.sampled_from([10**12, 2**63, 2**64 + 1, 0]), max_size=2),
                   JSON)
#: data: mostly lists of values of one row's worth, flat or nested
DATA = st.one_of(st.lists(SCALARS, max_size=4),
                 st.lists(st.lists(SCALARS, max_size=2), max_size=3),
                 st.lists(st.lists(st.lists(SCALARS, max_size=2), max_size=2), max_size=2),
                 JSON)


#: what a mutation may put in each field of a tensor
FIELDS = {"name": st.one_of(st.sampled_from([*INPUTS, "other"]), JSON),
          "datatype": st.one_of(st.sampled_from(DATATYPES), JSON), "shape": SHAPES,
          "data": DATA,
          "parameters": st.one_of(st.fixed_dictionaries({"binary_data_size": SCALARS}), JSON)}
#: how many fields a request has mutated: often none, so that many requests run the model
MUTATIONS = st.sampled_from([0, 0, 0, 1, 1, 2, 3])


@st.composite
def valid_data(draw: Any, name: str, rows: int) -> list[Any]:
    values = draw(st.lists(VALID[name], min_size=rows, max_size=rows))
    return draw(st.sampled_from([values, [[v] for v in values]]))  # flat or nested


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    """A valid churn request for a few rows, with some fields mutated, dropped or added."""
    rows = draw(st.integers(1, 3))
    tensors: list[dict[str, Any]] = [
        {"name": n, "datatype": t, "shape": [rows, 1], "data": draw(valid_data(n, rows))}
        for n, t in INPUTS.items()]
    for _ in range(draw(MUTATIONS)):
        tensor = draw(st.sampled_from(tensors))
        key = draw(st.sampled_from(sorted(FIELDS)))
        if draw(st.integers(0, 3)):
            tensor[key] = draw(FIELDS[key])
        else:
            tensor.pop(key, None)
    tensors = draw(st.permutations(tensors))
    if draw(st.integers(0, 3)) == 0:  # inputs dropped, or repeated
        tensors = tensors[:draw(st.integers(0, len(tensors)))]
        tensors += draw(st.lists(st.sampled_from(tensors or [{}]), max_size=2))
    request: dict[str, Any] = {"inputs": tensors}
    for key, values in (
            ("id", st.one_of(st.text(max_size=8), JSON)),
            ("parameters", st.one_of(st.fixed_dictionaries(
                {"binary_data_output": st.booleans()}), JSON)),
            ("outputs", st.one_of(
                st.lists(st.fixed_dictionaries(
                    {"name": st.sampled_from([*OUTPUTS, "score"])},
                    optional={"parameters": st.one_of(st.fixed_dictionaries(
                        {"binary_data": st.booleans()}), JSON)}), max_size=3),
                JSON))):
        if draw(st.booleans()):
            request[key] = draw(values)
    return request


def _binary(values: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return np.asarray(values, dtype="<f8" if datatype == "FP64" else "<i8").tobytes()


@st.composite
def binary_bodies(draw: Any) -> tuple[bytes, str | None]:
    """A request in the binary tensor data extension: a JSON header whose inputs give a
    binary_data_size (right, or not), then the bytes (right, cut, padded or random), and an
    Inference-Header-Content-Length that is right, off, or not a number."""
    rows = draw(st.integers(1, 3))
    tensors, chunks = [], []
    for name, datatype in INPUTS.items():
        values = draw(st.lists(VALID[name], min_size=rows, max_size=rows))
        raw = _binary([NON_FINITE.get(v, v) if isinstance(v, str) and datatype != "BYTES"
                       else v for v in values], datatype)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [rows, 1],
                                  "parameters": {"binary_data_size": len(raw)}}
        tensors.append(tensor)
        chunks.append(raw)
    for _ in range(draw(MUTATIONS)):
        i = draw(st.integers(0, len(tensors) - 1))
        what = draw(st.sampled_from(["bytes", "size", "data", "shape"]))
        if what == "bytes":
            chunks[i] = draw(st.binary(max_size=40))
        elif what == "size":
            tensors[i]["parameters"]["binary_data_size"] = draw(
                st.one_of(st.integers(-3, 80), SCALARS))
        elif what == "data":
            tensors[i]["data"] = draw(DATA)
        else:
            tensors[i]["shape"] = draw(SHAPES)
    request = {"inputs": tensors, "parameters": {"binary_data_output": draw(st.booleans())}}
    header = json.dumps(request).encode()
    tail = b"".join(chunks)
    change = draw(st.sampled_from(["none"] * 8 + ["cut", "pad", "random"]))
    if change == "cut":
        tail = tail[:draw(st.integers(0, len(tail)))]
    elif change == "pad":
        tail += draw(st.binary(min_size=1, max_size=16))
    elif change == "random":
        tail = draw(st.binary(max_size=120))
    length = draw(st.one_of(
        st.just(str(len(header))), st.just(str(len(header))),
        st.integers(-2, len(header) + len(tail) + 2).map(str),
        st.sampled_from(["", "abc", " 12", "1_0", "99999999999999999999999", "-0"])))
    return header + tail, length


#: bodies built to cost CPU or to raise: deep nesting, a long int, bad UTF-8, a bare NaN,
#: 20,000 repeated names (by index, so that a failure report does not print them)
ATTACKS = [b"[" * 50_000, b'{"inputs": ' + b"[" * 5000, b'{"id": ' + b"9" * 5000 + b"}",
           b"\xff\xfe", b"NaN", b'{"inputs": [' + b'{"name": "age"},' * 20_000 + b"{}]}"]
BODIES = st.one_of(
    st.binary(max_size=64).map(lambda b: (b, None)),
    JSON.map(lambda v: (json.dumps(v).encode(), None)),
    requests().map(lambda r: (json.dumps(r).encode(), None)),
    st.sampled_from(range(len(ATTACKS))).map(lambda i: (ATTACKS[i], None)),
    binary_bodies())


# -- the fuzz tests ---------------------------------------------------------------------------

@FUZZ
@given(body=BODIES, header_length=st.one_of(st.none(), st.text(max_size=6),
                                            st.integers(-5, 400).map(str)))
def test_decode_request_raises_only_http_4xx(churn: ModelServer, body: tuple[bytes, Any],
                                             header_length: str | None) -> None:
    raw, length = body
    try:
        request = decode_request(raw, length if length is not None else header_length,
                                 churn.inputs, churn.output_names)
    except HttpError as exc:
        assert 400 <= exc.status < 500, (exc.status, exc.message)
        assert exc.message and "\n" not in exc.message and len(exc.message) < 1000
        event(f"refused {exc.status}")
        return
    event("decoded")
    assert set(request.feeds) == set(INPUTS)
    assert set(request.outputs) <= set(OUTPUTS) and set(request.binary) <= set(OUTPUTS)


@FUZZ
@given(body=st.one_of(requests().map(lambda r: (json.dumps(r).encode(), None)),
                      binary_bodies()))
def test_infer_answers_or_raises_only_http_4xx(churn: ModelServer,
                                               body: tuple[bytes, str | None]) -> None:
    raw, length = body
    try:
        content, header_length = churn.infer(raw, length)
    except HttpError as exc:
        assert 400 <= exc.status < 500 or exc.status == 503, (exc.status, exc.message)
        assert exc.message and "\n" not in exc.message and len(exc.message) < 1000
        event(f"refused {exc.status}")
        return
    event("answered" if header_length is None else "answered in binary")
    header = content if header_length is None else content[:header_length]
    answer = json.loads(header, parse_constant=reject)
    assert answer["model_name"] == churn.name
    assert {o["name"] for o in answer["outputs"]} <= set(OUTPUTS)
    for output in answer["outputs"]:
        assert ("data" in output) != ("binary_data_size" in output.get("parameters", {}))
