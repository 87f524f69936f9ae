"""What the server relies on in python-socketio and python-engineio beyond their documented API.

``tests/test_server_socketio_internals.py`` checks each of these against the installed versions
and fails when one is outside :data:`TESTED_SOCKETIO` / :data:`TESTED_ENGINEIO` or no longer
behaves so.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["TESTED_ENGINEIO", "TESTED_SOCKETIO", "drop_connections", "packet_class", "use_timer_poll"]

# Versions the internals below were checked against: [low, high).
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


_SOCKET_CLASSES: dict[type[Any], type[Any]] = {}


def use_timer_poll(eio_server: Any, eio_sid: str) -> None:
    """Make the Engine.IO socket ``eio_sid`` wait for outgoing packets without a helper task.

    python-engineio's ``AsyncSocket.poll`` waits on the socket's queue with ``asyncio.wait_for``,
    which on Python 3.11 wraps ``queue.get()`` in a task for every wait, i.e. about once per
    packet sent on a busy connection. The subclass swapped in here takes a queued packet without
    waiting when there is one and otherwise waits under ``asyncio.timeout`` with the same
    deadline (``ping_interval + ping_timeout``) and the same outcomes (``QueueEmpty`` on timeout
    or cancellation, ``[]`` once the queue holds the ``None`` that closes the connection).

    Relies on: ``eio_server.sockets``, the socket's ``queue`` and ``server`` attributes, and
    ``poll`` being how the socket's writer (WebSocket) and long-poll GET take packets.
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


def _timer_poll_class(base: type[Any]) -> type[Any]:
    from engineio.exceptions import QueueEmpty

    class SMCPSocket(base):  # type: ignore[misc]
        async def poll(self) -> list[Any]:
            queue: asyncio.Queue[Any] = self.queue
            try:
                first = queue.get_nowait()
            except asyncio.QueueEmpty:
                server = self.server
                try:
                    async with asyncio.timeout(server.ping_interval + server.ping_timeout):
                        first = await queue.get()
                except (TimeoutError, asyncio.CancelledError):
                    raise QueueEmpty() from None
            queue.task_done()
            if first is None:
                return []
            packets = [first]
            while True:
                try:
                    pkt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                queue.task_done()
                if pkt is None:
                    queue.put_nowait(None)
                    break
                packets.append(pkt)
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
