"""The JSON-lines command loop of the Agent drivers, and small helpers of every peer script.

Standard library only: ``official_*.py`` import it inside the official a2c-smcp venv (Python
3.11, none of our packages), ``our_agent.py`` on the test interpreter. They run by file path, so
this folder is ``sys.path[0]`` and it is a sibling module.

Protocol (see ``official_agent.py`` for the commands): the driver prints ``READY``,
then reads one command per stdin line::

    {"id": 7, "cmd": "get_tools", "args": {"computer": "c1"}, "timeout": 20}

runs ``cmd_<cmd>(**args)`` concurrently with the others and answers on one stdout line with the
same ``id``: ``{"id", "result"}`` or ``{"id", "error": {"type", "code", "message"}}``. ``timeout``
bounds the whole command (default 30 s; for ``tool_call`` the call's own timeout + 10 s). The loop
ends on ``quit`` (a command sets :attr:`CommandDriver.done`) or when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import dataclasses
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT_S = 30.0
READ_LIMIT = 256 * 1024 * 1024  # one command line may carry a large put_blob payload

current_command: contextvars.ContextVar[Any] = contextvars.ContextVar("current_command", default=None)
"""The ``id`` of the command the current task runs (set by :meth:`CommandDriver.handle`)."""


def emit_line(text: str) -> None:
    """Write one protocol line to stdout and flush it."""
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def peer_arguments(description: str | None) -> argparse.ArgumentParser:
    """The arguments every peer client takes: ``--url --token --office --name [--socketio-path]``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--office", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--socketio-path", default="socket.io", help="Engine.IO path (a mounted app's)")
    return parser


def plain_json(value: Any, dump_model: Callable[[Any], Any]) -> Any:
    """Plain JSON for SDK return values; ``dump_model`` turns a pydantic model into JSON."""
    if hasattr(value, "model_dump"):
        return dump_model(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_json(getattr(value, f.name), dump_model) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain_json(v, dump_model) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v, dump_model) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


class CommandDriver:
    """Base of a driver: subclasses add ``async def cmd_<name>(...)`` methods and may override
    :meth:`error_code` and :meth:`finish`. Shared state: ``notifications`` (drained by the
    ``notifications`` command) and ``req_ids`` (command id -> the tool call's ``req_id``)."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.req_ids: dict[Any, str] = {}
        self.done = asyncio.Event()

    def error_code(self, exc: BaseException) -> int | None:
        """The protocol error code an exception carries, else None."""
        return None

    async def finish(self) -> None:
        """Called once when the loop has ended (after ``quit`` or when stdin closed)."""

    async def cmd_req_id(self, of: Any) -> Any:
        return {"req_id": self.req_ids.get(of)}

    async def cmd_notifications(self) -> Any:
        taken = list(self.notifications)
        del self.notifications[: len(taken)]
        return taken

    async def handle(self, line: str) -> None:
        command_id: Any = None
        try:
            request = json.loads(line)
            command_id = request.get("id")
            name = request["cmd"]
            kwargs = request.get("args") or {}
            method = getattr(self, f"cmd_{name}", None)
            if method is None:
                raise ValueError(f"unknown command {name!r}")
            timeout = request.get("timeout")
            if timeout is None:
                timeout = float(kwargs.get("timeout", 20)) + 10 if name == "tool_call" else DEFAULT_TIMEOUT_S
            current_command.set(command_id)
            result = await asyncio.wait_for(method(**kwargs), float(timeout))
            answer: dict[str, Any] = {"id": command_id, "result": result}
        except Exception as exc:
            sys.stderr.write(traceback.format_exc())
            kind = "TimeoutError" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
            answer = {
                "id": command_id,
                "error": {"type": kind, "code": self.error_code(exc), "message": str(exc)},
            }
        emit_line(json.dumps(answer, ensure_ascii=False, default=repr))

    async def serve(self) -> None:
        """Print ``READY``, run the commands until ``quit`` or the end of stdin, then :meth:`finish`."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task[None]] = set()
        emit_line("READY")
        while not self.done.is_set():
            read = asyncio.ensure_future(reader.readline())
            finished = asyncio.ensure_future(self.done.wait())
            await asyncio.wait({read, finished}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            if not read.done():
                read.cancel()
                break
            raw = read.result()
            if not raw:  # stdin closed: behave like quit
                break
            line = raw.decode("utf-8").strip()
            if line:
                task = asyncio.create_task(self.handle(line))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        try:
            await self.finish()
        except Exception:
            sys.stderr.write(traceback.format_exc())
