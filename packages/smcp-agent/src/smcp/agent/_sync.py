"""The synchronous Agent: the async one driven from a private event-loop thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, Unpack

from smcp.agent._blob import CHUNK_BYTES
from smcp.agent._cache import ComputerCache
from smcp.agent._client import AsyncAgent
from smcp.agent._handlers import AgentHandler, Callback
from smcp.agent._options import AgentOptions, AgentOverrides
from smcp.agent._skill import SkillFile
from smcp.core.handshake import Credential

if TYPE_CHECKING:
    from mcp_types import CallToolResult

    from smcp.agent._blob import BlobData, Progress, PutBlobResult
    from smcp.core.models import (
        A2CResource,
        A2CSkillRef,
        GetBlobRet,
        GetComputerConfigRet,
        GetResourcesRet,
        SessionInfo,
        SMCPTool,
    )

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="smcp-agent-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def run(self, coro: Awaitable[T], timeout: float | None) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "the sync Agent cannot be used from its own handlers; use the AsyncAgent there"
            )

        async def wrap() -> T:
            return await coro

        future = asyncio.run_coroutine_threadsafe(wrap(), self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if threading.current_thread() is not self._thread and self.loop.is_running():
            with contextlib.suppress(TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._drain(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _drain(self) -> None:
        # cancel what is left (cache refreshes, socket tasks) so nothing is destroyed while pending
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=3)
        await self.loop.shutdown_asyncgens()


class Agent:
    """The synchronous Agent: same methods and semantics as :class:`AsyncAgent`, blocking.

    It runs an :class:`AsyncAgent` on a private event-loop thread, so it works in plain
    threads and programs without asyncio. Handlers run on that thread: keep them short and
    do not call this Agent from inside them. The arguments are those of :class:`AsyncAgent`
    (``options`` and keyword overrides of :class:`AgentOptions` included), plus
    ``operation_timeout``, which bounds every blocking call (each request also has its own,
    shorter, deadline).
    """

    def __init__(
        self,
        url: str,
        *,
        token: Credential = None,
        office: str | None = None,
        handler: AgentHandler | object | None = None,
        options: AgentOptions | None = None,
        operation_timeout: float = 600.0,
        **overrides: Unpack[AgentOverrides],
    ) -> None:
        # build the AsyncAgent first: invalid options raise before a thread is started
        agent = AsyncAgent(url, token=token, office=office, handler=handler, options=options, **overrides)
        self.operation_timeout = operation_timeout
        self._agent = agent
        self._loop = _LoopThread()

    def _run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        return self._loop.run(coro, self.operation_timeout if timeout is None else timeout)

    @property
    def async_agent(self) -> AsyncAgent:
        """The underlying :class:`AsyncAgent` (lives on the private loop thread)."""
        return self._agent

    @property
    def options(self) -> AgentOptions:
        return self._agent.options

    @property
    def name(self) -> str:
        return self._agent.name

    @property
    def office(self) -> str | None:
        return self._agent.office

    @property
    def connected(self) -> bool:
        return self._agent.connected

    @property
    def cache(self) -> ComputerCache:
        return self._agent.cache

    def __enter__(self) -> Self:
        try:
            self._run(self._agent.__aenter__())
        except BaseException:
            self._loop.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def add_handler(self, handler: AgentHandler | object) -> None:
        self._agent.add_handler(handler)

    def on(self, event: str) -> Callable[[Callback], Callback]:
        return self._agent.on(event)

    def connect(self) -> None:
        self._run(self._agent.connect())

    def disconnect(self) -> None:
        try:
            self._run(self._agent.disconnect())
        finally:
            self._loop.stop()

    def close(self) -> None:
        """Leave the office, disconnect and stop the private loop thread."""
        try:
            self._run(self._agent.close())
        finally:
            self._loop.stop()

    def join(self, office: str) -> None:
        self._run(self._agent.join(office))

    def leave(self) -> None:
        self._run(self._agent.leave())

    def sessions(self) -> list[SessionInfo]:
        return self._run(self._agent.sessions())

    def computers(self) -> list[SessionInfo]:
        return self._run(self._agent.computers())

    def get_tools(self, computer: str) -> list[SMCPTool]:
        return self._run(self._agent.get_tools(computer))

    def get_config(self, computer: str) -> GetComputerConfigRet:
        return self._run(self._agent.get_config(computer))

    def get_desktop(self, computer: str, size: int | None = None, window: str | None = None) -> list[str]:
        return self._run(self._agent.get_desktop(computer, size, window))

    def get_resources(self, computer: str, mcp_server: str, cursor: str | None = None) -> GetResourcesRet:
        return self._run(self._agent.get_resources(computer, mcp_server, cursor))

    def iter_resources(
        self, computer: str, mcp_server: str, *, max_pages: int = 1000
    ) -> Iterator[A2CResource]:
        """Every resource of ``mcp_server``, fetching the next page when the previous one is used up."""
        iterator = self._agent.iter_resources(computer, mcp_server, max_pages=max_pages)
        while True:
            try:
                yield self._run(iterator.__anext__())
            except StopAsyncIteration:
                return

    def get_skills(self, computer: str) -> list[A2CSkillRef]:
        return self._run(self._agent.get_skills(computer))

    def get_skill(self, computer: str, name: str, rel_path: str | None = None) -> SkillFile:
        return self._run(self._agent.get_skill(computer, name, rel_path))

    def get_blob(
        self, computer: str, blob_handle: str, chunk_offset: int = 0, max_chunk_bytes: int | None = None
    ) -> GetBlobRet:
        return self._run(self._agent.get_blob(computer, blob_handle, chunk_offset, max_chunk_bytes))

    def download_blob(self, computer: str, blob_handle: str, *, progress: Progress | None = None) -> BlobData:
        return self._run(self._agent.download_blob(computer, blob_handle, progress=progress))

    def put_blob(
        self,
        computer: str,
        data: bytes,
        *,
        name_hint: str | None = None,
        chunk_size: int = CHUNK_BYTES,
        progress: Progress | None = None,
    ) -> PutBlobResult:
        return self._run(
            self._agent.put_blob(
                computer, data, name_hint=name_hint, chunk_size=chunk_size, progress=progress
            )
        )

    def call_tool(
        self,
        computer: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        timeout: float = 60,
        *,
        req_id: str | None = None,
        keep_blob_handles: bool = False,
    ) -> CallToolResult:
        return self._run(
            self._agent.call_tool(
                computer, tool, params, timeout, req_id=req_id, keep_blob_handles=keep_blob_handles
            )
        )

    def cancel(self, req_id: str) -> None:
        self._run(self._agent.cancel(req_id))

    def wait_cache_idle(self, timeout: float = 10.0) -> None:
        """Block until no cache refresh is pending (raises ``TimeoutError``)."""
        self._run(self._agent.cache.wait_idle(timeout), timeout + 1)


__all__ = ["Agent"]
