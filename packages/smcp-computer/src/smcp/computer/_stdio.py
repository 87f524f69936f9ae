"""The session's two streams to a stdio MCP server, served from the session's own tasks.

mcp's stdio client hands every message through a zero-buffer memory stream to a writer task
and takes every reply through a reader task and a second memory stream: a task switch and a
loop pass each way, the largest cost of a tool call inside the mcp stack.

- :class:`DirectStdin` serializes a request the same way (``model_dump_json(by_alias=True,
  exclude_unset=True)``, a newline, the server's encoding) and writes it to the child's pipe
  from the sending task; a full pipe is still waited on. mcp's writer stays idle and ends, as
  before, when the session closes the stream.
- :class:`DirectStdout` reads the child's stdout in the session's receive loop and parses each
  line as mcp does. While it reads, mcp's reader is parked on :class:`ParkedStdout` (put in place
  of the process's stdout when the host spawns it); when the session's stream closes or the pipe
  ends, the park lifts and mcp's reader drains what is left, as in its own shutdown.

mcp's process handling and shutdown are untouched. The direct paths need anyio's asyncio process
and stream wrappers (the process's ``_stdout``, each stream's ``_stream``); where they are not
found, the host keeps mcp's streams.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import functools
import logging
from typing import Any

__all__ = ["DirectStdin", "DirectStdout", "ParkedStdout"]

logger = logging.getLogger("smcp.computer")

_CHUNK = 65536


def _asyncio_stream(stream: Any, kind: type[Any]) -> Any:
    """The asyncio stream under an anyio process stream (its ``_stream``), or None."""
    inner = getattr(stream, "_stream", None)
    return inner if isinstance(inner, kind) else None


class DirectStdin:
    """The session's write stream for the stdio child ``process``; ``inner`` is mcp's stream."""

    def __init__(self, inner: Any, process: Any, encoding: str = "utf-8", errors: str = "strict") -> None:
        self._inner = inner
        self._stdin = process.stdin
        self._writer: asyncio.StreamWriter | None = _asyncio_stream(process.stdin, asyncio.StreamWriter)
        self._encoding = encoding
        self._errors = errors

    @classmethod
    def wrap(cls, inner: Any, process: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
        """``DirectStdin`` over ``inner``, or ``inner`` itself when the process has no stdin."""
        if getattr(process, "stdin", None) is None:
            return inner
        return cls(inner, process, encoding, errors)

    async def send(self, item: Any) -> None:
        import anyio

        text = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        data = (text + "\n").encode(self._encoding, self._errors)
        writer = self._writer
        try:
            if writer is None:
                await self._stdin.send(data)
                return
            if writer.is_closing():
                raise BrokenPipeError("the MCP server's stdin is closed")
            writer.write(data)
            await writer.drain()  # returns at once unless the pipe is full
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError, RuntimeError) as exc:
            raise anyio.BrokenResourceError(f"cannot write to the MCP server: {exc}") from exc

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> DirectStdin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@functools.cache
def _parked_class() -> type[Any]:
    from anyio.abc import ByteReceiveStream

    class _Parked(ByteReceiveStream):
        """The real stdout behind a gate: reads wait until ``free`` is set."""

        def __init__(self, real: Any, reader: asyncio.StreamReader) -> None:
            self.real = real
            self.reader = reader
            self.free = asyncio.Event()

        async def receive(self, max_bytes: int = _CHUNK) -> bytes:
            await self.free.wait()
            data: bytes = await self.real.receive(max_bytes)
            return data

        async def aclose(self) -> None:
            self.free.set()
            await self.real.aclose()

    return _Parked


class ParkedStdout:
    """Puts a parked stream in place of ``process``'s stdout, so that mcp's reader waits."""

    @staticmethod
    def install(process: Any) -> bool:
        """Park the stdout of an anyio asyncio process; False (nothing changed) otherwise."""
        real = getattr(process, "_stdout", None)
        reader = _asyncio_stream(real, asyncio.StreamReader)
        if reader is None or getattr(process, "stdout", None) is not real:
            return False
        process._stdout = _parked_class()(real, reader)
        return True

    @staticmethod
    def of(process: Any) -> Any:
        """The parked stream of ``process``, or None when :meth:`install` did not park it."""
        stream = getattr(process, "_stdout", None)
        return stream if isinstance(stream, _parked_class()) else None


class DirectStdout:
    """The session's read stream for the stdio child; ``inner`` is mcp's stream (closed with it)."""

    def __init__(self, inner: Any, parked: Any, encoding: str = "utf-8", errors: str = "strict") -> None:
        import mcp_types
        from mcp.shared.message import SessionMessage

        self._parse = mcp_types.jsonrpc_message_adapter.validate_json
        self._message = SessionMessage
        self._inner = inner
        self._parked = parked
        self._reader: asyncio.StreamReader = parked.reader
        self._decoder = codecs.getincrementaldecoder(encoding)(errors)
        self._buffer = ""
        self._lines: collections.deque[str] = collections.deque()
        self._ended = False

    @classmethod
    def wrap(cls, inner: Any, process: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
        """``DirectStdout`` over ``inner``, or ``inner`` itself when the stdout was not parked."""
        parked = ParkedStdout.of(process)
        return inner if parked is None else cls(inner, parked, encoding, errors)

    def __aiter__(self) -> DirectStdout:
        return self

    async def __anext__(self) -> Any:
        lines = self._lines
        while True:
            while not lines:
                if self._ended:
                    raise StopAsyncIteration
                try:
                    chunk = await self._reader.read(_CHUNK)
                except Exception:  # the pipe was closed under the read (anyio sets ClosedResourceError)
                    chunk = b""
                if not chunk:
                    self._end()
                    raise StopAsyncIteration
                parts = (self._buffer + self._decoder.decode(chunk)).split("\n")
                self._buffer = parts.pop()
                lines.extend(parts)
            line = lines.popleft()
            if line.strip():  # a blank line carries no message
                break
        try:
            return self._message(self._parse(line, by_name=False))
        except ValueError as exc:  # the session sees it as a stream exception, as with mcp's reader
            logger.warning("the MCP server wrote a line that is not JSON-RPC: %.200r", line)
            return exc

    async def receive(self) -> Any:
        import anyio

        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise anyio.EndOfStream from None

    def _end(self) -> None:
        self._ended = True
        self._parked.free.set()  # mcp's reader takes over: it drains the rest at shutdown

    async def aclose(self) -> None:
        self._end()
        await self._inner.aclose()

    async def __aenter__(self) -> DirectStdout:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
