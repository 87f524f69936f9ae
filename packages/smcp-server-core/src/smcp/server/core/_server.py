"""The SMCP server: wiring of the event handlers, connect and authentication, lifecycle.

The office events live in :mod:`._offices`, the ``client:*`` relay in :mod:`._relay`; both are
built with the one wrapper of :mod:`._handlers`. Every use of python-socketio beyond its
documented API is in :mod:`._socketio_internals`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from smcp.core import wire
from smcp.core._engineio_log import EngineIOLog
from smcp.core.errors import BadRequestError
from smcp.core.events import EVENTS, NAMESPACE
from smcp.core.versioning import check_version
from smcp.server.core._auth import AllowAll, AuthProvider, AuthRefused, OfficeAuthorizer
from smcp.server.core._calls import CallListener
from smcp.server.core._gate import first_query_value
from smcp.server.core._handlers import Handler
from smcp.server.core._json import JsonCodec, fast_json
from smcp.server.core._metrics import ServerMetrics
from smcp.server.core._offices import Offices
from smcp.server.core._quotas import Quotas
from smcp.server.core._registry import MemoryRegistry, Registry, Session
from smcp.server.core._relay import Relay, TooLarge
from smcp.server.core._settings import ServerSettings
from smcp.server.core._socketio_internals import (
    drop_connections,
    limit_output,
    oversize_aware_server_class,
    packet_class,
    raw_header,
    send_raw_ack,
    sid_of,
    start_manager,
    trigger_ack,
)

if TYPE_CHECKING:
    import socketio

    from smcp.server.core._audit import AuditTrail
    from smcp.server.core._cluster import RedisCluster
    from smcp.server.core._policy import Policy

__all__ = ["HandlerWrapper", "SMCPServer"]

log = logging.getLogger("smcp.server")

#: ``wrapper(event, handler) -> handler`` of :meth:`SMCPServer.wrap_handlers`.
HandlerWrapper = Callable[[str, Handler], Handler]

_CLIENT_REQUESTS = frozenset(spec.name for spec in EVENTS.values() if spec.is_client_request)


class _SenderView:
    """What the request wrapper reads from the server, with ``session`` found by its sid."""

    def __init__(self, server: SMCPServer, session: Session) -> None:
        self._server = server
        self.registry = _WithSession(server.registry, session)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _WithSession:
    """A registry in which ``session``'s sid finds ``session``; everything else is the registry's."""

    def __init__(self, registry: Registry, session: Session) -> None:
        self._registry = registry
        self._session = session

    async def get(self, sid: str) -> Session | None:
        if sid == self._session.sid:
            return self._session
        return await self._registry.get(sid)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    scope = environ.get("asgi.scope")
    if isinstance(scope, Mapping) and "headers" in scope:
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }


def _remote(environ: Mapping[str, Any]) -> str | None:
    scope = environ.get("asgi.scope")
    if isinstance(scope, Mapping) and scope.get("client"):
        host, port = scope["client"][:2]
        return f"{host}:{port}"
    addr = environ.get("REMOTE_ADDR")
    return addr if isinstance(addr, str) else None


class SMCPServer:
    """An A2C-SMCP server on a python-socketio ``AsyncServer``.

    Attach :attr:`sio` to any python-socketio host (``smcp.server.asgi.create_app`` for ASGI,
    ``sio.attach(app)`` for aiohttp, ...). ``auth`` decides who may connect (default: everyone,
    with a warning); ``authorize_office(principal, office_id)`` decides who may join which office.
    ``json`` encodes and decodes this server's Socket.IO packets (default :func:`fast_json`);
    ``client_manager`` is python-socketio's client manager (default: its in-memory one).
    ``policy(principal, office, event, request)`` may refuse any ``client:*`` request before it is
    relayed (see :data:`~smcp.server.core.Policy`); an ``AuditTrail`` records through its ``attach``.
    ``cluster`` (a :class:`~smcp.server.core.RedisCluster`) makes this server one node of a
    cluster: it brings the registry and the client manager, and :meth:`start` must be awaited.
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        auth: AuthProvider | None = None,
        *,
        authorize_office: OfficeAuthorizer | None = None,
        registry: Registry | None = None,
        json: JsonCodec | None = None,
        client_manager: socketio.AsyncManager | None = None,
        policy: Policy | None = None,
        cluster: RedisCluster | None = None,
    ) -> None:
        self.settings = settings or ServerSettings()
        self.cluster = cluster
        if cluster is not None:
            if registry is not None or client_manager is not None:
                raise TypeError("cluster brings its own registry and client_manager; pass none of them")
            registry, client_manager = cluster.registry, cluster.client_manager
        if auth is None:
            log.warning("SMCPServer has no auth provider: every connection is accepted")
            auth = AllowAll()
        self.auth: AuthProvider = auth
        self.authorize_office = authorize_office
        self.registry: Registry = registry if registry is not None else MemoryRegistry()
        self.metrics = ServerMetrics()
        #: Called after every answered ``client:*`` request; see :meth:`add_call_listener`.
        self.call_listeners: list[CallListener] = []
        self.policy = policy
        self.quotas = Quotas(self.settings, self.metrics)
        #: Set by :meth:`AuditTrail.attach`.
        self.audit: AuditTrail | None = None
        self._closing = False
        s = self.settings
        self.sio: socketio.AsyncServer = oversize_aware_server_class()(
            self._oversized,
            s.max_message_size,
            self._reserved,
            self._malformed,
            client_manager=client_manager,
            async_mode="asgi",
            cors_allowed_origins=s.cors_allowed_origins,
            max_http_buffer_size=s.effective_transport_limit,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            logger=False,
            engineio_logger=EngineIOLog("server"),
            serializer=packet_class(json if json is not None else fast_json()),
        )
        limit_output(self.sio.eio, s.effective_output_limit, self._slow_consumer)
        self._offices = Offices(self)
        self._relay = Relay(self)
        #: The handler of every event the server serves, as registered (wrappers included).
        self._handlers: dict[str, Handler] = {**self._offices.handlers(), **self._relay.handlers()}
        self._wrappers: list[tuple[HandlerWrapper, frozenset[str]]] = []
        self._register()
        wire.warm_up()

    # -- wiring -------------------------------------------------------------------------------

    def _register(self) -> None:
        on = self.sio.on
        on("connect", self._on_connect, namespace=NAMESPACE)
        on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        for event, handler in self._handlers.items():
            on(event, handler, namespace=NAMESPACE)
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
        refusal: AuthRefused | None = None
        try:
            principal = await self.auth.authenticate(auth, _headers(environ))
        except AuthRefused as exc:
            principal, refusal = None, exc
        except Exception:
            log.exception("auth provider raised; connection refused")
            principal = None
        if principal is None:
            reason = "invalid_credential" if refusal is None else refusal.reason
            self.metrics.count_auth_failure(reason)
            remote = _remote(environ)
            log.info(
                "refused a connection from %s: authentication failed (%s)",
                remote or "?",
                reason,
                extra={"sid": sid},
            )
            if self.audit is not None:
                self.audit.record("connect_refused", reason=reason, remote=remote)
            if refusal is not None:
                # ``data`` (optional on the wire) lets a client tell a bad credential from a busy server.
                raise socketio.exceptions.ConnectionRefusedError(
                    f"Connection refused by server: {refusal}", {"code": 401, "reason": reason}
                )
            raise socketio.exceptions.ConnectionRefusedError(
                "Connection refused by server: authentication failed "
                '(send the credential in the Socket.IO auth object, e.g. {"token": "..."})'
            )
        over = self.quotas.connect(principal.id, sid)
        if over is not None:
            if self.audit is not None:
                remote = _remote(environ)
                self.audit.record("connect_refused", reason="quota", principal=principal.id, remote=remote)
            raise socketio.exceptions.ConnectionRefusedError(over, {"code": 429, "reason": "quota"})
        try:
            await self.registry.add(Session(sid, version, principal))
        except Exception:
            self.quotas.disconnect(sid)
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
                await self._forget(session, "disconnected")
            else:
                # Gone already (evicted, possibly by another node): only this process's counts remain.
                self._forget_local(sid)
            log.debug("disconnected", extra={"sid": sid, "reason": str(reason)})
        except Exception:
            log.exception("error while handling a disconnect", extra={"sid": sid})

    async def _forget(self, session: Session, why: str) -> None:
        """``session`` was removed from the registry: count it and tell its office."""
        self._forget_local(session.sid)
        if session.office is not None and self.audit is not None:
            self.audit.record(
                "leave",
                principal=session.principal.id if session.principal is not None else None,
                office=session.office,
                role=session.role,
                name=session.name,
                why=why,
            )
        await self._offices.member_gone(session)

    def _forget_local(self, sid: str) -> None:
        if self.quotas.disconnect(sid):  # false when the connection is another node's
            self.metrics.connections -= 1
        self._relay.computer_gone(sid)

    async def evict(self, sid: str, why: str = "taken_over") -> bool:
        """Drop the connection ``sid`` now (its office is told it left); false if it was gone."""
        session = await self.registry.remove(sid)
        if session is None:
            return False
        await self._forget(session, why)
        try:
            await self.sio.disconnect(sid, namespace=NAMESPACE)
        except Exception:
            log.debug("disconnecting an evicted session failed", exc_info=True, extra={"sid": sid})
        return True

    # -- what no handler takes ----------------------------------------------------------------

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        self.metrics.count_rejection("<unknown>")
        reason = (
            "notify:* events are sent by the server only"
            if event.startswith("notify:")
            else f"unknown event {event!r}"
        )
        return wire.invalid_payload(event, "<event>", reason).to_payload()

    async def _reserved(self, eio_sid: str, namespace: str, ack_id: int | None, name: Any) -> None:
        """A client event named like one of Socket.IO's own (``disconnect``, ...): refused, no effect."""
        if isinstance(name, str):
            event, reason = name, f"{name!r} is reserved by Socket.IO; a client cannot send it as an event"
        else:
            event, reason = "<event>", "the event name must be a string"
        self.metrics.count_rejection(event)
        log.debug("refused a reserved event: %s", reason, extra={"event": event})
        if ack_id is not None and sid_of(self.sio, eio_sid, namespace) is not None:
            payload = wire.invalid_payload(event, "<event>", reason).to_payload()
            await send_raw_ack(self.sio, eio_sid, namespace, ack_id, payload)

    async def _malformed(self, eio_sid: str, data: str, exc: Exception) -> None:
        """A message that is no valid Socket.IO packet: logged in one line, answered when it can be."""
        header = raw_header(data)
        event = header.event if header is not None else "<packet>"
        self.metrics.count_rejection(event)
        log.warning("refused a malformed Socket.IO message (%s): %.80r", exc, data)
        if header is None or header.kind != "2" or header.ack_id is None:
            return
        if sid_of(self.sio, eio_sid, header.namespace) is None:
            return
        payload = wire.invalid_payload(event, "<packet>", "not a valid Socket.IO packet").to_payload()
        await send_raw_ack(self.sio, eio_sid, header.namespace, header.ack_id, payload)

    async def _oversized(self, eio_sid: str, data: str) -> None:
        """A message over ``max_message_size``: answer it (or fail its relay) without parsing it."""
        header = raw_header(data)
        if header is None:
            log.warning("dropped an oversized message of %d bytes with no readable header", len(data))
            return
        size = len(data)
        sid = sid_of(self.sio, eio_sid, header.namespace)
        if header.kind == "3" and header.ack_id is not None and sid is not None:
            # A Computer's reply: fail the waiting relay instead of dropping the connection.
            await trigger_ack(self.sio, sid, header.ack_id, [TooLarge(size)])
            return
        event = header.event
        limit = self.settings.max_message_size
        log.warning("refused a %d-byte %s message (limit %d)", size, event, limit)
        self.metrics.count_rejection(event)
        if header.kind == "2" and header.ack_id is not None:
            payload = BadRequestError(
                f"{event}: message of {size} bytes exceeds the server limit of "
                f"{limit} bytes; send less data per message",
                details={"event": event, "field": "<payload>", "reason": "too_large", "size": size},
            ).to_payload()
            await send_raw_ack(self.sio, eio_sid, header.namespace, header.ack_id, payload)

    async def _slow_consumer(self, eio_sid: str, queued: int) -> None:
        """A client stopped reading and its output passed ``output_limit``: it was dropped."""
        self.metrics.slow_consumer_drops_total += 1
        log.warning(
            "dropped a connection that stopped reading: %d bytes waiting to be sent (output limit %d)",
            queued,
            self.settings.effective_output_limit,
            extra={"eio_sid": eio_sid},
        )

    # -- listeners --------------------------------------------------------------------------

    def add_call_listener(self, listener: CallListener) -> None:
        """Call ``listener(FinishedCall)`` after every answered ``client:*`` request.

        It runs on the event loop and must not block (hand work to a queue). Add listeners
        before the server takes traffic.
        """
        self.call_listeners.append(listener)

    def wrap_handlers(self, wrapper: HandlerWrapper, events: Iterable[str] | None = None) -> None:
        """Wrap the handler of each event in ``events`` (default: every ``client:*`` request).

        ``wrapper(event, handler)`` returns the handler to use instead: an ``async`` callable
        ``(sid, *args)`` that returns the ack. Wrappers nest (the last one added runs first) and
        also wrap :meth:`request_as`. Add them before the server takes traffic.
        """
        chosen = frozenset(events) if events is not None else _CLIENT_REQUESTS
        unknown = sorted(chosen - self._handlers.keys())
        if unknown:
            raise ValueError(f"the server has no handler for {', '.join(unknown)}")
        for event in chosen:
            handler = wrapper(event, self._handlers[event])
            self._handlers[event] = handler
            self.sio.on(event, handler, namespace=NAMESPACE)
        self._wrappers.append((wrapper, chosen))

    async def request_as(self, session: Session, event: str, data: Any) -> Any:
        """Answer the ``client:*`` request ``event`` for ``session``, a sender with no connection.

        ``session`` (not in the registry) gives the sender's sid, principal, role, name and office,
        as a joined client's session would: an operator's console calling a tool, say. The request
        takes a connected client's path: parsing, the sender checks, the policy, the relay with its
        deadline, metrics, call listeners (the audit trail) and the wrappers of
        :meth:`wrap_handlers`; the office is not told of the sender. Returns the ack.
        """
        spec = EVENTS.get(event)
        if spec is None or not spec.is_client_request:
            raise ValueError(f"{event!r} is not a client:* request")
        handler = self._relay.handler(spec, _SenderView(self, session))
        for wrapper, events in self._wrappers:
            if event in events:
                handler = wrapper(event, handler)
        return await handler(session.sid, data)

    async def ask_computer(self, computer: Session, event: str, data: Any, timeout: float) -> Any:  # noqa: ASYNC109
        """Send ``event`` with ``data`` to the Computer session ``computer`` and return its answer.

        For server-side features that read from Computers (the console's tool lists): no sender
        checks, no call metrics, no call listeners. ``computer`` may be held by another node of a
        cluster. A timeout after ``timeout`` seconds, a Computer that left or a shutdown is
        answered with the ErrorPayload an Agent would get (404, 408, 503).
        """
        _, reply = await self._relay.ask(computer, event, data, timeout)
        return reply

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the cluster link (heartbeat, cross-node channels) before taking traffic; no-op alone."""
        cluster = self.cluster
        if cluster is None:
            return
        start_manager(self.sio)
        cluster.on_message = self._relay.on_cluster_message
        cluster.on_node_dead = self._relay.node_gone
        cluster.watched = self._relay.by_node.keys
        cluster.registry.on_purged = self._offices.members_purged
        await cluster.start()

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
        await self._relay.stop(self.settings.shutdown_timeout)
        # Let the handlers that just returned send their acks.
        await asyncio.sleep(0.05)
        if disconnect:
            try:
                await asyncio.wait_for(drop_connections(self.sio.eio), 2.0)
            except Exception:
                log.debug("dropping the connections at shutdown failed", exc_info=True)
        if self.cluster is not None:
            await self.cluster.stop()
