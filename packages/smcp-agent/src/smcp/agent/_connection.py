"""The Agent's connection: the Socket.IO client, ack correlation, connection loss, reconnect with
re-join, and the version gate (docs/protocol.md §2, §3.1, §5.2).

:class:`Connection` knows the socket and the office session, not the protocol's methods: it sends
an event and returns its raw ack (or fails with a local error), joins and leaves the office, and
tells its owner through :class:`Hooks` what happened. The rules it follows (handshake URL,
credential, join request and ack, 4008 recovery, re-join backoff) come from
:mod:`smcp.core.handshake`, shared with the Computer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smcp.agent._handlers import AGENT_NOTIFICATIONS
from smcp.core._deadlines import Deadlines
from smcp.core._engineio_log import EngineIOLog
from smcp.core._socketio_internals import socketio_client
from smcp.core.errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    JoinRefusedError,
    LocalTimeoutError,
    NotConnectedError,
    ProtocolVersionError,
    SMCPError,
)
from smcp.core.events import NotifyEvent, ServerEvent
from smcp.core.handshake import (
    HANDSHAKE_TIMEOUT,
    Credential,
    auth_object,
    bounded_handshakes,
    check_join_ack,
    check_url,
    final_refusal,
    handshake_url,
    join_request,
    parse_join_ack,
    probe_version_gate,
    refusal_reason,
    version_error_from_body,
    version_error_from_exception,
)
from smcp.core.roles import Role
from smcp.core.versioning import PROTOCOL_VERSION

if TYPE_CHECKING:
    import socketio

    from smcp.agent._options import AgentOptions

logger = logging.getLogger("smcp.agent")

__all__ = ["Connection", "Hooks"]


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the owner of a :class:`Connection` is told (each awaited on the socket's read loop)."""

    #: The first connection is up.
    connected: Callable[[], Awaitable[None]]
    #: The connection dropped (in-flight requests have failed already).
    disconnected: Callable[[], Awaitable[None]]
    #: The office was joined (by :meth:`Connection.join` or by a re-join after a reconnect).
    joined: Callable[[str], Awaitable[None]]
    #: A reconnect is complete, its re-join included.
    reconnected: Callable[[], Awaitable[None]]
    #: A notification arrived (``data`` is ``{}`` when it was not an object).
    notified: Callable[[NotifyEvent, dict[str, Any]], Awaitable[None]]


class Connection:
    """One Agent's socket to the server and its place in an office."""

    def __init__(self, url: str, options: AgentOptions, credential: Credential, hooks: Hooks) -> None:
        self.url = url
        self.options = options
        self.protocol_version = PROTOCOL_VERSION
        #: The office joined right now (``None`` while re-joining after a reconnect).
        self.office: str | None = None
        #: A version rejection, or a refusal of a fixed credential, seen on a reconnect: every
        #: later request raises it.
        self.fatal: ProtocolVersionError | AuthenticationError | None = None
        self._credential = credential
        self._hooks = hooks
        self._target: str | None = None  # the office to be in again after a reconnect
        self._sio: socketio.AsyncClient | None = None
        self._link_up = False  # between our connect handler and the connection's loss
        self._waiting: dict[asyncio.Future[Any], str] = {}  # ack futures of call(), by event
        self._deadlines = Deadlines(_expire)
        self._ever_connected = False
        self._refusal: Any = None  # a connect_error the Socket.IO server answered (auth)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rejoin: asyncio.Task[Any] | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        sio = self._sio
        return sio is not None and self.options.namespace in sio.namespaces and self._link_up

    def client(self) -> socketio.AsyncClient:
        """The connected Socket.IO client; raises when there is none right now."""
        if self.fatal is not None:
            raise self.fatal
        sio = self._sio
        if sio is None:
            raise NotConnectedError("the Agent is not connected; call connect() first")
        # sio.connected turns true only after connect() returns; the namespace map is set earlier
        if self.options.namespace not in sio.namespaces or not self._link_up:
            raise NotConnectedError("the Agent is not connected right now (reconnecting); retry shortly")
        return sio

    # -- connecting --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect. Raises :class:`ConfigError` for a bad URL, :class:`ProtocolVersionError` (4008,
        never retried), :class:`AuthenticationError` (refused) or :class:`ConnectError` (unreachable).
        """
        try:
            check_url(self.url)
        except ConfigError:
            raise
        except ValueError as exc:  # urlsplit's own complaints, e.g. a broken IPv6 host
            raise ConfigError(f"invalid server URL {self.url!r}: {exc}") from None
        import socketio

        if self.connected:
            return
        if self._sio is not None:
            await self._drop()
        self.fatal = None
        self._refusal = None
        self._ever_connected = False
        opts = self.options
        sio = socketio_client(
            reconnection=opts.reconnect,
            reconnection_delay=0.5,
            reconnection_delay_max=5,
            handle_sigint=False,
            logger=False,
            engineio_logger=EngineIOLog(),
            websocket_extra_options={"max_msg_size": opts.max_message_size},
            **bounded_handshakes(min(opts.connect_timeout, HANDSHAKE_TIMEOUT)),
        )
        ns = opts.namespace
        sio.on("connect", self._on_connect, namespace=ns)
        sio.on("disconnect", self._on_disconnect, namespace=ns)
        sio.on("connect_error", self._on_connect_error, namespace=ns)
        for event in AGENT_NOTIFICATIONS:
            sio.on(event.value, self._notify_handler(event), namespace=ns)
        self._sio = sio
        url = handshake_url(self.url, self.protocol_version)
        try:
            await sio.connect(
                url,
                headers=dict(opts.headers),
                auth=self._auth,
                transports=list(opts.transports),
                namespaces=[ns],
                socketio_path=opts.socketio_path,
                wait_timeout=opts.connect_timeout,
            )
        except (socketio.exceptions.ConnectionError, RuntimeError, OSError, ValueError) as exc:
            # RuntimeError/OSError: aiohttp may fail reading the gate's 400 body on polling.
            await self._drop()
            await self._raise_connect_failure(url, exc)

    async def _raise_connect_failure(self, url: str, exc: BaseException) -> None:
        if self._refusal is not None:  # the server answered, so the version gate let us through
            reason = refusal_reason(self._refusal)
            raise AuthenticationError(
                f"the server refused the connection ({reason}); check the token"
            ) from None
        version = self.fatal or version_error_from_exception(exc)
        if version is None:
            opts = self.options
            version = await probe_version_gate(url, opts.socketio_path, opts.headers, opts.connect_timeout)
        if version is not None:
            raise version from None
        raise ConnectError(f"the server could not be reached at {self.url}: {_cause(exc)}") from exc

    async def _auth(self) -> dict[str, Any] | None:
        return await auth_object(self._credential, self.options.auth)

    async def _drop(self) -> None:
        sio, self._sio = self._sio, None
        if sio is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.disconnect(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.shutdown(), 5)

    async def close(self) -> None:
        """Close the connection (no automatic reconnect afterwards)."""
        for task in list(self._tasks):
            task.cancel()
        self.office = None
        self._target = None
        self._mark_lost()
        await self._drop()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- socket events -----------------------------------------------------------------------

    async def _on_connect(self) -> None:
        self._link_up = True
        if not self._ever_connected:
            self._ever_connected = True
            await self._hooks.connected()
            return
        # The read loop is blocked while this handler runs: do the round trips in a task.
        if self._rejoin is not None:
            self._rejoin.cancel()
        self._rejoin = self._spawn(self._after_reconnect())

    def _mark_lost(self) -> None:
        """The connection is gone: flag it and fail every ack still awaited."""
        self._link_up = False
        waiting, self._waiting = self._waiting, {}
        for fut, event in waiting.items():
            if not fut.done():
                fut.set_exception(
                    ConnectionLostError(f"the connection dropped while waiting for the answer to {event}")
                )

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._mark_lost()
        logger.info("disconnected from %s (%s)", self.url, reason)
        await self._hooks.disconnected()

    async def _on_connect_error(self, data: Any = None) -> None:
        version = version_error_from_body(data)
        if version is not None:
            self.fatal = version
            if self._ever_connected:
                logger.error("server rejected the protocol version on reconnect: %s; giving up", version)
                self._spawn(self._drop())
            return
        sio = self._sio
        if sio is not None and sio.eio.state == "connected":
            # the transport is up and the Socket.IO server answered CONNECT with a refusal
            self._refusal = data
            final = final_refusal(data, self._credential) if self._ever_connected else None
            if final is not None and self.fatal is None:
                self.fatal = final
                logger.error("%s; giving up", final)
                self._spawn(self._drop())
            return
        if self._ever_connected and self.options.transports[0] == "websocket":
            # a refused websocket handshake has no readable body: ask the gate once over HTTP
            self._spawn(self._probe_during_reconnect())

    async def _probe_during_reconnect(self) -> None:
        opts = self.options
        url = handshake_url(self.url, self.protocol_version)
        version = await probe_version_gate(url, opts.socketio_path, opts.headers, opts.connect_timeout)
        if version is not None and self.fatal is None:
            self.fatal = version
            logger.error("server rejected the protocol version on reconnect: %s; giving up", version)
            await self._drop()

    def _notify_handler(self, event: NotifyEvent) -> Callable[[Any], Awaitable[None]]:
        async def handle(data: Any = None, *_: Any) -> None:  # extra arguments are ignored, not fatal
            await self._hooks.notified(event, data if isinstance(data, dict) else {})

        return handle

    # -- re-join -------------------------------------------------------------------------------

    async def _after_reconnect(self) -> None:
        office = self._target
        if office is not None:
            self.office = None
            if not await self._rejoin_office(office):
                return
        await self._hooks.reconnected()

    async def _rejoin_office(self, office: str) -> bool:
        """Join ``office`` again, retrying with :class:`~smcp.core.handshake.JoinBackoff`.

        The server may still hold this Agent's old session (a half-open socket) and refuse the
        name until it reaps it; so refusals and timeouts are retried for ``options.rejoin_for``.
        """
        delays = self.options.rejoin_backoff.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.join(office)
                return True
            except ConnectionLostError:
                return False  # the next reconnect starts over
            except (JoinRefusedError, LocalTimeoutError, SMCPError, NotConnectedError) as exc:
                if self._sio is None or self._target != office:
                    return False
                delay = next(delays, None)
                if delay is None:
                    logger.error(
                        "could not re-join office %r after reconnecting (%d attempts in at least %g s): %s",
                        office,
                        attempt,
                        self.options.rejoin_for,
                        exc,
                    )
                    return False
                logger.warning("re-joining office %r failed (attempt %d): %s", office, attempt, exc)
                await asyncio.sleep(delay)

    # -- requests --------------------------------------------------------------------------------

    async def call(self, event: str, data: Any, timeout: float) -> Any:  # noqa: ASYNC109
        """Send ``event`` and return its ack; fail at the connection's loss or after ``timeout``.

        One future per call (no helper tasks, no timer of its own): the ack callback resolves it,
        the connection's :class:`~smcp.core._deadlines.Deadlines` fails it with
        :class:`LocalTimeoutError`, :meth:`_mark_lost` with
        :class:`ConnectionLostError`.
        """
        import socketio

        sio = self.client()
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()

        def on_ack(*args: Any) -> None:
            if not reply.done():
                reply.set_result(args[0] if len(args) == 1 else (args or None))

        self._waiting[reply] = event
        self._deadlines.add(reply, timeout, event, timeout)
        try:
            try:
                await sio.emit(event, data, namespace=self.options.namespace, callback=on_ack)
            except socketio.exceptions.BadNamespaceError:
                raise ConnectionLostError(f"the connection dropped before {event} was sent") from None
            return await reply
        finally:
            self._deadlines.discard(reply)
            self._waiting.pop(reply, None)

    async def emit(self, event: str, data: Any) -> None:
        """Send ``event`` without waiting for an ack."""
        await self.client().emit(event, data, namespace=self.options.namespace)

    # -- office ----------------------------------------------------------------------------------

    async def join(self, office: str) -> None:
        """Join ``office`` as an agent; raises :class:`JoinRefusedError` with the server's reason."""
        name = self.options.name
        payload = join_request(Role.AGENT, name, office)
        reply = await self.call(ServerEvent.JOIN_OFFICE.value, payload, self.options.request_timeout)
        check_join_ack(reply, office, name)
        self.office = office
        self._target = office
        await self._hooks.joined(office)

    async def leave(self) -> None:
        """Leave the current office; raises :class:`JoinRefusedError` if the server refuses."""
        from smcp.core import wire
        from smcp.core.models import LeaveOfficeReq

        office = self.office
        if office is None:
            return
        payload = wire.to_wire(LeaveOfficeReq(office_id=office))
        reply = await self.call(ServerEvent.LEAVE_OFFICE.value, payload, self.options.request_timeout)
        self.office = None
        self._target = None
        ok, reason = parse_join_ack(reply)
        if not ok:
            raise JoinRefusedError(office, reason or "leave refused", name=self.options.name)


def _expire(fut: asyncio.Future[Any], event: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(LocalTimeoutError(event, timeout))


def _cause(exc: BaseException) -> str:
    """The first message in ``exc``'s chain below python-socketio's ("Connection error")."""
    seen: BaseException | None = exc
    while seen is not None:
        if not type(seen).__module__.startswith(("socketio", "engineio")) and str(seen):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
