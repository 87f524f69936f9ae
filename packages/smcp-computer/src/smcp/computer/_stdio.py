"""Writing to a stdio MCP server's stdin from the sending task.

mcp's stdio client hands every outgoing message through a zero-buffer memory stream to a writer
task, which writes it with anyio (one more loop pass after each write): two task switches and
three loop passes per message, the largest cost of a tool call inside the mcp stack. The session's
write stream here serializes the message the same way (``model_dump_json(by_alias=True,
exclude_unset=True)``, a newline, the server's encoding) and writes it to the child's pipe at
once; a full pipe is still waited on. mcp's own writer stays idle and ends, as before, when the
session closes the stream; mcp's reader, process and shutdown are untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["DirectStdin"]


def _stream_writer(process: Any) -> asyncio.StreamWriter | None:
    """The asyncio writer under anyio's process stdin (its ``_stream``), when there is one."""
    stdin = getattr(process, "stdin", None)
    writer = getattr(stdin, "_stream", None)
    return writer if isinstance(writer, asyncio.StreamWriter) else None


class DirectStdin:
    """The session's write stream for the stdio child ``process``; ``inner`` is mcp's stream."""

    def __init__(self, inner: Any, process: Any, encoding: str = "utf-8", errors: str = "strict") -> None:
        self._inner = inner
        self._stdin = process.stdin
        self._writer = _stream_writer(process)
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
