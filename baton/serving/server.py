"""``baton serve``: one bundle behind the Open Inference Protocol (v2) REST API.

Built on Starlette (routing, requests, responses) and uvicorn (the HTTP server), the
``serve`` extra; neither is imported by ``import baton``. The model runs in worker threads
(onnxruntime releases the GIL), at most ``max_concurrency`` at a time; at most
``max_queue`` more requests wait for a slot, and any beyond those are answered 503 at
once. The server is live as soon as it listens, and ready once a warm-up inference on the
bundle's golden inputs reproduced the golden outputs within the bundle's tolerances (a
bundle without golden vectors is refused before listening). SIGTERM is a graceful shutdown
(exit status 0), Ctrl-C the same with status 130, also while the bundle is still loading.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from baton.errors import (
    BundleError,
    InputValidationError,
    SchemaError,
    UsageError,
    require,
)
from baton.runtime import Session
from baton.serving.protocol import (
    HttpError,
    decode_request,
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


class ModelServer:
    """A loaded bundle and its serving state: readiness, limits, in-flight requests.

    The web layer (:func:`make_app`) only routes to these methods.
    """

    def __init__(self, session: Session, *, name: str | None = None,
                 max_body: int = DEFAULT_MAX_BODY,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        for option, value, least in (("--max-body", max_body, 1),
                                     ("--max-concurrency", max_concurrency, 1),
                                     ("--max-queue", max_queue, 0)):
            if value < least:
                raise UsageError(f"{option} must be at least {least}",
                                 expected=f"an integer >= {least}", found=str(value),
                                 hint=f"pass e.g. {option} {max(least, 4)}")
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
        self._lock = threading.Lock()

    # -- state ------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the golden inputs and compare with the golden outputs; ready if they agree."""
        try:
            problem = self._warm_up()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the server not ready
            log.error("warm-up of model %r failed, not ready:\n%s", self.name,
                      "".join(traceback.format_exception(exc)).rstrip())
            self.not_ready_reason = "warm-up failed; see the server log"
            return
        if problem:
            log.error("warm-up of model %r failed, not ready: %s", self.name, problem)
            self.not_ready_reason = "warm-up failed; see the server log"
            return
        self.ready = True
        self.not_ready_reason = ""
        log.info("model %r is ready", self.name)

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
        return None

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
        """Decode, run and encode one ``/infer`` request (blocking: run it in a thread)."""
        request = decode_request(body, header_length, self.inputs, self.output_names)
        try:
            results = self.session.run(request.feeds, outputs=request.outputs)
        except (InputValidationError, SchemaError) as exc:
            raise HttpError.bad_request(exc) from None
        return encode_response(self.name, request, results)


def _golden_vectors(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
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

    async def infer(request: Request) -> Response:
        server.check_ready()
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise HttpError(415, f"Content-Encoding {encoding!r} is not supported: send the "
                            "body uncompressed")
        server.enter()
        try:
            body = await read_body(request)
            content, header_length = await anyio.to_thread.run_sync(
                server.infer, body, request.headers.get("inference-header-content-length"),
                limiter=limiter)
        finally:
            server.leave()
        if header_length is None:
            return Response(content, media_type="application/json")
        return Response(content, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(header_length)})

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > server.max_body:
            raise HttpError(413, f"the request body is {int(declared)} bytes; this server "
                            f"takes at most {server.max_body} (--max-body)")
        chunks, size = [], 0
        try:
            with anyio.fail_after(BODY_TIMEOUT):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > server.max_body:
                        raise HttpError(413, f"the request body is over {server.max_body} "
                                        "bytes, the most this server takes (--max-body)")
                    chunks.append(chunk)
        except TimeoutError:
            raise HttpError(408, f"the request body took over {BODY_TIMEOUT:g} s to "
                            "arrive") from None
        return b"".join(chunks)

    model = "/v2/models/{name}"
    version = model + "/versions/{version}"
    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
    for prefix in (model, version):
        routes += [
            Route(prefix, model_route(model_metadata), methods=["GET"]),
            Route(prefix + "/ready", model_route(ready), methods=["GET"]),
            Route(prefix + "/infer", model_route(infer), methods=["POST"]),
        ]
    return Starlette(routes=routes, exception_handlers={
        HttpError: http_error, HTTPException: starlette_error, Exception: internal_error})


def serve(bundle: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8000,
          name: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
          max_queue: int = DEFAULT_MAX_QUEUE, header_timeout: float | None = None) -> None:
    """Serve ``bundle`` until SIGTERM or Ctrl-C (SIGINT).

    Either stops it gracefully (requests in progress finish, for up to 10 s), also while the
    bundle is still loading; after SIGTERM this returns (exit status 0 from the CLI), after
    Ctrl-C it raises KeyboardInterrupt (exit status 130). ``header_timeout`` (default: the
    environment variable BATON_SERVE_HEADER_TIMEOUT, else :data:`HEADER_TIMEOUT`) is how
    many seconds a client has to send a request's headers before its connection is closed.
    """
    require("starlette", "serve", "baton serve")
    uvicorn = require("uvicorn", "serve", "baton serve")
    seconds = _header_timeout(header_timeout)
    _configure_logging()
    try:
        with _signals_stop():
            _serve(uvicorn, bundle, host=host, port=port, name=name, max_body=max_body,
                   max_concurrency=max_concurrency, max_queue=max_queue,
                   header_timeout=seconds)
    except _Stopped as stop:
        log.info("stopped by %s", signal.Signals(stop.signum).name)
        if stop.signum == signal.SIGINT:
            raise KeyboardInterrupt from None


def _serve(uvicorn: Any, bundle: str | os.PathLike[str], *, host: str, port: int,
           name: str | None, max_body: int, max_concurrency: int, max_queue: int,
           header_timeout: float) -> None:
    session = Session(bundle)
    _golden_vectors(session)  # refused before listening: nothing to prove the model on
    server = ModelServer(session, name=name, max_body=max_body,
                         max_concurrency=max_concurrency, max_queue=max_queue)
    sock = _listen(host, port)
    warm = threading.Thread(target=server.warm_up, name="baton-warm-up", daemon=True)
    try:
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        log.info("serving model %r from %s at http://%s:%d/v2/models/%s (max body %d "
                 "bytes, %d concurrent inferences, %d queued)", server.name, bundle, shown,
                 bound, server.name, max_body, max_concurrency, max_queue)
        warm.start()
        config = uvicorn.Config(make_app(server), log_level="info", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=10, ws="none",
                                http=_http_protocol(header_timeout))
        # uvicorn handles SIGTERM and SIGINT while it runs (a graceful shutdown), then
        # raises the signal again, which _signals_stop turns into _Stopped
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if warm.is_alive():  # let a warm-up in progress end before the interpreter does
            warm.join(BODY_TIMEOUT)


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


def _http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for every request's headers.

    uvicorn arms no timer on a new connection, and cancels its keep-alive timer on any byte
    received, so a client that sends half a request's headers, or trickles them, would
    hold its connection (and a file descriptor) for ever. Here the headers must be complete
    within ``header_timeout`` seconds of the connection's start, or of the end of the
    previous response on a keep-alive connection; else the connection is closed.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers arrived
                self._stop_header_timer()

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():  # the next request's headers, from now
                self._start_header_timer()
            super().on_response_complete()  # which may take a pipelined request at once

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


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port", expected="0 to 65535 (0: any free "
                         "port)", found=str(port), hint="pass e.g. --port 8000")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
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
