"""``baton serve``: one bundle behind the Open Inference Protocol (v2) REST API.

Built on Starlette (routing, requests, responses) and uvicorn (the HTTP server), the
``serve`` extra; neither is imported by ``import baton``. A model whose warm-up run takes
under :data:`INLINE_SECONDS` runs on the event loop itself (a thread hand-off would cost
more than the run); a slower one, or a request larger than the warm-up's, runs in worker
threads (onnxruntime releases the GIL), at most ``max_concurrency`` at a time. An infer
request that finds ``max_concurrency + max_queue`` admitted ones not yet answered (admitted
as their headers arrived) is answered 503 with ``Retry-After`` before its body is read.
``workers`` > 1 forks that many processes, each with its own session, listening on the
same port (SO_REUSEPORT). The server is live as soon as it listens, and ready once a
warm-up inference on the bundle's golden inputs reproduced the golden outputs within the
bundle's tolerances (a bundle without golden vectors is refused before listening).
SIGTERM is a graceful shutdown (exit status 0), Ctrl-C the same with status 130, also
while the bundle is still loading.

Every infer request's rows are checked against the bundle's envelope
(:mod:`baton.serving.monitor`) and counted, with the requests by outcome and their
durations, in the metrics ``GET /metrics`` answers (:mod:`baton.serving.metrics`); with
``refuse_outside_envelope`` a request with rows outside is answered 422 instead. ``record``
hands a sample of the requests answered to a :class:`baton.serving.record.Recorder`, which
writes them as Parquet files off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from baton.errors import (
    BatonError,
    BundleError,
    InputValidationError,
    SchemaError,
    UsageError,
    require,
)
from baton.runtime import Session
from baton.serving.monitor import EnvelopeMonitor
from baton.serving.protocol import (
    HttpError,
    RequestDecoder,
    encode_response,
    tensor_metadata,
)

log = logging.getLogger("baton.serve")

DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_MAX_QUEUE = 32
#: seconds a client may take to send a request body before it is answered 408
BODY_TIMEOUT = 30.0
#: seconds a client may take to send a request's headers, counted from the connection's
#: start and, on a keep-alive connection, from the end of the previous response; past it
#: the connection is closed (without this, half-sent headers would hold it for ever)
HEADER_TIMEOUT = 10.0
#: the environment variable that sets another header timeout, in seconds, for serve()
HEADER_TIMEOUT_ENV = "BATON_SERVE_HEADER_TIMEOUT"
#: a model whose warm-up run (on the golden rows) takes less than this many seconds runs
#: on the event loop, for requests of at most as many rows; a slower one in threads
INLINE_SECONDS = 0.001
#: request bodies larger than this are decoded in a worker thread, off the event loop
INLINE_BODY = 256 * 1024
#: scope keys set by the HTTP protocol (_http_protocol) when an infer request's headers
#: arrive: ADMITTED when it takes a place in the server, SHED when it finds the server full
#: (it is then answered 503 before its body is read, and its connection is not read again
#: for RETRY_AFTER seconds)
ADMITTED = "baton.admitted"
SHED = "baton.shed"
#: seconds a client refused as busy is told to wait (Retry-After), and for which its
#: connection is not read: a client that retries at once waits that long all the same,
#: instead of taking the server's time from the requests it admitted
RETRY_AFTER = 1


class ModelServer:
    """A loaded bundle and its serving state: readiness, limits, in-flight requests.

    The web layer (:func:`make_app`) only routes to these methods.
    """

    def __init__(self, session: Session, *, name: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
                 max_queue: int = DEFAULT_MAX_QUEUE,
                 refuse_outside_envelope: bool = False) -> None:
        _check_limits(max_body, max_concurrency, max_queue)
        self.session = session
        self.name = name or session.name
        self.max_body = max_body
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.inputs = list(session.inputs)
        self.output_names = list(session.output_names)
        self.ready = False
        self.not_ready_reason = "warming up"
        self.pending = 0  # infer requests inside the server (reading, waiting or running)
        #: infer requests admitted when their headers arrived, not yet answered (counted by
        #: the HTTP protocol, _http_protocol, which refuses requests beyond the limit)
        self.admitted = 0
        self._lock = threading.Lock()
        self.decode = RequestDecoder(self.inputs, self.output_names)
        #: whether inferences of at most ``inline_rows`` rows run on the event loop; set by
        #: the warm-up from the time of the golden run
        self.inline = False
        self.inline_rows = 0
        self.run_seconds = math.nan
        #: this process's place among the server's worker processes, e.g. "1/2"
        self.worker = "1/1"
        #: the rows of each request outside the bundle's envelope, counted by column
        self.monitor = EnvelopeMonitor(session.manifest.envelope, self.inputs)
        self.watch = self.monitor if self.monitor.active else None
        #: answer requests with rows outside the envelope 422 instead of a prediction
        self.refuse_outside = refuse_outside_envelope
        if refuse_outside_envelope:
            _check_refusal(session.manifest, session.files.path)
        #: the server's metrics (baton.serving.metrics.Metrics), made by make_app
        self.metrics: Any = None
        #: what serves records (baton.serving.record.Recorder), once recording started
        self.recorder: Any = None
        #: run once the warm-up reproduced the golden outputs, before the server is ready
        #: (e.g. starting the recorder)
        self.before_ready: Callable[[], None] | None = None
        self._record_failed = False
        self._watch_failed = False

    # -- state ------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the golden inputs and compare with the golden outputs; ready if they agree."""
        try:
            problem = self._warm_up()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the server not ready
            log.error("warm-up of model %r failed, not ready:\n%s", self.name,
                      "".join(traceback.format_exception(exc)).rstrip())
            self.not_ready_reason = "warm-up failed; see the server log"
            self._golden_verdict(False)
            return
        if problem:
            log.error("warm-up of model %r failed, not ready: %s", self.name, problem)
            self.not_ready_reason = "warm-up failed; see the server log"
            self._golden_verdict(False)
            return
        self._golden_verdict(True)
        if self.before_ready is not None:
            try:
                self.before_ready()
            except Exception as exc:  # noqa: BLE001 - not ready, and the log says why
                log.error("model %r is not ready: %s", self.name,
                          "".join(traceback.format_exception(exc)).rstrip())
                self.not_ready_reason = "recording could not start; see the server log"
                return
        self.ready = True
        self.not_ready_reason = ""
        log.info("model %r is ready%s", self.name,
                 "" if self.worker == "1/1" else f" in worker {self.worker}")

    def _warm_up(self) -> str | None:
        try:
            golden_in, golden_out = _golden_vectors(self.session)
        except BundleError as exc:  # never ready without golden outputs to compare with
            return HttpError.bad_request(exc).message
        failed = list(self.session.golden_problems(golden_in, golden_out))
        if failed:
            return (f"output{'s' if len(failed) > 1 else ''} {', '.join(map(repr, failed))} "
                    "differ from the bundle's golden outputs beyond its tolerances "
                    "(run 'baton verify' on the bundle for the details)")
        rows = len(next(iter(golden_in.values())))
        log.info("warm-up of model %r on %d golden rows matched the golden outputs",
                 self.name, rows)
        feeds = self.decode_golden(golden_in)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            self.session.run(feeds)
            times.append(time.perf_counter() - start)
        self.run_seconds = statistics.median(times)
        self.inline = self.run_seconds < INLINE_SECONDS
        self.inline_rows = rows
        log.info("model %r runs in %.3g ms on %d rows: inferences of up to %d rows run %s",
                 self.name, self.run_seconds * 1000, rows, rows,
                 "on the event loop" if self.inline else "in worker threads")
        return None

    def _golden_verdict(self, reproduced: bool) -> None:
        if self.metrics is not None:
            self.metrics.golden(reproduced)

    def decode_golden(self, golden_in: dict[str, Any]) -> dict[str, Any]:
        """The golden inputs as a decoded request would hold them (native-order arrays)."""
        import numpy as np

        return {k: np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("="))
                if v.dtype.kind in "biuf" else v for k, v in golden_in.items()}

    # -- endpoints, without HTTP --------------------------------------------------------------

    def check_model(self, name: str, version: str | None = None) -> None:
        if name != self.name:
            raise HttpError(404, f"unknown model {name!r}: this server serves {self.name!r}")
        if version is not None:
            raise HttpError(404, f"model {name!r} has no version {version!r}: it is served "
                            f"without versions, at /v2/models/{self.name}")

    def check_ready(self) -> None:
        if not self.ready:
            raise HttpError(503, f"model {self.name!r} is not ready: {self.not_ready_reason}")

    def make_metrics(self, digest: str | None = None) -> Any:
        """This server's metrics (prometheus-client, the serve extra)."""
        from baton.serving.metrics import Metrics

        return Metrics(model=self.name, digest=digest, worker=self.worker,
                       columns=self.monitor.names, envelope_known=self.monitor.known)

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "platform": "onnxruntime_onnx",
            "inputs": [tensor_metadata(s) for s in self.inputs],
            "outputs": [tensor_metadata(s) for s in self.session.outputs],
        }

    def enter(self) -> None:
        """Take a place for one infer request, or refuse it (503) when the queue is full."""
        limit = self.max_concurrency + self.max_queue
        with self._lock:
            if self.pending >= limit:
                raise HttpError(503, f"the server is busy: {self.max_concurrency} requests "
                                f"running and {self.max_queue} waiting; retry later")
            self.pending += 1

    def leave(self) -> None:
        with self._lock:
            self.pending -= 1

    def infer(self, body: bytes, header_length: str | None) -> tuple[bytes, int | None]:
        """Decode, run and encode one ``/infer`` request (blocking)."""
        return self.run(self.decode(body, header_length))

    def run(self, request: Any) -> tuple[bytes, int | None]:
        """Run and encode a decoded request (blocking): its rows outside the envelope
        counted (or the request refused, 422), the outputs offered to the recorder."""
        feeds = request.feeds
        watch = self.watch
        if watch is not None:
            metrics = self.metrics
            if metrics is not None:
                for arr in feeds.values():
                    metrics.rows.inc(len(arr) if arr.ndim else 1)
                    break
            try:
                outside = watch.check(feeds)
            except Exception:  # noqa: BLE001 - never fail a request for its counting
                outside = None
                self._failed_once("_watch_failed", "counting rows outside the envelope")
            if outside:
                self._outside(feeds, outside)
        try:
            results = self.session.run(feeds, outputs=request.outputs)
        except (InputValidationError, SchemaError) as exc:
            raise HttpError.bad_request(exc) from None
        recorder = self.recorder
        if recorder is not None:
            try:
                recorder.offer(feeds, results)
            except Exception:  # noqa: BLE001 - recording never fails a request
                self._failed_once("_record_failed", "recording a request")
        return encode_response(self.name, request, results)

    def _outside(self, feeds: dict[str, Any], outside: dict[str, int]) -> None:
        """Count the rows outside the envelope; refuse the request when asked to."""
        metrics = self.metrics
        if metrics is not None:
            for column, rows in outside.items():
                metrics.outside[column].inc(rows)
        if self.refuse_outside:
            reasons = self.watch.reasons(feeds, outside) if self.watch else {}
            raise OutsideEnvelope(self.name, reasons)

    def _failed_once(self, flag: str, what: str) -> None:
        if not getattr(self, flag):
            setattr(self, flag, True)
            log.exception("%s failed (logged once; the requests are answered all the "
                          "same)", what)

    def runs_inline(self, request: Any) -> bool:
        """Whether ``request`` runs on the event loop: a short model, no more rows than the
        warm-up's."""
        if not self.inline:
            return False
        for arr in request.feeds.values():
            return arr.ndim == 0 or arr.shape[0] <= self.inline_rows
        return True


class OutsideEnvelope(HttpError):
    """A request refused (422, ``--refuse-outside-envelope``) for rows outside the envelope:
    ``outside`` says, per envelope column, why and what lies inside."""

    def __init__(self, model: str, outside: dict[str, str]) -> None:
        columns = ", ".join(map(repr, outside))
        super().__init__(
            422, f"the request has rows outside the envelope model {model!r} was proven on, "
            f"in {columns} (see 'outside'); this server refuses them "
            "(--refuse-outside-envelope): send values inside the envelope, or re-convert the "
            "model with data that covers them (or widen the envelope with 'baton convert "
            "--envelope NAME=LO..HI') and serve the new bundle")
        self.outside = outside


def _check_refusal(manifest: Any, where: Any) -> None:
    """--refuse-outside-envelope needs a bundle that records its envelope."""
    if manifest.envelope is None:
        raise UsageError(
            f"--refuse-outside-envelope: the bundle {where} records no envelope",
            expected="a bundle whose baton.json holds 'envelope' (baton convert records it)",
            found="none (a bundle made before baton recorded envelopes)",
            hint="re-create the bundle with 'baton convert', or serve without "
            "--refuse-outside-envelope (/metrics then says baton_envelope_known 0)")


def _golden_vectors(session: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundle's golden inputs and outputs, one for every input and output, or a
    BundleError: the server proves a bundle on them before it is ready, and cannot without."""
    from baton.runtime._files import GOLDEN_DIR
    from baton.runtime._golden import read_golden

    golden_in, golden_out = read_golden(session.files, session.manifest)
    lacking = ([s.name for s in session.inputs if s.name not in golden_in]
               + [s.name for s in session.outputs if s.name not in golden_out])
    if lacking:
        none = not golden_in and not golden_out
        raise BundleError(
            f"the bundle {session.files.path} holds no golden vectors"
            + ("" if none else " for " + ", ".join(map(repr, lacking)))
            + ": baton serve is ready only once they reproduce",
            expected=f"{GOLDEN_DIR}/input_*.pb and output_*.pb, one for each input and "
            "output of the model",
            found="none" if none else f"{len(lacking)} missing",
            hint="re-create the bundle with 'baton convert' (it writes the golden vectors "
            "from the data it proved the model on)")
    return golden_in, golden_out


# -- the web layer -----------------------------------------------------------------------------

def make_app(server: ModelServer) -> Any:
    """The Starlette application serving ``server``'s model."""
    import anyio
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    limiter = anyio.CapacityLimiter(server.max_concurrency)
    if server.metrics is None:
        server.metrics = server.make_metrics()
    metrics = server.metrics

    def error(status: int, message: str, **headers: str) -> Response:
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        headers = {"Retry-After": "1"} if exc.status == 503 else {}
        if exc.status == 408:  # a body too slow to arrive: stop reading it
            headers["Connection"] = "close"
        # after a 413 uvicorn reads and drops the rest of the body (for at most the header
        # timeout, which starts again when a response ends), so that the client, still
        # sending, reads the answer
        return error(exc.status, exc.message, **headers)

    async def starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
                       exc.status_code, str(exc.detail))
        return error(exc.status_code, message)

    async def internal_error(request: Request, exc: Exception) -> Response:
        # the traceback goes to the log (uvicorn prints it), never to the client
        return error(500, "internal server error; see the server log")

    def model_route(handler: Callable[[Request], Awaitable[Response]]
                    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            server.check_model(request.path_params["name"], request.path_params.get("version"))
            return await handler(request)
        return route

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        if not server.ready:
            return JSONResponse({"ready": False, "error": f"model {server.name!r} is not ready: "
                                 f"{server.not_ready_reason}"}, status_code=503)
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> Response:
        from baton._version import __version__

        return JSONResponse({"name": "baton", "version": __version__,
                             "extensions": ["binary_tensor_data"]})

    async def model_metadata(request: Request) -> Response:
        return JSONResponse(server.metadata())

    async def scrape(request: Request) -> Response:
        # a few milliseconds with several workers (reading their files): off the loop
        content, media_type = await anyio.to_thread.run_sync(metrics.exposition)
        return Response(content, media_type=media_type)

    infer = _InferEndpoint(server, limiter, metrics)
    model = "/v2/models/{name}"
    version = model + "/versions/{version}"
    routes = [
        Route("/metrics", scrape, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
    for prefix in (model, version):
        routes += [
            Route(prefix, model_route(model_metadata), methods=["GET"]),
            Route(prefix + "/ready", model_route(ready), methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
        ]
    app = Starlette(routes=routes, exception_handlers={
        HttpError: http_error, HTTPException: starlette_error, Exception: internal_error})
    # the model's own /infer path goes straight to the endpoint, without Starlette's
    # routing and middleware (a third of a small request's time); the rest through them
    fast_path = f"/v2/models/{server.name}/infer"

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == fast_path \
                and scope["method"] == "POST":
            await infer(scope, receive, send)
        else:
            await app(scope, receive, send)

    return asgi


class _InferEndpoint:
    """``POST /v2/models/{name}/infer`` as a plain ASGI application.

    The checks that need no body come first (readiness, encoding, room in the server), so a
    refused request costs no reading or decoding; then the body is read (up to
    ``max_body`` bytes, within :data:`BODY_TIMEOUT`), decoded, run and encoded: on the
    event loop when the model is short (:meth:`ModelServer.runs_inline`), else in a worker
    thread (at most ``max_concurrency`` at once)."""

    def __init__(self, server: ModelServer, limiter: Any, metrics: Any) -> None:
        self.server = server
        self.limiter = limiter
        self.limit = server.max_concurrency + server.max_queue
        self.busy = _error_message(
            503, f"the server is busy: {server.max_concurrency} requests running and "
            f"{server.max_queue} waiting; retry later")
        self.ok, self.shed, self.observe = metrics.ok, metrics.busy, metrics.duration.observe
        #: an error's status -> its outcome's counter
        self.outcomes = {422: metrics.outside_envelope, 503: metrics.not_ready}
        self.invalid, self.error = metrics.invalid, metrics.error

    def counter(self, status: int) -> Any:
        found = self.outcomes.get(status)
        if found is not None:
            return found
        return self.invalid if status < 500 else self.error

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        server = self.server
        start = _clock()
        try:
            params = scope.get("path_params")
            if params:  # routed by Starlette: /versions/..., or another model's name
                server.check_model(params["name"], params.get("version"))
            if not server.ready:
                server.check_ready()
            header_length = None
            declared = None
            for key, value in scope["headers"]:
                if key == b"content-length":
                    declared = value
                elif key == b"inference-header-content-length":
                    header_length = value.decode("latin-1")
                elif key == b"content-encoding":
                    encoding = value.decode("latin-1").lower()
                    if encoding != "identity":
                        raise HttpError(415, f"Content-Encoding {encoding!r} is not "
                                        "supported: send the body uncompressed")
            if scope.get(SHED) or (ADMITTED not in scope and server.pending >= self.limit):
                scope[SHED] = True
                await _send(send, *self.busy)
                self.shed.inc()
                self.observe(_clock() - start)
                return
            server.pending += 1
            try:
                body = await self.read_body(receive, declared)
                if body is None:  # the client went away
                    return
                if server.inline and len(body) <= INLINE_BODY:
                    request = server.decode(body, header_length)
                    if server.runs_inline(request):
                        content, binary_length = server.run(request)
                    else:
                        content, binary_length = await self.in_thread(server.run, request)
                else:
                    content, binary_length = await self.in_thread(server.infer, body,
                                                                  header_length)
            finally:
                server.pending -= 1
        except HttpError as exc:
            await _send(send, *_error_message(exc.status, exc.message,
                                              getattr(exc, "outside", None)))
            self.counter(exc.status).inc()
            self.observe(_clock() - start)
            return
        except Exception:
            log.exception("Exception in ASGI application")
            await _send(send, *_error_message(500, "internal server error; see the server "
                                              "log"))
            self.error.inc()
            self.observe(_clock() - start)
            return
        finally:
            if scope.pop(ADMITTED, False):
                server.admitted -= 1
        if binary_length is None:
            await _send(send, 200, _JSON, content)
        else:
            await _send(send, 200, [(b"content-type", b"application/octet-stream"),
                                    (b"inference-header-content-length",
                                     str(binary_length).encode())], content)
        self.ok.inc()
        self.observe(_clock() - start)

    async def in_thread(self, fn: Any, *args: Any) -> Any:
        import anyio

        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def read_body(self, receive: Any, declared: bytes | None) -> bytes | None:
        """The body, or None when the client went away; 413 past ``max_body`` bytes, 408
        when it takes over :data:`BODY_TIMEOUT` seconds to arrive."""
        limit = self.server.max_body
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"the request body is {int(declared)} bytes; this server "
                            f"takes at most {limit} (--max-body)")
        # a timer that cancels this task (cheaper than a cancel scope: 1 us, not 7-20)
        task = asyncio.current_task()
        assert task is not None
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        timer = asyncio.get_running_loop().call_later(BODY_TIMEOUT, expire)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise self.too_large()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            raise HttpError(408, f"the request body took over {BODY_TIMEOUT:g} s to "
                            "arrive") from None
        finally:
            timer.cancel()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def too_large(self) -> HttpError:
        return HttpError(413, f"the request body is over {self.server.max_body} bytes, the "
                         "most this server takes (--max-body)")


_JSON = [(b"content-type", b"application/json")]
_clock = time.perf_counter


def _error_message(status: int, message: str, outside: dict[str, str] | None = None
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error's status, headers and ``{"error": message}`` body, as JSONResponse writes
    them: ``Retry-After`` on a 503, ``Connection: close`` on a 408 (stop reading the body);
    a 422 for rows outside the envelope also says why, by column (``outside``)."""
    import json

    headers = list(_JSON)
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER).encode()))
    elif status == 408:
        headers.append((b"connection", b"close"))
    content: dict[str, Any] = {"error": message}
    if outside is not None:
        content["outside"] = outside
    body = json.dumps(content, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()
    return status, headers, body


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]],
                body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve(bundle: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8000,
          name: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
          max_queue: int = DEFAULT_MAX_QUEUE, header_timeout: float | None = None,
          workers: int = 1, record: str | os.PathLike[str] | None = None,
          record_rate: float = 1.0, record_max_bytes: int = 1 << 30,
          record_every: float = 60.0, refuse_outside_envelope: bool = False) -> None:
    """Serve ``bundle`` until SIGTERM or Ctrl-C (SIGINT).

    Either stops it gracefully (requests in progress finish, for up to 10 s), also while the
    bundle is still loading; after SIGTERM this returns (exit status 0 from the CLI), after
    Ctrl-C it raises KeyboardInterrupt (exit status 130). ``header_timeout`` (default: the
    environment variable BATON_SERVE_HEADER_TIMEOUT, else :data:`HEADER_TIMEOUT`) is how
    many seconds a client has to send a request's headers before its connection is closed.
    ``workers`` > 1 (POSIX only) forks that many server processes, each loading the bundle
    and listening on the same port; this process watches them and passes the signals on.

    ``GET /metrics`` answers the server's metrics in the Prometheus text format
    (:mod:`baton.serving.metrics`; with workers, those of all of them). ``record`` (a
    directory) records a share ``record_rate`` of the requests answered, inputs and outputs,
    as Parquet files under it (:mod:`baton.serving.record`), a file every
    ``record_every`` seconds, the oldest removed beyond ``record_max_bytes``; recording never
    slows nor fails a request (it drops records, and counts them, when it falls behind).
    ``refuse_outside_envelope`` answers a request with rows outside the envelope the bundle
    was proven on 422, naming them, instead of a prediction (else they are only counted).
    """
    require("starlette", "serve", "baton serve")
    uvicorn = require("uvicorn", "serve", "baton serve")
    # found, not imported: the workers import prometheus-client after the fork, once its
    # multiprocess mode is set (and pyarrow, whose threads a fork would not carry over)
    _installed("prometheus_client", "baton serve")
    seconds = _header_timeout(header_timeout)
    _check_limits(max_body, max_concurrency, max_queue, workers)
    recording = None
    if record is not None:
        _installed("pyarrow", "baton serve --record")
        recording = dict(directory=record, rate=record_rate, max_bytes=record_max_bytes,
                         every=record_every)
        _check_recording(recording)
    _configure_logging()
    options: dict[str, Any] = dict(name=name, max_body=max_body, max_concurrency=max_concurrency,
                   max_queue=max_queue, header_timeout=seconds, recording=recording,
                   refuse_outside_envelope=refuse_outside_envelope)
    try:
        with _signals_stop():
            if workers == 1:
                _serve(uvicorn, bundle, host=host, port=port, **options)
            else:
                from baton.serving.metrics import multiprocess_directory

                # every worker counts into files here, and a scrape adds them all up
                with multiprocess_directory() as directory:
                    log.info("the workers' metrics are kept in %s while they serve",
                             directory)
                    _serve_workers(uvicorn, bundle, host=host, port=port, workers=workers,
                                   **options)
    except _Stopped as stop:
        log.info("stopped by %s", signal.Signals(stop.signum).name)
        if stop.signum == signal.SIGINT:
            raise KeyboardInterrupt from None


def _installed(module: str, needed_for: str) -> None:
    """MissingDependencyError (naming the serve extra) unless ``module`` is installed."""
    import importlib.util

    from baton.errors import MissingDependencyError

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError.for_extra(module, "serve", needed_for)


def _check_recording(recording: dict[str, Any]) -> None:
    """The --record options checked (and the directory made) before the bundle loads and
    any worker starts; each process's Recorder checks them again."""
    from baton.serving import record

    record._check(recording["rate"], recording["max_bytes"], recording["every"], 1,
                  record.MAX_QUEUE_BYTES)
    record._writable_directory(recording["directory"])


def _check_limits(max_body: int, max_concurrency: int, max_queue: int,
                  workers: int = 1) -> None:
    for option, value, least in (("--max-body", max_body, 1),
                                 ("--max-concurrency", max_concurrency, 1),
                                 ("--max-queue", max_queue, 0),
                                 ("--workers", workers, 1)):
        if value < least:
            raise UsageError(f"{option} must be at least {least}",
                             expected=f"an integer >= {least}", found=str(value),
                             hint=f"pass e.g. {option} {max(least, 4)}")
    if workers > 1 and (not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT")):
        raise UsageError("--workers above 1 needs a POSIX system (fork and SO_REUSEPORT)",
                         expected="--workers 1 here", found=f"--workers {workers}",
                         hint="run one baton serve per core behind a load balancer, or "
                         "pass --workers 1")


def _announce(server: ModelServer, bundle: str | os.PathLike[str], host: str, port: int,
              workers: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    log.info("serving model %r from %s at http://%s:%d/v2/models/%s (max body %d "
             "bytes, %d concurrent inferences, %d queued%s)", server.name, bundle, shown,
             port, server.name, server.max_body, server.max_concurrency, server.max_queue,
             f", {workers} worker processes" if workers > 1 else "")


def _serve(uvicorn: Any, bundle: str | os.PathLike[str], *, host: str, port: int,
           name: str | None, max_body: int, max_concurrency: int, max_queue: int,
           header_timeout: float, recording: dict[str, Any] | None = None,
           refuse_outside_envelope: bool = False, digest: str | None = None,
           sock: socket.socket | None = None, worker: str | None = None,
           verify: bool = True) -> None:
    """One server process: load, listen (unless given ``sock``), warm up, serve; then
    close the recorder, so that the last records are written."""
    session = Session(bundle, verify=verify)
    _golden_vectors(session)  # refused before listening: nothing to prove the model on
    server = ModelServer(session, name=name, max_body=max_body,
                         max_concurrency=max_concurrency, max_queue=max_queue,
                         refuse_outside_envelope=refuse_outside_envelope)
    server.worker = worker or "1/1"
    if digest is None:
        digest = session.files.digest(session.manifest)  # the files' hashes: checked above
    server.metrics = server.make_metrics(digest)
    recorder = None
    if recording is not None:
        recorder = _recorder(server, digest, recording)
    if sock is None:
        sock = _listen(host, port)
    warm = threading.Thread(target=server.warm_up, name="baton-warm-up", daemon=True)
    try:
        if worker is None:
            _announce(server, bundle, host, sock.getsockname()[1], 1)
        warm.start()
        config = uvicorn.Config(make_app(server), log_level="info", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=10, ws="none",
                                http=_http_protocol(header_timeout, server),
                                headers=[("baton-worker", server.worker)])
        # uvicorn handles SIGTERM and SIGINT while it runs (a graceful shutdown), then
        # raises the signal again, which _signals_stop turns into _Stopped
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if warm.is_alive():  # let a warm-up in progress end before the interpreter does
            warm.join(BODY_TIMEOUT)
        if recorder is not None:
            server.recorder = None
            _close_recorder(server, recorder)


def _recorder(server: ModelServer, digest: str | None, recording: dict[str, Any]) -> Any:
    """The recorder of ``server``'s requests (its options checked, before listening),
    started once the warm-up reproduced the golden outputs."""
    from baton.serving.record import Recorder

    session = server.session
    recorder = Recorder(recording["directory"], session.inputs, session.outputs,
                        model=server.name, digest=digest, rate=recording["rate"],
                        max_bytes=recording["max_bytes"], every=recording["every"])

    def start() -> None:
        recorder.start()
        server.recorder = recorder
        server.metrics.watch(recorder)

    server.before_ready = start
    return recorder


def _close_recorder(server: ModelServer, recorder: Any) -> None:
    """Write the last records (for up to 10 s; the recorder logs what it wrote)."""
    try:
        recorder.close(timeout=10)
    except Exception:  # noqa: BLE001 - the server is stopping: say so, and stop
        log.exception("closing the recorder failed")
    server.metrics.close()


def _serve_workers(uvicorn: Any, bundle: str | os.PathLike[str], *, host: str, port: int,
                   workers: int, **options: Any) -> None:
    """Fork ``workers`` server processes on one port, and watch them until a signal.

    The bundle is checked here (its files' hashes, its golden vectors) without onnxruntime,
    whose threads a forked child would not inherit; each worker then loads its own session.
    This process holds the port (bound, not listening); every worker listens on it with
    SO_REUSEPORT, and the kernel spreads new connections over them."""
    from baton.runtime import BundleFiles

    files = BundleFiles(bundle)
    manifest = files.manifest()
    files.check_integrity(manifest)
    _golden_vectors(_BundleView(files, manifest))
    if options.get("refuse_outside_envelope"):
        _check_refusal(manifest, files.path)
    options["digest"] = files.digest(manifest)  # the hashes were computed just above
    reserved = _listen(host, port, reuse_port=True, listen=False)
    port = reserved.getsockname()[1]
    view = ModelServer.__new__(ModelServer)  # for the announcement only: no session
    view.name = options["name"] or manifest.name
    view.max_body, view.max_concurrency = options["max_body"], options["max_concurrency"]
    view.max_queue = options["max_queue"]
    children: dict[int, int] = {}
    try:
        _announce(view, bundle, host, port, workers)
        sys.stdout.flush()
        sys.stderr.flush()
        for index in range(1, workers + 1):
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                _worker(uvicorn, bundle, host, port, f"{index}/{workers}", reserved, options)
            children[pid] = index
        _watch(children)
    finally:
        reserved.close()


def _worker(uvicorn: Any, bundle: str | os.PathLike[str], host: str, port: int, worker: str,
            reserved: socket.socket, options: dict[str, Any]) -> None:
    """A forked worker process: serves until a signal, then exits (os._exit: never back
    into the parent's stack)."""
    code = 3
    try:
        os.setpgid(0, 0)  # Ctrl-C reaches the parent, which passes it on once
        reserved.close()
        _exit_with_parent(os.getppid())
        sock = _listen(host, port, reuse_port=True)
        _serve(uvicorn, bundle, host=host, port=port, sock=sock, worker=worker,
               verify=False, **options)
        code = 0
    except _Stopped as stop:
        code = 130 if stop.signum == signal.SIGINT else 0
    except BatonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
        traceback.print_exc()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_with_parent(parent: int) -> None:
    """SIGTERM this worker when its parent is gone (killed without passing a signal on)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="baton-parent-watch", daemon=True).start()


def _watch(children: dict[int, int]) -> None:
    """Wait on the workers. A signal (as _Stopped) is passed on to them, and this returns
    once they have stopped; a worker that stops by itself stops the others, and this
    process exits with its status."""
    try:
        while children:
            pid, status = os.waitpid(-1, 0)
            index = children.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            log.error("worker %d (process %d) exited with status %d: stopping the others",
                      index, pid, code)
            _stop_all(children, signal.SIGTERM)
            raise SystemExit(code if code > 0 else 1)
    except _Stopped as stop:
        _stop_all(children, stop.signum)
        raise


def _stop_all(children: dict[int, int], signum: int) -> None:
    for pid in children:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    # the graceful shutdown's 10 s, then up to 10 s to write the last records, and more
    deadline = time.monotonic() + 25
    while children and time.monotonic() < deadline:
        for pid in list(children):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                children.pop(pid)
        time.sleep(0.05)
    for pid in children:  # past all that
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    children.clear()


class _BundleView:
    """What :func:`_golden_vectors` reads of a Session, without onnxruntime."""

    def __init__(self, files: Any, manifest: Any) -> None:
        self.files = files
        self.manifest = manifest
        self.inputs = manifest.inputs
        self.outputs = manifest.outputs


def _header_timeout(value: float | None) -> float:
    """The header timeout in seconds: ``value``, else the environment's, else the default."""
    text = os.environ.get(HEADER_TIMEOUT_ENV) if value is None else str(value)
    if text is None:
        return HEADER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        where = HEADER_TIMEOUT_ENV if value is None else "header_timeout"
        raise UsageError(f"{where} {text!r} is not a timeout", expected="a number of "
                         "seconds > 0", found=text, hint=f"set e.g. {HEADER_TIMEOUT_ENV}="
                         f"{HEADER_TIMEOUT:g}, or unset it for the default")
    return seconds


class _Stopped(BaseException):
    """SIGTERM or SIGINT, raised in the main thread (a BaseException, as KeyboardInterrupt
    is, so that no ``except Exception`` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`_Stopped` inside the block (once: a second signal
    while stopping is ignored). uvicorn puts its own handlers in place while it serves and
    restores these after its graceful shutdown, re-raising the signal it caught."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return
    caught: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not caught:
            caught.append(signum)
            raise _Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _http_protocol(header_timeout: float, server: ModelServer | None = None
                   ) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for every request's headers.

    uvicorn arms no timer on a new connection, and cancels its keep-alive timer on any byte
    received, so a client that sends half a request's headers, or trickles them, would
    hold its connection (and a file descriptor) for ever. Here the headers must be complete
    within ``header_timeout`` seconds of the connection's start, or of the end of the
    previous response on a keep-alive connection; else the connection is closed.

    With ``server``, it also admits infer requests as their headers arrive, before any of
    their body is read and before the event loop runs them: one that finds
    ``max_concurrency + max_queue`` admitted requests not yet answered is marked SHED (the
    endpoint answers it 503 at once), and its connection is then not read for
    :data:`RETRY_AFTER` seconds, so that a client retrying at once cannot take the
    admitted requests' time.
    """
    infer_path = None if server is None else f"/v2/models/{server.name}/infer"
    limit = 0 if server is None else server.max_concurrency + server.max_queue
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _held: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            if self._held is not None:
                self._held.cancel()
                self._held = None
            super().connection_lost(exc)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers arrived
                self._stop_header_timer()
                scope: Any = self.cycle.scope
                if server is not None and scope["path"] == infer_path \
                        and scope["method"] == "POST":
                    if server.admitted >= limit:
                        scope[SHED] = True
                    else:
                        server.admitted += 1
                        scope[ADMITTED] = True

        def on_response_complete(self) -> None:
            if (self.cycle is not None and self.cycle.scope.get(SHED)
                    and not self.transport.is_closing()):
                # refused as busy: read nothing more from this client until Retry-After
                self.flow.pause_reading()
                self._held = self.loop.call_later(RETRY_AFTER, self._release)
                return
            if not self.transport.is_closing():  # the next request's headers, from now
                self._start_header_timer()
            super().on_response_complete()  # which may take a pipelined request at once

        def _release(self) -> None:
            self._held = None
            if not self.transport.is_closing():
                self._start_header_timer()
            super().on_response_complete()  # reads again (flow.resume_reading)

        def _start_header_timer(self) -> None:
            self._stop_header_timer()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.info("closed the connection from %s: its request headers were not complete "
                     "within %g s", client, header_timeout)
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass
            self.transport.close()

    return HeaderTimeoutProtocol


def _listen(host: str, port: int, *, reuse_port: bool = False,
            listen: bool = True) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port", expected="0 to 65535 (0: any free "
                         "port)", found=str(port), hint="pass e.g. --port 8000")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(2048)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}", expected="a free port on an "
                         "address of this machine", found=exc.strerror or str(exc),
                         hint="choose another --port (or stop the process using it), or "
                         "check --host") from exc
    sock.setblocking(False)
    return sock


def _configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
