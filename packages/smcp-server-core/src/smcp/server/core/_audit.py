"""The audit trail: one record per answered ``client:*`` request, join, leave and refused connect.

A record has the time, principal, office, names, event, tool, ``req_id``, outcome, duration and
sizes, and the sha256 of a tool call's params: never the params, a result, a token or an input
value. Records are built on the event loop (cheap) and written in rounds by one thread from a
bounded queue: a full queue drops the record and counts it in ``metrics.audit_dropped_total``.

>>> trail = AuditTrail(FileSink("audit.jsonl"), LoggerSink())
>>> trail.attach(server)   # before the server takes traffic; trail.reopen() on SIGHUP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from smcp.core.events import ClientEvent

if TYPE_CHECKING:
    from smcp.server.core._calls import FinishedCall
    from smcp.server.core._metrics import ServerMetrics
    from smcp.server.core._server import SMCPServer

__all__ = ["AuditSink", "AuditTrail", "FileSink", "LoggerSink"]

log = logging.getLogger("smcp.server")

#: A sink gets each record (a JSON-ready dict) and its JSON line, on the audit thread.
AuditSink = Callable[[dict[str, Any], str], None]

_TOOL_CALL = ClientEvent.TOOL_CALL.value


def _encoder() -> tuple[Callable[[Any], bytes], Callable[[Any], bytes]]:
    """``(dumps, dumps_sorted)`` returning UTF-8 bytes; orjson when installed."""
    try:
        import orjson
    except ImportError:
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        dumps_sorted = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode
        return (lambda o: dumps(o).encode()), (lambda o: dumps_sorted(o).encode())
    sort = orjson.OPT_SORT_KEYS
    return orjson.dumps, lambda o: orjson.dumps(o, option=sort)


_dumps, _dumps_sorted = _encoder()


def _size(value: Any) -> int | None:
    try:
        return len(_dumps(value))
    except Exception:
        return None


def params_digest(params: Any) -> str | None:
    """sha256 (hex) of ``params`` as canonical JSON (sorted keys, no spaces)."""
    try:
        return hashlib.sha256(_dumps_sorted(params)).hexdigest()
    except Exception:
        return None


def _timestamp(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}Z"


class FileSink:
    """JSON lines appended to ``path``. After rotation the next record starts a new file: on
    :meth:`reopen` (``smcp-server`` calls it on SIGHUP), and whenever ``path`` no longer names the
    open file (moved or deleted), so no record goes to the rotated file while a SIGHUP is on its way.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: TextIO | None = None
        self._opened: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._reopen = False

    def _moved(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._opened

    def __call__(self, record: dict[str, Any], line: str) -> None:
        if self._reopen or (self._file is not None and self._moved()):
            self._reopen = False
            self.close()
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
            st = os.fstat(self._file.fileno())
            self._opened = (st.st_dev, st.st_ino)
        self._file.write(line + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def reopen(self) -> None:
        """Close and open the file again before the next record (safe from a signal handler)."""
        self._reopen = True

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()


class LoggerSink:
    """Each record as one INFO message (the JSON line) of the ``smcp.audit`` logger."""

    def __init__(self, name: str = "smcp.audit") -> None:
        self._log = logging.getLogger(name)

    def __call__(self, record: dict[str, Any], line: str) -> None:
        self._log.info("%s", line)


class AuditTrail:
    """Builds audit records and writes them to ``sinks`` on its own thread.

    A sink is a :data:`AuditSink` callable (:class:`FileSink`, :class:`LoggerSink` or your own);
    one that raises is logged and the others still get the record.
    """

    def __init__(self, *sinks: AuditSink, queue_size: int = 10_000, interval: float = 0.05) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.sinks = list(sinks)
        self.queue_size = queue_size
        #: Seconds between the writer's rounds; a round starts early once a quarter of the queue is used.
        self.interval = interval
        # A deque (append and popleft are atomic) read in rounds: no thread wake-up per record.
        self._buffer: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._queued = 0
        self._handled = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.metrics: ServerMetrics | None = None
        # (office, req_id) of tool calls their agent cancelled, oldest first; bounded.
        self._cancelled: dict[tuple[str | None, str], None] = {}

    def attach(self, server: SMCPServer) -> None:
        """Record ``server``'s calls (a call listener), joins, leaves and refused connects."""
        self.metrics = server.metrics
        server.audit = self
        server.add_call_listener(self.on_call)

    # -- building records (event loop) ------------------------------------------------------------

    def on_call(self, call: FinishedCall) -> None:
        """The call listener: one ``call`` record."""
        principal = call.principal
        data = call.data
        outcome = call.outcome
        params = None
        if call.event == _TOOL_CALL and isinstance(data, dict):
            params = data.get("params")
            key = (call.office, call.req_id or "")
            if self._cancelled and key in self._cancelled:
                del self._cancelled[key]
                outcome = "cancelled"
        self.emit(
            {
                "ts": _timestamp(call.started),
                "kind": "call",
                "event": call.event,
                "principal": None if principal is None else principal.id,
                "office": call.office,
                "agent": call.agent,
                "computer": call.computer,
                "tool": call.tool,
                "req_id": call.req_id,
                "outcome": outcome,
                "code": call.code,
                "duration_ms": round(call.duration * 1000, 3),
                "request_bytes": _size(data),
                "result_bytes": _size(call.reply),
                "params_sha256": None if params is None else params_digest(params),
            }
        )

    def cancelled(self, office: str | None, req_id: str) -> None:
        """The agent cancelled its tool call ``req_id``: its record's outcome becomes ``cancelled``."""
        cancelled = self._cancelled
        cancelled[(office, req_id)] = None
        if len(cancelled) > 10_000:
            del cancelled[next(iter(cancelled))]

    def record(self, kind: str, **fields: Any) -> None:
        """A ``kind`` record (``connect``, ``connect_refused``, ``join``, ``join_refused``, ``leave``)."""
        self.emit({"ts": _timestamp(time.time()), "kind": kind, **fields})

    def emit(self, record: dict[str, Any]) -> None:
        """Queue ``record`` for the sinks; never blocks (a full queue drops and counts it)."""
        if self._thread is None:
            self._start()
        buffer = self._buffer
        if len(buffer) >= self.queue_size:
            if self.metrics is not None:
                self.metrics.audit_dropped_total += 1
            return
        buffer.append(record)
        self._queued += 1
        if len(buffer) * 4 >= self.queue_size and not self._wake.is_set():
            self._wake.set()

    # -- writing (audit thread) ---------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="smcp-audit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        buffer = self._buffer
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            stop = self._stop
            wrote = False
            while buffer:
                self._write(buffer.popleft())
                self._handled += 1
                wrote = True
            if wrote:
                self._flush()
            if stop:
                return

    def _write(self, record: dict[str, Any]) -> None:
        try:
            line = _dumps(record).decode()
        except Exception:
            log.exception("audit record could not be encoded; dropped")
            if self.metrics is not None:
                self.metrics.audit_dropped_total += 1
            return
        for sink in self.sinks:
            try:
                sink(record, line)
            except Exception:
                log.exception("audit sink %r raised", sink)
        if self.metrics is not None:
            self.metrics.audit_records_total += 1

    def _flush(self) -> None:
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if flush is not None:
                try:
                    flush()
                except Exception:
                    log.exception("audit sink %r failed to flush", sink)

    def reopen(self) -> None:
        """Ask every sink that can (a :class:`FileSink`) to reopen its file: log rotation."""
        for sink in self.sinks:
            reopen = getattr(sink, "reopen", None)
            if reopen is not None:
                reopen()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` s), then close the sinks."""
        thread = self._thread
        if thread is not None:
            self._stop = True
            self._wake.set()
            thread.join(timeout)
            if thread.is_alive():
                log.warning("audit writer still busy at close; %d records not written", len(self._buffer))
            self._thread = None
            self._stop = False
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every record queued so far was handled; false on timeout (tests, shutdown)."""
        target = self._queued
        deadline = time.monotonic() + timeout
        while self._handled < target:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.002)
        return True
