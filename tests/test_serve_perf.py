"""``baton serve``'s fast paths: the compiled request decoder answers exactly as
``decode_request`` does; ``--workers 2`` serves from two processes on one port and stops
on a signal; past its bound the server answers 503 with Retry-After before reading a body,
while the requests it admitted still succeed. Real servers on loopback, real clients."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException

from baton.serving.protocol import HttpError, RequestDecoder, decode_request
from baton.serving.server import ModelServer
from tests.fuzz.test_fuzz_server import BODIES, DATATYPES, INPUTS, SCALARS, VALID
from tests.test_serve import (
    MODEL,
    ONE_ROW,
    columns,
    one_row,
    serving,
    triton_inputs,
    wait_until,
)


def outcome(decode: Any, body: bytes, header_length: str | None) -> Any:
    """What decoding gives: the error's status and message, or the decoded request with
    every array's dtype, shape and values (NaN compared as NaN; the compiled decoder may
    give read-only arrays over the body's bytes)."""
    try:
        request = decode(body, header_length)
    except HttpError as exc:
        return ("error", exc.status, exc.message)
    feeds = {k: (v.dtype.str, v.shape, repr(v.tolist()))
             for k, v in request.feeds.items()}
    return ("ok", feeds, request.outputs, sorted(request.binary), request.id)


@st.composite
def near_valid(draw: Any) -> tuple[bytes, None]:
    """A valid churn request with one input's values replaced by values of any JSON type,
    as many as the shape holds (so that only their types are wrong, or not)."""
    rows = draw(st.sampled_from([1, 1, 2, 3]))
    tensors = [{"name": n, "datatype": t, "shape": [rows, 1],
                "data": draw(st.lists(VALID[n], min_size=rows, max_size=rows))}
               for n, t in INPUTS.items()]
    tensor = draw(st.sampled_from(tensors))
    values = draw(st.lists(st.one_of(st.booleans(), st.integers(-2**70, 2**70),
                                     st.floats(), SCALARS), min_size=rows, max_size=rows))
    tensor["data"] = draw(st.sampled_from([values, [[v] for v in values]]))
    if draw(st.booleans()):
        tensor["datatype"] = draw(st.sampled_from(DATATYPES))
    if draw(st.integers(0, 3)) == 0:
        tensor["parameters"] = draw(st.sampled_from([None, {}, [], {"x": 1},
                                                     {"binary_data_size": 8}]))
    return json.dumps({"inputs": tensors}).encode(), None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(BODIES, near_valid()))
def test_compiled_decoder_answers_as_decode_request(churn: ModelServer,
                                                    body: tuple[bytes, str | None]) -> None:
    raw, length = body
    compiled = RequestDecoder(churn.inputs, churn.output_names)
    expected = outcome(lambda b, h: decode_request(b, h, churn.inputs, churn.output_names),
                       raw, length)
    assert outcome(compiled, raw, length) == expected


def test_valid_requests_take_the_compiled_path(churn: ModelServer, mixed_frame: Any) -> None:
    """A valid request, JSON (flat or nested) or binary, is decoded without falling back
    to decode_request (whose result would be the same, at several times the cost)."""
    decoder = RequestDecoder(churn.inputs, churn.output_names)
    nested = json.loads(one_row())
    for t in nested["inputs"]:
        t["data"] = [t["data"]]
    arrays = columns(mixed_frame.dropna().iloc[:3])
    header, chunks = [], []
    for name, arr in arrays.items():
        if arr.dtype == object:
            raw = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode()
                           for v in arr.reshape(-1))
        else:
            raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        chunks.append(raw)
        header.append({"name": name, "datatype": {"float64": "FP64", "int64": "INT64"}.get(
            str(arr.dtype), "BYTES"), "shape": [3, 1],
            "parameters": {"binary_data_size": len(raw)}})
    head = json.dumps({"inputs": header, "id": 7}).encode()
    for body, length in ((one_row(), None), (json.dumps(nested).encode(), None),
                         (head + b"".join(chunks), str(len(head)))):
        request = decoder._fast(body, length)  # raises _Fallback when it would fall back
        assert request.feeds.keys() == {s.name for s in churn.inputs}
        assert outcome(decoder, body, length) == outcome(
            lambda b, h: decode_request(b, h, churn.inputs, churn.output_names), body, length)
    assert float(decoder(one_row(), None).feeds["age"][0, 0]) == 40.5  # ONE_ROW's age


def test_short_models_run_inline_up_to_the_warm_up_rows(churn: ModelServer) -> None:
    assert churn.run_seconds > 0 and churn.inline_rows == 16  # the churn bundle's golden rows
    small = churn.decode(one_row(), None)
    rows = churn.inline_rows + 1
    request = json.loads(one_row())
    for t in request["inputs"]:
        t["shape"], t["data"] = [rows, 1], t["data"] * rows
    big = churn.decode(json.dumps(request).encode(), None)
    assert churn.runs_inline(small) == churn.inline
    assert not churn.runs_inline(big)
    for request in (small, big):  # both paths answer
        content, _ = churn.run(request)
        assert len(json.loads(content)["outputs"][0]["data"]) == request.feeds["age"].shape[0]


# -- --workers ----------------------------------------------------------------------------

def worker_header(host: str, port: int) -> str:
    """The Baton-Worker header of one request on a new connection."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("GET", "/v2/health/live")
        response = conn.getresponse()
        response.read()
        return response.getheader("baton-worker") or ""
    finally:
        conn.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a child of the pytest process would be a zombie until reaped: but the workers are
    # the server's children, reaped by it
    return False


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_two_workers_serve_one_port_and_stop_on_a_signal(
        mixed_bundle_dir: Path, tmp_path: Path, mixed_frame: Any, fitted_pipeline: Any,
        sig: int, status: int) -> None:
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--workers", "2") as srv:
        wait_until(lambda: srv.log_text().count("is ready") == 2, "both warm-ups", srv)
        wait_until(lambda: len(set(re.findall(r"Started server process \[(\d+)\]",
                                              srv.log_text()))) == 2, "two workers", srv)
        pids = {int(p) for p in re.findall(r"Started server process \[(\d+)\]",
                                           srv.log_text())}
        assert srv.process.pid not in pids
        # new connections are spread over the workers by the kernel (SO_REUSEPORT)
        seen = {worker_header(srv.host, srv.port) for _ in range(40)}
        assert seen == {"1/2", "2/2"}, seen
        frame = mixed_frame.iloc[:5]
        labels = srv.client().infer(MODEL, triton_inputs(columns(frame), True)
                                    ).as_numpy("label")
        np.testing.assert_array_equal(labels, fitted_pipeline.predict(frame))
        srv.process.send_signal(sig)
        assert srv.process.wait(60) == status, srv.log_text()
    log = srv.log_text()
    assert "Traceback" not in log, log
    assert log.count("Finished server process") == 2, log
    assert f"stopped by {signal.Signals(sig).name}" in log
    assert all(gone(pid) for pid in pids)


# -- overload -----------------------------------------------------------------------------

def hold(host: str, port: int, body: bytes) -> socket.socket:
    """An infer request whose headers and first byte arrived, the rest not yet sent."""
    conn = socket.create_connection((host, port), timeout=60)
    conn.sendall(f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:1])
    return conn


def answer(conn: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I)[1])  # type: ignore[index]
    while len(body) < length:
        body += conn.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_past_the_bound_503_with_retry_after_and_admitted_requests_succeed(
        mixed_bundle_dir: Path, tmp_path: Path, fitted_pipeline: Any,
        mixed_frame: Any) -> None:
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--max-concurrency", "1",
                 "--max-queue", "1") as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        body = one_row()
        held = [hold(srv.host, srv.port, body) for _ in range(2)]  # the bound: 1 + 1
        # once a complete request is refused, the two held ones have their places
        wait_until(lambda: srv.raw("POST", f"/v2/models/{MODEL}/infer", body)[0] == 503,
                   "a 503", srv)
        # the third is refused before its body is read: it sends none at all
        with socket.create_connection((srv.host, srv.port), timeout=60) as third:
            third.sendall(f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: x\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += third.recv(65536)
            head = data.partition(b"\r\n\r\n")[0].decode().lower()
            assert head.startswith("http/1.1 503"), head
            assert "retry-after: 1" in head
        status, busy = srv.raw("POST", f"/v2/models/{MODEL}/infer", body)
        assert status == 503 and "busy" in busy["error"]
        # tritonclient sees the same 503
        with pytest.raises(InferenceServerException) as info:
            srv.client().infer(MODEL, triton_inputs(columns(mixed_frame.iloc[:1]), False))
        assert info.value.status() == "503" and "busy" in info.value.message()
        # the admitted requests complete and are answered right
        expected = fitted_pipeline.predict(pd.DataFrame(ONE_ROW))
        for conn in held:
            conn.sendall(body[1:])
            status, result = answer(conn)
            conn.close()
            assert status == 200, result
            assert result["outputs"][0]["data"] == expected.tolist()
        # and once they are answered, there is room again
        labels = srv.client().infer(MODEL, triton_inputs(columns(mixed_frame.iloc[:3]), True)
                                    ).as_numpy("label")
        np.testing.assert_array_equal(labels, fitted_pipeline.predict(mixed_frame.iloc[:3]))
