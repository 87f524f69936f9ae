"""The asynchronous Agent."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from smcp.agent import _blob
from smcp.agent._cache import ALL_KINDS, CacheKind, ComputerCache, ComputerView
from smcp.agent._handlers import EVENT_KINDS, NOTIFY_KINDS, AgentHandler, Callback, Dispatcher, Notification
from smcp.agent._handshake import (
    handshake_url,
    probe_version_gate,
    version_error_from_body,
    version_error_from_exception,
)
from smcp.agent.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    IntegrityError,
    JoinRefusedError,
    LocalTimeoutError,
    NotConnectedError,
    ReplyError,
)
from smcp.core.errors import ProtocolVersionError, SMCPError, error_from_payload, is_error_payload
from smcp.core.events import NAMESPACE, ClientEvent, ServerEvent
from smcp.core.naming import new_req_id
from smcp.core.versioning import PROTOCOL_VERSION

if TYPE_CHECKING:
    import socketio
    from mcp_types import CallToolResult
    from pydantic import BaseModel

    from smcp.core.models import (
        A2CResource,
        A2CSkillRef,
        GetBlobRet,
        GetComputerConfigRet,
        GetResourcesRet,
        PutBlobRet,
        SessionInfo,
        SMCPTool,
    )

    M = TypeVar("M", bound=BaseModel)

logger = logging.getLogger("smcp.agent")

TokenProvider = Callable[[], "str | Awaitable[str]"]


@dataclass(frozen=True, slots=True)
class SkillFile:
    """One file of a skill package, fully loaded and checked against its ``sha256``."""

    name: str
    rel_path: str
    mime_type: str
    sha256: str
    data: bytes

    @property
    def total_size(self) -> int:
        return len(self.data)

    @property
    def text(self) -> str:
        """The content decoded as UTF-8 (raises ``UnicodeDecodeError`` for binary files)."""
        return self.data.decode("utf-8")


class AsyncAgent:
    """An A2C-SMCP Agent: joins one office and calls the Computers in it.

    ``async with AsyncAgent(url, token=..., office=...) as agent`` connects, joins the office,
    and on exit leaves it and disconnects. Every request has a local deadline; a dropped
    connection fails in-flight requests at once with :class:`ConnectionLostError`, and after
    a reconnect the Agent re-joins its office and refreshes its cache by itself.

    Args:
        url: server URL, e.g. ``http://127.0.0.1:8000``.
        token: sent as ``auth["token"]``; a callable (sync or async) is asked again on every
            (re)connect, so short-lived tokens can be refreshed.
        office: office to join on entering the context manager (or pass it to :meth:`join`).
        name: this Agent's name in the office.
        auth: further fields of the Socket.IO ``auth`` object.
        headers: extra HTTP headers of the handshake (routing, proxies).
        transports: ``("websocket",)`` by default; ``("polling", "websocket")`` for polling first.
        request_timeout: local deadline of every request except tool calls and blob chunks.
        tool_call_grace: extra local wait after a tool call's own timeout, so that the
            Computer's timeout result can still arrive before the Agent gives up.
        cache: keep :attr:`cache` (tools, config, skills of every Computer) up to date.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | TokenProvider | None = None,
        office: str | None = None,
        name: str = "smcp-agent",
        auth: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        transports: Sequence[str] = ("websocket",),
        socketio_path: str = "socket.io",
        namespace: str = NAMESPACE,
        connect_timeout: float = 10.0,
        request_timeout: float = 20.0,
        blob_timeout: float = 30.0,
        tool_call_grace: float = 5.0,
        reconnect: bool = True,
        handler: AgentHandler | object | None = None,
        cache: bool = True,
        cache_kinds: Sequence[CacheKind] = ALL_KINDS,
    ) -> None:
        if not transports:
            raise ValueError("transports must name at least one of 'websocket', 'polling'")
        self.url = url
        self.name = name
        self.office: str | None = None
        self._wanted_office = office
        self._token = token
        self._auth = dict(auth or {})
        self._headers = dict(headers or {})
        self._transports = list(transports)
        self._socketio_path = socketio_path
        self._namespace = namespace
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.blob_timeout = blob_timeout
        self.tool_call_grace = tool_call_grace
        self._reconnect = reconnect
        self._use_cache = cache
        self._cache_kinds: tuple[CacheKind, ...] = tuple(cache_kinds)
        self._dispatcher = Dispatcher()
        if handler is not None:
            self._dispatcher.add(handler)
        self._sio: socketio.AsyncClient | None = None
        self._link_up = False  # between our connect handler and the connection's loss
        self._waiting: set[asyncio.Future[Any]] = set()  # acks awaited by _call
        self._ever_connected = False
        self._fatal: BaseException | None = None
        self._refusal: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cache: ComputerCache | None = None
        self._protocol_version = PROTOCOL_VERSION

    # -- context manager -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        try:
            if self._wanted_office is not None:
                await self.join(self._wanted_office)
        except BaseException:
            await self.disconnect()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- handlers ----------------------------------------------------------------------------

    def add_handler(self, handler: AgentHandler | object) -> None:
        """Register an object whose ``on_<event>`` methods receive events (see :class:`AgentHandler`)."""
        self._dispatcher.add(handler)

    def on(self, event: str) -> Callable[[Callback], Callback]:
        """Decorator registering ``fn`` for ``event`` (e.g. ``"update_tool_list"``, ``"reconnected"``)."""
        if event not in EVENT_KINDS:
            raise ValueError(f"unknown event {event!r}; use one of {sorted(EVENT_KINDS)}")

        def register(fn: Callback) -> Callback:
            self._dispatcher.on(event, fn)
            return fn

        return register

    @property
    def cache(self) -> ComputerCache:
        """Cached tools/config/skills per Computer of the office (no round trip to read)."""
        if self._cache is None:
            self._cache = ComputerCache(self._fetch_for_cache, self._cache_listener)
        return self._cache

    # -- connection ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._namespace in self._sio.namespaces and self._link_up

    async def _auth_value(self) -> dict[str, Any] | None:
        data = dict(self._auth)
        token = self._token
        if callable(token):
            value = token()
            token = await value if inspect.isawaitable(value) else value
        if token:
            data["token"] = token
        return data or None

    async def connect(self) -> None:
        """Connect to the server (does not join an office; see :meth:`join`).

        Raises :class:`ProtocolVersionError` (4008, never retried), :class:`AuthenticationError`
        or :class:`ConnectError`.
        """
        import socketio

        if self.connected:
            return
        if self._sio is not None:
            await self._drop_client()
        self._fatal = None
        self._refusal = None
        self._ever_connected = False
        sio = socketio.AsyncClient(
            reconnection=self._reconnect,
            reconnection_delay=0.5,
            reconnection_delay_max=5,
            handle_sigint=False,
            logger=False,
            engineio_logger=False,
        )
        ns = self._namespace
        sio.on("connect", self._on_connect, namespace=ns)
        sio.on("disconnect", self._on_disconnect, namespace=ns)
        sio.on("connect_error", self._on_connect_error, namespace=ns)
        for kind in NOTIFY_KINDS:
            sio.on(f"notify:{kind}", self._make_notify_handler(kind), namespace=ns)
        self._sio = sio
        self.cache  # noqa: B018 - create the cache inside the running loop
        url = handshake_url(self.url, self._protocol_version)
        try:
            await sio.connect(
                url,
                headers=self._headers,
                auth=self._auth_value,
                transports=self._transports,
                namespaces=[ns],
                socketio_path=self._socketio_path,
                wait_timeout=self.connect_timeout,
            )
        except (socketio.exceptions.ConnectionError, RuntimeError, OSError) as exc:
            # RuntimeError/OSError: aiohttp may fail reading the gate's 400 body on polling.
            await self._drop_client()
            version = version_error_from_exception(exc)
            if version is None:
                version = await probe_version_gate(
                    url, self._socketio_path, self._headers, self.connect_timeout
                )
            if version is not None:
                raise version from None
            if self._refusal is not None:
                raise AuthenticationError(
                    f"the server refused the connection ({_refusal_text(self._refusal)}); check the token"
                ) from None
            raise ConnectError(f"cannot connect to {self.url}: {exc}") from None

    async def _drop_client(self) -> None:
        sio, self._sio = self._sio, None
        if sio is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.disconnect(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.shutdown(), 5)

    async def disconnect(self) -> None:
        """Close the connection (no automatic reconnect afterwards)."""
        for task in list(self._tasks):
            task.cancel()
        if self._cache is not None:
            await self._cache.clear()
        self.office = None
        self._mark_lost()
        await self._drop_client()

    async def close(self) -> None:
        """Leave the office (best effort) and disconnect."""
        if self.office is not None and self.connected:
            try:
                await self.leave()
            except (
                SMCPError,
                ConnectionLostError,
                LocalTimeoutError,
                NotConnectedError,
                JoinRefusedError,
            ) as exc:
                logger.info("leaving office on close failed: %s", exc)
        await self.disconnect()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_connect(self) -> None:
        self._link_up = True
        if not self._ever_connected:
            self._ever_connected = True
            await self._dispatcher.emit("connected")
            return
        # The read loop is blocked while this handler runs: do the round trips in a task.
        self._spawn(self._resync_after_reconnect())

    def _mark_lost(self) -> None:
        """The connection is gone: flag it and fail every ack still awaited."""
        self._link_up = False
        for fut in self._waiting:
            if not fut.done():
                fut.set_exception(_Lost())
        self._waiting.clear()

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._mark_lost()
        logger.info("disconnected from %s (%s)", self.url, reason)
        await self._dispatcher.emit("disconnected")

    async def _on_connect_error(self, data: Any = None) -> None:
        version = version_error_from_body(data)
        if version is not None:
            self._fatal = version
            if self._ever_connected:
                logger.error("server rejected the protocol version on reconnect: %s; giving up", version)
                self._spawn(self._drop_client())
            return
        self._refusal = data
        if self._ever_connected and self._transports[0] == "websocket":
            # a refused websocket handshake has no readable body: ask the gate once over HTTP
            self._spawn(self._probe_during_reconnect())

    async def _probe_during_reconnect(self) -> None:
        url = handshake_url(self.url, self._protocol_version)
        version = await probe_version_gate(url, self._socketio_path, self._headers, self.connect_timeout)
        if version is not None and self._fatal is None:
            self._fatal = version
            logger.error("server rejected the protocol version on reconnect: %s; giving up", version)
            await self._drop_client()

    async def _resync_after_reconnect(self) -> None:
        office = self.office
        if office is not None:
            self.office = None
            for attempt in range(10):
                try:
                    await self.join(office)
                    break
                except (JoinRefusedError, LocalTimeoutError, SMCPError, NotConnectedError) as exc:
                    if self._sio is None:
                        return
                    logger.warning("re-joining office %r failed (attempt %d): %s", office, attempt + 1, exc)
                    await asyncio.sleep(min(0.2 * 2**attempt, 3.0))
                except ConnectionLostError:
                    return
            else:
                logger.error("could not re-join office %r after reconnecting", office)
                return
        await self._dispatcher.emit("reconnected")

    # -- requests -----------------------------------------------------------------------------

    def _client(self) -> socketio.AsyncClient:
        if self._fatal is not None:
            raise self._fatal
        sio = self._sio
        if sio is None:
            raise NotConnectedError("the Agent is not connected; call connect() first")
        # sio.connected turns true only after connect() returns; the namespace map is set earlier
        if self._namespace not in sio.namespaces or not self._link_up:
            raise NotConnectedError("the Agent is not connected right now (reconnecting); retry shortly")
        return sio

    async def _call(self, event: str, data: dict[str, Any], timeout: float) -> Any:  # noqa: ASYNC109
        """Send ``event`` and wait for its ack, the connection's loss, or the deadline.

        One future and one timer per call (no helper tasks): the ack callback resolves it,
        :meth:`_mark_lost` fails it.
        """
        import socketio

        sio = self._client()
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()

        def on_ack(*args: Any) -> None:
            if not reply.done():
                reply.set_result(args[0] if len(args) == 1 else (args or None))

        self._waiting.add(reply)
        timer = loop.call_later(timeout, _expire, reply)
        try:
            try:
                await sio.emit(event, data, namespace=self._namespace, callback=on_ack)
            except socketio.exceptions.BadNamespaceError:
                raise ConnectionLostError(f"the connection dropped before {event} was sent") from None
            return await reply
        except _Lost:
            lost = f"the connection dropped while waiting for the answer to {event}"
            raise ConnectionLostError(lost) from None
        except _Expired:
            raise LocalTimeoutError(event, timeout) from None
        finally:
            timer.cancel()
            self._waiting.discard(reply)

    def _base(self, computer: str | None = None, req_id: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"agent": self.name, "req_id": req_id or new_req_id()}
        if computer is not None:
            data["computer"] = computer
        return data

    async def _request(
        self,
        event: str,
        model: type[M],
        data: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> M:
        from smcp.core import wire

        reply = await self._call(event, data, self.request_timeout if timeout is None else timeout)
        if reply is None:
            raise ReplyError(f"{event}: empty ack; the peer does not implement this event")
        try:
            parsed = wire.parse_reply(event, reply, model)
        except SMCPError as exc:
            if type(exc) is SMCPError and exc.message.startswith("malformed reply"):
                raise ReplyError(exc.message) from None
            raise
        echo = getattr(parsed, "req_id", None)
        if echo is not None and echo != data["req_id"]:
            raise ReplyError(f"{event}: reply is for request {echo!r}, not {data['req_id']!r}")
        return parsed

    # -- office ----------------------------------------------------------------------------------

    async def join(self, office: str) -> None:
        """Join ``office`` as an agent; raises :class:`JoinRefusedError` with the server's reason."""
        reply = await self._call(
            ServerEvent.JOIN_OFFICE.value,
            {"role": "agent", "name": self.name, "office_id": office},
            self.request_timeout,
        )
        ok, reason = _pair(reply)
        if not ok:
            raise JoinRefusedError(office, reason or "no reason given")
        self.office = office
        self._wanted_office = office
        if self._use_cache:
            await self._resync_cache()

    async def leave(self) -> None:
        """Leave the current office."""
        office = self.office
        if office is None:
            return
        reply = await self._call(ServerEvent.LEAVE_OFFICE.value, {"office_id": office}, self.request_timeout)
        ok, reason = _pair(reply)
        self.office = None
        self._wanted_office = None
        if self._cache is not None:
            await self._cache.clear()
        if not ok:
            raise JoinRefusedError(office, reason or "leave refused")

    async def _resync_cache(self) -> None:
        try:
            computers = await self.computers()
        except (SMCPError, LocalTimeoutError, ReplyError) as exc:
            logger.warning("listing the office after joining failed: %s", exc)
            return
        names = {c.name for c in computers}
        await self.cache.retain_only(names)
        for name in names:
            self.cache.request(name, self._cache_kinds)

    def _require_office(self) -> str:
        if self.office is None:
            raise NotConnectedError("join an office first")
        return self.office

    async def sessions(self) -> list[SessionInfo]:
        """Every session (agents and Computers) of the office."""
        from smcp.core.models import ListRoomRet

        office = self._require_office()
        data = self._base()
        data["office_id"] = office
        ret = await self._request(ServerEvent.LIST_ROOM.value, ListRoomRet, data)
        return ret.sessions

    async def computers(self) -> list[SessionInfo]:
        """The Computers of the office."""
        return [s for s in await self.sessions() if s.role == "computer"]

    # -- client:* requests --------------------------------------------------------------------

    async def get_tools(self, computer: str) -> list[SMCPTool]:
        """The tools ``computer`` exposes (also refreshes the cache)."""
        tools = await self._fetch_tools(computer)
        if self._use_cache and computer in self.cache:
            self.cache.store(computer, "tools", tools)
        return tools

    async def _fetch_tools(self, computer: str) -> list[SMCPTool]:
        from smcp.core.models import GetToolsRet

        ret = await self._request(ClientEvent.GET_TOOLS.value, GetToolsRet, self._base(computer))
        return ret.tools

    async def get_config(self, computer: str) -> GetComputerConfigRet:
        """The raw MCP server configuration of ``computer`` (also refreshes the cache)."""
        config = await self._fetch_config(computer)
        if self._use_cache and computer in self.cache:
            self.cache.store(computer, "config", config)
        return config

    async def _fetch_config(self, computer: str) -> GetComputerConfigRet:
        from smcp.core.models import GetComputerConfigRet

        return await self._request(ClientEvent.GET_CONFIG.value, GetComputerConfigRet, self._base(computer))

    async def get_desktop(
        self, computer: str, size: int | None = None, window: str | None = None
    ) -> list[str]:
        """Rendered ``window://`` entries of ``computer`` (at most ``size``, or one exact ``window``)."""
        from smcp.core.models import GetDesktopRet

        data = self._base(computer)
        if size is not None:
            data["desktop_size"] = size
        if window is not None:
            data["window"] = window
        ret = await self._request(ClientEvent.GET_DESKTOP.value, GetDesktopRet, data)
        return ret.desktops

    async def get_resources(
        self, computer: str, mcp_server: str, cursor: str | None = None
    ) -> GetResourcesRet:
        """One page of resources of MCP server ``mcp_server`` (a bundle id) on ``computer``."""
        from smcp.core.models import GetResourcesRet

        data = self._base(computer)
        data["mcp_server"] = mcp_server
        if cursor is not None:
            data["cursor"] = cursor
        return await self._request(ClientEvent.GET_RESOURCES.value, GetResourcesRet, data)

    async def iter_resources(
        self, computer: str, mcp_server: str, *, max_pages: int = 1000
    ) -> AsyncIterator[A2CResource]:
        """Every resource of ``mcp_server``, following ``next_cursor`` page by page."""
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            page = await self.get_resources(computer, mcp_server, cursor)
            for resource in page.resources:
                yield resource
            cursor = page.next_cursor
            if not cursor:
                return
            if cursor in seen:
                raise ReplyError(f"resource paging of {mcp_server!r} loops (cursor {cursor!r} repeated)")
            seen.add(cursor)
        raise ReplyError(f"resource paging of {mcp_server!r} exceeded {max_pages} pages")

    async def get_skills(self, computer: str) -> list[A2CSkillRef]:
        """The skills ``computer`` offers (also refreshes the cache)."""
        skills = await self._fetch_skills(computer)
        if self._use_cache and computer in self.cache:
            self.cache.store(computer, "skills", skills)
        return skills

    async def _fetch_skills(self, computer: str) -> list[A2CSkillRef]:
        from smcp.core.models import GetSkillsRet

        ret = await self._request(ClientEvent.GET_SKILLS.value, GetSkillsRet, self._base(computer))
        return ret.skills

    async def get_skill(self, computer: str, name: str, rel_path: str | None = None) -> SkillFile:
        """One file of skill ``name`` (``SKILL.md`` by default), inline or drained from its blob."""
        from smcp.core.models import GetSkillRet

        data = self._base(computer)
        data["name"] = name
        if rel_path is not None:
            data["rel_path"] = rel_path
        ret = await self._request(ClientEvent.GET_SKILL.value, GetSkillRet, data, self.blob_timeout)
        if ret.body is not None:
            raw = ret.body.encode("utf-8")
            digest = hashlib.sha256(raw).hexdigest()
            if digest != ret.sha256.lower():
                raise IntegrityError(
                    f"skill {name!r} {ret.rel_path}: body sha256 {digest} != declared {ret.sha256}"
                )
        else:
            assert ret.blob_handle is not None
            blob = await self.download_blob(computer, ret.blob_handle)
            if blob.sha256 != ret.sha256.lower() or blob.total_size != ret.total_size:
                raise IntegrityError(
                    f"skill {name!r} {ret.rel_path}: blob does not match the declared size/sha256"
                )
            raw = blob.data
        return SkillFile(ret.name, ret.rel_path, ret.mime_type, ret.sha256.lower(), raw)

    async def get_blob(
        self, computer: str, blob_handle: str, chunk_offset: int = 0, max_chunk_bytes: int | None = None
    ) -> GetBlobRet:
        """One chunk of a blob (see :meth:`download_blob` for the whole of it)."""
        from smcp.core.models import GetBlobRet

        data = self._base(computer)
        data["blob_handle"] = blob_handle
        data["chunk_offset"] = chunk_offset
        if max_chunk_bytes is not None:
            data["max_chunk_bytes"] = max_chunk_bytes
        return await self._request(ClientEvent.GET_BLOB.value, GetBlobRet, data, self.blob_timeout)

    async def download_blob(
        self, computer: str, blob_handle: str, *, progress: _blob.Progress | None = None
    ) -> _blob.BlobData:
        """A whole blob, chunk by chunk, resumed after timeouts and checked against its sha256."""

        async def fetch(offset: int) -> GetBlobRet:
            return await self.get_blob(computer, blob_handle, offset, _blob.CHUNK_BYTES)

        return await _blob.drain(fetch, progress=progress)

    async def put_blob(
        self,
        computer: str,
        data: bytes,
        *,
        name_hint: str | None = None,
        chunk_size: int = _blob.CHUNK_BYTES,
        progress: _blob.Progress | None = None,
    ) -> _blob.PutBlobResult:
        """Upload ``data`` to ``computer``; pass the returned ``landing_path`` to its tools."""
        from smcp.core.models import PutBlobRet

        async def send(fields: dict[str, Any]) -> PutBlobRet:
            req = self._base(computer)
            req.update(fields)
            return await self._request(ClientEvent.PUT_BLOB.value, PutBlobRet, req, self.blob_timeout)

        return await _blob.pump(send, data, name_hint=name_hint, chunk_size=chunk_size, progress=progress)

    # -- tool calls ------------------------------------------------------------------------------

    async def call_tool(
        self,
        computer: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        timeout: float = 60,  # noqa: ASYNC109
        *,
        req_id: str | None = None,
        keep_blob_handles: bool = False,
    ) -> CallToolResult:
        """Call ``tool`` (the exposed name from :meth:`get_tools`) on ``computer``.

        Tool failures come back as a result with ``isError`` set. If nothing arrives within
        ``timeout`` + ``tool_call_grace`` seconds the Agent sends ``server:tool_call_cancel``
        and returns a result whose ``meta["a2c_timeout"]`` is true. Cancelling the awaiting
        task also cancels the call on the Computer. Oversized binary content is fetched back
        from the Computer automatically unless ``keep_blob_handles`` is set (then the items
        keep their ``_meta.a2c_blob_handle``; fetch them with :meth:`download_blob`).
        Raises a typed :class:`SMCPError` when the server refuses the call (e.g. 404 unknown
        Computer) and :class:`ConnectionLostError` when the connection drops meanwhile.
        """
        from smcp.core import results

        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        wire_timeout = math.ceil(timeout)
        req_id = req_id or new_req_id()
        data = self._base(computer, req_id)
        data["tool_name"] = tool
        data["params"] = dict(params or {})
        data["timeout"] = wire_timeout
        try:
            reply = await self._call(
                ClientEvent.TOOL_CALL.value, data, wire_timeout + self.tool_call_grace + 1
            )
        except LocalTimeoutError:
            await self.cancel(req_id)
            return results.from_wire(results.timeout_result(f"req_id={req_id}"))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.cancel(req_id))
            raise
        if isinstance(reply, dict) and reply.get("code") == 408 and is_error_payload(reply):
            await self.cancel(req_id)
            return results.from_wire(results.timeout_result(f"req_id={req_id}"))
        if is_error_payload(reply):
            raise error_from_payload(reply)
        if not isinstance(reply, dict):
            raise ReplyError(
                f"client:tool_call: expected a CallToolResult object, got {type(reply).__name__}"
            )
        if not keep_blob_handles:
            await self._restore_sideband(computer, reply)
        return results.from_wire(reply)

    async def cancel(self, req_id: str) -> None:
        """Ask the Computer to cancel the tool call ``req_id`` (fire and forget)."""
        try:
            sio = self._client()
            await sio.emit(
                ServerEvent.TOOL_CALL_CANCEL.value,
                {"agent": self.name, "req_id": req_id},
                namespace=self._namespace,
            )
        except Exception as exc:
            logger.info("could not send the cancel for %s: %s", req_id, exc)

    async def _restore_sideband(self, computer: str, reply: dict[str, Any]) -> None:
        from smcp.core.results import SIDEBAND_HANDLE

        for item in reply.get("content") or ():
            if not isinstance(item, dict):
                continue
            meta = item.get("_meta")
            if not isinstance(meta, dict):
                continue
            handle = meta.get(SIDEBAND_HANDLE)
            if not isinstance(handle, str) or not handle:
                continue
            try:
                blob = await self.download_blob(computer, handle)
            except (SMCPError, IntegrityError, ReplyError, LocalTimeoutError, ConnectionLostError) as exc:
                logger.warning(
                    "could not fetch the binary content %s: %s; left as a handle", handle[:16], exc
                )
                continue
            encoded = base64.b64encode(blob.data).decode("ascii")
            resource = item.get("resource")
            if item.get("type") in ("image", "audio") or "data" in item or not isinstance(resource, dict):
                item["data"] = encoded
            else:
                resource["blob"] = encoded
            for key in [k for k in meta if k.startswith("a2c_")]:
                del meta[key]
            if not meta:
                del item["_meta"]

    # -- notifications and cache ----------------------------------------------------------------

    def _make_notify_handler(self, kind: str) -> Callable[[Any], Awaitable[None]]:
        async def handle(data: Any = None) -> None:
            await self._on_notify(kind, data if isinstance(data, dict) else {})

        return handle

    async def _on_notify(self, kind: str, data: dict[str, Any]) -> None:
        computer = data.get("computer") if isinstance(data.get("computer"), str) else None
        agent = data.get("agent") if isinstance(data.get("agent"), str) else None
        office = data.get("office_id") if isinstance(data.get("office_id"), str) else None
        note = Notification(kind, computer, agent, office, data)
        if self._use_cache and computer is not None and self.office is not None:
            if office is not None and office != self.office:
                pass
            elif kind == "enter_office":
                self.cache.request(computer, self._cache_kinds)
            elif kind == "leave_office":
                await self.cache.drop(computer)
            elif kind == "update_config":
                self.cache.request(computer, tuple(k for k in ("config", "tools") if k in self._cache_kinds))
            elif kind == "update_tool_list" and "tools" in self._cache_kinds:
                self.cache.request(computer, ("tools",))
            elif kind == "update_skills" and "skills" in self._cache_kinds:
                self.cache.request(computer, ("skills",))
        await self._dispatcher.emit(kind, note)

    async def _fetch_for_cache(self, computer: str, kind: CacheKind) -> Any:
        if kind == "tools":
            return await self._fetch_tools(computer)
        if kind == "config":
            return await self._fetch_config(computer)
        return await self._fetch_skills(computer)

    async def _cache_listener(self, computer: str, view: ComputerView | None) -> None:
        await self._dispatcher.emit("cache_updated", computer, view)


def _pair(reply: Any) -> tuple[bool, str | None]:
    """Read a join/leave ack: ``(True, None)`` / ``(False, reason)`` / an ErrorPayload."""
    if is_error_payload(reply):
        err = error_from_payload(reply)
        return False, err.message
    if isinstance(reply, (list, tuple)):
        ok = bool(reply[0]) if reply else False
        reason = reply[1] if len(reply) > 1 and isinstance(reply[1], str) else None
        return ok, reason
    if isinstance(reply, bool):
        return reply, None
    return False, f"unexpected answer {reply!r}"


class _Lost(Exception):
    """Internal: the connection dropped while an ack was awaited."""


class _Expired(Exception):
    """Internal: an ack did not arrive within the deadline."""


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(_Expired())


def _refusal_text(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return str(data)


__all__ = ["AsyncAgent", "ProtocolVersionError", "SkillFile"]
