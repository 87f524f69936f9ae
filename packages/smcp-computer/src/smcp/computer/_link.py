"""The Computer's Socket.IO side: connect, join an office, answer ``client:*``, announce changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from smcp.core.events import NAMESPACE, ClientEvent, NotifyEvent, ServerEvent
from smcp.core.versioning import PROTOCOL_VERSION

if TYPE_CHECKING:
    import socketio

    from smcp.computer._computer import Computer

__all__ = ["AuthProvider", "ComputerLink", "JoinError"]

logger = logging.getLogger("smcp.computer")

#: ``provider() -> auth object`` (e.g. ``{"token": ...}``), called on every (re)connect.
AuthProvider = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]

_UPDATES = {
    "tools": ServerEvent.UPDATE_TOOL_LIST,
    "desktop": ServerEvent.UPDATE_DESKTOP,
    "skills": ServerEvent.UPDATE_SKILLS,
    "config": ServerEvent.UPDATE_CONFIG,
}


class JoinError(RuntimeError):
    """The server refused ``server:join_office`` (its reason is the message)."""


def _with_version(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "a2c_version"]
    query.append(("a2c_version", PROTOCOL_VERSION))
    return urlunsplit(parts._replace(query=urlencode(query)))


class ComputerLink:
    """Connects a :class:`~smcp.computer.Computer` to an SMCP server and serves its office.

    Every ``client:*`` request gets an answer (a flat ErrorPayload with an official code when it
    cannot be served). Each request runs in its own task, so a slow tool call never delays
    another request. After a reconnect the link re-joins its office and re-announces its tools.
    """

    def __init__(
        self,
        computer: Computer,
        url: str,
        *,
        token: str | None = None,
        auth_provider: AuthProvider | None = None,
        headers: Mapping[str, str] | None = None,
        socketio_path: str = "socket.io",
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        import socketio

        self.computer = computer
        self.url = url
        self._token = token
        self._auth_provider = auth_provider
        self._headers = dict(headers or {})
        self.socketio_path = socketio_path
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._office: str | None = None
        self._wanted_office: str | None = None
        self._joined_once = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sio: socketio.AsyncClient = socketio.AsyncClient(
            reconnection=True,
            reconnection_delay=0.5,
            reconnection_delay_max=5,
            handle_sigint=False,
            request_timeout=request_timeout,
            websocket_extra_options={"max_msg_size": max_message_bytes},
        )
        self._register()
        computer.add_listener(self._on_computer_change)

    # -- properties --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.computer.name

    @property
    def office(self) -> str | None:
        """The office this Computer is in (``None`` when not joined)."""
        return self._office

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    # -- connection --------------------------------------------------------------------------

    async def _auth(self) -> Mapping[str, Any]:
        if self._auth_provider is not None:
            value = self._auth_provider()
            if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
                value = await value
            return dict(value)
        return {"token": self._token} if self._token is not None else {}

    async def connect(self) -> None:
        """Open the connection (WebSocket transport, ``/smcp`` namespace); raises on failure."""
        await self.sio.connect(
            _with_version(self.url),
            headers=self._headers,
            auth=self._auth,
            transports=["websocket"],
            namespaces=[NAMESPACE],
            socketio_path=self.socketio_path,
            wait_timeout=self.connect_timeout,
        )

    async def join(self, office_id: str) -> None:
        """Join ``office_id`` (a Computer moving from another office is moved by the server)."""
        self._wanted_office = office_id
        await self._join(office_id)
        self._joined_once = True

    async def _join(self, office_id: str) -> None:
        self._office = office_id  # set first so broadcasts right after the join are not missed
        try:
            reply = await self.sio.call(
                ServerEvent.JOIN_OFFICE.value,
                {"role": "computer", "name": self.name, "office_id": office_id},
                namespace=NAMESPACE,
                timeout=self.request_timeout,
            )
        except Exception:
            self._office = None
            raise
        ok, error = (
            (reply[0], reply[1] if len(reply) > 1 else None)
            if isinstance(reply, tuple | list)
            else (
                reply,
                None,
            )
        )
        if ok is not True:
            self._office = None
            reason = error or repr(reply)
            raise JoinError(f"server refused to let '{self.name}' join office '{office_id}': {reason}")

    async def leave(self) -> None:
        """Leave the current office (no-op when not in one)."""
        office = self._office
        self._wanted_office = None
        if office is None:
            return
        self._office = None
        if not self.connected:
            return
        try:
            await self.sio.call(
                ServerEvent.LEAVE_OFFICE.value, {"office_id": office}, namespace=NAMESPACE, timeout=5.0
            )
        except Exception as exc:
            logger.warning("leave_office for %s was not acknowledged: %s", office, exc)

    async def close(self) -> None:
        """Leave the office and disconnect (bounded)."""
        self.computer.remove_listener(self._on_computer_change)
        try:
            await asyncio.wait_for(self.leave(), 6.0)
        except Exception as exc:
            logger.debug("leave on close failed: %s", exc)
        for task in list(self._tasks):
            task.cancel()
        try:
            await asyncio.wait_for(self.sio.disconnect(), 5.0)
        except Exception as exc:
            logger.debug("disconnect failed: %s", exc)
        await asyncio.wait_for(self.sio.shutdown(), 5.0) if hasattr(self.sio, "shutdown") else None

    async def __aenter__(self) -> ComputerLink:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- announcements -----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_computer_change(self, kind: str) -> None:
        event = _UPDATES.get(kind)
        if event is not None:
            self._spawn(self.announce(event))

    async def announce(self, event: ServerEvent | str) -> bool:
        """Emit one ``server:update_*`` when in an office; False when not sent."""
        if self._office is None or not self.connected:
            return False
        try:
            await self.sio.emit(str(event), {"computer": self.name}, namespace=NAMESPACE)
        except Exception as exc:
            logger.warning("could not emit %s: %s", event, exc)
            return False
        return True

    async def _rejoin(self) -> None:
        office = self._wanted_office
        if office is None:
            return
        try:
            await self._join(office)
        except Exception as exc:
            logger.error("re-joining office %s after reconnect failed: %s", office, exc)
            return
        logger.info("re-joined office %s after reconnect", office)
        await self.announce(ServerEvent.UPDATE_TOOL_LIST)
        await self.announce(ServerEvent.UPDATE_DESKTOP)

    # -- handlers ----------------------------------------------------------------------------

    def _register(self) -> None:
        sio = self.sio

        async def on_connect() -> None:
            if self._joined_once and self._wanted_office is not None:
                self._spawn(self._rejoin())

        async def on_disconnect(*_: Any) -> None:
            self._office = None

        async def on_cancel(data: Any) -> None:
            if isinstance(data, dict) and isinstance(data.get("req_id"), str):
                self.computer.cancel(data["req_id"])

        sio.on("connect", on_connect, namespace=NAMESPACE)
        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on(NotifyEvent.TOOL_CALL_CANCEL.value, on_cancel, namespace=NAMESPACE)
        for event in ClientEvent:
            sio.on(event.value, self._handler(event), namespace=NAMESPACE)

    def _handler(self, event: ClientEvent) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def handle(data: Any = None, *_: Any) -> dict[str, Any]:
            return await self.answer(event, data)

        return handle

    async def answer(self, event: ClientEvent | str, data: Any) -> dict[str, Any]:
        """The reply to one ``client:*`` request (never raises)."""
        from smcp.core.errors import NotFoundError, SMCPError

        event = ClientEvent(event)
        try:
            if isinstance(data, dict) and data.get("computer") not in (None, self.name):
                raise NotFoundError(
                    f"Computer with name '{data.get('computer')}' not found (this Computer is '{self.name}')",
                    details={"computer_name": str(data.get("computer"))},
                )
            return await _dispatch(self, event, data)
        except SMCPError as exc:
            return _official_payload(exc, self.name)
        except Exception as exc:
            logger.exception("%s failed", event.value)
            if event is ClientEvent.TOOL_CALL:
                from smcp.core import results

                return results.exception_result(str(exc) or type(exc).__name__, type(exc).__name__)
            return _official_payload(exc, self.name)


def _official_payload(exc: Exception, computer: str) -> dict[str, Any]:
    """A flat ErrorPayload whose code the official peers recognise."""
    from smcp.core.errors import OFFICIAL_ERROR_CODES, NotFoundError, SMCPError

    if isinstance(exc, SMCPError) and exc.error_code in OFFICIAL_ERROR_CODES:
        return exc.to_payload()
    reason = exc.message if isinstance(exc, SMCPError) else (str(exc) or type(exc).__name__)
    return NotFoundError(
        f"Computer '{computer}' could not answer: {reason}",
        details={"computer_name": computer, "reason": "computer_error"},
    ).to_payload()


def _req_id(data: Any) -> str:
    value = data.get("req_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


async def _dispatch(link: ComputerLink, event: ClientEvent, data: Any) -> dict[str, Any]:
    from smcp.core import errors, results, wire

    computer = link.computer
    if event is ClientEvent.TOOL_CALL:
        try:
            req: Any = wire.parse_request(event.value, data)
        except errors.BadRequestError as exc:
            return results.exception_result(exc.message, "ValidationError")
        return await computer.call_tool(req.tool_name, req.params, float(req.timeout) or None, req.req_id)
    req_id = _req_id(data)
    body = data if isinstance(data, dict) else {}
    if event is ClientEvent.GET_TOOLS:
        return {"tools": computer.tools(), "req_id": req_id}
    if event is ClientEvent.GET_CONFIG:
        return computer.get_config()
    if event is ClientEvent.GET_DESKTOP:
        window = body.get("window")
        desktops = await computer.get_desktop(
            _int_or_none(body.get("desktop_size")), window if isinstance(window, str) else None
        )
        return {"desktops": desktops, "req_id": req_id}
    if event is ClientEvent.GET_RESOURCES:
        mcp_server = body.get("mcp_server")
        if not isinstance(mcp_server, str):
            raise errors.MCPServerNotFoundError(
                "client:get_resources needs 'mcp_server' (a bundle id from client:get_config)",
                fields={"mcp_server": str(mcp_server)},
            )
        cursor = body.get("cursor")
        try:
            page_cursor = cursor if isinstance(cursor, str) else None
            return await computer.get_resources(mcp_server, page_cursor, req_id)
        except errors.SMCPError:
            raise
        except Exception as exc:
            raise errors.MCPServerNotFoundError(
                f"MCP server '{mcp_server}' failed to list resources: {exc}",
                fields={"mcp_server": mcp_server},
            ) from exc
    if event is ClientEvent.GET_SKILLS:
        return {"skills": computer.list_skills(), "req_id": req_id}
    if event is ClientEvent.GET_SKILL:
        name = body.get("name")
        rel_path = body.get("rel_path")
        if not isinstance(name, str):
            raise errors.SkillNameInvalidError(
                "client:get_skill needs 'name' (from client:get_skills)", details={"name": str(name)}
            )
        return await computer.get_skill(name, rel_path if isinstance(rel_path, str) else None, req_id)
    if event is ClientEvent.GET_BLOB:
        handle = body.get("blob_handle")
        if not isinstance(handle, str):
            raise errors.BlobNotAccessibleError(
                "client:get_blob needs 'blob_handle'", details={"reason": "invalid_handle"}
            )
        return await computer.get_blob(
            handle, _int_or_none(body.get("chunk_offset")), _int_or_none(body.get("max_chunk_bytes")), req_id
        )
    if event is ClientEvent.PUT_BLOB:
        return await computer.put_blob(body)
    raise errors.NotFoundError(f"unsupported event {event.value}")  # pragma: no cover
