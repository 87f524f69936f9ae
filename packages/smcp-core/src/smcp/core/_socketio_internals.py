"""What the roles rely on in python-socketio and python-engineio beyond their documented API.

The packet class is shared by every role; the client classes are the Agent's and the Computer's.
No other module of the clients touches a private name of either library (the server keeps its own
in ``smcp.server.core._socketio_internals``). Each function says what it relies on;
``tests/test_client_socketio_internals.py`` checks the behaviour against the installed versions,
which must be within :data:`TESTED_SOCKETIO` / :data:`TESTED_ENGINEIO`.

smcp-core does not depend on python-socketio: the roles that use this module do, and it imports
python-socketio only when a function is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from typing import TYPE_CHECKING, Any

from smcp.core._json import fast_json

if TYPE_CHECKING:
    import socketio

__all__ = [
    "TESTED_ENGINEIO",
    "TESTED_SOCKETIO",
    "ReadDeadline",
    "ack_arguments",
    "client_class",
    "packet_class",
    "socketio_client",
]

# Versions the internals here and in the server's module were checked against: [low, high).
TESTED_SOCKETIO = ((5, 13), (6, 0))
TESTED_ENGINEIO = ((4, 11), (5, 0))


def packet_class(json_module: Any = None) -> type[Any]:
    """A Socket.IO packet class for ``AsyncServer(serializer=...)``.

    It encodes with ``json_module`` (when given; set on this class only, not process-wide) and
    looks for binary attachments only when the JSON codec refuses a payload, instead of
    python-socketio's recursive scan of every outgoing payload (``Packet.data_is_binary``): SMCP
    payloads are plain JSON, so the scan almost never finds anything. A payload that does hold
    ``bytes`` is still sent as a binary event or ack with attachments, as python-socketio would.

    Relies on: ``Packet.uses_binary_events`` (checked in ``Packet.__init__``), the ``packet_type``
    and ``data`` attributes, and ``Packet.encode`` building ``BINARY_EVENT``/``BINARY_ACK``
    packets from ``packet_type``.
    """
    from socketio import packet

    base = packet.Packet
    binary_types = {packet.EVENT: packet.BINARY_EVENT, packet.ACK: packet.BINARY_ACK}

    class SMCPPacket(base):  # type: ignore[misc,valid-type]
        uses_binary_events = False
        packet_type: int
        data: Any

        def encode(self) -> Any:
            try:
                return super().encode()
            except TypeError:
                binary_type = binary_types.get(self.packet_type)
                if binary_type is None or not base.data_is_binary(self.data):
                    raise
                self.packet_type = binary_type
                return super().encode()

    if json_module is not None:
        SMCPPacket.json = json_module
    return SMCPPacket


class ReadDeadline:
    """A read deadline of one connection: one timer, re-armed only when it fires.

    Created in the task that reads; that task marks each read with :meth:`reading` /
    :meth:`read_done`. When one read has waited ``seconds``, the timer cancels the task, and
    :meth:`expired` tells that ``CancelledError`` from one coming from outside (and takes it
    back). ``asyncio.timeout`` around every read costs a timer and a context per message: about
    9 % of the server's CPU at 64 calls in flight.
    """

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._seconds = seconds
        self._last = self._loop.time()
        self._reading = False
        self._fired = False
        self._timer = self._loop.call_later(seconds, self._check)

    def _check(self) -> None:
        left = self._last + self._seconds - self._loop.time()
        if left <= 0 and self._reading and self._task is not None:
            self._fired = True
            self._task.cancel()
        else:
            self._timer = self._loop.call_later(max(left, 0.05), self._check)

    def reading(self) -> None:
        self._reading = True
        self._last = self._loop.time()

    def read_done(self) -> None:
        self._reading = False

    def expired(self) -> bool:
        """Whether the ``CancelledError`` being handled is this deadline's (then it is taken back)."""
        self._reading = False
        if self._fired and self._task is not None:
            self._fired = False
            self._task.uncancel()
            return True
        return False

    def close(self) -> None:
        self._timer.cancel()


async def ack_arguments(handler: Any, args: Any, event: Any, logger: Any) -> list[Any] | None:
    """Run one event handler (sync or async) as python-socketio does; return its ack's arguments.

    A tuple is spread over several arguments, ``None`` is none, a cancelled handler is answered
    with nothing; a handler that raises is logged on ``logger`` and gets no ack (``None``).
    """
    try:
        reply = handler(*args)
        if inspect.isawaitable(reply):
            reply = await reply
    except asyncio.CancelledError:
        reply = None
    except Exception:
        logger.exception("handler of %s raised", event)
        return None
    return [] if reply is None else list(reply) if isinstance(reply, tuple) else [reply]


@functools.cache
def _client_packet_class() -> type[Any]:
    return packet_class(fast_json())


def socketio_client(**options: Any) -> socketio.AsyncClient:
    """A ``socketio.AsyncClient`` of :func:`client_class` that encodes with :func:`packet_class`
    and the fastest JSON codec installed (``options`` are python-socketio's own)."""
    return client_class()(serializer=_client_packet_class(), **options)


_ACK_OR_EVENT = ("2", "3")  # Socket.IO packet types decoded in the client's read loop


@functools.cache
def client_class() -> type[socketio.AsyncClient]:
    """``socketio.AsyncClient`` on an Engine.IO client that moves packets without a task each.

    python-engineio's client wraps every WebSocket read and every wait of its writer in
    ``asyncio.wait_for`` (a new task each on Python 3.11), hands every packet to send to its writer
    task and every received message to python-socketio in a new task. The Engine.IO client here
    reads and waits in the loops' own tasks, with the same read deadline and outcomes (a
    :class:`ReadDeadline`; the writer needs none, since every end of the reader ends it); writes
    a WebSocket frame from the sending task when nothing is queued or being written before it
    (aiohttp writes a frame whole and waits only on a full buffer, so frames keep their order;
    otherwise the packet is queued for the writer as before); and decodes a Socket.IO ACK or
    EVENT in the read loop itself: an ack only completes a waiting call, so it needs no task of
    its own, and an event's handler gets one task that runs it and sends its ack (python-engineio
    makes a task per message, and python-socketio then runs the handler through three more layers
    on every resume). Binary events, connects and disconnects keep python-socketio's path. Polling
    connections get two fixes: python-engineio's server decodes at most 16 packets per payload
    while its client posts everything queued in one request, and its server answers a long-poll
    with every queued packet while its client refuses more than 16: a burst of 17 broke either way.
    The writer here posts at most 16 at a time and the reader takes what the server sent.

    Relies on: ``AsyncClient._engineio_client_class``; in engineio's ``AsyncClient``: the
    ``_read_loop_websocket`` / ``_write_loop`` tasks and their exits (``queue.put(None)`` ends the
    writer, ``write_loop_task`` set to ``None`` when it ends, ``disconnect`` with
    ``reason.TRANSPORT_ERROR`` then ``_reset`` when the read loop ends connected), ``state``,
    ``ws``, ``queue``, ``current_transport``, ``ping_interval`` / ``ping_timeout``, ``base_url``,
    ``request_timeout``, ``_send_request`` (``None`` or a ``str`` on failure), ``Payload``'s
    ``max_decode_packets``, ``_receive_packet``, ``_get_url_timestamp`` and
    ``_trigger_event("message", data, run_async=)``; in socketio's ``AsyncClient``:
    ``_handle_event(namespace, id, data)`` (called for EVENT and BINARY_EVENT packets),
    ``handlers[namespace][event]``, ``packet_class`` and ``_send_packet``.
    """
    import socketio
    from socketio import packet

    ack_type = packet.ACK
    engine = _engine_client_class()
    running: set[asyncio.Task[Any]] = set()  # the loop keeps only weak references to tasks

    class SMCPClient(socketio.AsyncClient):  # type: ignore[misc]
        handlers: dict[str, dict[str, Any]]
        logger: Any

        def _engineio_client_class(self) -> type[Any]:
            return engine

        async def _handle_event(self, namespace: str | None, id: int | None, data: list[Any]) -> None:
            # Reached from the read loop (see _receive_packet): the handler gets a task of its own.
            namespace = namespace or "/"
            handler = self.handlers.get(namespace, {}).get(data[0]) if data else None
            if handler is None:  # a catch-all or namespace-class handler: python-socketio's path
                work = super()._handle_event(namespace, id, data)
            else:
                work = self._run_handler(handler, namespace, id, data)
            task = asyncio.get_running_loop().create_task(work)
            running.add(task)
            task.add_done_callback(running.discard)

        async def _run_handler(self, handler: Any, namespace: str, id: int | None, data: list[Any]) -> None:
            args = await ack_arguments(handler, data[1:], data[0], self.logger)
            if id is not None and args is not None:
                await self._send_packet(self.packet_class(ack_type, namespace=namespace, id=id, data=args))

    return SMCPClient


def _engine_client_class() -> type[Any]:
    import aiohttp
    import engineio
    from engineio import base_client
    from engineio import packet as eio_packet
    from engineio import payload as eio_payload

    message = eio_packet.MESSAGE
    closed_errors = (aiohttp.client_exceptions.ServerDisconnectedError, BrokenPipeError, OSError)
    max_batch = eio_payload.Payload.max_decode_packets

    class _ServerPayload(eio_payload.Payload):  # type: ignore[misc]
        # python-engineio caps a decoded payload at 16 packets against hostile clients, and its
        # server answers a long-poll with every queued packet: a client takes what its server sent.
        max_decode_packets = 1_000_000

    class SMCPEngineClient(engineio.AsyncClient):  # type: ignore[misc]
        state: str
        ws: Any
        queue: asyncio.Queue[Any]
        logger: Any
        write_loop_task: Any
        current_transport: str
        base_url: str
        request_timeout: float
        ping_interval: float
        ping_timeout: float

        _smcp_writing = False  # a frame is being written (by the writer or a direct send)

        async def _write_frame(self, pkt: Any) -> None:
            if pkt.binary:
                await self.ws.send_bytes(pkt.encode())
            else:
                await self.ws.send_str(pkt.encode())

        async def _send_packet(self, pkt: Any) -> None:
            if self.state != "connected":
                return
            queue = self.queue
            if not self._smcp_writing and self.current_transport == "websocket" and queue.empty():
                # nothing is waiting to be sent before this packet: write it from this task
                self._smcp_writing = True
                try:
                    await self._write_frame(pkt)
                    return
                except Exception:  # closed: queue it, the writer meets the error and ends
                    pass
                finally:
                    self._smcp_writing = False
            queue.put_nowait(pkt)  # unbounded: put() would only add an await

        async def _receive_packet(self, pkt: Any) -> None:
            data = pkt.data
            if pkt.packet_type == message and isinstance(data, str) and data[:1] in _ACK_OR_EVENT:
                # a Socket.IO ACK or EVENT: decoded here, in order; an event's handler gets a task
                await self._trigger_event("message", data, run_async=False)
            else:
                await super()._receive_packet(pkt)

        async def _read_loop_websocket(self) -> None:
            deadline = ReadDeadline(self.ping_interval + self.ping_timeout)
            try:
                while self.state == "connected" and self.write_loop_task:
                    deadline.reading()
                    try:
                        received = await self.ws.receive()
                    except asyncio.CancelledError:
                        if not deadline.expired():
                            raise
                        self.logger.warning("Server has stopped communicating, aborting")
                        self.queue.put_nowait(None)
                        break
                    except Exception as exc:  # the connection is gone (ServerDisconnectedError and others)
                        self.logger.info("Read loop: WebSocket connection ended (%s), aborting", exc)
                        self.queue.put_nowait(None)
                        break
                    deadline.read_done()
                    data = received.data
                    if not isinstance(data, str | bytes):  # CLOSE, CLOSING, ERROR
                        self.logger.warning("Server sent %s packet data %s, aborting", received.type, data)
                        self.queue.put_nowait(None)
                        break
                    try:
                        pkt = eio_packet.Packet(encoded_packet=data)
                    except Exception as exc:
                        self.logger.info('Unexpected error decoding packet: "%s", aborting', exc)
                        self.queue.put_nowait(None)
                        break
                    await self._receive_packet(pkt)
            finally:
                deadline.close()
            await self._end_read_loop()

        async def _read_loop_polling(self) -> None:
            while self.state == "connected" and self.write_loop_task:
                reply = await self._send_request(
                    "GET",
                    self.base_url + self._get_url_timestamp(),
                    timeout=max(self.ping_interval, self.ping_timeout) + 5,
                )
                if reply is None or isinstance(reply, str):
                    self.logger.warning(reply or "Connection refused by the server, aborting")
                    self.queue.put_nowait(None)
                    break
                if not 200 <= reply.status < 300:
                    self.logger.warning(
                        "Unexpected status code %s in server response, aborting", reply.status
                    )
                    self.queue.put_nowait(None)
                    break
                try:
                    received = _ServerPayload(encoded_payload=(await reply.read()).decode("utf-8"))
                except ValueError:
                    self.logger.warning("Unexpected packet from server, aborting")
                    self.queue.put_nowait(None)
                    break
                for pkt in received.packets:
                    await self._receive_packet(pkt)
            await self._end_read_loop()

        async def _end_read_loop(self) -> None:
            if self.write_loop_task:
                await self.write_loop_task
            if self.state == "connected":
                await self._trigger_event("disconnect", self.reason.TRANSPORT_ERROR, run_async=False)
                with contextlib.suppress(ValueError):
                    base_client.connected_clients.remove(self)
                await self._reset()

        async def _write_loop(self) -> None:
            # No deadline of its own (python-engineio's is ping_interval + ping_timeout + 5 s): a
            # silent server is the read loop's to notice, and every end of the read loop, like
            # disconnect(), queues the None that ends this loop.
            queue = self.queue
            while self.state == "connected":
                try:
                    first = queue.get_nowait()
                except asyncio.QueueEmpty:
                    try:
                        first = await queue.get()
                    except asyncio.CancelledError:
                        break
                packets = [first]
                while first is not None:
                    try:
                        pkt = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    packets.append(pkt)
                    if pkt is None:
                        break
                ending = packets[-1] is None
                if ending:
                    packets.pop()
                    queue.task_done()
                if self.current_transport == "polling":
                    sent = await self._post(packets)
                else:
                    sent = await self._send_frames(packets)
                if ending or not sent:
                    break
            self.write_loop_task = None

        async def _send_frames(self, packets: list[Any]) -> bool:
            self._smcp_writing = True  # a direct send now queues behind these
            try:
                for pkt in packets:
                    await self._write_frame(pkt)
                    self.queue.task_done()
            except closed_errors:
                self.logger.info("Write loop: WebSocket connection was closed, aborting")
                return False
            finally:
                self._smcp_writing = False
            return True

        async def _post(self, packets: list[Any]) -> bool:
            # python-engineio's server refuses a payload of more than 16 packets ("Too many packets
            # in payload", 400) while its client batches everything queued: post at most that many.
            for start in range(0, len(packets), max_batch):
                batch = packets[start : start + max_batch]
                reply = await self._send_request(
                    "POST",
                    self.base_url,
                    body=eio_payload.Payload(packets=batch).encode(),
                    headers={"Content-Type": "text/plain"},
                    timeout=self.request_timeout,
                )
                for _ in batch:
                    self.queue.task_done()
                if reply is None or isinstance(reply, str):
                    self.logger.warning(reply or "Connection refused by the server, aborting")
                    return False
                if not 200 <= reply.status < 300:
                    self.logger.warning(
                        "Unexpected status code %s in server response, aborting", reply.status
                    )
                    return False
            return True

    return SMCPEngineClient
