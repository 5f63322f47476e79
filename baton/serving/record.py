"""``baton serve --record DIR``: a sample of the requests served, with the outputs served, as
Parquet records (:mod:`baton.records`).

The request path only offers a request's arrays to a :class:`Recorder`: sampled by the rate
(one ``random()``), put on a bounded queue without waiting; when the queue is full (by
requests, or by the bytes they hold) the request's rows are dropped and counted. A writer
thread drains the queue and writes one file per ``every`` seconds, or per
:data:`FLUSH_ROWS` rows, whichever comes first; after each it deletes the oldest records
files while those under the directory add up to more than ``max_bytes``. A write that fails
is logged (once per kind of failure), counted, and never reaches a request.

Each worker process of ``baton serve --workers N`` runs its own Recorder (created in the
worker, after the fork); the file names hold the process id, so they never clash.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import random
import re
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baton import records
from baton.errors import UsageError, require
from baton.schema.spec import TensorSpec

log = logging.getLogger("baton.serve")

#: the least --record-max-bytes
MB = 1_000_000
#: a file is written once this many rows are waiting, before ``every`` seconds have passed
FLUSH_ROWS = 10_000
#: the most bytes of arrays the queue holds by default (beyond it, requests are dropped)
MAX_QUEUE_BYTES = 256 << 20

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")
_STOP = object()
_TICK = object()


def parse_size(text: str, option: str = "--record-max-bytes") -> int:
    """A size in bytes from ``1048576``, ``500MB``, ``1GB``, ``2GiB``, ``1.5GB`` (decimal
    units kB/MB/GB/TB, binary KiB/MiB/GiB/TiB, case-insensitive); UsageError otherwise."""
    found = _SIZE.fullmatch(str(text))
    unit = found[2].lower() if found else ""
    if found is None or unit not in _UNITS:
        raise UsageError(
            f"{option} {text!r} is not a size",
            expected="a number of bytes, or a number with a unit: kB, MB, GB, TB (powers "
            "of 1000) or KiB, MiB, GiB, TiB (powers of 1024)",
            found=repr(text),
            hint=f"pass e.g. {option} 1GB or {option} 500MB")
    return int(float(found[1]) * _UNITS[unit])


def _size(n: float) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


class Recorder:
    """Records a sample of the requests (their feeds and the outputs served) as Parquet files
    under ``directory``. :meth:`offer` is for the request path; :meth:`start` starts the
    writer thread, :meth:`close` writes what is queued and stops it. The counters are plain
    ints, read by /metrics."""

    def __init__(self, directory: str | os.PathLike[str], inputs: Sequence[TensorSpec],
                 outputs: Sequence[TensorSpec], *, model: str, digest: str | None,
                 rate: float = 1.0, max_bytes: int = 1 << 30, every: float = 60.0,
                 max_queue: int = 1024, seed: int | None = None,
                 max_queue_bytes: int = MAX_QUEUE_BYTES) -> None:
        _check(rate, max_bytes, every, max_queue, max_queue_bytes)
        require("pyarrow", "serve", "baton serve --record")
        self.directory = _writable_directory(directory)
        self.layout = records.layout(inputs, outputs, model=model, digest=digest)
        self.rate = float(rate)
        self.max_bytes = int(max_bytes)
        self.every = float(every)
        self.max_queue = int(max_queue)
        self.max_queue_bytes = int(max_queue_bytes)
        #: rows written to files, and files written
        self.written_rows = 0
        self.written_files = 0
        #: rows sampled but not written: the queue was full, or their write failed
        self.dropped_rows = 0
        #: writes that failed (their rows are counted in dropped_rows)
        self.failed_writes = 0
        #: old records files deleted to keep the directory under max_bytes
        self.rotated_files = 0
        self._queue: queue.Queue[Any] = queue.Queue(self.max_queue)
        self._queued_bytes = 0
        self._random = random.Random(seed).random
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failures: set[tuple[str, Any]] = set()
        self._batched = next((c.source for c in self.layout.columns if c.batched), None)

    # -- the request path -----------------------------------------------------------------------

    def offer(self, feeds: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        """Record this request (its feeds and the outputs served), if sampled and if there is
        room; never blocks, never raises. The arrays are kept as they are: the caller must
        not change them afterwards."""
        try:
            if self._closed or (self.rate < 1.0 and self._random() >= self.rate):
                return
            size = 0
            for arr in feeds.values():
                size += arr.nbytes
            for arr in outputs.values():
                size += arr.nbytes
            with self._lock:
                if self._queued_bytes + size > self.max_queue_bytes and self._queued_bytes:
                    self.dropped_rows += self._rows(feeds)
                    return
                self._queued_bytes += size
            try:
                self._queue.put_nowait((time.time(), feeds, outputs, size))
            except queue.Full:
                with self._lock:
                    self._queued_bytes -= size
                    self.dropped_rows += self._rows(feeds)
        except Exception:  # noqa: BLE001 - recording must never fail a request
            pass

    def _rows(self, feeds: Mapping[str, Any]) -> int:
        arr = feeds.get(self._batched) if self._batched is not None else None
        return int(arr.shape[0]) if arr is not None and np.ndim(arr) else 1

    @property
    def queued(self) -> int:
        """Requests waiting to be written."""
        return self._queue.qsize()

    # -- the writer -------------------------------------------------------------------------

    def start(self) -> Recorder:
        """Start the writer thread (once)."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="baton-record",
                                            daemon=True)
            self._thread.start()
            log.info("recording %s of the requests to %s (a file every %g s or %d rows; at "
                     "most %s of records, the oldest deleted beyond)",
                     "all" if self.rate >= 1 else f"{self.rate:.3g}", self.directory,
                     self.every, FLUSH_ROWS, _size(self.max_bytes))
        return self

    def close(self, timeout: float = 10) -> None:
        """Write what is queued (the last file) and stop the writer thread, waiting at most
        ``timeout`` seconds for it."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:  # never started: write what was queued here
            self._drain()
        else:
            deadline = time.monotonic() + timeout
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                log.error("recording: the writer did not take the queued records within "
                          "%g s; %d requests' records are lost", timeout, self.queued)
            thread.join(max(0.0, deadline - time.monotonic()))
        log.info("recording: wrote %d rows in %d files to %s%s", self.written_rows,
                 self.written_files, self.directory,
                 f"; dropped {self.dropped_rows} rows" if self.dropped_rows else "")

    def _drain(self) -> None:
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                items.append(self._take(item))
        for start in range(0, len(items), 1000):
            self._flush(items[start:start + 1000])

    def _take(self, item: tuple[Any, ...]) -> tuple[Any, Any, Any]:
        when, feeds, outputs, size = item
        with self._lock:
            self._queued_bytes -= size
        return when, feeds, outputs

    def _run(self) -> None:
        try:
            self._write_loop()
        except BaseException:  # noqa: BLE001 - say so: the requests are recorded no more
            log.exception("recording: the records writer stopped; requests are no longer "
                          "recorded")
            self._closed = True

    def _write_loop(self) -> None:
        pending: list[tuple[Any, Any, Any]] = []
        rows = 0
        deadline = 0.0
        while True:
            try:
                if not pending:
                    item = self._queue.get()
                else:
                    wait = deadline - time.monotonic()
                    item = self._queue.get(timeout=wait) if wait > 0 else _TICK
            except queue.Empty:
                item = _TICK
            if item is _STOP or item is _TICK:
                self._flush(pending)
                pending, rows = [], 0
                if item is _STOP:
                    return
                continue
            entry = self._take(item)
            if not pending:
                deadline = time.monotonic() + self.every
            pending.append(entry)
            rows += self._rows(entry[1])
            if rows >= FLUSH_ROWS:
                self._flush(pending)
                pending, rows = [], 0

    def _flush(self, items: Sequence[tuple[Any, Any, Any]]) -> None:
        if not items:
            return
        table, items = self._table(items)
        if table is None:
            return
        rows = sum(self._rows(feeds) for _, feeds, _ in items)
        try:
            path = records.write_records(table, self.directory)
        except Exception as exc:  # noqa: BLE001 - a failed write is counted, never raised
            self._failed(exc, rows)
            return
        self.written_rows += rows
        self.written_files += 1
        try:
            self._rotate(path)
        except OSError as exc:
            self._once(("rotate", type(exc).__name__, exc.errno),
                       "recording: cannot delete old records files in %s: %s", self.directory,
                       exc)

    def _table(self, items: Sequence[tuple[Any, Any, Any]]
               ) -> tuple[Any, Sequence[tuple[Any, Any, Any]]]:
        """The table of ``items``; when some do not fit the layout, of the others (those
        dropped, counted and logged once)."""
        try:
            return records.records_table(self.layout, items), items
        except Exception:  # noqa: BLE001 - find the requests that do not fit
            pass
        good = []
        for item in items:
            try:
                records.records_table(self.layout, [item])
            except Exception as exc:  # noqa: BLE001 - dropped, never raised
                with self._lock:
                    self.dropped_rows += self._rows(item[1])
                self._once(("table", type(exc).__name__), "recording: a request's arrays do "
                           "not fit the records (dropped; this error is logged once): %s: %s",
                           type(exc).__name__, exc)
            else:
                good.append(item)
        if not good:
            return None, good
        try:
            return records.records_table(self.layout, good), good
        except Exception as exc:  # noqa: BLE001 - counted, never raised
            self._failed(exc, sum(self._rows(feeds) for _, feeds, _ in good))
            return None, good

    def _failed(self, exc: Exception, rows: int) -> None:
        with self._lock:
            self.failed_writes += 1
            self.dropped_rows += rows
        if isinstance(exc, OSError):
            self._once(("write", type(exc).__name__, exc.errno),
                       "recording: cannot write %d rows of records to %s: %s (their rows are "
                       "counted as dropped; this error is logged once)", rows, self.directory,
                       exc)
        else:
            self._once(("write", type(exc).__name__, None),
                       "recording: cannot make records of %d rows: %s: %s (their rows are "
                       "counted as dropped; this error is logged once)", rows,
                       type(exc).__name__, exc, exc_info=exc)

    def _once(self, kind: tuple[Any, ...], message: str, *args: Any, **kwargs: Any) -> None:
        if kind not in self._failures:
            self._failures.add(kind)
            log.error(message, *args, **kwargs)

    def _rotate(self, newest: Path) -> None:
        """Delete the oldest records files (by name) while those under the directory add up
        to more than max_bytes; never the newest, never any other file."""
        files = []
        total = 0
        for f in self.directory.rglob(records.GLOB):
            if not records.NAME.fullmatch(f.name):
                continue
            try:
                size = f.stat().st_size
            except FileNotFoundError:  # deleted meanwhile (another worker's rotation)
                continue
            files.append((f.name, f, size))
            total += size
        if total <= self.max_bytes:
            return
        for _, f, size in sorted(files):
            if total <= self.max_bytes:
                break
            if f == newest:
                continue
            try:
                f.unlink()
            except FileNotFoundError:
                total -= size
                continue
            total -= size
            self.rotated_files += 1
            log.info("recording: deleted %s (%s), the oldest records file, to keep %s under "
                     "%s", f, _size(size), self.directory, _size(self.max_bytes))
            parent = f.parent
            if parent != self.directory and records.DAY.fullmatch(parent.name):
                try:
                    parent.rmdir()  # only when empty
                except OSError:
                    pass


def _check(rate: float, max_bytes: int, every: float, max_queue: int,
           max_queue_bytes: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise UsageError(f"--record-rate {rate!r} is not a fraction of the requests",
                         expected="a number above 0 and at most 1 (1: every request)",
                         found=repr(rate), hint="pass e.g. --record-rate 0.1 to record one "
                         "request in ten (leave --record out to record none)")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < MB:
        raise UsageError("--record-max-bytes must be at least 1 MB",
                         expected=f"a size of at least 1MB ({MB} bytes)",
                         found=f"{max_bytes!r} bytes", hint="pass e.g. --record-max-bytes 1GB")
    if isinstance(every, bool) or not isinstance(every, (int, float)) or not (
            0 < every < math.inf):
        raise UsageError(f"--record-every {every!r} is not a number of seconds",
                         expected="seconds above 0 between two records files",
                         found=repr(every), hint="pass e.g. --record-every 60")
    for option, value in (("max_queue", max_queue), ("max_queue_bytes", max_queue_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"the recorder's {option} must be at least 1",
                             expected="an integer >= 1", found=repr(value),
                             hint="leave it at its default")


def _writable_directory(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--record {path} is not a directory",
                         expected="a directory to write the records in (created if missing)",
                         found="a file" if path.is_file() else "something else at that path",
                         hint="pass the path of a directory, or move that file away")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".baton-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write records to {path}",
                         expected="a directory this process can create and write in",
                         found=f"{type(exc).__name__}: {exc.strerror or exc}",
                         hint="choose another --record directory, or give this user the "
                         "right to write there") from exc
    return path
