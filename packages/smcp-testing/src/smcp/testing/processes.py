"""Subprocesses for cross-process tests: own process group, log files, readiness lines, cleanup.

Every process started by a :class:`ProcessManager`

* runs in its own session / process group (``start_new_session=True``), so its children (stdio MCP
  servers, uvicorn workers) are stopped together with it;
* writes stdout and stderr to ``<log_dir>/<name>.log``. stdout is read line by line by a thread,
  which copies each line into the log and into memory (``lines()``, ``wait_for_line()``);
* is considered started only when a line of its stdout matches the ``ready`` regex (default
  ``LISTENING (\\d+)``); the first group, if numeric, becomes ``proc.port``. If it exits or the
  timeout passes first, :class:`ProcessStartError` is raised with the log tail;
* is stopped by ``stop_all()``: SIGTERM to the group, SIGKILL after ``grace`` seconds.

All waits are bounded. Blocking waits have ``a``-prefixed async twins that poll with
``anyio.sleep`` so an event loop running in-process servers keeps serving meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio

DEFAULT_READY = r"LISTENING (\d+)"
DEFAULT_START_TIMEOUT_S = 60.0
DEFAULT_GRACE_S = 5.0
POLL_S = 0.02
LOG_TAIL_CHARS = 6000


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (a Redis, say)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ProcessStartError(RuntimeError):
    """A process exited, or did not print its readiness line in time."""


class ProcessTimeout(TimeoutError):
    """A bounded wait on a process expired."""


def sanitize(text: str, limit: int = 150) -> str:
    """A file-system-safe name for ``text`` (a pytest node id, a process name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    return (safe or "unnamed")[:limit]


def tail(path: Path, max_chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``max_chars`` characters of a log file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_chars))
            data = fh.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return text if size <= max_chars else "…" + text


class ManagedProcess:
    """One running subprocess. Created by :meth:`ProcessManager.start`."""

    def __init__(
        self, name: str, argv: Sequence[str], popen: subprocess.Popen[bytes], log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.popen = popen
        self.log_path = log_path
        self.port: int | None = None
        self.ready_match: re.Match[str] | None = None
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._pump, name=f"stdout-{name}", daemon=True)
        self._reader.start()

    # -- output -------------------------------------------------------------------------------
    def _pump(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open("ab", buffering=0) as log:
            for raw in iter(self.popen.stdout.readline, b""):
                log.write(raw)
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> list[str]:
        """A copy of every stdout line received so far."""
        with self._cond:
            return list(self._lines)

    def line_count(self) -> int:
        with self._cond:
            return len(self._lines)

    def _scan(self, pattern: re.Pattern[str], start: int) -> tuple[int, re.Match[str]] | None:
        for index in range(start, len(self._lines)):
            match = pattern.search(self._lines[index])
            if match:
                return index, match
        return None

    def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float, start: int = 0
    ) -> tuple[int, re.Match[str]]:
        """Block until a stdout line at index >= ``start`` matches; return (index, match)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._scan(regex, start)
                if found is not None:
                    return found
                if self._eof:
                    raise ProcessStartError(
                        self._describe(f"stdout closed before a line matched {regex.pattern!r}")
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProcessTimeout(
                        self._describe(f"no stdout line matched {regex.pattern!r} in {timeout:.1f} s")
                    )
                self._cond.wait(min(left, 0.5))

    async def await_line(
        self, pattern: str | re.Pattern[str], timeout: float, start: int = 0
    ) -> tuple[int, re.Match[str]]:
        """Async twin of :meth:`wait_for_line` (polls; never blocks the event loop)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                found = self._scan(regex, start)
                eof = self._eof
            if found is not None:
                return found
            if eof:
                raise ProcessStartError(
                    self._describe(f"stdout closed before a line matched {regex.pattern!r}")
                )
            if time.monotonic() > deadline:
                raise ProcessTimeout(
                    self._describe(f"no stdout line matched {regex.pattern!r} in {timeout:.1f} s")
                )
            await anyio.sleep(POLL_S)

    def log_text(self) -> str:
        """The whole log file (stdout and stderr)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    async def await_log(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str]:
        """Wait until the log file (stdout *or* stderr) matches ``pattern``."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if time.monotonic() > deadline:
                raise ProcessTimeout(
                    self._describe(f"log did not match {regex.pattern!r} in {timeout:.1f} s")
                )
            await anyio.sleep(0.05)

    # -- stdin --------------------------------------------------------------------------------
    def write_line(self, text: str) -> None:
        """Write one line to the process's stdin (it must have been started with ``stdin=True``)."""
        if self.popen.stdin is None:
            raise RuntimeError(f"process {self.name!r} was started without stdin")
        self.popen.stdin.write((text.rstrip("\n") + "\n").encode("utf-8"))
        self.popen.stdin.flush()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise ProcessTimeout(self._describe(f"still running after {timeout:.1f} s")) from exc

    async def await_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.popen.poll()) is None:
            if time.monotonic() > deadline:
                raise ProcessTimeout(self._describe(f"still running after {timeout:.1f} s"))
            await anyio.sleep(POLL_S)
        return code

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = DEFAULT_GRACE_S) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds. Returns the exit code."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(5.0)
        # children that outlived the leader (same group) get the same treatment
        self.signal_group(signal.SIGKILL)
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        self._reader.join(timeout=2.0)
        return self.popen.poll()

    def _describe(self, problem: str) -> str:
        state = "running" if self.popen.poll() is None else f"exited with {self.popen.poll()}"
        header = f"{self.name} (pid {self.popen.pid}, {state}): {problem}"
        return f"{header}\n--- {self.log_path} ---\n{tail(self.log_path)}"

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.popen.pid} port={self.port}>"


class ProcessManager:
    """Starts named subprocesses with logs under ``log_dir`` and stops them all on :meth:`stop_all`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[ManagedProcess] = []

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{sanitize(name)}.log"

    def spawn(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: bool = False,
    ) -> ManagedProcess:
        """Start a process without waiting for anything."""
        if any(p.name == name for p in self.processes):
            raise ValueError(f"a process named {name!r} was already started in this test")
        args = [os.fspath(a) for a in argv]
        log_path = self.log_path(name)
        header = f"$ {' '.join(args)}\n"
        log_path.write_text(header, encoding="utf-8")
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
        try:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_fd,
                env=dict(env) if env is not None else None,
                cwd=os.fspath(cwd) if cwd is not None else None,
                start_new_session=True,
            )
        finally:
            os.close(log_fd)
        proc = ManagedProcess(name, args, popen, log_path)
        self.processes.append(proc)
        return proc

    @staticmethod
    def _apply_ready(proc: ManagedProcess, match: re.Match[str]) -> None:
        proc.ready_match = match
        if match.groups() and match.group(1) and match.group(1).isdigit():
            proc.port = int(match.group(1))

    def start(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        ready: str | None = DEFAULT_READY,
        timeout: float = DEFAULT_START_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: bool = False,
    ) -> ManagedProcess:
        """Start a process and block until its stdout matches ``ready`` (``None``: do not wait)."""
        proc = self.spawn(name, argv, env=env, cwd=cwd, stdin=stdin)
        if ready is not None:
            _, match = proc.wait_for_line(ready, timeout)
            self._apply_ready(proc, match)
        return proc

    async def astart(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        ready: str | None = DEFAULT_READY,
        timeout: float = DEFAULT_START_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: bool = False,
    ) -> ManagedProcess:
        """Async twin of :meth:`start`: the readiness wait does not block the event loop."""
        proc = self.spawn(name, argv, env=env, cwd=cwd, stdin=stdin)
        if ready is not None:
            _, match = await proc.await_line(ready, timeout)
            self._apply_ready(proc, match)
        return proc

    def get(self, name: str) -> ManagedProcess:
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise KeyError(name)

    def logs(self) -> list[Path]:
        """Every ``*.log`` file in the log folder (process logs and any the test wrote itself)."""
        return sorted(self.log_dir.glob("*.log"))

    def share_logs_with(self, other: ProcessManager) -> None:
        """Link these logs into ``other``'s folder as ``shared-*.log``, so its failure report shows them."""
        for log in self.logs():
            link = other.log_dir / f"shared-{log.name}"
            if not link.exists():
                try:
                    link.symlink_to(log)
                except OSError:
                    continue

    def stop_all(self, grace: float = DEFAULT_GRACE_S) -> None:
        """Stop every process, newest first (clients before the servers they talk to)."""
        for proc in reversed(self.processes):
            proc.stop(grace)
