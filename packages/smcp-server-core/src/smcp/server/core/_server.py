"""The SMCP server: event handlers, office registry use and the relay of ``client:*`` requests."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from smcp.core.errors import (
    BadRequestError,
    ForbiddenError,
    InternalError,
    NotFoundError,
    RequestTimeoutError,
    SMCPError,
)
from smcp.core.events import EVENTS, NAMESPACE, ClientEvent, EventSpec, NotifyEvent, ServerEvent
from smcp.core.versioning import check_version
from smcp.server.core._auth import AllowAll, AuthProvider, OfficeAuthorizer, Principal
from smcp.server.core._gate import first_query_value
from smcp.server.core._json import fast_json
from smcp.server.core._metrics import ServerMetrics
from smcp.server.core._registry import JoinRejected, MemoryRegistry, Registry, Session
from smcp.server.core._settings import ServerSettings
from smcp.server.core._socketio_internals import drop_connections, packet_class, use_timer_poll

if TYPE_CHECKING:
    import socketio

__all__ = ["SMCPServer"]

log = logging.getLogger("smcp.server")

# Sentinels a pending relay future can be resolved with instead of the Computer's ack arguments.
_TIMEOUT = ("timeout",)
_GONE = ("gone",)
_SHUTDOWN = ("shutdown",)

_AGENT = "agent"
_COMPUTER = "computer"

Handler = Callable[..., Awaitable[Any]]


def _not_found(name: str) -> dict[str, Any]:
    return NotFoundError(
        f"Computer with name '{name}' not found", details={"computer_name": name}
    ).to_payload()


def _shutting_down() -> dict[str, Any]:
    return InternalError(
        "Server is shutting down; reconnect (to another server if you have one) and retry", code=503
    ).to_payload()


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    scope = environ.get("asgi.scope")
    if isinstance(scope, Mapping) and "headers" in scope:
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }


class SMCPServer:
    """An A2C-SMCP server on a python-socketio ``AsyncServer``.

    Attach :attr:`sio` to any python-socketio host (``smcp.server.asgi.create_app`` for ASGI,
    ``sio.attach(app)`` for aiohttp, ...). ``auth`` decides who may connect (default: everyone,
    with a warning); ``authorize_office(principal, office_id)`` decides who may join which office.
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        auth: AuthProvider | None = None,
        *,
        authorize_office: OfficeAuthorizer | None = None,
        registry: Registry | None = None,
        json: Any = None,
    ) -> None:
        import socketio

        from smcp.core import wire

        self.settings = settings or ServerSettings()
        if auth is None:
            log.warning("SMCPServer has no auth provider: every connection is accepted")
            auth = AllowAll()
        self.auth: AuthProvider = auth
        self.authorize_office = authorize_office
        self.registry: Registry = registry if registry is not None else MemoryRegistry()
        self.metrics = ServerMetrics()
        self._wire = wire
        self._closing = False
        self._idle: asyncio.Event | None = None
        # target sid -> futures of relays waiting for that Computer
        self._pending: dict[str, set[asyncio.Future[tuple[Any, ...]]]] = {}
        s = self.settings
        if json is None:
            json = fast_json()
        self.sio: socketio.AsyncServer = _server_class()(
            self._oversized,
            s.max_message_size,
            async_mode="asgi",
            cors_allowed_origins=s.cors_allowed_origins,
            max_http_buffer_size=s.effective_transport_limit,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            logger=False,
            engineio_logger=False,
            serializer=packet_class(json),
        )
        self._packet_event = socketio.packet.EVENT
        self._packet_ack = socketio.packet.ACK
        self._register()
        wire.warm_up()

    # -- wiring -------------------------------------------------------------------------------

    def _register(self) -> None:
        on = self.sio.on
        on("connect", self._on_connect, namespace=NAMESPACE)
        on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        on(ServerEvent.JOIN_OFFICE.value, self._on_join, namespace=NAMESPACE)
        on(ServerEvent.LEAVE_OFFICE.value, self._on_leave, namespace=NAMESPACE)
        on(ServerEvent.LIST_ROOM.value, self._on_list_room, namespace=NAMESPACE)
        on(ServerEvent.TOOL_CALL_CANCEL.value, self._on_cancel, namespace=NAMESPACE)
        for event in (
            ServerEvent.UPDATE_CONFIG,
            ServerEvent.UPDATE_TOOL_LIST,
            ServerEvent.UPDATE_DESKTOP,
            ServerEvent.UPDATE_SKILLS,
        ):
            on(event.value, self._update_handler(EVENTS[event.value]), namespace=NAMESPACE)
        for client_event in ClientEvent:
            on(client_event.value, self._relay_handler(EVENTS[client_event.value]), namespace=NAMESPACE)
        on("*", self._on_unknown, namespace=NAMESPACE)

    # -- connection ---------------------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        import socketio

        if self._closing:
            raise socketio.exceptions.ConnectionRefusedError("Server is shutting down; retry later")
        version = first_query_value(environ.get("QUERY_STRING", ""))
        if self.settings.check_version_on_connect:
            rejection = check_version(version)
            if rejection is not None:
                self.metrics.version_rejections_total += 1
                raise socketio.exceptions.ConnectionRefusedError(rejection.body["message"], rejection.body)
        try:
            principal = await self.auth.authenticate(auth, _headers(environ))
        except Exception:
            log.exception("auth provider raised; connection refused")
            principal = None
        if principal is None:
            self.metrics.auth_failures_total += 1
            log.debug("connection refused: authentication failed", extra={"sid": sid})
            raise socketio.exceptions.ConnectionRefusedError(
                "Connection refused by server: authentication failed "
                '(send the credential in the Socket.IO auth object, e.g. {"token": "..."})'
            )
        try:
            await self.registry.add(Session(sid, version, principal))
        except Exception:
            log.exception("registry refused a new session; connection refused", extra={"sid": sid})
            raise socketio.exceptions.ConnectionRefusedError(
                "Connection refused by server: session registry unavailable; retry later"
            ) from None
        self.metrics.connections += 1
        self.metrics.connections_total += 1
        log.debug("connected", extra={"sid": sid, "a2c_version": version, "principal": principal.id})
        return True

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        try:
            session = await self.registry.remove(sid)
            if session is not None:
                self.metrics.connections -= 1
            futures = self._pending.pop(sid, None)
            if futures:
                for fut in futures:
                    if not fut.done():
                        fut.set_result(_GONE)
            if session is not None and session.office is not None:
                await self._announce(NotifyEvent.LEAVE_OFFICE, session.office, session, sid)
                self.metrics.offices = await self.registry.office_count()
            log.debug("disconnected", extra={"sid": sid, "reason": str(reason)})
        except Exception:
            log.exception("error while handling a disconnect", extra={"sid": sid})

    # -- offices ------------------------------------------------------------------------------

    async def _on_join(self, sid: str, *args: Any) -> tuple[bool, str | None]:
        event = ServerEvent.JOIN_OFFICE.value
        try:
            ok, reason = await self._join(sid, args[0] if args else None)
        except Exception:
            log.exception("error in %s", event, extra={"sid": sid})
            ok, reason = False, "Internal server error; the join was not applied, try again"
        if ok:
            self.metrics.joins_total += 1
        else:
            self.metrics.join_failures_total += 1
            log.debug("join refused: %s", reason, extra={"sid": sid})
        return ok, reason

    async def _join(self, sid: str, data: Any) -> tuple[bool, str | None]:
        if self._closing:
            return False, "Server is shutting down; reconnect and join again"
        try:
            req: Any = self._wire.parse_request(ServerEvent.JOIN_OFFICE.value, data)
        except BadRequestError as exc:
            return False, exc.message
        office: str = req.office_id
        if not office:
            return False, "office_id must not be empty"
        session = await self.registry.get(sid)
        if session is None:
            return False, "Connection is not registered; reconnect and join again"
        if self.authorize_office is not None and not await self._authorized(session.principal, office):
            return False, f"Not allowed to join office '{office}' with this credential"
        role: str = req.role
        name: str = req.name or f"{role}_{sid[:6]}"
        try:
            outcome = await self.registry.join(
                sid, role, name, office, max_agents=self.settings.max_agents_per_office
            )
        except JoinRejected as exc:
            return False, str(exc)
        if outcome.left is not None:
            old_office, old_name = outcome.left
            await self._announce_raw(NotifyEvent.LEAVE_OFFICE, old_office, role, old_name, sid)
            if old_office != office:
                await self.sio.leave_room(sid, old_office, namespace=NAMESPACE)
        if outcome.entered:
            await self.sio.enter_room(sid, office, namespace=NAMESPACE)
            await self._announce_raw(NotifyEvent.ENTER_OFFICE, office, role, name, sid)
        self.metrics.offices = await self.registry.office_count()
        return True, None

    async def _authorized(self, principal: Principal | None, office: str) -> bool:
        assert self.authorize_office is not None
        if principal is None:
            return False
        try:
            allowed = self.authorize_office(principal, office)
            if inspect.isawaitable(allowed):
                allowed = await allowed
        except Exception:
            log.exception("authorize_office hook raised; join refused")
            return False
        return bool(allowed)

    async def _on_leave(self, sid: str, *args: Any) -> tuple[bool, str | None]:
        event = ServerEvent.LEAVE_OFFICE.value
        try:
            try:
                req: Any = self._wire.parse_request(event, args[0] if args else None)
            except BadRequestError as exc:
                return False, exc.message
            try:
                before = await self.registry.leave(sid, req.office_id)
            except JoinRejected as exc:
                return False, str(exc)
            await self._announce(NotifyEvent.LEAVE_OFFICE, req.office_id, before, sid)
            await self.sio.leave_room(sid, req.office_id, namespace=NAMESPACE)
            self.metrics.offices = await self.registry.office_count()
            return True, None
        except Exception:
            log.exception("error in %s", event, extra={"sid": sid})
            return False, "Internal server error; try again"

    async def _announce(self, event: NotifyEvent, office: str, member: Session, skip: str) -> None:
        await self._announce_raw(event, office, member.role or _COMPUTER, member.name or "", skip)

    async def _announce_raw(self, event: NotifyEvent, office: str, role: str, name: str, skip: str) -> None:
        key = _AGENT if role == _AGENT else _COMPUTER
        self.metrics.notifications_total += 1
        await self.sio.emit(
            event.value, {"office_id": office, key: name}, to=office, skip_sid=skip, namespace=NAMESPACE
        )

    async def _on_list_room(self, sid: str, *args: Any) -> dict[str, Any]:
        event = ServerEvent.LIST_ROOM.value
        try:
            req: Any = self._wire.parse_request(event, args[0] if args else None)
            session = await self.registry.get(sid)
            if session is None or session.office != req.office_id:
                raise ForbiddenError(
                    f"{event}: you can only list your own office; join '{req.office_id}' first",
                    details={"event": event, "office_id": req.office_id},
                )
            sessions = []
            for member in await self.registry.members(req.office_id):
                info: dict[str, Any] = {
                    "sid": member.sid,
                    "name": member.name or "",
                    "role": member.role,
                    "office_id": member.office or "",
                }
                if member.a2c_version:
                    info["a2c_version"] = member.a2c_version
                sessions.append(info)
            return {"sessions": sessions, "req_id": req.req_id}
        except SMCPError as exc:
            self.metrics.count_rejection(event)
            return exc.to_payload()
        except Exception as exc:
            return self._internal(event, sid, exc)

    # -- notifications from members -----------------------------------------------------------

    def _update_handler(self, spec: EventSpec) -> Handler:
        event = spec.name
        assert spec.notifies is not None
        notify = spec.notifies.value

        async def handler(sid: str, *args: Any) -> dict[str, Any] | None:
            try:
                self._wire.parse_request(event, args[0] if args else None)
                session = await self.registry.get(sid)
                if session is None or session.role != _COMPUTER:
                    raise ForbiddenError(
                        f"{event} may only be sent by a computer",
                        details={"event": event, "reason": "role"},
                    )
                if session.office is None:
                    raise ForbiddenError(
                        f"{event}: join an office first", details={"event": event, "reason": "no_office"}
                    )
                self.metrics.notifications_total += 1
                await self.sio.emit(
                    notify, {"computer": session.name}, to=session.office, skip_sid=sid, namespace=NAMESPACE
                )
                return None
            except SMCPError as exc:
                self.metrics.count_rejection(event)
                return exc.to_payload()
            except Exception as exc:
                return self._internal(event, sid, exc)

        return handler

    async def _on_cancel(self, sid: str, *args: Any) -> dict[str, Any] | None:
        event = ServerEvent.TOOL_CALL_CANCEL.value
        try:
            req: Any = self._wire.parse_request(event, args[0] if args else None)
            session = await self.registry.get(sid)
            if session is None or session.role != _AGENT:
                raise ForbiddenError(
                    f"{event} may only be sent by an agent", details={"event": event, "reason": "role"}
                )
            if session.office is None:
                raise ForbiddenError(
                    f"{event}: join an office first", details={"event": event, "reason": "no_office"}
                )
            if req.agent != session.name:
                raise ForbiddenError(
                    f"{event}: field 'agent' must be your own name '{session.name}'",
                    details={"event": event, "field": "agent", "reason": "not_sender"},
                )
            self.metrics.notifications_total += 1
            await self.sio.emit(
                NotifyEvent.TOOL_CALL_CANCEL.value,
                {"agent": session.name, "req_id": req.req_id},
                to=session.office,
                skip_sid=sid,
                namespace=NAMESPACE,
            )
            return None
        except SMCPError as exc:
            self.metrics.count_rejection(event)
            return exc.to_payload()
        except Exception as exc:
            return self._internal(event, sid, exc)

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        self.metrics.count_rejection("<unknown>")
        reason = (
            "notify:* events are sent by the server only"
            if event.startswith("notify:")
            else f"unknown event {event!r}"
        )
        return self._wire.invalid_payload(event, "<event>", reason).to_payload()

    def _internal(self, event: str, sid: str, exc: Exception) -> dict[str, Any]:
        log.error("error in %s", event, exc_info=exc, extra={"sid": sid})
        return InternalError(f"Internal server error while handling {event}; see the server log").to_payload()

    # -- relay ------------------------------------------------------------------------------

    def _relay_handler(self, spec: EventSpec) -> Handler:
        event = spec.name
        is_tool_call = event == ClientEvent.TOOL_CALL.value
        default_timeout = self.settings.default_timeout
        grace = self.settings.grace
        registry = self.registry
        metrics = self.metrics
        parse_request = self._wire.parse_request

        async def handler(sid: str, *args: Any) -> dict[str, Any]:
            outcome = "internal"
            try:
                if self._closing:
                    outcome = "shutdown"
                    return _shutting_down()
                data: Any = args[0] if args else None
                try:
                    req: Any = parse_request(event, data)
                except BadRequestError as exc:
                    outcome = "bad_request"
                    return exc.to_payload()
                session = await registry.get(sid)
                if session is None or session.role != _AGENT:
                    outcome = "forbidden"
                    return ForbiddenError(
                        f"{event} may only be sent by an agent that joined an office",
                        details={"event": event, "reason": "role"},
                    ).to_payload()
                office = session.office
                if office is None:
                    outcome = "forbidden"
                    return ForbiddenError(
                        f"{event}: join an office first", details={"event": event, "reason": "no_office"}
                    ).to_payload()
                name: str = req.computer
                target = await registry.lookup(office, name)
                if target is None or target.role != _COMPUTER:
                    outcome = "not_found"
                    return _not_found(name)
                if is_tool_call:
                    timeout: int = req.timeout
                    deadline = timeout + grace
                    if data["timeout"].__class__ is not int:
                        data = {**data, "timeout": timeout}
                else:
                    deadline = default_timeout
                started = time.perf_counter()
                reply = await self._forward(target.sid, event, data, deadline)
                if isinstance(reply, dict):
                    metrics.observe_latency(time.perf_counter() - started)
                    outcome = "error" if "code" in reply and "isError" not in reply else "ok"
                    return reply
                outcome, payload = self._relay_failure(reply, event, name, deadline)
                return payload
            except Exception as exc:
                return self._internal(event, sid, exc)
            finally:
                metrics.count_call(event, outcome)

        return handler

    async def _forward(self, target_sid: str, event: str, data: Any, deadline: float) -> Any:
        """Send ``event`` to one Computer and wait for its ack, the deadline or its disconnect.

        Returns the single ack object, or a sentinel tuple / the raw ack tuple on failure.
        """
        sio = self.sio
        manager = sio.manager
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[Any, ...]] = loop.create_future()

        def on_ack(*reply: Any) -> None:
            if not fut.done():
                fut.set_result(reply)

        eio_sid = manager.eio_sid_from_sid(target_sid, NAMESPACE)
        if eio_sid is None:
            return _GONE
        pending = self._pending.get(target_sid)
        if pending is None:
            pending = self._pending[target_sid] = set()
        pending.add(fut)
        ack_id = manager._generate_ack_id(target_sid, on_ack)
        timer = loop.call_later(deadline, _expire, fut)
        self.metrics.in_flight += 1
        try:
            await sio._send_packet(
                eio_sid,
                sio.packet_class(self._packet_event, namespace=NAMESPACE, data=[event, data], id=ack_id),
            )
            reply = await fut
        finally:
            self.metrics.in_flight -= 1
            if self._idle is not None and not self.metrics.in_flight:
                self._idle.set()
            timer.cancel()
            pending.discard(fut)
            if not pending and self._pending.get(target_sid) is pending:
                del self._pending[target_sid]
        if len(reply) == 1 and reply is not _TIMEOUT and reply is not _GONE and reply is not _SHUTDOWN:
            return reply[0]
        if reply is _TIMEOUT:
            callbacks = manager.callbacks.get(target_sid)
            if callbacks is not None:
                callbacks.pop(ack_id, None)
        return reply

    def _relay_failure(
        self, reply: Any, event: str, name: str, deadline: float
    ) -> tuple[str, dict[str, Any]]:
        if reply is _GONE:
            return "disconnected", _not_found(name)
        if reply is _TIMEOUT:
            return "timeout", RequestTimeoutError(
                f"Computer '{name}' did not answer {event} within {deadline:g} s",
                details={"computer_name": name, "event": event, "timeout": deadline},
            ).to_payload()
        if reply is _SHUTDOWN:
            return "shutdown", _shutting_down()
        if isinstance(reply, _TooLarge):
            text = (
                f"Computer '{name}' sent a reply of {reply.size} bytes to {event}, over the server's "
                f"limit of {self.settings.max_message_size} bytes (max_message_size); ask for less data"
            )
            log.warning("%s", text, extra={"computer": name, "event": event})
            if event == ClientEvent.TOOL_CALL.value:
                from smcp.core.results import error_result

                return "too_large", error_result(text, {"a2c_error": "reply_too_large"})
            return "too_large", InternalError(
                text, details={"computer_name": name, "event": event, "reason": "too_large"}
            ).to_payload()
        if isinstance(reply, tuple):
            kind = "nothing" if not reply else f"{len(reply)} values"
        else:
            kind = "null" if reply is None else type(reply).__name__
        log.warning(
            "Computer %r answered %s with %s instead of one JSON object",
            name,
            event,
            kind,
            extra={"computer": name, "event": event},
        )
        return "bad_reply", InternalError(
            f"Computer '{name}' sent an invalid reply to {event} (expected one JSON object, got {kind})",
            details={"computer_name": name, "event": event},
        ).to_payload()

    # -- oversized messages ------------------------------------------------------------------

    async def _oversized(self, eio_sid: str, data: str) -> None:
        """A message over ``max_message_size``: answer it (or fail its relay) without parsing it."""
        header = _HEADER.match(data, 0, 64)
        if header is None:
            log.warning("dropped an oversized message of %d bytes with no readable header", len(data))
            return
        kind, namespace, ack_id = header.group(1), header.group(2) or "/", header.group(3)
        size = len(data)
        sid = self.sio.manager.sid_from_eio_sid(eio_sid, namespace)
        if kind == "3" and ack_id is not None and sid is not None:
            # A Computer's reply: fail the waiting relay instead of dropping the connection.
            await self.sio.manager.trigger_callback(sid, int(ack_id), [_TooLarge(size)])
            return
        event_match = _EVENT_NAME.match(data, header.end(), header.end() + 300)
        event = event_match.group(1) if event_match else "<event>"
        log.warning("refused a %d-byte %s message (limit %d)", size, event, self.settings.max_message_size)
        self.metrics.count_rejection(event)
        if kind == "2" and ack_id is not None:
            payload = BadRequestError(
                f"{event}: message of {size} bytes exceeds the server limit of "
                f"{self.settings.max_message_size} bytes; send less data per message",
                details={"event": event, "field": "<payload>", "reason": "too_large", "size": size},
            ).to_payload()
            pkt = self.sio.packet_class(self._packet_ack, namespace=namespace, id=int(ack_id), data=[payload])
            await self.sio._send_packet(eio_sid, pkt)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once :meth:`shutdown` started."""
        return self._closing

    async def shutdown(self, *, disconnect: bool = True) -> None:
        """Stop accepting work, answer every in-flight request with an error, then drop every connection.

        Waits at most ``settings.shutdown_timeout`` seconds for the answers to be sent. Connections are
        dropped as a transport failure, not ended with a Socket.IO disconnect, so clients reconnect
        (to this server once it is back, or to another node) instead of giving up.
        """
        self._closing = True
        for futures in list(self._pending.values()):
            for fut in futures:
                if not fut.done():
                    fut.set_result(_SHUTDOWN)
        if self.metrics.in_flight:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), self.settings.shutdown_timeout)
            except TimeoutError:
                log.warning("%d relayed requests still unanswered at shutdown", self.metrics.in_flight)
        # Let the handlers that just returned send their acks.
        await asyncio.sleep(0.05)
        if disconnect:
            try:
                await asyncio.wait_for(drop_connections(self.sio.eio), 2.0)
            except Exception:
                log.debug("dropping the connections at shutdown failed", exc_info=True)


class _TooLarge:
    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


# Socket.IO packet header: type, optional "/namespace,", optional ack id.
_HEADER = re.compile(r"([0-6])(?:(/[^,]*),)?(\d+)?")
_EVENT_NAME = re.compile(r'\["((?:[^"\\]|\\.){0,200})"')

_SERVER_CLASS: type[Any] | None = None


def _server_class() -> type[Any]:
    """An ``AsyncServer`` that hands messages over the size limit to a callback."""
    global _SERVER_CLASS  # noqa: PLW0603 - built once, on first use, to keep socketio import lazy
    if _SERVER_CLASS is None:
        import socketio

        class _AsyncServer(socketio.AsyncServer):  # type: ignore[misc]
            def __init__(
                self, on_oversized: Callable[[str, str], Awaitable[None]], limit: int, **kwargs: Any
            ) -> None:
                super().__init__(**kwargs)
                self._smcp_oversized = on_oversized
                self._smcp_limit = limit

            async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
                use_timer_poll(self.eio, eio_sid)
                return await super()._handle_eio_connect(eio_sid, environ)

            async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
                if len(data) > self._smcp_limit and eio_sid not in self._binary_packet:
                    await self._smcp_oversized(eio_sid, data if isinstance(data, str) else "")
                    return
                await super()._handle_eio_message(eio_sid, data)

        _SERVER_CLASS = _AsyncServer
    return _SERVER_CLASS


def _expire(fut: asyncio.Future[tuple[Any, ...]]) -> None:
    if not fut.done():
        fut.set_result(_TIMEOUT)
