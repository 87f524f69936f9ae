"""Everything the server relies on in python-socketio and python-engineio beyond their documented API.

No other module of the server touches a private name of either library. Each function says what
it relies on; ``tests/test_server_socketio_internals.py`` checks the behaviour of each against the
installed versions and fails when one is outside :data:`TESTED_SOCKETIO` / :data:`TESTED_ENGINEIO`
or no longer behaves so.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from smcp.core._socketio_internals import (
    TESTED_ENGINEIO,
    TESTED_SOCKETIO,
    ReadDeadline,
    ack_arguments,
    packet_class,
)

if TYPE_CHECKING:
    import socketio

__all__ = [
    "RESERVED_EVENTS",
    "TESTED_ENGINEIO",
    "TESTED_SOCKETIO",
    "RawHeader",
    "drop_connections",
    "forget_ack",
    "forget_callback",
    "is_default_manager",
    "is_redis_manager",
    "limit_output",
    "oversize_aware_server_class",
    "packet_class",
    "raw_header",
    "send_event_with_ack",
    "send_raw_ack",
    "sid_of",
    "start_manager",
    "trigger_ack",
    "use_timer_poll",
]

_SOCKET_CLASSES: dict[type[Any], type[Any]] = {}


def use_timer_poll(eio_server: Any, eio_sid: str) -> None:
    """Make the Engine.IO socket ``eio_sid`` wait for outgoing packets without a helper task.

    python-engineio's ``AsyncSocket.poll`` waits on the socket's queue with ``asyncio.wait_for``,
    which on Python 3.11 wraps ``queue.get()`` in a task for every wait, i.e. about once per
    packet sent on a busy connection. The subclass swapped in here takes a queued packet without
    waiting when there is one and otherwise waits under ``asyncio.timeout`` with the same
    deadline (``ping_interval + ping_timeout``) and the same outcomes (``QueueEmpty`` on timeout
    or cancellation, ``[]`` once the queue holds the ``None`` that closes the connection).

    The same subclass reads a WebSocket without a task per message (see :func:`_timer_poll_class`).

    The subclass also wakes a pending long-poll GET when the session is closed without a CLOSE
    packet (the client's own CLOSE, a transport failure): python-engineio leaves it waiting until
    the heartbeat deadline, so a polling client's ``disconnect()`` took about 30 s
    (``tests/test_server_long_poll.py``).

    Relies on: ``eio_server.sockets``, the socket's ``queue`` and ``server`` attributes, ``poll``
    being how the socket's writer (WebSocket) and long-poll GET take packets (``[]`` ends both), and
    ``close(wait=, abort=, reason=)`` queuing a CLOSE packet only when not ``abort``.
    """
    socket = eio_server.sockets.get(eio_sid)
    if socket is None:
        return
    base = type(socket)
    if base in _SOCKET_CLASSES.values():
        return
    cls = _SOCKET_CLASSES.get(base)
    if cls is None:
        cls = _SOCKET_CLASSES[base] = _timer_poll_class(base)
    socket.__class__ = cls


#: ``on_overflow(eio_sid, queued_bytes)``: what :func:`limit_output` calls for a stuck connection.
OnOverflow = Callable[[str, int], Awaitable[None]]

#: Most bytes one ``poll`` hands to the writer at once, so the backlog stays in the counted queue.
_BATCH_BYTES = 1024 * 1024

#: python-engineio's clients refuse a long-poll answer of more packets than its
#: ``Payload.max_decode_packets`` (16) and post every packet they have queued in one request: the
#: server answers a poll with at most that many and reads a posted payload of up to 1,000 (its
#: size is bounded by ``max_http_buffer_size`` as before).
_POST_PACKETS = 1000


def _packet_size(pkt: Any) -> int:
    data = getattr(pkt, "data", None)
    return len(data) if isinstance(data, str | bytes) else 0


def limit_output(eio_server: Any, limit: int, on_overflow: OnOverflow) -> None:
    """Bound what waits to be sent to one connection: once more than ``limit`` bytes of packets
    are queued for it (its client stopped reading), the packet is not queued, the connection is
    closed as a transport failure, its queue is emptied and ``on_overflow(eio_sid, bytes)`` is
    awaited. Applies to the sockets :func:`use_timer_poll` prepared.

    Relies on: ``AsyncSocket.send(pkt)`` being how every packet is queued, ``pkt.data`` (the
    encoded text or bytes), and what :func:`drop_connections` relies on.
    """
    eio_server._smcp_output = (limit, on_overflow)


async def _drop_one(socket: Any) -> None:
    try:
        await socket.close(wait=False, abort=True)
    finally:
        queue: asyncio.Queue[Any] = socket.queue
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
        socket.smcp_queued = 0
        queue.put_nowait(None)
        socket.server.sockets.pop(socket.sid, None)


class _Resume:
    """Awaits the rest of a coroutine already driven by hand up to its first wait (``awaited``)."""

    __slots__ = ("awaited", "step")

    def __init__(self, step: Any, awaited: Any) -> None:
        self.step, self.awaited = step, awaited

    def __await__(self) -> Any:
        step, awaited = self.step, self.awaited
        while True:
            try:
                yield awaited  # the running task waits for what the coroutine waits for
            except BaseException as exc:  # a cancellation of that task goes on into the coroutine
                try:
                    awaited = step.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    awaited = step.send(None)
                except StopIteration as stop:
                    return stop.value


def _timer_poll_class(base: type[Any]) -> type[Any]:
    """``base`` with a timer-based ``poll`` and a WebSocket handler whose reader awaits each
    message directly.

    python-engineio's ``_websocket_handler`` wraps every ``ws.wait()`` in a new task and waits
    for it with ``asyncio.wait_for``: a task per message received. Ours takes the same steps
    (probe/upgrade handshake, writer task draining ``poll``, size limit, the
    ``ping_interval + ping_timeout`` read deadline, the same handling of ``receive`` errors and
    the same close at the end) with the read in the handler's task. The read deadline is a
    :class:`~smcp.core._socketio_internals.ReadDeadline` (one timer per connection), and the
    writer waits without a deadline of its own: the reader queues the ``None`` that ends it
    whenever it stops. A text MESSAGE goes straight to the server's ``message`` handler (what
    ``receive`` and ``_trigger_event`` do for it, without their layers); other packets go through
    ``receive``. ``send`` writes a packet from the sending task when nothing is queued or being
    written before it (a write that has to wait for the transport finishes in a task, and later
    packets queue behind it); otherwise it queues the packet without engineio's coroutine ``put``
    and log call. The writer task drains the queue, after any such unfinished write.

    Relies on: the socket's ``connected``/``upgraded``/``upgrading``/``sid`` attributes,
    ``receive(pkt)``, ``check_ping_timeout()``, ``close(wait=, abort=, reason=)``,
    ``server.handlers["message"]`` (awaited with ``(sid, data)`` when handlers do not run as
    tasks, as python-socketio sets them), ``server.max_http_buffer_size``,
    ``server.reason.TRANSPORT_CLOSE`` and the driver's ``ws.wait()``/``send()``/``close()``
    (``send`` a coroutine, or any awaitable, which then always finishes in a task).
    """
    from engineio import exceptions
    from engineio import packet as eio_packet
    from engineio import payload as eio_payload
    from engineio.exceptions import QueueEmpty

    class _PostedPayload(eio_payload.Payload):  # type: ignore[misc]
        max_decode_packets = _POST_PACKETS

    poll_packets = eio_payload.Payload.max_decode_packets

    async def write_loop(sock: Any, ws: Any) -> None:
        try:
            while True:
                try:
                    packets = await sock.poll(deadline=False)
                except QueueEmpty:
                    break
                if not packets:  # the None that ends the connection
                    break
                sock.smcp_batch = True  # from here on, senders queue behind this batch
                try:
                    tail = sock.smcp_tail
                    if tail is not None:  # a direct write still waiting for the transport goes first
                        await asyncio.wait([tail])
                    for pkt in packets:
                        await ws.send(pkt.encode())
                except (Exception, asyncio.CancelledError):
                    break
                finally:
                    sock.smcp_batch = False
        finally:
            sock.smcp_ws = None
        await ws.close()

    async def upgrade(sock: Any, ws: Any, read: Callable[[], Awaitable[Any]]) -> bool:
        """The client's ``2probe`` -> ``3probe``, a NOOP to end its pending poll, then ``5``."""
        logger = sock.server.logger
        sock.upgrading = True  # sends are held back until the upgrade ends
        try:
            try:
                probe = eio_packet.Packet(encoded_packet=await read())
            except OSError:
                return False
            if probe.packet_type != eio_packet.PING or probe.data != "probe":
                logger.info("%s: Failed websocket upgrade, no PING packet", sock.sid)
                return False
            await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await sock.queue.put(eio_packet.Packet(eio_packet.NOOP))
            try:
                confirm = eio_packet.Packet(encoded_packet=await read())
            except OSError:
                return False
            if confirm.packet_type != eio_packet.UPGRADE:
                sock.upgraded = False
                logger.info("%s: Failed websocket upgrade, expected UPGRADE packet", sock.sid)
                return False
            sock.upgraded = True
            return True
        finally:
            sock.upgrading = False

    class SMCPSocket(base):  # type: ignore[misc]
        smcp_queued = 0
        #: the WebSocket while the writer runs; ``send`` writes to it directly when nothing waits
        smcp_ws: Any = None
        #: the writer holds a batch of packets (taken from the queue, not yet written)
        smcp_batch = False
        #: a direct write that waits for the transport (back-pressure), finishing in a task
        smcp_tail: asyncio.Future[Any] | None = None

        def _smcp_write_now(self, ws: Any, pkt: Any) -> None:
            """Write ``pkt`` from the sending task, as far as it goes without waiting.

            A write the transport makes wait (its buffer is full) finishes in a task, and every
            packet sent meanwhile is queued behind it, so that no sender blocks and the order holds.
            """
            step: Any = ws.send(pkt.encode())
            if inspect.iscoroutine(step):  # (another kind of awaitable always finishes in the task)
                try:
                    awaited = step.send(None)
                except StopIteration:
                    return
                except Exception:
                    self._smcp_write_failed()
                    return
                step = _Resume(step, awaited)
            tail = self.smcp_tail = asyncio.ensure_future(step)
            tail.add_done_callback(self._smcp_tail_done)

        def _smcp_tail_done(self, tail: asyncio.Future[Any]) -> None:
            if self.smcp_tail is tail:
                self.smcp_tail = None
            if not tail.cancelled() and tail.exception() is not None:
                self._smcp_write_failed()

        def _smcp_write_failed(self) -> None:
            """The connection is broken: end the writer, as its own failed write does."""
            if self.smcp_ws is not None:
                self.smcp_ws = None
                self.queue.put_nowait(None)

        async def send(self, pkt: Any) -> None:
            ws = self.smcp_ws
            if ws is not None and self.smcp_tail is None and not self.smcp_batch and self.queue.empty():
                if await self.check_ping_timeout():  # nothing waits before it: write it now
                    self._smcp_write_now(ws, pkt)
                return
            output = getattr(self.server, "_smcp_output", None)
            size = _packet_size(pkt)
            if output is not None and size:
                limit, on_overflow = output
                queued = self.smcp_queued + size
                if queued > limit:
                    if not self.closing and not self.closed:
                        await _drop_one(self)
                        await on_overflow(self.sid, queued)
                    return
                self.smcp_queued = queued
            # engineio's send without its coroutine put (the queue is unbounded) and log call
            if await self.check_ping_timeout():
                self.queue.put_nowait(pkt)

        connected: bool
        upgraded: bool

        async def _websocket_handler(self, ws: Any) -> None:
            server = self.server
            limit = server.max_http_buffer_size

            async def read() -> Any:
                data = await ws.wait()
                if data and len(data) > limit:
                    raise ValueError("packet is too large")
                return data

            if self.connected:
                if not await upgrade(self, ws, read):
                    return
            else:
                self.connected = True
                self.upgraded = True
            writer = asyncio.ensure_future(write_loop(self, ws))
            self.smcp_ws = ws
            server.logger.info("%s: Upgrade to websocket successful", self.sid)
            on_message = server.handlers.get("message")
            if server.async_handlers or not inspect.iscoroutinefunction(on_message):
                on_message = None
            deadline = ReadDeadline(server.ping_interval + server.ping_timeout)
            try:
                while True:
                    deadline.reading()
                    try:
                        data = await read()
                    except asyncio.CancelledError:
                        deadline.expired()  # the deadline, or a cancellation from outside: both end it
                        break
                    except Exception:  # closed, too large
                        break
                    deadline.read_done()
                    if data is None:
                        break
                    if on_message is not None and data.__class__ is str and data[:1] == "4":
                        # a text MESSAGE: what receive() -> _trigger_event("message") end in
                        try:
                            await on_message(self.sid, data[1:])
                        except asyncio.CancelledError:
                            pass
                        except Exception:
                            server.logger.exception("message async handler error")
                        continue
                    try:
                        await self.receive(eio_packet.Packet(encoded_packet=data))
                    except exceptions.UnknownPacketError:
                        pass
                    except exceptions.SocketIsClosedError:
                        server.logger.info("Receive error -- socket is closed")
                        break
                    except Exception:
                        server.logger.exception("Unknown receive error")
            finally:
                deadline.close()
                self.smcp_ws = None
            await self.queue.put(None)  # ends the writer
            await writer
            await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)

        async def handle_post_request(self, environ: dict[str, Any]) -> None:
            length = int(environ.get("CONTENT_LENGTH", "0"))
            if length > self.server.max_http_buffer_size:
                raise exceptions.ContentTooLongError()
            body = (await environ["wsgi.input"].read(length)).decode("utf-8")
            for pkt in _PostedPayload(encoded_payload=body).packets:
                await self.receive(pkt)

        async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
            await super().close(wait=wait, abort=abort, reason=reason)
            if abort:  # no CLOSE packet was queued: wake a pending long-poll now, not at its deadline
                self.queue.put_nowait(None)

        async def poll(self, deadline: bool = True) -> list[Any]:
            """``deadline=False``: the WebSocket writer's wait, ended by the ``None`` that the
            reader queues when it stops (its own deadline covers a silent client)."""
            queue: asyncio.Queue[Any] = self.queue
            try:
                first = queue.get_nowait()
            except asyncio.QueueEmpty:
                server = self.server
                try:
                    if deadline:
                        async with asyncio.timeout(server.ping_interval + server.ping_timeout):
                            first = await queue.get()
                    else:
                        first = await queue.get()
                except (TimeoutError, asyncio.CancelledError):
                    raise QueueEmpty() from None
            queue.task_done()
            if first is None:
                return []
            packets = [first]
            taken = _packet_size(first)
            most = poll_packets if not self.upgraded else math.inf
            while taken < _BATCH_BYTES and len(packets) < most:
                try:
                    pkt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                queue.task_done()
                if pkt is None:
                    queue.put_nowait(None)
                    break
                packets.append(pkt)
                taken += _packet_size(pkt)
            self.smcp_queued = max(0, self.smcp_queued - taken)
            return packets

    return SMCPSocket


async def drop_connections(eio_server: Any) -> None:
    """Close every Engine.IO connection as a transport failure, so that clients reconnect.

    A Socket.IO DISCONNECT or an Engine.IO CLOSE packet tells python-socketio (and JS) clients the
    server ended the session on purpose, and they do not reconnect. Each socket is closed with
    ``abort=True`` (no CLOSE packet; the server still runs its disconnect handlers) and woken with
    the ``None`` that ends its WebSocket writer or its pending long-poll; the session is forgotten, so
    a later poll fails and the client reconnects.

    Relies on: ``eio_server.sockets``, ``AsyncSocket.close(wait=, abort=)`` and the socket's
    ``queue`` whose ``None`` ends the connection.
    """
    for sid, socket in list(eio_server.sockets.items()):
        try:
            await socket.close(wait=False, abort=True)
        finally:
            socket.queue.put_nowait(None)
            eio_server.sockets.pop(sid, None)


# -- the relay's fast path ----------------------------------------------------------------------


def is_default_manager(manager: Any) -> bool:
    """Whether ``manager`` is python-socketio's in-memory ``AsyncManager`` itself (not a subclass).

    Only then may the relay use :func:`send_event_with_ack`; any other manager (a pub/sub one for a
    cluster, or a subclass with its own bookkeeping) gets the public ``AsyncServer.emit`` path.
    """
    import socketio

    return type(manager) is socketio.AsyncManager


def is_redis_manager(manager: Any) -> bool:
    """Whether ``manager`` is python-socketio's ``AsyncRedisManager`` itself (not a subclass).

    It keeps the acks of its local clients exactly as ``AsyncManager`` does, so the relay's fast
    path serves the Computers connected to this node.
    """
    import socketio

    return type(manager) is socketio.AsyncRedisManager


def start_manager(sio: socketio.AsyncServer) -> None:
    """Initialize ``sio``'s client manager now instead of on the first connection.

    A pub/sub manager starts listening to the other nodes in ``initialize``; python-socketio calls
    it lazily, on this node's first client, so until then broadcasts from other nodes are lost.
    Call it from a running event loop.

    Relies on: ``AsyncServer.manager_initialized`` and ``manager.initialize()``.
    """
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()


async def send_event_with_ack(
    sio: socketio.AsyncServer,
    sid: str,
    event: str,
    data: Any,
    *,
    namespace: str,
    callback: Callable[..., None],
) -> int | None:
    """Send ``[event, data]`` to the one local client ``sid`` with an ack id that calls ``callback``.

    What ``sio.emit(event, data, to=sid, callback=...)`` does for one client, without the task
    python-socketio's manager creates per recipient. Returns the ack id (for :func:`forget_ack`),
    or ``None`` when ``sid`` is not connected here (nothing was sent).

    Relies on: ``manager.eio_sid_from_sid``, ``manager._generate_ack_id(sid, callback)`` storing
    ``callback`` in ``manager.callbacks[sid][id]``, ``AsyncServer._send_packet(eio_sid, pkt)`` and
    ``AsyncServer.packet_class``. Use it only when :func:`is_default_manager` is true.
    """
    from socketio import packet

    manager = sio.manager
    eio_sid = manager.eio_sid_from_sid(sid, namespace)
    if eio_sid is None:
        return None
    ack_id: int = manager._generate_ack_id(sid, callback)
    await sio._send_packet(
        eio_sid, sio.packet_class(packet.EVENT, namespace=namespace, data=[event, data], id=ack_id)
    )
    return ack_id


def forget_ack(manager: Any, sid: str, ack_id: int) -> None:
    """Drop the pending ack ``ack_id`` of ``sid`` (a relay that gave up waiting for it).

    Relies on: ``manager.callbacks[sid][ack_id]`` (filled by ``_generate_ack_id``; python-socketio
    removes an entry only when the ack arrives or the client disconnects).
    """
    callbacks = manager.callbacks.get(sid)
    if callbacks is not None:
        callbacks.pop(ack_id, None)


def forget_callback(manager: Any, sid: str, callback: Callable[..., None]) -> None:
    """Drop the pending ack of ``sid`` whose callback is ``callback`` (after an ``emit(callback=)``).

    Best effort: a manager that keeps its callbacks elsewhere is left alone.

    Relies on: ``manager.callbacks`` mapping ``sid`` to ``{0: counter, ack_id: callback, ...}``.
    """
    callbacks = getattr(manager, "callbacks", None)
    table = callbacks.get(sid) if isinstance(callbacks, dict) else None
    if not table:
        return
    for ack_id, registered in list(table.items()):
        if registered is callback:
            del table[ack_id]
            return


def sid_of(sio: socketio.AsyncServer, eio_sid: str, namespace: str) -> str | None:
    """The Socket.IO sid of the Engine.IO session ``eio_sid`` in ``namespace``, or ``None``.

    Relies on: ``manager.sid_from_eio_sid``.
    """
    sid: str | None = sio.manager.sid_from_eio_sid(eio_sid, namespace)
    return sid


async def trigger_ack(sio: socketio.AsyncServer, sid: str, ack_id: int, args: list[Any]) -> None:
    """Call the callback waiting for ack ``ack_id`` of ``sid`` with ``args``, as if it had arrived.

    Relies on: ``manager.trigger_callback(sid, id, data)``.
    """
    await sio.manager.trigger_callback(sid, ack_id, args)


async def send_raw_ack(
    sio: socketio.AsyncServer, eio_sid: str, namespace: str, ack_id: int, data: Any
) -> None:
    """Answer a client's event ``ack_id`` with the single argument ``data``, outside any handler.

    Relies on: ``AsyncServer._send_packet`` and ``AsyncServer.packet_class``.
    """
    from socketio import packet

    await sio._send_packet(eio_sid, sio.packet_class(packet.ACK, namespace=namespace, id=ack_id, data=[data]))


# -- raw messages ---------------------------------------------------------------------------------


class RawHeader(NamedTuple):
    """What the first bytes of an unparsed Socket.IO message say."""

    #: The Socket.IO packet type digit (``"2"`` event, ``"3"`` ack, ...).
    kind: str
    namespace: str
    ack_id: int | None
    #: The event name of an event packet, ``"<event>"`` when it cannot be read.
    event: str


# Socket.IO packet header: type, optional "/namespace,", optional ack id.
_HEADER = re.compile(r"([0-6])(?:(/[^,]*),)?(\d+)?")
_EVENT_NAME = re.compile(r'\["((?:[^"\\]|\\.){0,200})"')


def raw_header(data: str) -> RawHeader | None:
    """Read the header of an encoded Socket.IO packet without decoding its (oversized) payload.

    Relies on: the Socket.IO v5 text encoding (``<type>[/<namespace>,][<ack id>][<json>]``), which
    python-socketio's ``Packet.encode`` writes and ``Packet.decode`` reads.
    """
    header = _HEADER.match(data, 0, 64)
    if header is None:
        return None
    ack_id = header.group(3)
    event_match = _EVENT_NAME.match(data, header.end(), header.end() + 300)
    return RawHeader(
        header.group(1),
        header.group(2) or "/",
        int(ack_id) if ack_id is not None else None,
        event_match.group(1) if event_match else "<event>",
    )


#: Event names python-socketio's handler lookup treats specially: its own ``connect`` and
#: ``disconnect`` handlers (and the client's reserved names) and the ``"*"`` catch-all.
RESERVED_EVENTS: frozenset[str] = frozenset({"connect", "disconnect", "connect_error", "message", "*"})

#: ``on_oversized(eio_sid, text)``: a message over the limit, not parsed.
OnOversized = Callable[[str, str], Awaitable[None]]
#: ``on_reserved(eio_sid, namespace, ack_id, name)``: an event whose name is reserved or not a string.
OnReserved = Callable[[str, str, "int | None", Any], Awaitable[None]]
#: ``on_malformed(eio_sid, text, error)``: a message python-socketio cannot decode as a packet.
OnMalformed = Callable[[str, str, Exception], Awaitable[None]]

#: What python-socketio raises for a message that is no valid Socket.IO packet (bad JSON, an
#: unknown packet type, a bad ack id or attachment count, an unexpected binary packet).
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError)

_SERVER_CLASS: type[Any] | None = None
_RUNNING: set[asyncio.Task[Any]] = set()  # event handler tasks (the loop keeps only weak references)


def oversize_aware_server_class() -> type[Any]:
    """An ``AsyncServer`` that hands over what python-socketio must not process itself.

    Its constructor takes ``(on_oversized, limit, on_reserved, on_malformed=None, **AsyncServer
    kwargs)``:

    - a text message longer than ``limit`` goes to ``on_oversized`` unparsed, instead of being
      decoded (binary attachments of a packet already started are left to python-socketio);
    - an event whose name is not a string, or is in :data:`RESERVED_EVENTS`, goes to ``on_reserved``
      instead of a handler: python-socketio would hand a client's ``disconnect`` event to the
      server's own disconnect handler (and ``"*"`` to the catch-all with shifted arguments);
    - a message python-socketio cannot decode goes to ``on_malformed`` instead of being logged by
      python-engineio as a handler error with its traceback (a client could fill the log);
    - every new Engine.IO socket gets :func:`use_timer_poll`;
    - an event with a handler of its own (``handlers[namespace][name]``) runs in one task that
      runs the handler and sends its ack (:func:`~smcp.core._socketio_internals.ack_arguments`,
      shared with the clients), as python-socketio's ``_handle_event_internal`` does, without its
      layers on every resume (``start_background_task``, ``_handle_event_internal``,
      ``_trigger_event`` and its handler lookup); catch-alls, namespace classes and
      ``async_handlers=False`` keep python-socketio's path.

    Relies on: ``AsyncServer._handle_eio_connect(eio_sid, environ)``,
    ``_handle_eio_message(eio_sid, data)`` (decoding the packet and awaiting only the dispatch, not
    the event handlers, which run as tasks), ``_handle_event(eio_sid, namespace, id, data)`` (every
    EVENT and completed BINARY_EVENT goes through it, ``data[0]`` the name), ``_binary_packet``,
    ``handlers``, ``async_handlers``, ``manager.sid_from_eio_sid`` / ``is_connected``,
    ``packet_class`` and ``_send_packet(eio_sid, pkt)``.
    """
    global _SERVER_CLASS  # noqa: PLW0603 - built once, on first use, to keep socketio import lazy
    if _SERVER_CLASS is None:
        import socketio
        from socketio import packet

        ack_type = packet.ACK

        class OversizeAwareServer(socketio.AsyncServer):  # type: ignore[misc]
            def __init__(
                self,
                on_oversized: OnOversized,
                limit: int,
                on_reserved: OnReserved,
                on_malformed: OnMalformed | None = None,
                **kwargs: Any,
            ) -> None:
                super().__init__(**kwargs)
                self._smcp_oversized = on_oversized
                self._smcp_limit = limit
                self._smcp_reserved = on_reserved
                self._smcp_malformed = on_malformed

            async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
                use_timer_poll(self.eio, eio_sid)
                return await super()._handle_eio_connect(eio_sid, environ)

            async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
                if len(data) > self._smcp_limit and eio_sid not in self._binary_packet:
                    await self._smcp_oversized(eio_sid, data if isinstance(data, str) else "")
                    return
                if self._smcp_malformed is None:
                    await super()._handle_eio_message(eio_sid, data)
                    return
                try:
                    await super()._handle_eio_message(eio_sid, data)
                except _MALFORMED as exc:
                    self._binary_packet.pop(eio_sid, None)
                    await self._smcp_malformed(eio_sid, data if isinstance(data, str) else "", exc)

            async def _handle_event(
                self, eio_sid: str, namespace: str | None, id: int | None, data: Any
            ) -> None:
                name = data[0] if isinstance(data, list) and data else None
                if name.__class__ is not str or name in RESERVED_EVENTS:
                    await self._smcp_reserved(eio_sid, namespace or "/", id, name)
                    return
                namespace = namespace or "/"
                handler = self.handlers.get(namespace, {}).get(name) if self.async_handlers else None
                if handler is None:  # catch-alls, namespace classes, async_handlers=False
                    await super()._handle_event(eio_sid, namespace, id, data)
                    return
                manager = self.manager
                sid = manager.sid_from_eio_sid(eio_sid, namespace)
                if not manager.is_connected(sid, namespace):
                    self.logger.warning("%s is not connected to namespace %s", sid, namespace)
                    return
                task = asyncio.get_running_loop().create_task(
                    self._smcp_run(handler, sid, eio_sid, namespace, id, data)
                )
                _RUNNING.add(task)
                task.add_done_callback(_RUNNING.discard)

            async def _smcp_run(  # noqa: PLR0917 - _handle_event_internal's arguments, in its order
                self, handler: Any, sid: str, eio_sid: str, namespace: str, id: int | None, data: list[Any]
            ) -> None:
                args = await ack_arguments(handler, (sid, *data[1:]), data[0], self.logger)
                if id is not None and args is not None:
                    ack = self.packet_class(ack_type, namespace=namespace, id=id, data=args)
                    await self._send_packet(eio_sid, ack)

        _SERVER_CLASS = OversizeAwareServer
    return _SERVER_CLASS
