"""``baton serve``'s /metrics, envelope monitor and --refuse-outside-envelope: real
``baton serve`` processes on loopback, real OIP clients (tritonclient), the scrapes read
with prometheus-client's own parser."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from baton.envelope import Envelope
from baton.runtime import BundleFiles, Session
from baton.schema import TensorSpec
from baton.serving.monitor import EnvelopeMonitor
from baton.serving.server import ModelServer
from tests.test_serve import (
    INPUTS,
    MODEL,
    ONE_ROW,
    Server,
    columns,
    one_row,
    serving,
    spoiled_golden,
    triton_inputs,
    wait_until,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels (prometheus-client's parser)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(server: Server) -> tuple[str, Samples]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200, text
        assert (response.getheader("content-type") or "").startswith("text/plain")
        return text, parse(text)
    finally:
        conn.close()


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; the test fails when the scrape lacks it."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name} {labels} in {sorted(samples)}"
    return samples[key]


def outcomes(samples: Samples) -> dict[str, float]:
    return {dict(k[1])["outcome"]: v for k, v in samples.items()
            if k[0] == "baton_requests_total"}


def envelope_of(bundle: Path) -> dict[str, Any]:
    """The envelope as baton.json holds it (the numbers the expectations are built from)."""
    return json.loads((bundle / "baton.json").read_text())["envelope"]["columns"]


def outside_rows(frame: Any, region: dict[str, Any], column: str) -> int:
    """Rows of ``frame`` whose ``column`` lies outside ``region`` (as baton.json writes it)."""
    values = frame[column]
    if region["kind"] == "text":
        return int((~values.astype(str).isin(region["categories"])).sum())
    numbers = values.to_numpy(dtype=np.float64)
    return int(((numbers < region["min"]) | (numbers > region["max"])).sum())


def post(server: Server, body: bytes, path: str = f"/v2/models/{MODEL}/infer"
         ) -> tuple[int, dict[str, Any], str]:
    """A raw POST on a new connection: status, JSON body, and the worker that answered."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        return (response.status, json.loads(response.read()),
                response.getheader("baton-worker") or "")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stretched(mixed_frame: Any) -> Any:
    """24 rows of the churn data, 6 of them with their age scaled 1000 times and 5 (2 of
    those among them) in a city the model never saw."""
    frame = mixed_frame.iloc[:24].copy()
    frame.loc[frame.index[[1, 4, 7, 10, 13, 16]], "age"] *= 1000
    frame.loc[frame.index[[4, 7, 19, 20, 23]], "city"] = "Atlantis"
    return frame


# -- the package boundary ---------------------------------------------------------------------

def test_import_baton_loads_no_metrics_or_records_stack() -> None:
    code = ("import sys, baton, baton.cli, baton.runtime, baton.serving\n"
            "print(','.join(m for m in ('prometheus_client', 'pyarrow', 'starlette')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


# -- the monitor, in-process ------------------------------------------------------------------

CHURN_VALUES = {
    "age": st.one_of(st.floats(-20, 100), st.sampled_from([np.nan, np.inf, -np.inf, 4.5e4])),
    "tenure_months": st.integers(-50, 200),
    "monthly_charge": st.one_of(st.floats(-30, 300), st.just(np.nan)),
    "city": st.sampled_from(["Oslo", "Lyon", "Lima", "Pune", "Atlantis", ""]),
    "plan": st.sampled_from(["basic", "plus", "pro", "gold"]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), rows=st.integers(1, 5))
def test_monitor_counts_as_the_envelope_judges(churn: ModelServer, data: Any,
                                               rows: int) -> None:
    """The compiled monitor counts, per column, exactly the rows Region.outside_rows finds
    outside; reasons name each column with what lies inside."""
    feeds = {}
    for spec in churn.inputs:
        values = data.draw(st.lists(CHURN_VALUES[spec.name], min_size=rows, max_size=rows))
        dtype = object if spec.dtype == "string" else spec.dtype
        feeds[spec.name] = np.array(values, dtype=dtype).reshape(rows, 1)
    envelope = churn.session.manifest.envelope
    assert envelope is not None
    expected = {}
    for spec in churn.inputs:
        column = spec.column or ""
        n = int(envelope.columns[column].outside_rows(feeds[spec.name][:, 0]).sum())
        if n:
            expected[column] = n
    found = churn.monitor.check(feeds)
    assert found == expected
    reasons = churn.monitor.reasons(feeds, found)
    assert set(reasons) == set(expected)
    for column, why in reasons.items():
        assert f"inside: {envelope.columns[column].describe()}" in why


def test_monitor_names_matrix_columns_as_the_envelope_does() -> None:
    rng = np.random.default_rng(0)
    sample = rng.normal(size=(50, 3))
    matrix = TensorSpec("x", "float64", ("N", 3))
    named = TensorSpec("x", "float32", ("N", 3), columns=("a", "b", "c"))
    frame_like = Envelope({k: r for k, r in zip("abc", Envelope.observe(sample).columns.values())})
    far = sample[:4].copy()
    far[1, 2] = 1e6  # the third column, row 1
    far[3, 0] = -1e6  # the first column, row 3
    assert EnvelopeMonitor(Envelope.observe(sample), [matrix]).check({"x": far}) == {
        "x0": 1, "x2": 1}
    assert EnvelopeMonitor(frame_like, [named]).check({"x": far.astype(np.float32)}) == {
        "a": 1, "c": 1}
    assert EnvelopeMonitor(Envelope.observe(sample), [matrix]).check({"x": sample}) == {}
    unknown = EnvelopeMonitor(None, [matrix])
    assert not unknown.known and unknown.check({"x": far}) == {}


def test_a_bundle_without_envelope_counts_nothing_and_cannot_refuse(
        mixed_bundle_dir: Path, tmp_path: Path, stretched: Any) -> None:
    bundle = tmp_path / "old.baton"
    shutil.copytree(mixed_bundle_dir, bundle)
    manifest = json.loads((bundle / "baton.json").read_text())
    del manifest["envelope"]  # as bundles made before the envelope was recorded
    (bundle / "baton.json").write_text(json.dumps(manifest))

    server = ModelServer(Session(bundle))
    server.metrics = server.make_metrics("sha256:0")
    assert "baton_golden_check" not in server.metrics.exposition()[0].decode()  # no verdict yet
    server.warm_up()
    assert server.ready
    content, _ = server.run(server.decode(json.dumps({"inputs": [
        {"name": n, "datatype": t, "shape": [len(stretched), 1], "data": a.reshape(-1).tolist()}
        for (n, t), a in zip(INPUTS.items(), columns(stretched).values())]}).encode(), None))
    assert len(json.loads(content)["outputs"][0]["data"]) == len(stretched)
    content, _ = server.metrics.exposition()
    samples = parse(content.decode())
    assert value(samples, "baton_envelope_known") == 0
    assert value(samples, "baton_golden_check") == 1
    assert not [k for k in samples if k[0] == "baton_outside_envelope_total"]

    out = subprocess.run([sys.executable, "-m", "baton.cli", "serve", str(bundle), "--port", "0",
                          "--refuse-outside-envelope"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    assert "--refuse-outside-envelope" in out.stderr and "records no envelope" in out.stderr
    assert "re-create the bundle with 'baton convert'" in out.stderr
    assert "serving model" not in out.stderr and "Traceback" not in out.stderr


def test_golden_check_is_0_when_the_warm_up_fails(mixed_bundle_dir: Path,
                                                  tmp_path: Path) -> None:
    bundle = spoiled_golden(mixed_bundle_dir, tmp_path)
    server = ModelServer(Session(bundle))
    server.metrics = server.make_metrics(None)
    server.warm_up()
    assert not server.ready
    assert value(parse(server.metrics.exposition()[0].decode()), "baton_golden_check") == 0


@pytest.mark.parametrize(("options", "words"), [
    (["--record-rate", "0.5"], ["--record-rate needs --record"]),
    (["--record", "{tmp}/r", "--record-max-bytes", "lots"], ["'lots' is not a size"]),
    (["--record", "{tmp}/r", "--record-rate", "2"], ["--record-rate 2.0", "above 0 and at "
                                                     "most 1"]),
], ids=["rate-without-record", "size", "rate"])
def test_record_options_are_checked_before_serving(mixed_bundle_dir: Path, tmp_path: Path,
                                                   options: list[str],
                                                   words: list[str]) -> None:
    from typer.testing import CliRunner

    from baton.cli import app

    args = ["serve", str(mixed_bundle_dir), "--port", "0",
            *(o.replace("{tmp}", str(tmp_path)) for o in options)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output, result.output


# -- /metrics of a server ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def counting(mixed_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve-metrics") / "serve.log"
    with serving(mixed_bundle_dir, log) as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        yield srv


def test_metrics_count_requests_by_outcome(counting: Server, mixed_bundle_dir: Path,
                                           mixed_frame: Any) -> None:
    _, before = scrape(counting)
    client = counting.client()
    sent = 0
    for i in range(12):
        frame = mixed_frame.iloc[i * 3:i * 3 + 1 + i % 3]
        client.infer(MODEL, triton_inputs(columns(frame), binary=i % 2 == 0))
        sent += 1
    assert post(counting, b"{not json")[0] == 400
    assert post(counting, one_row(), "/v2/models/other/infer")[0] == 404
    text, after = scrape(counting)
    delta = {k: v - outcomes(before).get(k, 0) for k, v in outcomes(after).items()}
    assert delta == {"ok": sent, "invalid": 2, "outside_envelope": 0, "busy": 0,
                     "not_ready": 0, "error": 0}
    # every infer request answered is timed, and nothing else: the histogram counts them all
    assert value(after, "baton_request_duration_seconds_count") == sum(outcomes(after).values())
    assert value(after, "baton_request_duration_seconds_count") >= sent + 2
    # in-range rows are not counted outside
    assert all(v == 0 for k, v in after.items() if k[0] == "baton_outside_envelope_total")
    assert {dict(k[1])["input"] for k in after if k[0] == "baton_outside_envelope_total"} == {
        "age", "tenure_months", "monthly_charge", "city", "plan"}
    files = BundleFiles(mixed_bundle_dir)
    assert value(after, "baton_model_info", model=MODEL, worker="1/1",
                 digest=files.digest(files.manifest())) == 1
    assert value(after, "baton_golden_check") == 1
    assert value(after, "baton_envelope_known") == 1
    assert value(after, "baton_records_written_total") == 0
    assert value(after, "baton_records_dropped_total") == 0
    assert "# TYPE baton_request_duration_seconds histogram" in text


def test_metrics_count_rows_outside_the_envelope_by_input(
        counting: Server, mixed_bundle_dir: Path, stretched: Any, fitted_pipeline: Any) -> None:
    envelope = envelope_of(mixed_bundle_dir)
    expected = {c: outside_rows(stretched, envelope[c], c) for c in envelope}
    assert expected["age"] == 6 and expected["city"] == 5  # the fixture's doing
    assert sum(expected.values()) == 11
    _, before = scrape(counting)
    # not refused: answered as usual, in two requests
    client = counting.client()
    labels = np.concatenate([
        client.infer(MODEL, triton_inputs(columns(part), binary=b)).as_numpy("label")
        for part, b in ((stretched.iloc[:10], False), (stretched.iloc[10:], True))])
    np.testing.assert_array_equal(labels, fitted_pipeline.predict(stretched))
    _, after = scrape(counting)
    assert value(after, "baton_rows_total") - value(before, "baton_rows_total") == len(
        stretched)  # every row judged, the denominator of the share outside
    counted = {c: value(after, "baton_outside_envelope_total", input=c)
               - value(before, "baton_outside_envelope_total", input=c)
               for c in envelope}
    assert counted == expected
    assert outcomes(after)["ok"] - outcomes(before)["ok"] == 2


# -- --refuse-outside-envelope, and recording ---------------------------------------------------

def test_refuse_outside_envelope_answers_422_and_records_the_rest(
        mixed_bundle_dir: Path, tmp_path: Path, stretched: Any, fitted_pipeline: Any) -> None:
    from baton.records import read_records
    from tests.test_serve_perf import answer as read_answer
    from tests.test_serve_perf import hold

    records = tmp_path / "records"
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--refuse-outside-envelope",
                 "--record", str(records), "--record-every", "3600",
                 "--max-concurrency", "1", "--max-queue", "0") as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        far = stretched.iloc[[0, 1]]  # row 1: its age scaled 1000 times
        body = json.dumps({"inputs": [
            {"name": n, "datatype": t, "shape": [2, 1], "data": a.reshape(-1).tolist()}
            for (n, t), a in zip(INPUTS.items(), columns(far).values())]}).encode()
        status, answer, _ = post(srv, body)
        assert status == 422, answer
        assert set(answer["outside"]) == {"age"}
        age = envelope_of(mixed_bundle_dir)["age"]
        assert "row 1" in answer["outside"]["age"]
        assert f"{far['age'].iloc[1]:.6g} above {age['max']:.6g}" in answer["outside"]["age"]
        assert "inside: " in answer["outside"]["age"]
        assert "'age'" in answer["error"] and "re-convert" in answer["error"]
        with pytest.raises(InferenceServerException) as info:  # an OIP client sees it too
            srv.client().infer(MODEL, triton_inputs(columns(stretched.iloc[3:8]), True))
        assert info.value.status() == "422" and "'age', 'city'" in info.value.message()
        inside = stretched.iloc[[0, 2, 3]]
        labels = srv.client().infer(MODEL, triton_inputs(columns(inside), True)
                                    ).as_numpy("label")
        np.testing.assert_array_equal(labels, fitted_pipeline.predict(inside))
        # a request whose body is still arriving holds the only place: the next is shed
        held = hold(srv.host, srv.port, one_row())
        passed = 0  # requests answered before the held one's headers were read
        while (status := post(srv, one_row())[0]) != 503:
            assert status == 200 and passed < 100
            passed += 1
        held.sendall(one_row()[1:])
        assert read_answer(held)[0] == 200
        held.close()
        _, samples = scrape(srv)
        assert outcomes(samples) == {"ok": 1 + passed + 1, "outside_envelope": 2, "busy": 1,
                                     "invalid": 0, "not_ready": 0, "error": 0}
        assert value(samples, "baton_outside_envelope_total", input="age") == 1 + 2
        assert value(samples, "baton_outside_envelope_total", input="city") == 2
        assert value(samples, "baton_records_written_total") == 0  # a file an hour
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(60) == 0, srv.log_text()
    # the last rows were written on the way out: only those answered
    recorded = read_records(records)
    assert recorded.rows == 3 + passed + 1
    assert ONE_ROW["age"] == [40.5]
    ages = [*inside["age"], *[40.5] * (passed + 1)]
    np.testing.assert_array_equal(recorded.data["age"].to_numpy(), ages)
    np.testing.assert_array_equal(recorded.served["label"][:3], labels)


# -- --workers --------------------------------------------------------------------------------

def test_one_scrape_counts_the_requests_of_every_worker(
        mixed_bundle_dir: Path, tmp_path: Path) -> None:
    from baton.records import read_records

    records = tmp_path / "records"
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--workers", "2",
                 "--record", str(records), "--record-every", "0.2") as srv:
        wait_until(lambda: srv.log_text().count("is ready") == 2, "both warm-ups", srv)
        directory = re.search(r"metrics are kept in (\S+)", srv.log_text())
        assert directory, srv.log_text()
        answered: dict[str, int] = {}
        deadline = time.monotonic() + 60
        far = one_row(age=[45000.0])
        # new connections, until both workers have answered some (the kernel spreads them)
        while len(answered) < 2 or sum(answered.values()) < 8:
            assert time.monotonic() < deadline, answered
            status, _, worker = post(srv, far)
            assert status == 200
            answered[worker] = answered.get(worker, 0) + 1
        assert set(answered) == {"1/2", "2/2"}
        total = sum(answered.values())
        for _ in range(4):  # whichever worker a scrape reaches, it sees them all
            _, samples = scrape(srv)
            assert outcomes(samples)["ok"] == total
            assert value(samples, "baton_request_duration_seconds_count") == total
            assert value(samples, "baton_outside_envelope_total", input="age") == total
            assert value(samples, "baton_golden_check") == 1
            assert {dict(k[1])["worker"] for k in samples if k[0] == "baton_model_info"} == {
                "1/2", "2/2"}
        # each worker records its own requests; the scrape adds up what they wrote
        wait_until(lambda: value(scrape(srv)[1], "baton_records_written_total") == total,
                   "both workers' records counted", srv)
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(60) == 0, srv.log_text()
    assert not Path(directory[1]).exists()  # the workers' metric files are gone
    recorded = read_records(records)
    assert recorded.rows == total and len({f.name.split("-")[2] for f in recorded.files}) == 2
    assert (recorded.data["age"] == 45000.0).all()
