"""`baton serve` vs a bare Starlette + onnxruntime server, under wrk, side by side.

    python benchmarks/bench_serve.py            # writes docs/benchmarks.md
    python benchmarks/bench_serve.py --quick    # shorter runs; prints only

Both serve the demo pipeline's model (31 inputs, one per DataFrame column) over the Open
Inference Protocol v2 REST API, under uvicorn with the same HTTP implementation (h11).
The bare baseline (``bare_app`` below) is what a user would write by hand: it parses the
JSON (or the binary tensor extension), builds one array per input with ``np.array``,
calls ``InferenceSession.run`` and writes the JSON response; it checks nothing. One-row
requests are sent by wrk (one wrk thread: on a small machine the load generator competes
with the server) with a Lua script for the POST body, at 1, 8 and 32 connections and at 4x
``baton serve``'s queue bound (``--max-concurrency`` + ``--max-queue`` requests), in JSON and
in binary, with one worker process and with two (``--workers 2``; for the baseline two
forked uvicorn processes on the port, see ``run_bare``). Each point runs baton and the
baseline back to back, in alternating order over the rounds; the ratios are of the same
round, medians over rounds.
Requests/s counts only successful (200) answers; past the bound baton answers the rest
503 with Retry-After, which wrk does not honour (it sends the next request at once), and
the ratio there is baton's successful requests/s over the baseline's peak at any load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import BENCHMARKS_MD, machine, write_section  # noqa: E402

TITLE = "Serving: `baton serve` vs bare Starlette + onnxruntime (wrk)"
#: baton serve's defaults: the queue bound is their sum
MAX_CONCURRENCY, MAX_QUEUE = 4, 32
BOUND = MAX_CONCURRENCY + MAX_QUEUE
CONCURRENCY = (1, 8, 32, 4 * BOUND)
DTYPES = {"tensor(double)": ("FP64", "<f8"), "tensor(float)": ("FP32", "<f4"),
          "tensor(int64)": ("INT64", "<i8"), "tensor(string)": ("BYTES", None)}


# -- the bare baseline --------------------------------------------------------------------

def bare_app(model_path: str) -> Any:
    """A minimal OIP v2 server: JSON (or binary) in, InferenceSession.run, JSON out."""
    import onnxruntime as ort
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    numpy = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BYTES": object}
    names = {"float64": "FP64", "float32": "FP32", "int64": "INT64"}

    async def infer(request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("inference-header-content-length")
        raw = b""
        if header is not None:
            body, raw = body[:int(header)], body[int(header):]
        req = json.loads(body)
        feeds, offset = {}, 0
        for t in req["inputs"]:
            size = t.get("parameters", {}).get("binary_data_size")
            if size is None:
                arr = np.array(t["data"], dtype=numpy[t["datatype"]])
            elif t["datatype"] == "BYTES":
                chunk, items = raw[offset:offset + size], []
                while chunk:
                    n = int.from_bytes(chunk[:4], "little")
                    items.append(chunk[4:4 + n].decode())
                    chunk = chunk[4 + n:]
                arr = np.array(items, dtype=object)
                offset += size
            else:
                arr = np.frombuffer(raw[offset:offset + size], dtype=numpy[t["datatype"]])
                offset += size
            feeds[t["name"]] = arr.reshape(t["shape"])
        binary = req.get("parameters", {}).get("binary_data_output", False)
        results = sess.run(None, feeds)
        outputs, chunks = [], []
        for o, arr in zip(sess.get_outputs(), results):
            tensor = {"name": o.name, "datatype": names[str(arr.dtype)],
                      "shape": list(arr.shape)}
            if binary:
                chunks.append(arr.tobytes())
                tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
            else:
                tensor["data"] = arr.reshape(-1).tolist()
            outputs.append(tensor)
        out = json.dumps({"model_name": "bare", "outputs": outputs}).encode()
        if not binary:
            return Response(out, media_type="application/json")
        return Response(out + b"".join(chunks), media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(out))})

    return Starlette(routes=[Route("/v2/models/{name}/infer", infer, methods=["POST"])])


def run_bare(model: str, port: int, workers: int) -> None:
    """The baseline under uvicorn: ``workers`` forked processes, each with its own session
    and its own listening socket on ``port`` (SO_REUSEPORT), as ``baton serve --workers``.

    (Not uvicorn's own ``workers=N``: its shared socket is made without IPPROTO_TCP, so
    asyncio does not set TCP_NODELAY on the connections, and each response waits ~40 ms for
    a delayed ACK: a baseline ten times slower than it should be.)"""
    import signal

    import uvicorn

    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(2048)
            config = uvicorn.Config(bare_app(model), http="h11", log_level="warning",
                                    access_log=False, lifespan="off")
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: Any) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        os.waitpid(child, 0)


# -- requests -----------------------------------------------------------------------------

def request_bodies(session: Any, row: Any) -> dict[str, tuple[bytes, dict[str, str]]]:
    """One-row requests for every input of ``session``: JSON, and the binary extension."""
    inputs = []
    for s in session.inputs:
        value = row[s.column] if s.column in row else row[s.name]
        datatype = {"float64": "FP64", "float32": "FP32", "int64": "INT64",
                    "string": "BYTES"}[s.dtype]
        data = [str(value)] if datatype == "BYTES" else [value.item() if hasattr(value, "item")
                                                         else value]
        inputs.append({"name": s.name, "datatype": datatype, "shape": [1, 1], "data": data})
    json_body = json.dumps({"inputs": inputs}).encode()
    tensors, chunks = [], []
    for t in inputs:
        if t["datatype"] == "BYTES":
            raw = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode()
                           for v in t["data"])
        else:
            raw = np.asarray(t["data"], dtype={"FP64": "<f8", "FP32": "<f4",
                                               "INT64": "<i8"}[t["datatype"]]).tobytes()
        chunks.append(raw)
        tensors.append({"name": t["name"], "datatype": t["datatype"], "shape": t["shape"],
                        "parameters": {"binary_data_size": len(raw)}})
    header = json.dumps({"inputs": tensors,
                         "parameters": {"binary_data_output": True}}).encode()
    return {"json": (json_body, {"Content-Type": "application/json"}),
            "binary": (header + b"".join(chunks),
                       {"Content-Type": "application/octet-stream",
                        "Inference-Header-Content-Length": str(len(header))})}


LUA = """
wrk.method = "POST"
local f = assert(io.open(%(body)s, "rb"))
wrk.body = f:read("*a")
f:close()
%(headers)s
done = function(summary, latency, requests)
  io.write(string.format('BENCH {"requests": %%d, "non2xx": %%d, "errors": %%d, '
    .. '"duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d}\\n',
    summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def lua_script(path: Path, body: bytes, headers: dict[str, str]) -> Path:
    body_file = path.with_suffix(".body")
    body_file.write_bytes(body)
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}"
                      for k, v in headers.items())
    path.write_text(LUA % {"body": json.dumps(str(body_file)), "headers": lines})
    return path


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
                          "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[6:])
    ok = r["requests"] - r["non2xx"]
    seconds_run = r["duration_us"] / 1e6
    return {"ok_rps": ok / seconds_run, "all_rps": r["requests"] / seconds_run,
            "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000,
            "shed": r["non2xx"] / max(r["requests"], 1), "errors": r["errors"]}


# -- servers ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import http.client

    host, port = url.split("//")[1].split("/")[0].split(":")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("POST", "/" + url.split("/", 3)[3], body=b"{}")
            status = conn.getresponse().status
            conn.close()
            if status != 503:  # baton: ready (then 400 for the empty request); bare: 500
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not become ready:\n{log.read_text()}")


def start(kind: str, bundle: Path, workers: int, tmp: Path) -> tuple[str, Any]:
    port = free_port()
    log = tmp / f"{kind}-{workers}.log"
    if kind == "baton":
        command = [sys.executable, "-m", "baton.cli", "serve", str(bundle), "--port",
                   str(port), "--name", "demo", "--workers", str(workers),
                   "--max-concurrency", str(MAX_CONCURRENCY), "--max-queue", str(MAX_QUEUE)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--bare-server",
                   str(bundle / "model.onnx"), "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v2/models/demo/infer"
    wait_ready(url, process, log)
    return url, process


def stop(process: Any) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the benchmark ------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs; print, don't write")
    parser.add_argument("--seconds", type=float, help="seconds per wrk run (default 5; 2 "
                        "with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds (default 2; 1 with --quick)")
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2")
    parser.add_argument("--bare-server", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        run_bare(args.bare_server, args.port, int(args.workers))
        return
    if shutil.which("wrk") is None:
        sys.exit("bench_serve.py needs wrk, the HTTP load generator, on PATH: install it "
                 "(apt-get install wrk, brew install wrk) and run again")
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 2)
    worker_counts = [int(w) for w in args.workers.split(",")]

    import onnxruntime as ort
    import uvicorn

    import baton
    from baton.demo import train_demo_model
    from baton.runtime import Session

    # samples[(workers, format, concurrency)][kind] = list of wrk results, one per round
    samples: dict[tuple[int, str, int], dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model, X_train, X_test = train_demo_model()
        bundle = baton.convert(model, X_train, name="demo").save(tmp / "demo.baton")
        bodies = request_bodies(Session(bundle), X_test.iloc[0])
        scripts = {fmt: lua_script(tmp / f"{fmt}.lua", body, headers)
                   for fmt, (body, headers) in bodies.items()}
        for workers in worker_counts:
            servers = {kind: start(kind, bundle, workers, tmp) for kind in ("baton", "bare")}
            try:
                for url, _ in servers.values():  # warm both up
                    wrk(url, scripts["json"], 8, 1)
                for r in range(rounds):
                    for fmt, script in scripts.items():
                        for c in CONCURRENCY:
                            order = ["baton", "bare"] if r % 2 == 0 else ["bare", "baton"]
                            point = samples.setdefault((workers, fmt, c), {"baton": [],
                                                                           "bare": []})
                            for kind in order:
                                point[kind].append(wrk(servers[kind][0], script, c, seconds))
                            b, a = point["baton"][-1], point["bare"][-1]
                            print(f"workers {workers} {fmt:6s} c={c:3d} round {r + 1}: baton "
                                  f"{b['ok_rps']:7.0f} ok/s p90 {b['p90_ms']:6.2f} p99 "
                                  f"{b['p99_ms']:6.2f} ms "
                                  f"(shed {b['shed']:.0%}), bare {a['ok_rps']:7.0f}/s p90 "
                                  f"{a['p90_ms']:6.2f} p99 {a['p99_ms']:6.2f} ms", flush=True)
            finally:
                for _, process in servers.values():
                    stop(process)
    lines = report(samples, worker_counts, rounds, seconds,
                   machine(onnxruntime=ort.__version__, uvicorn=uvicorn.__version__))
    print("\n".join(lines))
    if args.quick:
        return
    write_section(TITLE, lines)
    print(f"wrote {BENCHMARKS_MD}", file=sys.stderr)


def report(samples: dict[tuple[int, str, int], dict[str, list[dict[str, float]]]],
           worker_counts: list[int], rounds: int, seconds: float, where: str) -> list[str]:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    lines = [
        "Command: `python benchmarks/bench_serve.py` (writes this section).",
        f"Machine: {where}; wrk 1 thread on the same machine.",
        "",
        "The demo pipeline's model (31 inputs), one-row requests, wrk for "
        f"{seconds:g} s per point, {rounds} round(s). *ok/s*: successful (200) requests per "
        "second; p99 over all answers (past the bound, baton's 503s included); *ratio*: "
        "baton / bare in the same round (median over rounds). Past the bound "
        f"({4 * BOUND} connections = 4 x (`--max-concurrency` {MAX_CONCURRENCY} + "
        f"`--max-queue` {MAX_QUEUE})), *ratio* is baton's ok/s over the bare server's "
        "peak ok/s at any load in that round, and *shed* is the share answered 503.",
        "",
        "| workers | format | connections | baton ok/s | bare ok/s | ratio | baton p99 ms | "
        "bare p99 ms | shed |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workers in worker_counts:
        for fmt in ("json", "binary"):
            points = {c: samples[(workers, fmt, c)] for c in CONCURRENCY
                      if (workers, fmt, c) in samples}
            n = min(len(p["bare"]) for p in points.values())
            peaks = [max(p["bare"][r]["ok_rps"] for p in points.values()) for r in range(n)]
            for c, p in points.items():
                if c > BOUND:
                    ratios = [p["baton"][r]["ok_rps"] / peaks[r] for r in range(n)]
                else:
                    ratios = [p["baton"][r]["ok_rps"] / p["bare"][r]["ok_rps"]
                              for r in range(n)]
                b, a = p["baton"], p["bare"]
                lines.append(
                    f"| {workers} | {fmt} | {c} | {med([x['ok_rps'] for x in b]):.0f} | "
                    f"{med([x['ok_rps'] for x in a]):.0f} | {med(ratios):.2f}x"
                    f"{' of peak' if c > BOUND else ''} | {med([x['p99_ms'] for x in b]):.2f} "
                    f"| {med([x['p99_ms'] for x in a]):.2f} | "
                    f"{med([x['shed'] for x in b]):.0%} |")
    if len(worker_counts) > 1:
        lines += ["", "Scaling (ok/s with the most workers / with one, at 32 connections, "
                  "JSON): " + ", ".join(
                      f"{kind} {_scale(samples, worker_counts, kind):.2f}x"
                      for kind in ("baton", "bare")) + "."]
    return lines


def _scale(samples: Any, worker_counts: list[int], kind: str) -> float:
    one = statistics.median(x["ok_rps"] for x in samples[(worker_counts[0], "json", 32)][kind])
    most = statistics.median(x["ok_rps"]
                             for x in samples[(worker_counts[-1], "json", 32)][kind])
    return most / one


if __name__ == "__main__":
    main()
