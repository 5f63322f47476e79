"""``GET /metrics``: the server's counters in the Prometheus text format (prometheus-client,
the ``serve`` extra; imported only when a server starts).

The metrics live in a registry of their own, never prometheus-client's global one:

========================================  ==================================================
``baton_requests_total{outcome}``         infer requests answered, by outcome: ``ok``,
                                          ``invalid`` (4xx: a bad request), ``outside_envelope``
                                          (422, with ``--refuse-outside-envelope``), ``busy``
                                          (503: shed), ``not_ready`` (503), ``error`` (5xx)
``baton_request_duration_seconds``        a histogram of the same requests' durations, from
                                          their headers' arrival to their answer
``baton_rows_total``                      rows of infer requests judged against the envelope
                                          (every decoded request's rows)
``baton_outside_envelope_total{input}``   rows of infer requests outside the envelope, by
                                          envelope column (counted whether refused or not)
``baton_envelope_known``                  1 when the bundle records an envelope, else 0
                                          (bundles from before it: nothing is counted)
``baton_records_written_total``           rows ``--record`` wrote to Parquet files
``baton_records_dropped_total``           rows it dropped (its queue full, or a failed write)
``baton_golden_check``                    1 once the warm-up reproduced the golden outputs,
                                          0 when it did not; absent before
``baton_model_info{model,digest,worker}`` 1, naming the model served and its bundle's digest
========================================  ==================================================

With ``--workers N`` every worker counts in its own process, in prometheus-client's
multiprocess mode: the parent makes a private directory and sets
``PROMETHEUS_MULTIPROC_DIR`` before it forks (:func:`multiprocess_directory`), each worker
writes its values to its own files there, and a scrape of any worker adds up all of them
(``MultiProcessCollector``), so that one scrape sees the whole server. The gauges say how
they combine: ``baton_golden_check`` is the least of the workers' (1 only when every
worker that finished its warm-up reproduced the golden outputs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: the environment variable prometheus-client reads, at import, for its multiprocess mode
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the same directory, named by baton serve's parent process for its workers (a
#: PROMETHEUS_MULTIPROC_DIR of the user's own is not taken as the workers' directory)
WORKERS_ENV = "BATON_SERVE_METRICS_DIR"
#: the request-duration histogram's buckets, in seconds: from a tenth of a millisecond (a
#: small model served inline) to ten seconds
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
           0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("ok", "invalid", "outside_envelope", "busy", "not_ready", "error")
#: seconds between two copies of a worker's recorder counts into the shared files (a
#: scrape of that worker copies them at once)
SYNC_SECONDS = 1.0


class Metrics:
    """One server process's metrics.

    The request path uses the bound children only: ``ok``, ``invalid``, ...
    (``Counter.inc``), ``duration`` (``Histogram.observe``), ``rows`` and
    ``outside[column]``."""

    def __init__(self, *, model: str, digest: str | None, worker: str,
                 columns: Sequence[str], envelope_known: bool) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = _multiprocess()
        # multiprocess mode: the metrics are written to files and collected from them
        # (MultiProcessCollector), so they are registered nowhere
        self.registry = CollectorRegistry()
        own = None if self.multiprocess else self.registry
        self._gauge = Gauge
        self._own = own
        requests = Counter("baton_requests_total", "Infer requests answered, by outcome "
                           "(ok; invalid: 4xx; outside_envelope: 422; busy: 503 shed; "
                           "not_ready: 503; error: 5xx).", ["outcome"], registry=own)
        for outcome in OUTCOMES:
            setattr(self, outcome, requests.labels(outcome))
        self.ok: Any
        self.invalid: Any
        self.outside_envelope: Any
        self.busy: Any
        self.not_ready: Any
        self.error: Any
        self.duration = Histogram("baton_request_duration_seconds", "Duration of infer "
                                  "requests, from their headers' arrival to their answer.",
                                  buckets=BUCKETS, registry=own)
        self.rows = Counter("baton_rows", "Rows of infer requests judged against the "
                            "envelope (the rows of every decoded request).", registry=own)
        outside = Counter("baton_outside_envelope_total", "Rows of infer requests outside "
                          "the envelope the bundle was proven on, by envelope column.",
                          ["input"], registry=own)
        self.outside = {name: outside.labels(name) for name in columns}
        Gauge("baton_envelope_known", "1 when the bundle records the envelope its proof "
              "covers (baton_outside_envelope_total counts against it), 0 when it does not.",
              registry=own, multiprocess_mode="max").set(1 if envelope_known else 0)
        self.written = Counter("baton_records_written", "Rows --record wrote to Parquet "
                               "files.", registry=own)
        self.dropped = Counter("baton_records_dropped", "Rows --record dropped (its queue "
                               "full, or a write that failed).", registry=own)
        info = Gauge("baton_model_info", "The model served, its bundle's digest and the "
                     "worker process.", ["model", "digest", "worker"], registry=own,
                     multiprocess_mode="max")
        info.labels(model, digest or "", worker).set(1)
        self._golden: Any = None
        self._recorder: Any = None
        self._copied = (0, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry)

    def golden(self, reproduced: bool) -> None:
        """The warm-up's verdict: whether it reproduced the bundle's golden outputs."""
        if self._golden is None:  # made now: absent from the scrapes before the verdict
            self._golden = self._gauge(
                "baton_golden_check", "1 when the warm-up reproduced the bundle's golden "
                "outputs within its tolerances, 0 when it did not.", registry=self._own,
                multiprocess_mode="min")
        self._golden.set(1 if reproduced else 0)

    def watch(self, recorder: Any) -> None:
        """Count the rows ``recorder`` writes and drops (its ``written_rows`` and
        ``dropped_rows``), copied at every scrape and, with several workers, every
        :data:`SYNC_SECONDS` (a scrape reaches one worker)."""
        self._recorder = recorder
        if self.multiprocess:
            def copy() -> None:
                while not self._stop.wait(SYNC_SECONDS):
                    self.sync()

            threading.Thread(target=copy, name="baton-metrics-sync", daemon=True).start()

    def sync(self) -> None:
        """Copy the recorder's counts into the counters."""
        recorder = self._recorder
        if recorder is None:
            return
        with self._lock:
            written, dropped = int(recorder.written_rows), int(recorder.dropped_rows)
            done_written, done_dropped = self._copied
            if written > done_written:
                self.written.inc(written - done_written)
            if dropped > done_dropped:
                self.dropped.inc(dropped - done_dropped)
            self._copied = (max(written, done_written), max(dropped, done_dropped))

    def close(self) -> None:
        """The last copy of the recorder's counts (after it closed), and no more."""
        self._stop.set()
        self.sync()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric (of every worker), and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.sync()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _multiprocess() -> bool:
    """Whether this process counts in prometheus-client's multiprocess mode (the
    environment variable set by the parent of the workers). A prometheus-client imported
    before the variable was set is switched to that mode (its ``values.ValueClass`` is
    read as each metric is made)."""
    directory = os.environ.get(WORKERS_ENV)
    if not directory or os.environ.get(MULTIPROC_ENV) != directory:
        return False
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    return True


@contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A private directory for the workers' metric files, named by
    ``PROMETHEUS_MULTIPROC_DIR`` while the block runs (for the processes forked in it),
    removed after."""
    directory = tempfile.mkdtemp(prefix="baton-metrics-")
    previous = {k: os.environ.get(k) for k in (MULTIPROC_ENV, WORKERS_ENV)}
    os.environ[MULTIPROC_ENV] = os.environ[WORKERS_ENV] = directory
    try:
        yield directory
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(directory, ignore_errors=True)
