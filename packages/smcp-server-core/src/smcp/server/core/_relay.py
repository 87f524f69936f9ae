"""The relay of ``client:*`` requests: routing to the named Computer, pending calls, deadlines and
what a caller is told when the Computer does not answer properly (docs/protocol.md §5.6)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from smcp.core.errors import InternalError, NotFoundError, RequestTimeoutError, SMCPError
from smcp.core.events import EVENTS, NAMESPACE, ClientEvent, EventSpec
from smcp.core.roles import Role
from smcp.server.core import _tracing
from smcp.server.core._handlers import Call, Handler, object_handler
from smcp.server.core._socketio_internals import (
    forget_ack,
    forget_callback,
    is_default_manager,
    send_event_with_ack,
)

if TYPE_CHECKING:
    from smcp.server.core._server import SMCPServer

__all__ = ["Relay", "TooLarge", "shutting_down"]

log = logging.getLogger("smcp.server")

# Sentinels a pending relay future can be resolved with instead of the Computer's ack arguments.
_TIMEOUT = ("timeout",)
_GONE = ("gone",)
_SHUTDOWN = ("shutdown",)

#: The ``meta`` key of the error result an oversized tool-call reply becomes.
_META_ERROR = "a2c_error"


class TooLarge:
    """Stands in for a Computer's reply that was over ``max_message_size`` (never parsed)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


def not_found(name: str) -> NotFoundError:
    return NotFoundError(f"Computer with name '{name}' not found", details={"computer_name": name})


def shutting_down() -> SMCPError:
    return InternalError(
        "Server is shutting down; reconnect (to another server if you have one) and retry", code=503
    )


class Relay:
    """Forwards ``client:*`` requests of one :class:`SMCPServer` and waits for the answers.

    With python-socketio's default in-memory client manager the request is sent straight to the
    Computer's Engine.IO socket with an ack id the relay owns; with any other manager it goes
    through the public ``AsyncServer.emit(..., callback=)``. Both paths have the same deadline,
    disconnect (404) and shutdown (503) behaviour.
    """

    def __init__(self, server: SMCPServer, *, fast_path: bool | None = None) -> None:
        self._server = server
        self._sio = server.sio
        self._registry = server.registry
        self._metrics = server.metrics
        self._settings = server.settings
        self.fast_path = is_default_manager(server.sio.manager) if fast_path is None else fast_path
        #: target sid -> futures of relays waiting for that Computer.
        self.pending: dict[str, set[asyncio.Future[tuple[Any, ...]]]] = {}
        self._idle: asyncio.Event | None = None

    def handlers(self) -> dict[str, Handler]:
        """Event name → wrapped handler, for every ``client:*`` event of the table."""
        handlers: dict[str, Handler] = {}
        for spec in EVENTS.values():
            if not spec.is_client_request:
                continue
            handlers[spec.name] = object_handler(
                self._server, spec, self._business(spec), closing_error=shutting_down
            )
        return handlers

    def _business(self, spec: EventSpec) -> Any:
        event = spec.name
        own_deadline = spec.timeout == "tool_call"
        default_timeout = self._settings.default_timeout
        grace = self._settings.grace
        registry = self._registry
        metrics = self._metrics

        async def relay(call: Call) -> dict[str, Any]:
            session = call.session
            assert session is not None and session.office is not None
            name: str = call.req.computer
            target = await registry.lookup(session.office, name)
            if target is None or target.role != Role.COMPUTER:
                raise not_found(name)
            data = call.data
            if own_deadline:
                timeout: int = call.req.timeout
                deadline = timeout + grace
                if data["timeout"].__class__ is not int:
                    data = {**data, "timeout": timeout}
            else:
                deadline = default_timeout
            if call.span is not None:
                data = _tracing.forward(call.span, data)
            started = time.perf_counter()
            reply = await self._forward(target.sid, event, data, deadline)
            if isinstance(reply, dict):
                metrics.observe_latency(time.perf_counter() - started, event)
                call.outcome = "error" if "code" in reply and "isError" not in reply else "ok"
                return reply
            call.outcome, payload = self._failure(reply, event, name, deadline)
            return payload

        return relay

    async def _forward(self, target_sid: str, event: str, data: Any, deadline: float) -> Any:
        """Send ``event`` to one Computer and wait for its ack, the deadline or its disconnect.

        Returns the single ack object, or a sentinel tuple / the raw ack tuple on failure.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[Any, ...]] = loop.create_future()

        def on_ack(*reply: Any) -> None:
            if not fut.done():
                fut.set_result(reply)

        pending = self.pending.get(target_sid)
        if pending is None:
            pending = self.pending[target_sid] = set()
        pending.add(fut)
        timer = loop.call_later(deadline, _expire, fut)
        metrics = self._metrics
        metrics.in_flight += 1
        ack_id: int | None = None
        try:
            if self.fast_path:
                ack_id = await send_event_with_ack(
                    self._sio, target_sid, event, data, namespace=NAMESPACE, callback=on_ack
                )
                if ack_id is None:
                    fut.set_result(_GONE)
            elif await self._registry.get(target_sid) is None:
                # It left between the lookup and now; its disconnect did not see this future.
                fut.set_result(_GONE)
            else:
                await self._sio.emit(event, data, to=target_sid, namespace=NAMESPACE, callback=on_ack)
            reply = await fut
        finally:
            metrics.in_flight -= 1
            if self._idle is not None and not metrics.in_flight:
                self._idle.set()
            timer.cancel()
            pending.discard(fut)
            if not pending and self.pending.get(target_sid) is pending:
                del self.pending[target_sid]
        if len(reply) == 1 and reply is not _TIMEOUT and reply is not _GONE and reply is not _SHUTDOWN:
            return reply[0]
        if reply is _TIMEOUT:
            if ack_id is not None:
                forget_ack(self._sio.manager, target_sid, ack_id)
            elif not self.fast_path:
                forget_callback(self._sio.manager, target_sid, on_ack)
        return reply

    def _failure(self, reply: Any, event: str, name: str, deadline: float) -> tuple[str, dict[str, Any]]:
        if reply is _GONE:
            return "disconnected", not_found(name).to_payload()
        if reply is _TIMEOUT:
            return "timeout", RequestTimeoutError(
                f"Computer '{name}' did not answer {event} within {deadline:g} s",
                details={"computer_name": name, "event": event, "timeout": deadline},
            ).to_payload()
        if reply is _SHUTDOWN:
            return "shutdown", shutting_down().to_payload()
        if isinstance(reply, TooLarge):
            text = (
                f"Computer '{name}' sent a reply of {reply.size} bytes to {event}, over the server's "
                f"limit of {self._settings.max_message_size} bytes (max_message_size); ask for less data"
            )
            log.warning("%s", text, extra={"computer": name, "event": event})
            if event == ClientEvent.TOOL_CALL.value:
                from smcp.core.results import error_result

                return "too_large", error_result(text, {_META_ERROR: "reply_too_large"})
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

    # -- disconnects and shutdown -----------------------------------------------------------

    def computer_gone(self, sid: str) -> None:
        """``sid`` disconnected: every relay waiting for it answers 404 now."""
        futures = self.pending.pop(sid, None)
        if futures:
            for fut in futures:
                if not fut.done():
                    fut.set_result(_GONE)

    async def stop(self, wait: float) -> None:
        """Answer every waiting relay with 503 and wait (at most ``wait`` s) until they are sent."""
        for futures in list(self.pending.values()):
            for fut in futures:
                if not fut.done():
                    fut.set_result(_SHUTDOWN)
        if self._metrics.in_flight:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), wait)
            except TimeoutError:
                log.warning("%d relayed requests still unanswered at shutdown", self._metrics.in_flight)


def _expire(fut: asyncio.Future[tuple[Any, ...]]) -> None:
    if not fut.done():
        fut.set_result(_TIMEOUT)
