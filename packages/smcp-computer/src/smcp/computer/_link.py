"""The Computer's Socket.IO side: connect, join an office, answer ``client:*``, announce changes.

Requests are validated with core's models through the event table (:data:`smcp.core.events.EVENTS`)
and served by the Computer method :data:`_ROUTES` names for the event. The connection rules
(handshake URL, credential, 4008, join ack, re-join backoff) are core's :mod:`smcp.core.handshake`,
the same ones the Agent uses (docs/protocol.md §2, §4).
"""

from __future__ import annotations

import ast
import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from smcp.computer import _tracing
from smcp.core import handshake, results, wire
from smcp.core._engineio_log import EngineIOLog
from smcp.core._json import fast_json
from smcp.core._socketio_internals import socketio_client
from smcp.core.errors import (
    AuthenticationError,
    ConnectError,
    JoinRefusedError,
    NotFoundError,
    ProtocolVersionError,
    SMCPError,
    SMCPException,
)
from smcp.core.events import NAMESPACE, ClientEvent, NotifyEvent, ServerEvent
from smcp.core.roles import Role

if TYPE_CHECKING:
    import socketio
    from pydantic import BaseModel

    from smcp.computer._computer import Computer
    from smcp.computer._tools import Change
    from smcp.core.handshake import Credential

__all__ = ["AuthProvider", "ComputerLink", "JoinError"]

logger = logging.getLogger("smcp.computer")

#: What measures a result's size on the wire (the codec the packets are encoded with).
_CODEC = fast_json()

#: The size limit assumed when the server's Engine.IO handshake did not say (our server's default).
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024

#: What engineio logs with the server's OPEN packet (the only place python-socketio shows it).
_OPEN_LOG_PREFIXES = ("WebSocket connection accepted with ", "Polling connection accepted with ")


class _EngineLog(EngineIOLog):
    """engineio's logger for one link: notes ``maxPayload`` from the logged OPEN packet and, like
    engineio's default, passes on only errors (not the benign one of a silent drop)."""

    def __init__(self) -> None:
        super().__init__()
        self.max_payload: int | None = None

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(_OPEN_LOG_PREFIXES):
            try:
                value = ast.literal_eval(msg.split(" with ", 1)[1]).get("maxPayload")
            except (ValueError, SyntaxError, AttributeError):
                value = None
            if isinstance(value, int) and value > 0:
                self.max_payload = value
        super().log(level, msg, *args, **kwargs)


#: Deprecated: ``provider() -> auth object`` (e.g. ``{"token": ...}``), called on every (re)connect.
#: Pass ``token=`` a callable returning the token instead.
AuthProvider = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]

#: Deprecated alias of :class:`smcp.core.errors.JoinRefusedError`.
JoinError = JoinRefusedError

#: The ``details.reason`` official peers expect for a malformed request, where the code has one.
_MALFORMED_REASON = {ClientEvent.GET_BLOB: "invalid_handle", ClientEvent.PUT_BLOB: "invalid_declaration"}


class ComputerLink:
    """Connects a :class:`~smcp.computer.Computer` to an SMCP server and serves its office.

    ``token`` is the credential sent as ``auth.token``: a string, or a callable (sync or async)
    asked on every (re)connect. Every ``client:*`` request gets an answer (a flat ErrorPayload
    with an official code when it cannot be served). Each request runs in its own task, so a
    slow tool call never delays another request. After a reconnect the link keeps re-joining its
    office (with :class:`~smcp.core.handshake.JoinBackoff`, since the server may still hold the old
    session for its ping timeout) and re-announces its tools. A protocol-version rejection (4008)
    is never retried: :attr:`fatal` holds it and :meth:`wait_fatal` returns.
    """

    def __init__(
        self,
        computer: Computer,
        url: str,
        *,
        token: Credential = None,
        auth_provider: AuthProvider | None = None,
        headers: Mapping[str, str] | None = None,
        socketio_path: str = "socket.io",
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_message_bytes: int = 16 * 1024 * 1024,
        rejoin: handshake.JoinBackoff | None = None,
    ) -> None:

        if auth_provider is not None:
            warnings.warn(
                "ComputerLink(auth_provider=...) is deprecated; pass token= a callable instead",
                DeprecationWarning,
                stacklevel=2,
            )
        self.computer = computer
        self.url = url
        self._token = token
        self._auth_provider = auth_provider
        self._headers = dict(headers or {})
        self.socketio_path = socketio_path
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.rejoin = rejoin or handshake.JoinBackoff()
        self.fatal: ProtocolVersionError | AuthenticationError | None = None
        self._fatal_event = asyncio.Event()
        self._refusal: Any = None
        self._office: str | None = None
        self._wanted_office: str | None = None
        self._joined_once = False
        self._ever_connected = False
        self._closing = False
        self._rejoin_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._engine_log = _EngineLog()
        self.sio: socketio.AsyncClient = socketio_client(
            engineio_logger=self._engine_log,
            reconnection=True,
            reconnection_delay=0.5,
            reconnection_delay_max=3,  # back within seconds of the network's return (a laptop)
            handle_sigint=False,
            request_timeout=request_timeout,
            websocket_extra_options={"max_msg_size": max_message_bytes},
            **handshake.bounded_handshakes(min(connect_timeout, handshake.HANDSHAKE_TIMEOUT)),
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

    @property
    def max_payload(self) -> int:
        """The largest message the server accepts: its handshake's ``maxPayload``, else
        :data:`DEFAULT_MAX_PAYLOAD`."""
        return self._engine_log.max_payload or DEFAULT_MAX_PAYLOAD

    # -- connection --------------------------------------------------------------------------

    async def _auth(self) -> Mapping[str, Any]:
        if self._auth_provider is not None:
            value = self._auth_provider()
            if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
                value = await value
            return dict(value)
        return await handshake.auth_object(self._token) or {}

    def _handshake_url(self) -> str:
        return handshake.handshake_url(handshake.check_url(self.url))

    async def connect(self) -> None:
        """Open the connection (WebSocket transport, ``/smcp`` namespace).

        Raises :class:`~smcp.core.errors.ProtocolVersionError` (4008: the versions differ, never
        retried), :class:`~smcp.core.errors.AuthenticationError` (the server refused the
        credential; its reason is in the message) or :class:`~smcp.core.errors.ConnectError`.
        """
        import socketio

        url = self._handshake_url()
        self._refusal = None
        try:
            await self.sio.connect(
                url,
                headers=self._headers,
                auth=self._auth,
                transports=["websocket"],
                namespaces=[NAMESPACE],
                socketio_path=handshake.engineio_path(self.url, self.socketio_path),
                wait_timeout=self.connect_timeout,
            )
        except (socketio.exceptions.ConnectionError, RuntimeError, OSError) as exc:
            version = handshake.version_error_from_exception(exc)
            if version is None:
                version = handshake.version_error_from_body(self._refusal)
            if version is None:
                version = await handshake.probe_version_gate(
                    url, self.socketio_path, self._headers, self.connect_timeout
                )
            if version is not None:
                raise version from None
            if isinstance(self._refusal, dict):  # the server's CONNECT_ERROR (an engine failure is a str)
                reason = handshake.refusal_reason(self._refusal)
                raise AuthenticationError(
                    f"the server at {self.url} refused the connection: {reason}"
                ) from None
            raise ConnectError(f"cannot connect to {self.url}: {exc}") from None
        self._ever_connected = True

    async def join(self, office_id: str) -> None:
        """Join ``office_id`` (a Computer moving from another office is moved by the server).

        Raises :class:`~smcp.core.errors.JoinRefusedError` with the server's reason.
        """
        self._wanted_office = office_id
        await self._join(office_id)
        self._joined_once = True
        _tracing.short_span("smcp.join", **{"smcp.computer": self.name, "smcp.office": office_id})

    async def _join(self, office_id: str) -> None:
        self._office = office_id  # set first so broadcasts right after the join are not missed
        try:
            reply = await self.sio.call(
                ServerEvent.JOIN_OFFICE.value,
                handshake.join_request(Role.COMPUTER, self.name, office_id),
                namespace=NAMESPACE,
                timeout=self.request_timeout,
            )
            handshake.check_join_ack(reply, office_id, self.name)
        except BaseException:
            self._office = None
            raise

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

    async def wait_fatal(self) -> ProtocolVersionError | AuthenticationError:
        """Return once the link gave up for good (the server rejected our protocol version)."""
        await self._fatal_event.wait()
        assert self.fatal is not None
        return self.fatal

    async def close(self) -> None:
        """Leave the office and disconnect (bounded)."""
        self._closing = True
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

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_computer_change(self, change: Change) -> None:
        self._spawn(self.announce(change.event))

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
        """Re-join the wanted office until the server lets us back in (or the backoff ends)."""
        delays = self.rejoin.delays()
        while True:
            office = self._wanted_office
            if office is None:
                return
            try:
                await self._join(office)
            except (JoinRefusedError, TimeoutError, SMCPException, OSError) as exc:
                if NAMESPACE not in self.sio.namespaces:  # dropped again: the next connect re-joins
                    return
                delay = next(delays, None)
                if delay is None:
                    logger.error("re-joining office %s after reconnect failed for good: %s", office, exc)
                    return
                logger.info("re-joining office %s refused (%s); retrying in %.1f s", office, exc, delay)
                await asyncio.sleep(delay)
                continue
            except Exception as exc:  # e.g. socketio's BadNamespaceError while the link drops
                logger.error("re-joining office %s after reconnect failed: %s", office, exc)
                return
            logger.info("re-joined office %s after reconnect", office)
            _tracing.short_span("smcp.join", **{"smcp.computer": self.name, "smcp.office": office})
            await self.announce(ServerEvent.UPDATE_TOOL_LIST)
            await self.announce(ServerEvent.UPDATE_DESKTOP)
            return

    async def _give_up(self, version: ProtocolVersionError | AuthenticationError) -> None:
        if self.fatal is not None:
            return
        self.fatal = version
        if isinstance(version, AuthenticationError):
            logger.error("server %s: %s; giving up", self.url, version)
        else:
            logger.error(
                "server %s rejected the protocol version on reconnect: %s; giving up", self.url, version
            )
        self._fatal_event.set()
        try:
            await asyncio.wait_for(self.sio.disconnect(), 5.0)
            # shutdown() is what aborts a reconnect loop that is waiting for its next attempt
            await asyncio.wait_for(self.sio.shutdown(), 5.0)
        except Exception as exc:
            logger.debug("disconnect after giving up failed: %s", exc)

    async def _probe_during_reconnect(self) -> None:
        version = await handshake.probe_version_gate(
            self._handshake_url(), self.socketio_path, self._headers, self.connect_timeout
        )
        if version is not None:
            await self._give_up(version)

    # -- handlers ----------------------------------------------------------------------------

    def _register(self) -> None:
        sio = self.sio

        async def on_connect() -> None:
            if self._ever_connected:
                logger.info("reconnected to %s", self.url)
                _tracing.short_span("smcp.reconnect", **{"smcp.computer": self.name})
            rejoining = self._rejoin_task is not None and not self._rejoin_task.done()
            if self._joined_once and self._wanted_office is not None and not rejoining:
                self._rejoin_task = self._spawn(self._rejoin())

        async def on_disconnect(*reason: Any) -> None:
            was_in = self._office
            self._office = None
            if self._ever_connected and not self._closing and self.fatal is None:
                logger.warning(
                    "lost the connection to %s (%s); reconnecting%s",
                    self.url,
                    reason[0] if reason else "unknown reason",
                    f" to re-join office {was_in}" if was_in else "",
                )

        async def on_connect_error(data: Any = None) -> None:
            self._refusal = data
            version = handshake.version_error_from_body(data)
            if self._ever_connected:
                final = handshake.final_refusal(data, self._auth_provider or self._token)
                if version is not None:
                    self._spawn(self._give_up(version))
                elif final is not None:
                    self._spawn(self._give_up(final))
                else:  # a refused WebSocket handshake has no readable body: ask the gate over HTTP
                    self._spawn(self._probe_during_reconnect())

        async def on_cancel(data: Any = None, *_: Any) -> None:
            if isinstance(data, dict) and isinstance(data.get("req_id"), str):
                self.computer.cancel(data["req_id"])

        sio.on("connect", on_connect, namespace=NAMESPACE)
        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on("connect_error", on_connect_error, namespace=NAMESPACE)
        sio.on(NotifyEvent.TOOL_CALL_CANCEL.value, on_cancel, namespace=NAMESPACE)
        for event in _ROUTES:
            sio.on(str(event), self._handler(event), namespace=NAMESPACE)

    def _handler(self, event: ClientEvent) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def handle(data: Any = None, *_: Any) -> dict[str, Any]:
            return await self.answer(event, data)

        return handle

    async def answer(self, event: ClientEvent | str, data: Any) -> dict[str, Any]:
        """The reply to one ``client:*`` request (never raises)."""
        tracer = _tracing.get_tracer()
        if tracer is None:
            return await self._logged(event, data)
        answer = lambda: self._logged(event, data)  # noqa: E731
        return await _tracing.traced_answer(tracer, str(event), data, self.name, answer)

    async def _logged(self, event: ClientEvent | str, data: Any) -> dict[str, Any]:
        reply = await self._answer(event, data)
        if logger.isEnabledFor(logging.DEBUG):
            fields = data if isinstance(data, dict) else {}
            extra = {"event": str(event), "computer": self.name, "office": self._office}
            extra["tool"], extra["req_id"] = fields.get("tool_name"), fields.get("req_id")
            logger.debug("%s answered", event, extra={k: v for k, v in extra.items() if isinstance(v, str)})
        return reply

    async def _answer(self, event: ClientEvent | str, data: Any) -> dict[str, Any]:
        try:
            if isinstance(data, dict) and data.get("computer") not in (None, self.name):
                raise NotFoundError(
                    f"Computer with name '{data.get('computer')}' not found (this Computer is '{self.name}')",
                    details={"computer_name": str(data.get("computer"))},
                )
            key = cast(ClientEvent, event)  # a plain str finds its ClientEvent key (a StrEnum)
            route, parse = _ROUTES[key]
            try:
                req = parse(key, data)
            except SMCPError as exc:
                if event == ClientEvent.TOOL_CALL:  # a tool call is always answered with a result
                    return results.exception_result(exc.message, "ValidationError")
                raise
            reply = await route(self.computer, req)
            if key == ClientEvent.TOOL_CALL:
                return self._fit(reply, str(getattr(req, "tool_name", "")))
            return reply
        except SMCPError as exc:
            return _official_payload(exc, self.name)
        except Exception as exc:
            from smcp.computer._hygiene import public_reason

            reason = public_reason(exc, str(event))
            if event == ClientEvent.TOOL_CALL:
                return results.exception_result(reason, "InternalError")
            return _official_payload(exc, self.name, reason)

    def _fit(self, result: dict[str, Any], tool: str) -> dict[str, Any]:
        """``result``, or an error result when it is larger than the server accepts (sending it would
        cost the connection, and the Agent would only see the Computer vanish)."""
        limit = self.max_payload
        encoded = _CODEC.dumps(result, separators=(",", ":"), default=str)
        size = len(encoded.encode()) + 256  # + packet framing
        if size <= limit:
            return result
        message = (
            f"The result of tool '{tool}' is about {size} bytes, more than the {limit}-byte message limit "
            "of the SMCP server (its Engine.IO maxPayload), so the Computer did not send it. Ask the tool "
            "for less data, or raise the server's limit (smcp-server --max-message-size, or "
            "python-socketio's max_http_buffer_size)."
        )
        logger.warning("%s", message)
        return results.error_result(message)


def _official_payload(exc: Exception, computer: str, reason: str | None = None) -> dict[str, Any]:
    """A flat ErrorPayload whose code the official peers recognise (``reason``: the text for a
    foreign exception, whose own text stays in the log)."""
    from smcp.core.errors import OFFICIAL_ERROR_CODES

    if isinstance(exc, SMCPError) and exc.error_code in OFFICIAL_ERROR_CODES:
        return exc.to_payload()
    if isinstance(exc, SMCPError):
        reason = exc.message
    elif reason is None:
        reason = type(exc).__name__
    return NotFoundError(
        f"Computer '{computer}' could not answer: {reason}",
        details={"computer_name": computer, "reason": "computer_error"},
    ).to_payload()


# -- the routes: event -> (Computer method, request parser) ------------------------------------


def _parse(event: ClientEvent, data: Any) -> BaseModel:
    """The table's request model; a failure raises the event's malformed-request error."""
    try:
        return wire.parse_request(str(event), data, at_computer=True)
    except SMCPError as exc:
        reason = _MALFORMED_REASON.get(event)
        if reason is not None:  # the protocol's reason enum; the message names the field
            exc.details = {**exc.details, "reason": reason}
        raise


def _parse_upload(event: ClientEvent, data: Any) -> BaseModel:
    from smcp.computer._blobs import parse_put_blob

    return parse_put_blob(data)


async def _tool_call(computer: Computer, req: Any) -> dict[str, Any]:
    result = await computer.call_tool(req.tool_name, req.params, float(req.timeout) or None, req.req_id)
    return cast("dict[str, Any]", result)


async def _get_tools(computer: Computer, req: Any) -> dict[str, Any]:
    return {"tools": computer.tools_wire(), "req_id": req.req_id}


async def _get_config(computer: Computer, req: Any) -> dict[str, Any]:
    return computer.config_wire()


async def _get_desktop(computer: Computer, req: Any) -> dict[str, Any]:
    return {"desktops": await computer.get_desktop(req.desktop_size, req.window), "req_id": req.req_id}


async def _get_resources(computer: Computer, req: Any) -> dict[str, Any]:
    from smcp.core import errors

    try:
        return await computer.get_resources(req.mcp_server, req.cursor, req.req_id)
    except errors.SMCPError:
        raise
    except Exception as exc:
        from smcp.computer._hygiene import public_reason

        reason = public_reason(exc, f"listing the resources of MCP server '{req.mcp_server}'")
        raise errors.MCPServerNotFoundError(
            f"MCP server '{req.mcp_server}' failed to list resources: {reason}",
            fields={"mcp_server": req.mcp_server},
        ) from exc


async def _get_skills(computer: Computer, req: Any) -> dict[str, Any]:
    return {"skills": computer.list_skills(), "req_id": req.req_id}


async def _get_skill(computer: Computer, req: Any) -> dict[str, Any]:
    return await computer.get_skill(req.name, req.rel_path, req.req_id)


async def _get_blob(computer: Computer, req: Any) -> dict[str, Any]:
    return await computer.get_blob(req.blob_handle, req.chunk_offset, req.max_chunk_bytes, req.req_id)


async def _put_blob(computer: Computer, req: Any) -> dict[str, Any]:
    return await computer.put_blob(req)


_Route = Callable[["Computer", Any], Awaitable[dict[str, Any]]]
_Parser = Callable[[ClientEvent, Any], "BaseModel"]

#: Which Computer method serves each ``client:*`` event, and how its request is parsed. Uploads
#: are parsed strictly: the protocol rejects a boolean or string ``total_size``.
_ROUTES: dict[ClientEvent, tuple[_Route, _Parser]] = {
    ClientEvent.TOOL_CALL: (_tool_call, _parse),
    ClientEvent.GET_TOOLS: (_get_tools, _parse),
    ClientEvent.GET_CONFIG: (_get_config, _parse),
    ClientEvent.GET_DESKTOP: (_get_desktop, _parse),
    ClientEvent.GET_RESOURCES: (_get_resources, _parse),
    ClientEvent.GET_SKILLS: (_get_skills, _parse),
    ClientEvent.GET_SKILL: (_get_skill, _parse),
    ClientEvent.GET_BLOB: (_get_blob, _parse),
    ClientEvent.PUT_BLOB: (_put_blob, _parse_upload),
}
