"""``baton serve``: the Open Inference Protocol (v2) REST API, driven by a real OIP client
(tritonclient's HTTP client) against ``baton serve`` processes on loopback."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as http_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException

from baton.runtime import Session

MODEL = "churn"
#: the churn bundle's inputs as the protocol names their datatypes
INPUTS = {"age": "FP64", "tenure_months": "INT64", "monthly_charge": "FP64", "city": "BYTES",
          "plan": "BYTES"}
NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BYTES": object}


@dataclass
class Server:
    host: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> Any:
        return http_client.InferenceServerClient(self.url, connection_timeout=30,
                                                 network_timeout=60)

    def raw(self, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """A plain HTTP request; the status and the JSON body."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def log_text(self) -> str:
        return self.log.read_text()


@contextmanager
def serving(bundle: Path, log: Path, *options: str) -> Iterator[Server]:
    """``baton serve BUNDLE --port 0 OPTIONS`` in a subprocess, until it is live."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "baton.cli", "serve", str(bundle), "--port", "0", *options],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        port = None
        while port is None:
            found = re.search(r"at http://127\.0\.0\.1:(\d+)/", log.read_text())
            if found:
                port = int(found[1])
            elif process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"baton serve did not start:\n{log.read_text()}")
            else:
                time.sleep(0.05)
        server = Server("127.0.0.1", port, log, process)
        client = server.client()
        while True:
            try:
                if client.is_server_live():
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"baton serve is not live:\n{log.read_text()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(predicate: Any, what: str, server: Server, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen:\n{server.log_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(mixed_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(mixed_bundle_dir, log, "--max-body", "65536", "--max-concurrency", "2",
                 "--max-queue", "64") as srv:
        client = srv.client()
        wait_until(client.is_server_ready, "warm-up", srv)
        yield srv


def columns(frame: Any) -> dict[str, np.ndarray]:
    """The churn frame as one [N, 1] array per input, in the protocol's datatypes."""
    return {name: frame[[name]].to_numpy().astype(NUMPY[datatype])
            for name, datatype in INPUTS.items()}


def triton_inputs(arrays: dict[str, np.ndarray], binary: bool,
                  datatypes: dict[str, str] | None = None) -> list[Any]:
    out = []
    for name, arr in arrays.items():
        datatype = (datatypes or {}).get(name) or INPUTS.get(name, "FP64")
        tensor = http_client.InferInput(name, list(arr.shape), datatype)
        tensor.set_data_from_numpy(arr, binary_data=binary)
        out.append(tensor)
    return out


def refused(server: Server, inputs: list[Any], model: str = MODEL, **kwargs: Any
            ) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        server.client().infer(model, inputs, **kwargs)
    return info.value


# -- the package boundary ---------------------------------------------------------------------

def test_import_baton_loads_no_server_stack() -> None:
    code = ("import sys, baton, baton.cli, baton.runtime, baton.serving\n"
            "print(','.join(m for m in ('starlette', 'uvicorn', 'anyio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_missing_extra_names_it(mixed_bundle_dir: Path) -> None:
    # uvicorn made unimportable, as in an environment without the serve extra
    code = ("import sys\nsys.modules['uvicorn'] = None\nfrom baton.cli import main\n"
            f"sys.argv = ['baton', 'serve', {str(mixed_bundle_dir)!r}]\nmain()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr
    assert "pip install 'baton[serve]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use_is_a_usage_error(mixed_bundle_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "baton.cli", "serve", str(mixed_bundle_dir),
                              "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


# -- health and metadata ----------------------------------------------------------------------

def test_live_ready_and_metadata(server: Server) -> None:
    client = server.client()
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.get_server_metadata()["name"] == "baton"
    meta = client.get_model_metadata(MODEL)
    assert meta["name"] == MODEL
    assert meta["inputs"] == [{"name": n, "datatype": t, "shape": [-1, 1]}
                              for n, t in INPUTS.items()]
    assert meta["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]}]
    assert "warm-up of model 'churn' on 16 golden rows matched" in server.log_text()


# -- inference --------------------------------------------------------------------------------

@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_session_and_original(server: Server, binary: bool,
                                            mixed_bundle_dir: Path, fitted_pipeline: Any,
                                            mixed_frame: Any) -> None:
    frame = mixed_frame.iloc[:64]
    assert frame["monthly_charge"].isna().any()  # NaN travels too
    outputs = [http_client.InferRequestedOutput(n, binary_data=binary)
               for n in ("label", "probabilities")]
    result = server.client().infer(MODEL, triton_inputs(columns(frame), binary),
                                   outputs=outputs, request_id="req-7")
    response = result.get_response()
    assert response["model_name"] == MODEL and response["id"] == "req-7"
    label, proba = result.as_numpy("label"), result.as_numpy("probabilities")
    expected = Session(mixed_bundle_dir).predict(frame)
    np.testing.assert_array_equal(label, expected["label"])
    np.testing.assert_array_equal(proba, expected["probabilities"])
    np.testing.assert_array_equal(label, fitted_pipeline.predict(frame))
    np.testing.assert_allclose(proba, fitted_pipeline.predict_proba(frame), rtol=1e-6,
                               atol=1e-9)


def test_infer_selects_outputs_and_takes_nested_json(server: Server, mixed_frame: Any,
                                                     fitted_pipeline: Any) -> None:
    frame = mixed_frame.dropna().iloc[:3]
    body = {"id": "nested", "parameters": {"anything": 1},
            "inputs": [{"name": n, "datatype": t, "shape": [3, 1],
                        "data": [[v] for v in arr.reshape(-1).tolist()]}
                       for (n, t), arr in zip(INPUTS.items(), columns(frame).values())],
            "outputs": [{"name": "label"}]}
    status, answer = server.raw("POST", f"/v2/models/{MODEL}/infer", json.dumps(body),
                                {"Content-Type": "application/json"})
    assert status == 200, answer
    assert answer["id"] == "nested" and [o["name"] for o in answer["outputs"]] == ["label"]
    assert answer["outputs"][0]["shape"] == [3]
    assert answer["outputs"][0]["data"] == fitted_pipeline.predict(frame).tolist()


def _rename(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays["agee"] = arrays.pop("age")
    return arrays


def _drop(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    del arrays["plan"]
    return arrays


def _flat(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays["age"] = arrays["age"].reshape(-1)
    return arrays


def _wide(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays["age"] = arrays["age"].reshape(-1, 2)
    return arrays


def _short(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays["city"] = arrays["city"][:-1]
    return arrays


#: (what is wrong, how the inputs are spoiled, datatypes sent, words the error must hold)
BAD = [
    ("unknown input", _rename, {"agee": "FP64"}, ["'agee'", "unknown", "missing 'age'"]),
    ("missing input", _drop, {}, ["missing 'plan'"]),
    ("datatype", lambda a: {**a, "age": a["age"].astype(np.float32)}, {"age": "FP32"},
     ["input 'age'", "expected datatype FP64", "FP32"]),
    ("integers as text", lambda a: {**a, "tenure_months": a["tenure_months"].astype(str)
                                    .astype(object)}, {"tenure_months": "BYTES"},
     ["input 'tenure_months'", "expected datatype INT64", "BYTES"]),
    ("rank", _flat, {}, ["input 'age'", "[-1, 1]", "rank 1, not 2"]),
    ("fixed dimension", _wide, {}, ["input 'age'", "[-1, 1]", "axis 1 must be 1"]),
    ("rows differ", _short, {}, ["same number of rows", "city 7"]),
]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize(("spoil", "datatypes", "words"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input_is_400(server: Server, mixed_frame: Any, spoil: Any,
                          datatypes: dict[str, str], words: list[str], binary: bool) -> None:
    inputs = triton_inputs(spoil(columns(mixed_frame.iloc[:8])), binary, datatypes)
    error = refused(server, inputs)
    assert error.status() == "400", error.message()
    for word in words:
        assert word in error.message(), error.message()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_element_count_not_matching_shape_is_400(server: Server, mixed_frame: Any,
                                                 binary: bool) -> None:
    inputs = triton_inputs(columns(mixed_frame.iloc[:4]), binary)
    inputs[0].set_shape([5, 1])  # 'age' now claims 5 rows but carries 4 values
    error = refused(server, inputs)
    assert error.status() == "400"
    assert "input 'age'" in error.message() and "5" in error.message()
    assert ("has 4" in error.message()) if not binary else ("32" in error.message())


def test_unknown_output_is_400(server: Server, mixed_frame: Any) -> None:
    error = refused(server, triton_inputs(columns(mixed_frame.iloc[:2]), False),
                    outputs=[http_client.InferRequestedOutput("score")])
    assert error.status() == "400"
    assert "'score'" in error.message() and "'probabilities'" in error.message()


ONE_ROW = {"age": [40.5], "tenure_months": [12], "monthly_charge": [60.0], "city": ["Oslo"],
           "plan": ["pro"]}


def one_row(**data: Any) -> bytes:
    """A JSON request for one row, with some inputs' data replaced."""
    return json.dumps({"inputs": [{"name": n, "datatype": t, "shape": [1, 1],
                                   "data": data.get(n, ONE_ROW[n])}
                                  for n, t in INPUTS.items()]}).encode()


@pytest.mark.parametrize(("body", "words"), [
    (one_row(), None),
    (b"{not json", ["not JSON"]),
    (b"[1, 2]", ["JSON object"]),
    (one_row(age=["x"]), ["input 'age'", "FP64 data must be numbers", "strings"]),
    (one_row(tenure_months=[1.5]), ["input 'tenure_months'", "integers", "fractions"]),
    (one_row(tenure_months=[2**63]), ["input 'tenure_months'", "INT64 values must lie in"]),
    (one_row(city=[3]), ["input 'city'", "BYTES data must be strings", "integers"]),
    (one_row(age=[[1.0, 2.0], [3.0]]), ["input 'age'", "rows of equal length"]),
    (one_row(age=[]), ["input 'age'", "holds 1 element", "has 0"]),
], ids=["valid", "not-json", "not-object", "text-for-number", "fraction-for-integer",
        "integer-overflow", "number-for-text", "ragged", "empty"])
def test_json_body_checks(server: Server, body: bytes, words: list[str] | None) -> None:
    status, answer = server.raw("POST", f"/v2/models/{MODEL}/infer", body)
    if words is None:
        assert status == 200 and answer["outputs"][0]["data"] in ([0], [1])
        return
    assert status == 400
    assert all(w in answer["error"] for w in words), answer


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                   st.sampled_from(["Oslo", "pro", "", "1.5"]))


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from([*INPUTS, "other"]), max_size=6))
    tensors = []
    for name in names:
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        data = draw(st.one_of(st.lists(VALUES, max_size=6),
                              st.lists(st.lists(VALUES, max_size=2), max_size=3)))
        tensors.append({"name": name, "shape": shape, "data": data,
                        "datatype": draw(st.sampled_from(["FP64", "INT64", "BYTES", "FP32",
                                                          "BOOL", INPUTS.get(name, "FP64")]))})
    return {"inputs": tensors}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests())
def test_any_request_gets_200_or_400_never_5xx(server: Server, request: dict[str, Any]) -> None:
    status, answer = server.raw("POST", f"/v2/models/{MODEL}/infer", json.dumps(request))
    assert status in (200, 400), answer
    assert ("outputs" in answer) if status == 200 else isinstance(answer["error"], str)


# -- 404, 413, 503 and readiness --------------------------------------------------------------

def test_unknown_model_is_404(server: Server, mixed_frame: Any) -> None:
    error = refused(server, triton_inputs(columns(mixed_frame.iloc[:2]), False), model="other")
    assert error.status() == "404" and "'churn'" in error.message()
    client = server.client()
    assert not client.is_model_ready("other")
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("other")
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata(MODEL, model_version="3")
    assert info.value.status() == "404" and "no version '3'" in info.value.message()
    status, answer = server.raw("GET", "/v2/nothing/here")
    assert status == 404 and "no such endpoint" in answer["error"]


def test_body_over_the_limit_is_413(server: Server, mixed_frame: Any) -> None:
    big = mixed_frame.sample(2000, replace=True, random_state=0)  # ~150 kB as JSON > 64 kB
    client = server.client()
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, triton_inputs(columns(big), False))
    assert info.value.status() == "413" and "65536" in info.value.message()
    small = triton_inputs(columns(mixed_frame.iloc[:2]), False)
    assert client.infer(MODEL, small).as_numpy("label").shape == (2,)  # same client, still fine

    # no Content-Length: the limit holds while a chunked body is read. One byte over it,
    # and no more (the server reads all that was sent, so it closes cleanly)
    with socket.create_connection((server.host, server.port), timeout=60) as sock:
        sock.sendall(f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                     f"{65537:x}\r\n".encode()
                     + b" " * 65537)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"65536" in body
    assert server.client().is_server_ready()


def test_requests_beyond_the_queue_get_503(mixed_bundle_dir: Path, tmp_path: Path,
                                           mixed_frame: Any) -> None:
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--max-concurrency", "1",
                 "--max-queue", "0") as srv:
        client = srv.client()
        wait_until(client.is_server_ready, "warm-up", srv)
        inputs = triton_inputs(columns(mixed_frame.iloc[:2]), False)
        # a request whose body is still arriving holds the only place

        def hold() -> socket.socket:
            conn = socket.create_connection((srv.host, srv.port))
            conn.sendall(f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 2\r\n\r\n{".encode())
            return conn

        def answered(conn: socket.socket) -> bytes:
            conn.setblocking(False)
            try:
                return conn.recv(4096)
            except BlockingIOError:
                return b""
            finally:
                conn.setblocking(True)

        held = hold()
        tries: list[str] = []
        deadline = time.monotonic() + 20
        while "503" not in tries and time.monotonic() < deadline:
            try:
                client.infer(MODEL, inputs)
                tries.append("200")
            except InferenceServerException as exc:
                assert exc.status() == "503" and "busy" in exc.message(), exc.message()
                tries.append("503")
                break
            # the held request may arrive while this one runs, and be the one refused
            time.sleep(0.05)
            refused = answered(held)
            if refused:
                assert refused.startswith(b"HTTP/1.1 503"), refused
                held.close()
                held = hold()
        assert tries[-1] == "503", f"statuses {tries}\n{srv.log_text()}"
        held.sendall(b"}")  # complete it: an empty object lacks 'inputs', 400
        assert held.recv(4096).startswith(b"HTTP/1.1 400")
        held.close()
        assert client.infer(MODEL, inputs).as_numpy("label").shape == (2,)


def spoiled_golden(bundle_dir: Path, tmp_path: Path) -> Path:
    """A copy of ``bundle_dir`` whose golden probabilities are wrong (hashes updated, so it
    loads): its warm-up fails."""
    from onnx import TensorProto, numpy_helper

    from baton.runtime._files import sha256_bytes

    bundle = tmp_path / "churn.baton"
    shutil.copytree(bundle_dir, bundle)
    golden = bundle / "test_data_set_0" / "output_1.pb"  # the probabilities
    tensor = TensorProto()
    tensor.ParseFromString(golden.read_bytes())
    golden.write_bytes(numpy_helper.from_array(1.0 - numpy_helper.to_array(tensor),
                                               tensor.name).SerializeToString())
    manifest = json.loads((bundle / "baton.json").read_text())
    manifest["files"]["test_data_set_0/output_1.pb"] = sha256_bytes(golden.read_bytes())
    (bundle / "baton.json").write_text(json.dumps(manifest))
    return bundle


def test_not_ready_when_warm_up_fails(mixed_bundle_dir: Path, tmp_path: Path,
                                      mixed_frame: Any) -> None:
    bundle = spoiled_golden(mixed_bundle_dir, tmp_path)

    with serving(bundle, tmp_path / "serve.log") as srv:
        wait_until(lambda: "not ready" in srv.log_text(), "the warm-up verdict", srv)
        assert "'probabilities' differ from the bundle's golden outputs" in srv.log_text()
        client = srv.client()
        assert client.is_server_live()
        assert not client.is_server_ready() and not client.is_model_ready(MODEL)
        error = refused(srv, triton_inputs(columns(mixed_frame.iloc[:2]), False))
        assert error.status() == "503" and "not ready" in error.message()
        status, answer = srv.raw("GET", "/v2/health/ready")
        assert status == 503 and answer["ready"] is False


# -- load -------------------------------------------------------------------------------------

def test_load_concurrent_clients(server: Server, mixed_frame: Any, fitted_pipeline: Any,
                                 record_property: Any) -> None:
    """8 clients × 50 requests at once: every answer 200 and right; p99 recorded, not judged."""
    clients, per_client = 8, 50
    expected = fitted_pipeline.predict(mixed_frame)
    statuses: list[int] = []
    latencies: list[float] = []
    wrong: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        client = server.client()
        for i in range(per_client):
            row = (k * per_client + i) % len(mixed_frame)
            inputs = triton_inputs(columns(mixed_frame.iloc[row:row + 1]), binary=i % 2 == 0)
            start = time.perf_counter()
            try:
                label = int(client.infer(MODEL, inputs).as_numpy("label")[0])
                status = 200
            except InferenceServerException as exc:
                label, status = -1, int(exc.status() or 0)
            elapsed = time.perf_counter() - start
            with lock:
                statuses.append(status)
                latencies.append(elapsed)
                if status == 200 and label != expected[row]:
                    wrong.append(row)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == clients * per_client
    assert [s for s in statuses if s >= 500] == []
    assert set(statuses) == {200} and wrong == []
    p50, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 99))
    record_property("serve_p50_ms", round(p50, 2))
    record_property("serve_p99_ms", round(p99, 2))
    print(f"\nbaton serve: {clients} clients x {per_client} requests, p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms")
