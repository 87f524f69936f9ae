"""The asynchronous Agent: the typed protocol methods over a :class:`~smcp.agent._connection.Connection`.

Every ``client:*`` request goes through :meth:`AsyncAgent._request`, which reads the event table
(:data:`smcp.core.events.EVENTS`): the request model that validates the fields, the reply model
that parses the answer, and the deadline class (docs/protocol.md §4, §5.11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack, cast

from smcp.agent import _blob, _tracing
from smcp.agent._cache import CacheKind, ComputerCache, ComputerView
from smcp.agent._connection import Connection, Hooks
from smcp.agent._handlers import EVENT_KINDS, AgentHandler, Callback, Dispatcher, Notification, notify_kind
from smcp.agent._options import AgentOptions, AgentOverrides
from smcp.agent._skill import SkillFile, load_skill_file
from smcp.core.errors import (
    AuthenticationError,
    ConfigError,
    ErrorCode,
    MalformedReplyError,
    NotConnectedError,
    ProtocolVersionError,
    SMCPException,
    error_from_payload,
    is_error_payload,
)
from smcp.core.events import EVENTS, ClientEvent, EventSpec, NotifyEvent, ServerEvent
from smcp.core.handshake import Credential
from smcp.core.naming import new_req_id
from smcp.core.roles import Role

if TYPE_CHECKING:
    import socketio
    from mcp_types import CallToolResult
    from pydantic import BaseModel

    from smcp.core.models import (
        A2CResource,
        A2CSkillRef,
        GetBlobRet,
        GetComputerConfigRet,
        GetDesktopRet,
        GetResourcesRet,
        GetSkillRet,
        GetSkillsRet,
        GetToolsRet,
        ListRoomRet,
        PutBlobRet,
        SessionInfo,
        SMCPTool,
    )

logger = logging.getLogger("smcp.agent")

#: Requests that move blob bytes wait ``blob_timeout`` instead of ``request_timeout``.
_BLOB_EVENTS = frozenset(
    {ClientEvent.GET_SKILL.value, ClientEvent.GET_BLOB.value, ClientEvent.PUT_BLOB.value}
)


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
        handler: an object whose ``on_<event>`` methods receive events (see :class:`AgentHandler`).
        options: an :class:`AgentOptions` (timeouts, transports, cache, ...).
        **overrides: fields of :class:`AgentOptions` (``name=``, ``request_timeout=``, ...),
            applied on top of ``options``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: Credential = None,
        office: str | None = None,
        handler: AgentHandler | object | None = None,
        options: AgentOptions | None = None,
        **overrides: Unpack[AgentOverrides],
    ) -> None:
        self.url = url
        self.options = (options or AgentOptions()).replace(**overrides)
        self._wanted_office = office
        self._dispatcher = Dispatcher()
        if handler is not None:
            self._dispatcher.add(handler)
        self._cache: ComputerCache | None = None
        hooks = Hooks(
            self._on_connected, self._on_disconnected, self._on_joined, self._on_reconnected, self._on_notify
        )
        self._conn = Connection(url, self.options, token, hooks)

    # -- options and state ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def office(self) -> str | None:
        """The office joined right now (``None`` before joining and while re-joining)."""
        return self._conn.office

    @property
    def connected(self) -> bool:
        return self._conn.connected

    @property
    def request_timeout(self) -> float:
        return self.options.request_timeout

    @property
    def blob_timeout(self) -> float:
        return self.options.blob_timeout

    @property
    def tool_call_grace(self) -> float:
        return self.options.tool_call_grace

    @property
    def connect_timeout(self) -> float:
        return self.options.connect_timeout

    @property
    def cache(self) -> ComputerCache:
        """Cached tools/config/skills per Computer of the office (no round trip to read)."""
        if self._cache is None:
            self._cache = ComputerCache(self._fetch_for_cache, self._cache_listener)
        return self._cache

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
            raise ConfigError(f"unknown event {event!r}; use one of {sorted(EVENT_KINDS)}")

        def register(fn: Callback) -> Callback:
            self._dispatcher.on(event, fn)
            return fn

        return register

    # -- connection ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect to the server (does not join an office; see :meth:`join`).

        Raises :class:`ConfigError` for a URL without scheme or host, :class:`ProtocolVersionError`
        (4008, never retried), :class:`AuthenticationError` (the server refused the connection) or
        :class:`ConnectError` (the server could not be reached).
        """
        self.cache  # noqa: B018 - create the cache inside the running loop
        await self._conn.open()

    async def disconnect(self) -> None:
        """Close the connection (no automatic reconnect afterwards)."""
        if self._cache is not None:
            await self._cache.clear()
        await self._conn.close()

    async def close(self) -> None:
        """Leave the office (best effort) and disconnect."""
        if self.office is not None and self.connected:
            try:
                await self.leave()
            except SMCPException as exc:
                logger.info("leaving office on close failed: %s", exc)
        await self.disconnect()

    # -- the connection's hooks ------------------------------------------------------------------

    async def _on_connected(self) -> None:
        await self._dispatcher.emit("connected")

    async def _on_disconnected(self) -> None:
        await self._dispatcher.emit("disconnected")

    async def _on_reconnected(self) -> None:
        _tracing.short_span("smcp.reconnect", **{"smcp.agent": self.name})
        await self._dispatcher.emit("reconnected")

    async def _on_joined(self, office: str) -> None:
        _tracing.short_span("smcp.join", **{"smcp.agent": self.name, "smcp.office": office})
        if self.options.cache:
            await self._resync_cache()

    async def _on_notify(self, event: NotifyEvent, data: dict[str, Any]) -> None:
        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        computer, office = text("computer"), text("office_id")
        note = Notification(notify_kind(event), computer, text("agent"), office, data)
        _tracing.short_span(str(event), **{"smcp.computer": computer, "smcp.office": office})
        mine = self.office is not None and office in (None, self.office)
        if self.options.cache and computer is not None and mine:
            await self.cache.route(event, computer, tuple(self.options.cache_kinds))
        await self._dispatcher.emit(note.kind, note)

    # -- requests -------------------------------------------------------------------------------

    def _build(self, spec: EventSpec, fields: dict[str, Any]) -> BaseModel:
        """The request model of ``spec`` from ``fields`` (``agent`` and ``req_id`` filled in)."""
        from pydantic import ValidationError

        model = spec.request
        if model is None or not spec.may_send(Role.AGENT):
            raise ConfigError(f"an Agent does not send {spec.name}")
        if "agent" in model.__pydantic_fields__:
            fields.setdefault("agent", self.name)
            if "req_id" not in fields:  # not setdefault: a new id costs a uuid4
                fields["req_id"] = new_req_id()
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first.get("loc") or ()) or "<request>"
            raise ConfigError(f"invalid {spec.name} request: field {where!r}: {first['msg']}") from None

    def _deadline(self, spec: EventSpec, request: BaseModel) -> float:
        """The local deadline of one request, decided by its deadline class in the event table."""
        if spec.timeout == "tool_call":
            # the call's own (whole-second) timeout, the grace for the Computer's timeout result,
            # and one second for the relay hops
            return float(getattr(request, "timeout")) + self.options.tool_call_grace + 1  # noqa: B009
        if spec.name in _BLOB_EVENTS:
            return self.options.blob_timeout
        return self.options.request_timeout

    async def _send(self, event: ClientEvent | ServerEvent, fields: dict[str, Any]) -> tuple[BaseModel, Any]:
        """Build and send the request of ``event``; return it and the raw ack."""
        from smcp.core import wire

        spec = EVENTS[str(event)]
        request = self._build(spec, fields)
        deadline = self._deadline(spec, request)
        tracer = _tracing.get_tracer() if spec.is_client_request else None
        if tracer is None:
            return request, await self._conn.call(spec.name, wire.to_wire(request), deadline)

        def send(data: dict[str, Any]) -> Any:
            return self._conn.call(spec.name, data, deadline)

        data = wire.to_wire(request)
        reply = await _tracing.traced_request(tracer, spec.name, request, data, office=self.office, send=send)
        return request, reply

    async def _request(self, event: ClientEvent | ServerEvent, **fields: Any) -> BaseModel:
        """Send ``event`` with ``fields`` and parse the reply with the model the event table names.

        Raises the typed :class:`SMCPError` of an ErrorPayload and :class:`MalformedReplyError`
        for an empty ack, a reply that does not validate or one for another request.
        """
        from smcp.core import wire

        request, reply = await self._send(event, fields)
        if reply is None:
            raise MalformedReplyError(f"{event}: empty ack; the peer does not implement this event")
        parsed = wire.parse_reply(str(event), reply)
        echo, sent = getattr(parsed, "req_id", None), getattr(request, "req_id", None)
        if echo is not None and echo != sent:
            raise MalformedReplyError(f"{event}: reply is for request {echo!r}, not {sent!r}")
        return parsed

    # -- compatibility for tests and harnesses that drive the wire directly -------------------------

    async def _call(self, event: str, data: Any, timeout: float) -> Any:  # noqa: ASYNC109
        """Send a raw ``event`` and return its raw ack (no model, no table)."""
        return await self._conn.call(event, data, timeout)

    def _client(self) -> socketio.AsyncClient:
        return self._conn.client()

    @property
    def _protocol_version(self) -> str:
        """The protocol version sent in the handshake (tests set another to meet the gate)."""
        return self._conn.protocol_version

    @_protocol_version.setter
    def _protocol_version(self, version: str) -> None:
        self._conn.protocol_version = version

    @property
    def _fatal(self) -> ProtocolVersionError | AuthenticationError | None:
        return self._conn.fatal

    # -- office ----------------------------------------------------------------------------------

    async def join(self, office: str) -> None:
        """Join ``office`` as an agent; raises :class:`JoinRefusedError` with the server's reason."""
        await self._conn.join(office)
        self._wanted_office = office

    async def leave(self) -> None:
        """Leave the current office."""
        if self.office is None:
            return
        try:
            await self._conn.leave()
        finally:
            if self._conn.office is None:  # left, or refused after the server dropped us anyway
                self._wanted_office = None
                if self._cache is not None:
                    await self._cache.clear()

    async def _resync_cache(self) -> None:
        try:
            computers = await self.computers()
        except SMCPException as exc:
            logger.warning("listing the office after joining failed: %s", exc)
            return
        names = {c.name for c in computers}
        await self.cache.retain_only(names)
        for name in names:
            self.cache.request(name, tuple(self.options.cache_kinds))

    def _require_office(self) -> str:
        if self.office is None:
            raise NotConnectedError("join an office first")
        return self.office

    async def sessions(self) -> list[SessionInfo]:
        """Every session (agents and Computers) of the office."""
        ret = await self._request(ServerEvent.LIST_ROOM, office_id=self._require_office())
        return cast("ListRoomRet", ret).sessions

    async def computers(self) -> list[SessionInfo]:
        """The Computers of the office."""
        return [s for s in await self.sessions() if s.role == Role.COMPUTER.value]

    # -- client:* requests --------------------------------------------------------------------

    async def get_tools(self, computer: str) -> list[SMCPTool]:
        """The tools ``computer`` exposes (also refreshes the cache)."""
        tools = await self._fetch_tools(computer)
        if self.options.cache and computer in self.cache:
            self.cache.store(computer, "tools", tools)
        return tools

    async def _fetch_tools(self, computer: str) -> list[SMCPTool]:
        return cast("GetToolsRet", await self._request(ClientEvent.GET_TOOLS, computer=computer)).tools

    async def get_config(self, computer: str) -> GetComputerConfigRet:
        """The raw MCP server configuration of ``computer`` (also refreshes the cache)."""
        config = await self._fetch_config(computer)
        if self.options.cache and computer in self.cache:
            self.cache.store(computer, "config", config)
        return config

    async def _fetch_config(self, computer: str) -> GetComputerConfigRet:
        return cast("GetComputerConfigRet", await self._request(ClientEvent.GET_CONFIG, computer=computer))

    async def get_desktop(
        self, computer: str, size: int | None = None, window: str | None = None
    ) -> list[str]:
        """Rendered ``window://`` entries of ``computer`` (at most ``size``, or one exact ``window``)."""
        ret = await self._request(
            ClientEvent.GET_DESKTOP, computer=computer, desktop_size=size, window=window
        )
        return cast("GetDesktopRet", ret).desktops

    async def get_resources(
        self, computer: str, mcp_server: str, cursor: str | None = None
    ) -> GetResourcesRet:
        """One page of resources of MCP server ``mcp_server`` (a bundle id) on ``computer``."""
        ret = await self._request(
            ClientEvent.GET_RESOURCES, computer=computer, mcp_server=mcp_server, cursor=cursor
        )
        return cast("GetResourcesRet", ret)

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
                raise MalformedReplyError(
                    f"resource paging of {mcp_server!r} loops (cursor {cursor!r} repeated)"
                )
            seen.add(cursor)
        raise MalformedReplyError(f"resource paging of {mcp_server!r} exceeded {max_pages} pages")

    async def get_skills(self, computer: str) -> list[A2CSkillRef]:
        """The skills ``computer`` offers (also refreshes the cache)."""
        skills = await self._fetch_skills(computer)
        if self.options.cache and computer in self.cache:
            self.cache.store(computer, "skills", skills)
        return skills

    async def _fetch_skills(self, computer: str) -> list[A2CSkillRef]:
        return cast("GetSkillsRet", await self._request(ClientEvent.GET_SKILLS, computer=computer)).skills

    async def get_skill(self, computer: str, name: str, rel_path: str | None = None) -> SkillFile:
        """One file of skill ``name`` (``SKILL.md`` by default), inline or drained from its blob."""
        ret = await self._request(ClientEvent.GET_SKILL, computer=computer, name=name, rel_path=rel_path)
        return await load_skill_file(
            cast("GetSkillRet", ret), lambda handle: self.download_blob(computer, handle)
        )

    async def get_blob(
        self, computer: str, blob_handle: str, chunk_offset: int = 0, max_chunk_bytes: int | None = None
    ) -> GetBlobRet:
        """One chunk of a blob (see :meth:`download_blob` for the whole of it)."""
        ret = await self._request(
            ClientEvent.GET_BLOB,
            computer=computer,
            blob_handle=blob_handle,
            chunk_offset=chunk_offset,
            max_chunk_bytes=max_chunk_bytes,
        )
        return cast("GetBlobRet", ret)

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

        async def send(fields: dict[str, Any]) -> PutBlobRet:
            return cast("PutBlobRet", await self._request(ClientEvent.PUT_BLOB, computer=computer, **fields))

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
        and returns a result whose ``meta["a2c_timeout"]`` is true (a 408 from the server is
        handled the same way). Cancelling the awaiting task also cancels the call on the
        Computer. Oversized binary content is fetched back from the Computer automatically
        unless ``keep_blob_handles`` is set (then the items keep their ``_meta.a2c_blob_handle``;
        fetch them with :meth:`download_blob`). Raises the typed :class:`SMCPError` of any
        ErrorPayload answer (e.g. 404 unknown Computer, or a code we do not know, such as a
        503 from a server shutting down) and :class:`ConnectionLostError` when the connection
        drops meanwhile.
        """
        from smcp.core import results
        from smcp.core.errors import LocalTimeoutError

        if not timeout > 0:
            raise ConfigError("timeout must be positive (seconds)")
        req_id = req_id or new_req_id()
        fields = {
            "computer": computer,
            "req_id": req_id,
            "tool_name": tool,
            "params": dict(params or {}),
            "timeout": math.ceil(timeout),
        }
        try:
            _, reply = await self._send(ClientEvent.TOOL_CALL, fields)
        except LocalTimeoutError:
            await self.cancel(req_id)
            return results.from_wire(results.timeout_result(f"req_id={req_id}"))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.cancel(req_id))
            raise
        if is_error_payload(reply):
            error = error_from_payload(reply)
            if error.error_code == ErrorCode.REQUEST_TIMEOUT:
                await self.cancel(req_id)
                return results.from_wire(results.timeout_result(f"req_id={req_id}"))
            raise error
        if not isinstance(reply, dict):
            raise MalformedReplyError(
                f"{ClientEvent.TOOL_CALL.value}: expected a CallToolResult object, got {type(reply).__name__}"
            )
        if not keep_blob_handles:
            await _blob.restore_sideband(reply, lambda handle: self.download_blob(computer, handle))
        return _tool_result(reply)

    async def cancel(self, req_id: str) -> None:
        """Ask the Computer to cancel the tool call ``req_id`` (fire and forget)."""
        from smcp.core import wire

        _tracing.short_span(ServerEvent.TOOL_CALL_CANCEL.value, **{"smcp.req_id": req_id})
        try:
            request = self._build(EVENTS[ServerEvent.TOOL_CALL_CANCEL.value], {"req_id": req_id})
            await self._conn.emit(ServerEvent.TOOL_CALL_CANCEL.value, wire.to_wire(request))
        except Exception as exc:
            logger.info("could not send the cancel for %s: %s", req_id, exc)

    # -- cache ------------------------------------------------------------------------------------

    async def _fetch_for_cache(self, computer: str, kind: CacheKind) -> Any:
        fetch = {"tools": self._fetch_tools, "config": self._fetch_config, "skills": self._fetch_skills}[kind]
        return await fetch(computer)

    async def _cache_listener(self, computer: str, view: ComputerView | None) -> None:
        await self._dispatcher.emit("cache_updated", computer, view)


def _tool_result(reply: dict[str, Any]) -> CallToolResult:
    from pydantic import ValidationError

    from smcp.core import results

    try:
        return results.from_wire(reply)
    except ValidationError as exc:
        raise MalformedReplyError(f"{ClientEvent.TOOL_CALL.value}: not a CallToolResult: {exc}") from None


__all__ = ["AsyncAgent", "ProtocolVersionError", "SkillFile"]
