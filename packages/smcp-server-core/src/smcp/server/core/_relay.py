"""The relay of ``client:*`` requests: routing to the named Computer, pending calls, deadlines and
what a caller is told when the Computer does not answer properly (docs/protocol.md §5.6)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

from smcp.core._deadlines import Deadlines
from smcp.core.errors import InternalError, NotFoundError, RequestTimeoutError, SMCPError
from smcp.core.events import EVENTS, NAMESPACE, ClientEvent, EventSpec
from smcp.core.roles import Role
from smcp.server.core import _tracing
from smcp.server.core._handlers import Call, Handler, object_handler
from smcp.server.core._socketio_internals import (
    forget_ack,
    forget_callback,
    is_default_manager,
    is_redis_manager,
    send_event_with_ack,
)

if TYPE_CHECKING:
    from smcp.server.core._registry import Session
    from smcp.server.core._server import SMCPServer

__all__ = ["Relay", "TooLarge", "shutting_down"]

log = logging.getLogger("smcp.server")

# Sentinels a pending relay future can be resolved with instead of the Computer's ack arguments.
_TIMEOUT = ("timeout",)
_GONE = ("gone",)
_SHUTDOWN = ("shutdown",)
_UNAVAILABLE = ("unavailable",)
_SENTINELS = {"timeout": _TIMEOUT, "gone": _GONE, "shutdown": _SHUTDOWN, "unavailable": _UNAVAILABLE}

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
        self._cluster = server.cluster
        manager = server.sio.manager
        if fast_path is None:
            clustered = self._cluster is not None and is_redis_manager(manager)
            fast_path = clustered or is_default_manager(manager)
        self.fast_path = fast_path
        #: target sid -> futures of relays waiting for that Computer.
        self.pending: dict[str, set[asyncio.Future[tuple[Any, ...]]]] = {}
        #: Cluster mode: request id -> future of a relay waiting for a Computer on another node,
        #: and node -> those futures (answered 404 when the node dies).
        self.remote: dict[str, asyncio.Future[tuple[Any, ...]]] = {}
        self.by_node: dict[str, set[asyncio.Future[tuple[Any, ...]]]] = {}
        self._ids = itertools.count(1)
        self._serving: set[asyncio.Future[None]] = set()
        self._idle: asyncio.Event | None = None
        self._deadlines = Deadlines(_expire)

    def handlers(self) -> dict[str, Handler]:
        """Event name → wrapped handler, for every ``client:*`` event of the table."""
        return {spec.name: self.handler(spec) for spec in EVENTS.values() if spec.is_client_request}

    def handler(self, spec: EventSpec, server: Any = None) -> Handler:
        """The wrapped handler of the ``client:*`` event ``spec``; ``server``: what the wrapper reads
        in place of the server (see ``SMCPServer.request_as``)."""
        return object_handler(server or self._server, spec, self._business(spec), closing_error=shutting_down)

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
            failure, reply = await self.ask(target, event, data, deadline)
            if failure is None:
                metrics.observe_latency(time.perf_counter() - started, event)
                call.outcome = "error" if "code" in reply and "isError" not in reply else "ok"
            else:
                call.outcome = failure
            return reply

        return relay

    async def ask(
        self, target: Session, event: str, data: Any, deadline: float
    ) -> tuple[str | None, dict[str, Any]]:
        """Send ``event`` to the Computer ``target`` (on this node or another) and wait for its answer.

        Returns ``(None, answer)``, or ``(outcome, ErrorPayload)`` when it timed out, the Computer
        left or the server shut down (``outcome``: ``"timeout"``, ``"disconnected"``, ...).
        """
        here = self._cluster.node if self._cluster is not None else None
        if target.node is None or target.node == here:
            reply = await self._forward(target.sid, event, data, deadline)
        else:
            reply = await self._forward_remote(target, event, data, deadline)
        if isinstance(reply, dict):
            return None, reply
        return self._failure(reply, event, target.name or "", deadline)

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
        deadlines = self._deadlines
        deadlines.add(fut, deadline)
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
            deadlines.discard(fut)
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

    async def _forward_remote(self, target: Session, event: str, data: Any, deadline: float) -> Any:
        """:meth:`_forward` to a Computer held by another node, over the cluster's request channel.

        That node relays to its Computer with the same deadline and sends back the ack or what
        went wrong; this node answers 404 at once if the node is gone or dies meanwhile.
        """
        cluster = self._cluster
        assert cluster is not None and target.node is not None
        node = target.node
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        rid = f"{cluster.node}:{next(self._ids)}"
        self.remote[rid] = fut
        pending = self.pending.setdefault(target.sid, set())
        pending.add(fut)
        on_node = self.by_node.setdefault(node, set())
        on_node.add(fut)
        # A little later than the other node's own deadline, whose timeout answer then wins.
        self._deadlines.add(fut, deadline + 0.5)
        metrics = self._metrics
        metrics.in_flight += 1
        try:
            request: dict[str, Any] = {"t": "req", "id": rid, "from": cluster.node, "sid": target.sid}
            request.update(ev=event, d=data, dl=deadline)
            try:
                if not cluster.listening:
                    fut.set_result(_UNAVAILABLE)  # the reply could not reach this node
                elif not await cluster.publish(node, request):
                    fut.set_result(_GONE)
            except Exception:
                log.warning("cross-node relay to node %s failed: Redis unreachable", node, exc_info=True)
                if not fut.done():
                    fut.set_result(_UNAVAILABLE)
            reply = await fut
        finally:
            metrics.in_flight -= 1
            if self._idle is not None and not metrics.in_flight:
                self._idle.set()
            self._deadlines.discard(fut)
            self.remote.pop(rid, None)
            for table, key, group in ((self.pending, target.sid, pending), (self.by_node, node, on_node)):
                group.discard(fut)
                if not group and table.get(key) is group:
                    del table[key]
        if len(reply) == 1 and not _is_sentinel(reply):
            return reply[0]
        return reply

    async def on_cluster_message(self, message: dict[str, Any]) -> None:
        """A request from another node for a local Computer, or the reply to one of ours."""
        kind = message.get("t")
        if kind == "req":
            task = asyncio.ensure_future(self._serve_remote(message))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        elif kind == "rep":
            fut = self.remote.get(str(message.get("id")))
            if fut is None or fut.done():
                return  # that relay already gave up (deadline, 404, shutdown)
            if "a" in message:
                fut.set_result(tuple(message["a"]))
            elif message.get("k") == "too_large":
                fut.set_result((TooLarge(int(message.get("n", 0))),))
            else:
                fut.set_result(_SENTINELS.get(str(message.get("k")), _GONE))

    async def _serve_remote(self, message: dict[str, Any]) -> None:
        cluster = self._cluster
        assert cluster is not None
        answer: dict[str, Any] = {"t": "rep", "id": message.get("id")}
        try:
            reply = await self._forward(
                str(message["sid"]), str(message["ev"]), message.get("d"), float(message["dl"])
            )
        except Exception:
            log.exception("relaying a request from node %s failed", message.get("from"))
            reply = _GONE
        if isinstance(reply, TooLarge):
            answer.update(k="too_large", n=reply.size)
        elif _is_sentinel(reply):
            answer["k"] = reply[0]
        else:
            answer["a"] = list(reply) if isinstance(reply, tuple) else [reply]
        try:
            await cluster.publish(str(message["from"]), answer)
        except Exception:
            log.warning("could not send a reply to node %s: Redis unreachable", message.get("from"))

    def node_gone(self, node: str) -> None:
        """``node``'s heartbeat expired: every relay waiting for one of its Computers answers 404."""
        for fut in self.by_node.pop(node, ()):
            if not fut.done():
                fut.set_result(_GONE)

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
        if reply is _UNAVAILABLE:
            return "unavailable", InternalError(
                f"Computer '{name}' is connected to another node and the cluster's Redis is "
                "unreachable; retry later",
                code=503,
                details={"computer_name": name, "event": event},
            ).to_payload()
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


def _is_sentinel(reply: Any) -> bool:
    return reply is _TIMEOUT or reply is _GONE or reply is _SHUTDOWN or reply is _UNAVAILABLE


def _expire(fut: asyncio.Future[tuple[Any, ...]]) -> None:
    if not fut.done():
        fut.set_result(_TIMEOUT)
