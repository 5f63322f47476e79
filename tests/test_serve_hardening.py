"""``baton serve`` under attack and at its edges: request bodies built to cost CPU or to
raise, half-sent headers, non-finite numbers, signals, bundles without golden vectors.
Real ``baton serve`` processes on loopback, raw sockets and tritonclient's HTTP client;
``decode_request`` and ``ModelServer`` in-process on real bundles."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as http_client

import baton
from baton.bundle import load
from baton.errors import UsageError
from baton.runtime import Session
from baton.serving.protocol import HttpError
from baton.serving.server import HEADER_TIMEOUT_ENV, ModelServer, serve
from tests.test_serve import Server, one_row, serving, wait_until

LINE = "line"  # y = 2x + 1, one float64 column: NaN and the infinities go straight through
#: the header timeout of the module's server, in seconds (the default is 10)
HEADER_SECONDS = 2.0


@pytest.fixture(scope="module")
def line_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LinearRegression

    X = np.linspace(-3, 3, 64).reshape(-1, 1)
    model = LinearRegression().fit(X, 2 * X[:, 0] + 1)
    path = tmp_path_factory.mktemp("line") / "line.baton"
    baton.convert(model, X, name=LINE).save(path)
    return path


@pytest.fixture(scope="module")
def line_server(line_bundle: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve-line") / "serve.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(HEADER_TIMEOUT_ENV, str(HEADER_SECONDS))
        with serving(line_bundle, log) as srv:
            wait_until(srv.client().is_server_ready, "warm-up", srv)
            yield srv


def post(server: Server, body: bytes, path: str = f"/v2/models/{LINE}/infer"
         ) -> tuple[int, bytes]:
    """A raw POST on its own connection: the status and the body's bytes."""
    import http.client

    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def strict_json(body: bytes) -> Any:
    """``body`` parsed as strict JSON: a bare NaN, Infinity or -Infinity is an error."""
    def reject(constant: str) -> Any:
        raise AssertionError(f"the body holds a bare {constant}, which is not JSON: {body!r}")
    return json.loads(body, parse_constant=reject)


def line_request(data: list[Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": [{"name": "input", "datatype": "FP64",
                                   "shape": [len(data), 1], "data": data}], **extra}).encode()


# -- 1. repeated input names: linear, not quadratic --------------------------------------------

def test_repeated_names_are_counted_in_linear_time(tmp_path: Path) -> None:
    """200,000 copies of one name. Counted with ``names.count`` per name (4e10 comparisons)
    this takes many minutes of CPU, and the CPU limit below kills the process; counted once,
    well under a second. The limit is on CPU time, not wall-clock, so load cannot fail it."""
    script = textwrap.dedent("""
        import json, resource
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        from baton.schema import TensorSpec
        from baton.serving.protocol import HttpError, decode_request
        specs = [TensorSpec.from_dict({"name": n, "dtype": "float64", "shape": ["N", 1]})
                 for n in ("age", "tenure")]
        body = json.dumps({"inputs": [{"name": "age"}] * 200_000}).encode()
        try:
            decode_request(body, None, specs, ["label"])
        except HttpError as exc:
            print(exc.status, exc.message)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.startswith("400 "), out.stdout
    assert "repeated 'age'" in out.stdout and "missing 'tenure'" in out.stdout
    assert "200000 in all" in out.stdout


def test_repeated_names_over_http_are_400(line_server: Server) -> None:
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 1],
                                   "data": [1.0]}] * 64_000}).encode()
    assert len(body) < 16 * 1024 * 1024
    status, answer = post(line_server, body)
    assert status == 400, answer[:300]
    assert "repeated 'input'" in strict_json(answer)["error"]


# -- 2. request fields of the wrong JSON type: each a 400 with one line -----------------------

def tensors(**changes: Any) -> dict[str, Any]:
    """A valid one-row churn request, with fields of the 'age' tensor changed."""
    request = json.loads(one_row())
    request["inputs"][0].update(changes)
    return request


def _deep(n: int) -> Any:
    value: Any = 1.0
    for _ in range(n):
        value = [value]
    return value


#: (what, request body, words the 400's message must hold)
WRONG: list[tuple[str, Any, list[str]]] = [
    ("nested-100000", b"[" * 100_000, ["nested too deeply"]),
    ("nested-object-100000", b'{"a":' * 100_000, ["nested too deeply"]),
    ("int-of-5000-digits", b'{"id": ' + b"7" * 5000 + b"}", ["not JSON", "digits"]),
    ("name-list", {"inputs": [{"name": ["age"]}]}, ["'name'", "a string", "a list"]),
    ("name-object", {"inputs": [{"name": {"age": 1}}]}, ["'name'", "an object"]),
    ("name-missing", {"inputs": [{"datatype": "FP64"}]}, ["'name'", "null"]),
    ("datatype-list", tensors(datatype=["FP64"]), ["expected datatype FP64", "['FP64']"]),
    ("datatype-deep", tensors(datatype=_deep(500)), ["expected datatype FP64", "[[[...]]]"]),
    ("shape-huge", tensors(shape=[10**12, 1]), ["holds 1000000000000 elements", "has 1"]),
    ("shape-huge-2d", tensors(shape=[10**12, 10**12]), ["axis 1 must be 1"]),
    ("shape-long", tensors(shape=[1] * 100_000), ["rank 100000, not 2", "..."]),
    ("shape-text", tensors(shape="1,1"), ["'shape' must be a list of sizes", "[1, 1]"]),
    ("parameters-list", tensors(parameters=[1]), ["'parameters' must be a JSON object"]),
    ("output-parameters", {**tensors(), "outputs": [{"name": "label", "parameters": 7}]},
     ["output 'label': 'parameters' must be a JSON object", "an integer"]),
    ("id-object", {**tensors(), "id": {"a": 1}}, ["'id' must be a string", "an object"]),
    ("id-list", {**tensors(), "id": [1]}, ["'id' must be a string", "a list"]),
    ("data-scalar", tensors(data=40.5), ["'data' must be a list", "a number"]),
    ("data-object", tensors(data={"0": 40.5}), ["'data' must be a list", "an object"]),
    ("data-nested-object", tensors(data=[{"v": 1}]), ["FP64 data must be numbers",
                                                       "objects"]),
    ("data-null", tensors(data=[None]), ["FP64 data must be numbers", "nulls"]),
    ("data-bool-in-fp", tensors(data=[True]), ["FP64 data must be numbers", "true/false"]),
    ("data-nan-lowercase", tensors(data=["nan"]), ["FP64 data must be numbers", "'NaN'"]),
    ("data-int-beyond-float64", tensors(data=[10**400]), ["FP64 values must lie within"]),
    ("data-ragged", tensors(data=[[1.0], [2.0, 3.0]], shape=[1, 1]),
     ["rows of equal length"]),
    ("data-mixed-depth", tensors(data=[1.0, [2.0]]), ["rows of equal length"]),
    ("data-too-deep", tensors(data=_deep(100)), ["nested over 64 lists deep"]),
    ("int-beyond-int64", json.loads(one_row(tenure_months=[2**64])),
     ["input 'tenure_months'", "INT64 values must lie in"]),
    ("bool-in-int64", json.loads(one_row(tenure_months=[True])),
     ["INT64 data must be integers", "true/false"]),
    ("float-in-int64", json.loads(one_row(tenure_months=[2.0])),
     ["INT64 data must be integers", "decimal point"]),
    ("lone-surrogate", json.loads(one_row(city=["\ud800"])), ["input 'city'", "surrogate"]),
]


@pytest.mark.parametrize(("body", "words"), [w[1:] for w in WRONG], ids=[w[0] for w in WRONG])
def test_wrong_json_types_are_400(churn: ModelServer, body: Any, words: list[str]) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(HttpError) as info:
        churn.infer(raw, None)
    assert info.value.status == 400
    message = info.value.message
    assert "\n" not in message and len(message) < 600, message
    for word in words:
        assert word in message, message


def test_deep_json_and_odd_names_over_http_are_400(line_server: Server) -> None:
    for body in (b"[" * 100_000, b'{"inputs": [{"name": ["input"]}]}',
                 b'{"inputs": [{"name": {"a": 1}}]}'):
        status, answer = post(line_server, body)
        assert status == 400, answer[:300]
        assert strict_json(answer)["error"]


# -- 3. a deadline for request headers --------------------------------------------------------

HALF = f"POST /v2/models/{LINE}/infer HTTP/1.1\r\nHost: x\r\nContent-Le".encode()


def closed_by_server(sock: socket.socket, wait: float = 60) -> bool:
    """Whether the server closes ``sock`` (recv returns b'') before ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_half_sent_headers_are_closed_after_the_timeout(line_server: Server) -> None:
    with socket.create_connection((line_server.host, line_server.port)) as held:
        held.sendall(HALF)
        # meanwhile, a request on another connection is answered
        status, answer = post(line_server, line_request([2.0]))
        assert status == 200 and strict_json(answer)["outputs"][0]["data"] == [5.0]
        assert closed_by_server(held), line_server.log_text()
    assert (f"request headers were not complete within {HEADER_SECONDS:g} s"
            in line_server.log_text())


def test_a_silent_connection_is_closed_after_the_timeout(line_server: Server) -> None:
    with socket.create_connection((line_server.host, line_server.port)) as silent:
        assert closed_by_server(silent)


def test_trickled_headers_are_closed_after_the_timeout(line_server: Server) -> None:
    """Valid headers, one byte every 0.1 s, never ending: each byte used to cancel
    uvicorn's keep-alive timer, so the connection stayed open for as long as it trickled."""
    stream = HALF.partition(b"Content-Le")[0] + b"X-Pad: y\r\n" * 100
    closed = False
    with socket.create_connection((line_server.host, line_server.port)) as sock:
        sock.settimeout(0.1)
        for i in range(600):  # 60 s of trickling, far beyond the HEADER_SECONDS allowed
            try:
                sock.send(stream[i:i + 1])
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            assert answer == b"", answer  # closed, not answered (the headers are valid)
            closed = True
            break
    assert closed, line_server.log_text()


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response with a Content-Length, read from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_keep_alive_connection_gets_the_same_deadline(line_server: Server) -> None:
    with socket.create_connection((line_server.host, line_server.port), timeout=60) as sock:
        for _ in range(2):  # requests in time are answered, connection kept
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(HALF)  # any byte used to cancel uvicorn's keep-alive timer for good
        assert closed_by_server(sock), line_server.log_text()


def test_a_slow_body_after_complete_headers_is_not_cut(line_server: Server) -> None:
    """The deadline is for the headers: a body may take longer (up to the 30 s body
    timeout), and its request is answered."""
    body = line_request([2.0])
    with socket.create_connection((line_server.host, line_server.port), timeout=60) as sock:
        sock.sendall(f"POST /v2/models/{LINE}/infer HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        time.sleep(3 * HEADER_SECONDS)
        sock.sendall(body[5:])
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert strict_json(answer.partition(b"\r\n\r\n")[2])["outputs"][0]["data"] == [5.0]


def test_header_timeout_must_be_a_positive_number(line_bundle: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = subprocess.run([sys.executable, "-m", "baton.cli", "serve", str(line_bundle),
                          "--port", "0"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, HEADER_TIMEOUT_ENV: "0"})
    assert out.returncode == 2, out.stderr
    assert f"{HEADER_TIMEOUT_ENV} '0' is not a timeout" in out.stderr
    assert "Traceback" not in out.stderr
    # the others in-process: refused before anything is loaded or listens
    for bad in ("-1", "soon", "inf", "nan"):
        monkeypatch.setenv(HEADER_TIMEOUT_ENV, bad)
        with pytest.raises(UsageError, match=f"{HEADER_TIMEOUT_ENV} '{bad}' is not a timeout"):
            serve(line_bundle, port=0)
    monkeypatch.delenv(HEADER_TIMEOUT_ENV)
    with pytest.raises(UsageError, match="header_timeout '-2.0' is not a timeout"):
        serve(line_bundle, port=0, header_timeout=-2.0)


# -- 4. NaN and the infinities: strings in JSON, both ways ------------------------------------

def test_non_finite_outputs_are_strict_json(line_server: Server) -> None:
    status, answer = post(line_server, line_request(["NaN", "Infinity", "-Infinity", 2.0]))
    assert status == 200, answer
    output = strict_json(answer)["outputs"][0]
    assert output["data"] == ["NaN", "Infinity", "-Infinity", 5.0]


def test_only_the_three_non_finite_strings_are_numbers(line_server: Server) -> None:
    for word in ("nan", "inf", "+Infinity", "1.5", ""):
        status, answer = post(line_server, line_request([word]))
        assert status == 400, (word, answer)
        assert "FP64 data must be numbers" in strict_json(answer)["error"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_reads_non_finite_outputs_back(line_server: Server, binary: bool) -> None:
    x = np.array([[np.nan], [np.inf], [-np.inf], [2.0]])
    tensor = http_client.InferInput("input", [4, 1], "FP64")
    tensor.set_data_from_numpy(x, binary_data=binary)  # JSON: tritonclient sends bare NaN
    result = line_server.client().infer(
        LINE, [tensor], outputs=[http_client.InferRequestedOutput("prediction",
                                                                  binary_data=binary)])
    y = result.as_numpy("prediction")
    assert y.dtype == np.float64 and y.shape == (4, 1)
    assert math.isnan(y[0, 0]) and y[1, 0] == math.inf and y[2, 0] == -math.inf
    assert y[3, 0] == 5.0


# -- 5. signals: a graceful stop, exit 0 on SIGTERM and 130 on Ctrl-C --------------------------

@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_when_ready_stops_gracefully(line_bundle: Path, tmp_path: Path, sig: int,
                                            status: int) -> None:
    with serving(line_bundle, tmp_path / "serve.log") as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        srv.process.send_signal(sig)
        assert srv.process.wait(60) == status, srv.log_text()
    log = srv.log_text()
    assert "Traceback" not in log, log
    assert f"stopped by {signal.Signals(sig).name}" in log and "Finished server process" in log


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_during_start_up_stops_cleanly(line_bundle: Path, tmp_path: Path, sig: int,
                                              status: int) -> None:
    """The signal as soon as the bundle is loaded, before (or while) uvicorn starts and the
    warm-up runs: the same exit status, no traceback."""
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "baton.cli", "serve",
                                    str(line_bundle), "--port", "0"], stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "serving model" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        process.send_signal(sig)
        assert process.wait(60) == status, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


# -- 6. no golden vectors, no serving ---------------------------------------------------------

def _without_golden(mixed_bundle_dir: Path, path: Path, keep_inputs: bool) -> Path:
    bundle = load(mixed_bundle_dir)
    bundle.golden_outputs = {k: v for k, v in bundle.golden_outputs.items()
                             if keep_inputs and k == "label"}
    if not keep_inputs:
        bundle.golden_inputs = {}
    bundle.save(path)
    return path


@pytest.mark.parametrize("keep_inputs", [False, True], ids=["none", "one-output-lacking"])
def test_bundle_without_golden_vectors_is_refused(mixed_bundle_dir: Path, tmp_path: Path,
                                                  keep_inputs: bool) -> None:
    bundle = _without_golden(mixed_bundle_dir, tmp_path / "churn.baton", keep_inputs)
    out = subprocess.run([sys.executable, "-m", "baton.cli", "serve", str(bundle),
                          "--port", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "holds no golden vectors" in out.stderr
    assert ("for 'probabilities'" in out.stderr) == keep_inputs
    assert "test_data_set_0/input_*.pb and output_*.pb" in out.stderr
    assert "re-create the bundle with 'baton convert'" in out.stderr
    assert "serving model" not in out.stderr and "Traceback" not in out.stderr


def test_warm_up_never_ready_without_golden_outputs(mixed_bundle_dir: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    bundle = _without_golden(mixed_bundle_dir, tmp_path / "churn.baton", keep_inputs=False)
    server = ModelServer(Session(bundle))
    with caplog.at_level(logging.INFO, logger="baton.serve"):
        server.warm_up()
    assert not server.ready
    assert "warm-up failed" in server.not_ready_reason
    assert "holds no golden vectors" in caplog.text
    assert "model 'churn' is ready" not in caplog.text
    with pytest.raises(HttpError) as info:
        server.check_ready()
    assert info.value.status == 503
