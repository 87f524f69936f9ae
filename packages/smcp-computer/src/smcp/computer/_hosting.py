"""One hosted MCP server: its connection, lifecycle, supervision and tool cache.

Each :class:`MCPServerHost` owns one task that opens the transport, runs the MCP session and
closes it again, so anyio cancel scopes are entered and left in the same task. Other tasks only
send requests through the session. A session that breaks (EOF on the read stream, a failed
health ping, a closed connection on a request) is restarted with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

from smcp.computer._config import bundle_id_of
from smcp.computer._stdio import DirectStdin, DirectStdout, ParkedStdout

if TYPE_CHECKING:
    import mcp_types
    from mcp import ClientSession

    from smcp.core.models import MCPServerConfig

__all__ = [
    "HostChange",
    "HostEvent",
    "MCPServerHost",
    "ServerState",
    "ServerStatus",
    "Supervision",
    "UpstreamAuthError",
]

logger = logging.getLogger("smcp.computer")

Renderer = Callable[["MCPServerConfig"], Awaitable["MCPServerConfig"]]


class HostChange(StrEnum):
    """What one hosted server reports to its Computer."""

    TOOLS = "tools"  # detail "list_changed" for an MCP tools/list_changed, else None
    RESOURCES = "resources"
    RESOURCE_UPDATED = "resource_updated"  # detail: the resource URI


#: ``(host, change, detail)``, see :class:`HostChange`.
HostEvent = Callable[["MCPServerHost", HostChange, str | None], None]


class ServerState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ServerStatus:
    """A snapshot of one server's lifecycle."""

    name: str
    bundle_id: str
    state: ServerState
    last_error: str | None
    restarts: int
    tools: int


@dataclass(frozen=True)
class Supervision:
    """Restart policy for servers whose process exits or whose session breaks
    (docs/protocol.md, difference B15)."""

    enabled: bool = True
    max_attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0
    #: Interval of the health ping on a running session (0 disables it).
    ping_interval: float = 15.0
    ping_timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.initial_delay * (2 ** max(0, attempt - 1)))
        return float(base * (0.8 + 0.4 * random.random()))


class UpstreamAuthError(Exception):
    """The MCP server answered HTTP 401 (``status`` 401) or 403 over HTTP."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Broken(Exception):
    pass


class _Permanent(Exception):
    """A start failure that another attempt cannot cure (not retried)."""


#: The stdio child processes spawned in the current task (see :func:`_watch_spawns`).
_SPAWNED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("smcp_spawned", default=None)


def _watch_spawns() -> None:
    """Let a host see the stdio child it started, to tell "exited with status N" from a closed pipe.

    mcp's stdio client does not expose its process; its spawn function is wrapped once, and
    only records the process when a host asked for it. Such a process also gets its stdout
    parked (:class:`ParkedStdout`), for the host's session to read it directly. Without that
    function, nothing changes.
    """
    from mcp.client import stdio

    original = getattr(stdio, "_create_platform_compatible_process", None)
    if original is None or getattr(original, "_smcp_watched", False):
        return

    async def spawn(*args: Any, **kwargs: Any) -> Any:
        process = await original(*args, **kwargs)
        spawned = _SPAWNED.get()
        if spawned is not None:
            ParkedStdout.install(process)
            spawned.append(process)
        return process

    spawn._smcp_watched = True  # type: ignore[attr-defined]
    stdio._create_platform_compatible_process = spawn


def _permanent(exc: BaseException, command: str | None) -> _Permanent | None:
    """The permanent reason behind a start failure, or None when a retry may help."""
    from smcp.computer._errors import EnvFileError, InputError

    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _permanent(inner, command)
            if found is not None:
                return found
        return None
    if isinstance(exc, _Permanent):
        return exc
    if isinstance(exc, InputError | EnvFileError):
        return _Permanent(str(exc))
    if isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError) and command is not None:
        what = "not found (not on PATH?)" if isinstance(exc, FileNotFoundError) else f"cannot run: {exc}"
        return _Permanent(f"command {command!r} {what}")
    return None


async def _returncode(process: Any, wait: float = 1.0) -> int | None:
    """The child's exit status once it has exited on its own (waits up to ``wait`` s), else None."""
    deadline = time.monotonic() + wait
    # polled, like mcp's own stdio client: process.wait() would also wait for the pipes to close
    while getattr(process, "returncode", None) is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    code = getattr(process, "returncode", None)
    return code if isinstance(code, int) else None


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        return f"the MCP server process was killed by signal {-returncode} before it answered"
    return f"the MCP server process exited with status {returncode} before it answered"


class MCPServerHost:
    """Runs one MCP server declared by ``config`` (raw, placeholders unrendered)."""

    def __init__(
        self,
        config: MCPServerConfig,
        *,
        render: Renderer | None = None,
        on_event: HostEvent | None = None,
        supervision: Supervision | None = None,
        connect_timeout: float = 30.0,
        request_timeout: float = 60.0,
        errlog: TextIO | None = None,
    ) -> None:
        self.config = config
        self.bundle_id = bundle_id_of(config)
        self._render = render
        self._on_event = on_event
        self.supervision = supervision or Supervision()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._errlog = errlog
        self._state = ServerState.STOPPED
        self._last_error: str | None = None
        self._restarts = 0
        self._session: ClientSession | None = None
        self._capabilities: Any = None
        self._tools: list[mcp_types.Tool] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._settled = asyncio.Event()
        self._refresh_task: asyncio.Task[None] | None = None
        self._refresh_again = False
        self._auth_status: int | None = None
        self.activated_at = 0.0

    # -- status ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def tools(self) -> list[mcp_types.Tool] | None:
        """The cached ``tools/list`` of the running session (``None`` while not running)."""
        return self._tools

    @property
    def running(self) -> bool:
        return self._state is ServerState.RUNNING and self._session is not None

    @property
    def supports_resources(self) -> bool:
        caps = self._capabilities
        return self.running and caps is not None and getattr(caps, "resources", None) is not None

    def status(self) -> ServerStatus:
        return ServerStatus(
            self.name, self.bundle_id, self._state, self._last_error, self._restarts, len(self._tools or ())
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, wait: bool = True, timeout: float | None = None) -> ServerStatus:  # noqa: ASYNC109
        """Start the server (no-op when already started); with ``wait``, until running or failed."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._wake = asyncio.Event()
            self._settled = asyncio.Event()
            self._state = ServerState.STARTING
            self._last_error = None
            self._restarts = 0
            self._task = asyncio.create_task(self._own(), name=f"mcp-host-{self.bundle_id}")
        if wait:
            limit = timeout if timeout is not None else self.connect_timeout + 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), limit)
            if self._state is ServerState.STARTING:
                self._last_error = self._last_error or f"not running after {limit:.0f} s"
        return self.status()

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop the server and wait (bounded) for its process/connection to close."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                logger.warning(
                    "MCP server %s did not close within %.0f s; cancelling", self.bundle_id, timeout
                )
                task.cancel()
                await asyncio.wait({task}, timeout=5.0)
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        self._state = ServerState.STOPPED

    async def restart(self, timeout: float | None = None) -> ServerStatus:  # noqa: ASYNC109
        await self.stop()
        return await self.start(timeout=timeout)

    def _stop_requested(self) -> bool:
        return self._stopping

    # -- the owner task ----------------------------------------------------------------------

    async def _own(self) -> None:
        attempt = 0
        try:
            while not self._stopping:
                self._state = ServerState.STARTING
                ran = False
                try:
                    ran = await self._run_once()
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    permanent = None if ran else _permanent(exc, self._command())
                    self._last_error = str(permanent) if permanent is not None else _describe(exc)
                    logger.warning("MCP server %s: %s", self.bundle_id, self._last_error)
                    if permanent is not None and not self._stop_requested():
                        self._state = ServerState.FAILED
                        self._settled.set()
                        logger.error(
                            "MCP server %s failed: %s (not retried)", self.bundle_id, self._last_error
                        )
                        return
                finally:
                    self._drop_session()
                if self._stop_requested():
                    break
                attempt = 1 if ran else attempt + 1
                sup = self.supervision
                if not sup.enabled or attempt > sup.max_attempts:
                    self._state = ServerState.FAILED
                    self._settled.set()
                    logger.error(
                        "MCP server %s failed: %s (gave up after %d attempt(s))",
                        self.bundle_id, self._last_error, attempt,
                    )  # fmt: skip
                    return
                delay = sup.delay(attempt)
                logger.info(
                    "MCP server %s: restarting in %.1f s (attempt %d)", self.bundle_id, delay, attempt
                )
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if not self._stopping:
                    self._restarts += 1
        finally:
            self._drop_session()
            if self._stopping or self._state is not ServerState.FAILED:
                self._state = ServerState.STOPPED
            self._settled.set()

    def _command(self) -> str | None:
        return (
            getattr(self.config.server_parameters, "command", None) if self.config.type == "stdio" else None
        )

    def _drop_session(self) -> None:
        had_tools = bool(self._tools)
        self._session = None
        self._capabilities = None
        self._tools = None
        if had_tools:
            self._emit(HostChange.TOOLS, None)

    async def _run_once(self) -> bool:
        """Connect, serve until stopped or broken; True when the session reached RUNNING.

        A stdio child that exits before the session runs raises :class:`_Permanent` with its status.
        """
        config = await self._render(self.config) if self._render is not None else self.config
        spawned: list[Any] = []
        if config.type == "stdio":
            _watch_spawns()
        token = _SPAWNED.set(spawned)
        try:
            return await self._session_once(config, spawned)
        finally:
            _SPAWNED.reset(token)

    async def _session_once(self, config: MCPServerConfig, spawned: list[Any]) -> bool:
        from mcp import ClientSession

        from smcp.computer import _version

        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport(config))
            if config.type == "stdio" and spawned:
                params: Any = config.server_parameters
                coding = (params.encoding, params.encoding_error_handler)
                write = DirectStdin.wrap(write, spawned[0], *coding)
                read = DirectStdout.wrap(read, spawned[0], *coding)
                if isinstance(read, DirectStdout):
                    stack.push_async_callback(read.aclose)  # lifts the park however the session ends
            try:
                broken = asyncio.Event()
                import mcp_types

                session = ClientSession(
                    _EofWatch(read, broken, self._wake),
                    write,
                    read_timeout_seconds=self.request_timeout,
                    message_handler=self._on_message,
                    client_info=mcp_types.Implementation(name="smcp-computer", version=_version.__version__),
                )
                await stack.enter_async_context(session)
                init = await asyncio.wait_for(session.initialize(), self.connect_timeout)
                self._capabilities = init.capabilities
                self._session = session
                self._tools = await asyncio.wait_for(self._list_tools(session), self.request_timeout)
                self._state = ServerState.RUNNING
                self._last_error = None
                self.activated_at = time.monotonic()
                self._settled.set()
                self._emit(HostChange.TOOLS, None)
                if self.supports_resources:
                    self._emit(HostChange.RESOURCES, None)
                await self._serve(session, broken)
                if broken.is_set() and not self._stopping:
                    raise _Broken("the MCP server closed the connection")
                return True
            except Exception as exc:
                if self._state is ServerState.RUNNING or not spawned:
                    raise
                returncode = await _returncode(spawned[0])
                if returncode is None:
                    raise
                raise _Permanent(_exit_text(returncode)) from exc

    async def _serve(self, session: ClientSession, broken: asyncio.Event) -> None:
        sup = self.supervision
        while not self._stopping and not broken.is_set():
            self._wake.clear()
            interval = sup.ping_interval if sup.ping_interval > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            if self._stopping or broken.is_set():
                return
            if interval is not None and not self._wake.is_set():
                try:
                    await asyncio.wait_for(session.send_ping(), sup.ping_timeout)
                except Exception as exc:
                    raise _Broken(f"health ping failed: {_describe(exc)}") from exc

    def _transport(self, config: MCPServerConfig) -> contextlib.AbstractAsyncContextManager[Any]:
        params: Any = config.server_parameters
        if config.type == "stdio":
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            server = StdioServerParameters(
                command=params.command,
                args=list(params.args),
                env=dict(params.env) if params.env is not None else None,
                cwd=params.cwd,
                encoding=params.encoding,
                encoding_error_handler=params.encoding_error_handler,
            )
            return stdio_client(server, errlog=self._errlog or sys.stderr)
        if config.type == "sse":
            from mcp.client.sse import sse_client

            return sse_client(
                params.url,
                headers=dict(params.headers or {}),
                timeout=float(params.timeout),
                sse_read_timeout=float(params.sse_read_timeout),
                httpx_client_factory=self._http_factory,
            )

        return _streamable(
            params.url,
            self._http_client(
                dict(params.headers or {}), float(params.timeout), float(params.sse_read_timeout)
            ),
            bool(params.terminate_on_close),
        )

    def _http_client(self, headers: dict[str, str], timeout: float, read_timeout: float) -> Any:
        import httpx2

        async def watch(response: Any) -> None:
            if response.status_code in (401, 403):
                self._auth_status = response.status_code

        return httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(timeout, read=read_timeout),
            event_hooks={"response": [watch]},
        )

    def _http_factory(
        self, headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None
    ) -> Any:
        import httpx2

        async def watch(response: Any) -> None:
            if response.status_code in (401, 403):
                self._auth_status = response.status_code

        return httpx2.AsyncClient(
            headers=headers, timeout=timeout, auth=auth, event_hooks={"response": [watch]}
        )

    # -- requests (any task) -----------------------------------------------------------------

    async def _list_tools(self, session: ClientSession) -> list[mcp_types.Tool]:
        import mcp_types

        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(1000):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def _require_session(self) -> ClientSession:
        if self._session is None or self._state is not ServerState.RUNNING:
            raise RuntimeError(f"MCP server '{self.bundle_id}' is not running ({self._state.value})")
        return self._session

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> mcp_types.CallToolResult:
        """``tools/call`` on the running session; raises :class:`UpstreamAuthError` on HTTP 401/403."""
        import mcp_types

        session = self._require_session()
        self._auth_status = None
        try:
            result = await session.call_tool(name, arguments, read_timeout_seconds=timeout)
        except Exception as exc:
            self._check_broken(exc)
            status = self._auth_status
            if status in (401, 403):
                raise UpstreamAuthError(status, f"HTTP {status} from the MCP server") from exc
            raise
        if not isinstance(result, mcp_types.CallToolResult):
            raise RuntimeError(f"unexpected tools/call result type {type(result).__name__}")
        return result

    async def list_resources(self, cursor: str | None) -> tuple[list[mcp_types.Resource], str | None]:
        import mcp_types

        session = self._require_session()
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
        try:
            page = await session.list_resources(params=params)
        except Exception as exc:
            self._check_broken(exc)
            raise
        return list(page.resources), page.next_cursor

    async def read_resource(
        self, uri: str
    ) -> list[mcp_types.TextResourceContents | mcp_types.BlobResourceContents]:
        session = self._require_session()
        try:
            result = await session.read_resource(uri)
        except Exception as exc:
            self._check_broken(exc)
            raise
        return list(result.contents)

    async def refresh_tools(self) -> None:
        """Re-read ``tools/list`` now and announce it (detail ``"list_changed"``: the Computer
        forwards it even when the list is the same, docs/protocol.md §6.2)."""
        session = self._require_session()
        tools = await asyncio.wait_for(self._list_tools(session), self.request_timeout)
        if self._session is session:
            self._tools = tools
            self._emit(HostChange.TOOLS, "list_changed")

    def _check_broken(self, exc: BaseException) -> None:
        from mcp.shared.exceptions import MCPError

        if isinstance(exc, MCPError) and exc.error.code == -32000 and "closed" in exc.error.message.lower():
            self._wake.set()

    # -- notifications -----------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        import mcp_types

        # Never await an MCP request here: schedule the work instead.
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._schedule_tool_refresh()
        elif isinstance(message, mcp_types.ResourceListChangedNotification):
            self._emit(HostChange.RESOURCES, None)
        elif isinstance(message, mcp_types.ResourceUpdatedNotification):
            self._emit(HostChange.RESOURCE_UPDATED, str(message.params.uri))
        elif isinstance(message, Exception):
            logger.debug("MCP server %s transport fault: %s", self.bundle_id, message)

    def _schedule_tool_refresh(self) -> None:
        if self._refresh_task is not None and not self._refresh_task.done():
            self._refresh_again = True
            return
        self._refresh_task = asyncio.create_task(self._refresh_loop(), name=f"mcp-tools-{self.bundle_id}")

    async def _refresh_loop(self) -> None:
        while True:
            self._refresh_again = False
            await asyncio.sleep(0.05)  # coalesce bursts
            try:
                await self.refresh_tools()
            except Exception as exc:
                logger.warning("MCP server %s: tools/list after list_changed failed: %s", self.bundle_id, exc)
            if not self._refresh_again:
                return

    def _emit(self, kind: HostChange, detail: str | None) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(self, kind, detail)
        except Exception:
            logger.exception("host event handler failed")


@contextlib.asynccontextmanager
async def _streamable(url: str, client: Any, terminate: bool) -> Any:
    from mcp.client.streamable_http import streamable_http_client

    async with (
        client,
        streamable_http_client(url, http_client=client, terminate_on_close=terminate) as streams,
    ):
        yield streams[0], streams[1]


class _EofWatch:
    """The transport's read stream as the session reads it, flagging its end (the server went away).

    A pass-through, not a relay: no extra task or stream hop per message.
    """

    def __init__(self, source: Any, broken: asyncio.Event, wake: asyncio.Event) -> None:
        self._source = source
        self._broken = broken
        self._wake = wake

    @property
    def last_context(self) -> Any:
        return getattr(self._source, "last_context", None)

    def _ended(self) -> None:
        self._broken.set()
        self._wake.set()

    async def receive(self) -> Any:
        try:
            return await self._source.receive()
        except Exception:  # EndOfStream, ClosedResourceError, BrokenResourceError, transport faults
            self._ended()
            raise

    def __aiter__(self) -> _EofWatch:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._ended()
        await self._source.aclose()

    async def __aenter__(self) -> _EofWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        if inner:
            return _describe(inner[0])
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, _Broken) else text
