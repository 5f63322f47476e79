"""``baton serve --record DIR``: under a load of real Open Inference Protocol clients
(tritonclient), the Parquet records hold exactly the rows sent and the outputs answered."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from baton.records import read_records
from baton.runtime import Session
from tests.test_serve import MODEL, columns, serving, triton_inputs, wait_until

FEATURES = ["age", "tenure_months", "monthly_charge", "city", "plan"]


def key(values: list[Any]) -> tuple[Any, ...]:
    """A row as a hashable, exact key (NaN equal to NaN, floats by their exact value)."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, (float, np.floating)):
            out.append("nan" if math.isnan(v) else float(v).hex())
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return tuple(out)


def frame_rows(frame: Any) -> list[list[Any]]:
    return [[frame[c].iloc[i] for c in FEATURES] for i in range(len(frame))]


def stop(server: Any) -> int:
    """SIGTERM, and the exit status once the server has stopped (and written its records)."""
    server.process.send_signal(signal.SIGTERM)
    return int(server.process.wait(60))


def load(server: Any, frame: Any, expected: np.ndarray, clients: int, per_client: int,
         sizes: tuple[int, ...]) -> tuple[list[int], list[list[Any]]]:
    """``clients`` threads each sending ``per_client`` requests (binary and JSON in turn) of
    ``sizes`` rows in turn; the statuses, and per row sent its inputs and the answers."""
    statuses: list[int] = []
    sent: list[list[Any]] = []
    wrong: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        client = server.client()
        for i in range(per_client):
            n = sizes[i % len(sizes)]
            rows = [(k * per_client * 3 + i * 3 + j) % len(frame) for j in range(n)]
            part = frame.iloc[rows]
            inputs = triton_inputs(columns(part), binary=i % 2 == 0)
            try:
                result = client.infer(MODEL, inputs)
                label, proba = result.as_numpy("label"), result.as_numpy("probabilities")
                status = 200
            except InferenceServerException as exc:
                status = int(exc.status() or 0)
            with lock:
                statuses.append(status)
                if status != 200:
                    continue
                if label.tolist() != expected[rows].tolist():
                    wrong.extend(rows)
                for values, lab, pr in zip(frame_rows(part), label, proba):
                    sent.append([*values, int(lab), *pr.tolist()])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    return statuses, sent


def recorded(records: Any) -> list[list[Any]]:
    data = records.data
    labels, proba = records.served["label"], records.served["probabilities"]
    return [[*values, int(labels[i]), *proba[i].tolist()]
            for i, values in enumerate(frame_rows(data))]


def test_records_hold_the_rows_sent_and_the_answers(mixed_bundle_dir: Path, tmp_path: Path,
                                                    mixed_frame: Any,
                                                    fitted_pipeline: Any) -> None:
    """8 clients × 50 requests with --record-rate 1: every answer 200 and right, and after
    SIGTERM the records hold every row sent (as a multiset) with the outputs answered."""
    records_dir = tmp_path / "records"
    expected = fitted_pipeline.predict(mixed_frame)
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--record", str(records_dir),
                 "--record-rate", "1", "--record-every", "0.5", "--max-concurrency", "2",
                 "--max-queue", "64") as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        before = np.datetime64(int(time.time() * 1e6) - 1_000_000, "us")
        statuses, sent = load(srv, mixed_frame, expected, clients=8, per_client=50,
                              sizes=(1, 3, 2))
        after = np.datetime64(int(time.time() * 1e6) + 1_000_000, "us")
        assert len(statuses) == 400 and set(statuses) == {200}
        assert stop(srv) == 0, srv.log_text()
        log = srv.log_text()
    assert "recording all of the requests" in log, log
    records = read_records(records_dir)
    assert records.rows == len(sent) == 8 * (17 * 1 + 17 * 3 + 16 * 2)
    assert Counter(map(key, recorded(records))) == Counter(map(key, sent))
    # the inputs come back as the original pipeline takes them: it predicts what was served
    assert list(records.data.columns) == FEATURES
    np.testing.assert_array_equal(fitted_pipeline.predict(records.data),
                                  records.served["label"])
    session = Session(mixed_bundle_dir)
    assert records.digests == [session.files.digest(session.manifest)]
    assert all(f.name.startswith("records-") and f.parent.parent == records_dir
               for f in records.files)
    assert ((records.times >= before) & (records.times <= after)).all()
    assert [f for f in records_dir.rglob("*") if f.name.startswith(".")] == []


def test_record_rate_keeps_about_that_share(mixed_bundle_dir: Path, tmp_path: Path,
                                            mixed_frame: Any, fitted_pipeline: Any) -> None:
    records_dir = tmp_path / "records"
    expected = fitted_pipeline.predict(mixed_frame)
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--record", str(records_dir),
                 "--record-rate", "0.5") as srv:
        wait_until(srv.client().is_server_ready, "warm-up", srv)
        statuses, sent = load(srv, mixed_frame, expected, clients=4, per_client=50,
                              sizes=(1,))
        assert set(statuses) == {200}
        assert stop(srv) == 0, srv.log_text()
    records = read_records(records_dir)
    # 200 requests of one row, each kept with probability 1/2: 100 ± 7 (one sd); the bound
    # is beyond 5 sd on each side
    assert 60 <= records.rows <= 140
    kept = Counter(map(key, recorded(records)))
    assert not kept - Counter(map(key, sent))  # only rows that were sent, as answered


def test_bad_record_options_are_usage_errors(mixed_bundle_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    taken = tmp_path / "taken"
    taken.write_text("a file")
    for options, words in [
        (["--record", str(taken)], [f"--record {taken} is not a directory"]),
        (["--record", str(tmp_path / "r"), "--record-rate", "0"], ["--record-rate 0"]),
        (["--record", str(tmp_path / "r"), "--record-max-bytes", "1G"],
         ["--record-max-bytes '1G' is not a size"]),
    ]:
        out = subprocess.run([sys.executable, "-m", "baton.cli", "serve", str(mixed_bundle_dir),
                              "--port", "0", *options], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 2, out.stderr
        assert all(w in out.stderr for w in words), out.stderr
        assert "Traceback" not in out.stderr


def test_workers_record_each_into_their_own_files(mixed_bundle_dir: Path, tmp_path: Path,
                                                  mixed_frame: Any,
                                                  fitted_pipeline: Any) -> None:
    """--workers 2: each worker records its own requests (file names hold its process id);
    together they hold every row sent."""
    records_dir = tmp_path / "records"
    expected = fitted_pipeline.predict(mixed_frame)
    with serving(mixed_bundle_dir, tmp_path / "serve.log", "--workers", "2", "--record",
                 str(records_dir)) as srv:
        wait_until(lambda: srv.log_text().count("is ready in worker") == 2, "both warm-ups",
                   srv)
        statuses, sent = load(srv, mixed_frame, expected, clients=4, per_client=20,
                              sizes=(2,))
        assert set(statuses) == {200}
        assert stop(srv) == 0, srv.log_text()
    records = read_records(records_dir)
    assert Counter(map(key, recorded(records))) == Counter(map(key, sent))
    pids = {f.name.split("-")[2] for f in records.files}
    assert srv.process.pid not in {int(p) for p in pids}  # written by the workers
