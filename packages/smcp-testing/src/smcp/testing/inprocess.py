"""Clients of a real :class:`~smcp.server.core.SMCPServer` without a network: Engine.IO sessions in memory.

Each :class:`InProcessPeer` is a real python-engineio socket of the server's own Engine.IO server:
what it sends goes through python-socketio's packet decoding, the server's handlers and its ack
encoding exactly as over a WebSocket; only the HTTP/WebSocket framing is skipped. That makes tens
of thousands of hostile requests affordable in one test (see ``tests/reliability``)::

    server = SMCPServer(ServerSettings(), TokenAuth(TOKEN))
    peer = await InProcessPeer.open(server)           # connected to /smcp with the test token
    await peer.emit("server:join_office", {...}, ack_id=1)
    (ack,) = await peer.acks(1)

Needs ``smcp-testing[server]``. Uses python-engineio's ``AsyncSocket`` and the server's
``_trigger_event``: a test kit may, the server's own code may not (its private touches are in
``smcp.server.core._socketio_internals``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from smcp.core.events import NAMESPACE

if TYPE_CHECKING:
    from smcp.server.core import SMCPServer

__all__ = ["ErrorRecords", "InProcessPeer", "close_loop"]

_ids = itertools.count(1)


class InProcessPeer:
    """One Engine.IO session of ``server`` held in memory; records every packet sent to it."""

    def __init__(self, server: SMCPServer, eio_sid: str) -> None:
        self.server = server
        self.eio_sid = eio_sid
        #: Decoded Socket.IO packets the server sent, in order (``packet_type``, ``id``, ``data``).
        self.received: list[Any] = []
        self._partial: Any = None
        self.on_event: Any = None

    @classmethod
    async def open(
        cls,
        server: SMCPServer,
        *,
        auth: Any = None,
        query: str = "a2c_version=0.4.0",
        connect: bool = True,
    ) -> InProcessPeer:
        """A new Engine.IO session of ``server``; with ``connect``, connected to ``/smcp`` with ``auth``
        (default: the test kit's token)."""
        from engineio.async_socket import AsyncSocket

        from smcp.testing.server import TOKEN

        eio = server.sio.eio
        eio_sid = f"inproc{next(_ids)}"
        socket = AsyncSocket(eio, eio_sid)
        socket.connected = True
        eio.sockets[eio_sid] = socket
        environ = {"QUERY_STRING": query, "REMOTE_ADDR": "127.0.0.1", "asgi.scope": {"headers": []}}
        await eio._trigger_event("connect", eio_sid, environ, run_async=False)
        peer = cls(server, eio_sid)
        if connect:
            await peer.send_text(f"0{NAMESPACE}," + json.dumps({"token": TOKEN} if auth is None else auth))
            await peer.settle()
        return peer

    @property
    def socket(self) -> Any:
        return self.server.sio.eio.sockets.get(self.eio_sid)

    @property
    def sid(self) -> str | None:
        """The Socket.IO sid in ``/smcp`` (``None`` when not connected there)."""
        sid: str | None = self.server.sio.manager.sid_from_eio_sid(self.eio_sid, NAMESPACE)
        return sid

    async def send_text(self, text: str) -> None:
        """Hand one Engine.IO MESSAGE (an encoded Socket.IO packet, or anything else) to the server."""
        await self._receive(text)

    async def send_binary(self, data: bytes) -> None:
        """Hand one binary Engine.IO MESSAGE (an attachment) to the server."""
        await self._receive(data)

    async def _receive(self, data: str | bytes) -> None:
        from engineio import packet

        socket = self.socket
        if socket is not None:
            socket.last_ping = time.time()  # a live client answers pings: the server must not reap it
            await socket.receive(packet.Packet(packet.MESSAGE, data=data))

    async def emit(self, event: Any, *args: Any, ack_id: int | None = None) -> None:
        """Send a Socket.IO EVENT ``[event, *args]`` (encoded by python-socketio's own packet class)."""
        from socketio import packet

        try:  # the Socket.IO v5 text encoding, as Packet.encode writes it (without its recursive scan)
            text = json.dumps([event, *args], separators=(",", ":"))
        except (TypeError, ValueError):
            pass
        else:
            await self._receive(f"2{NAMESPACE},{'' if ack_id is None else ack_id}{text}")
            return
        pkt = packet.Packet(packet.EVENT, data=[event, *args], namespace=NAMESPACE, id=ack_id)
        encoded = pkt.encode()
        if isinstance(encoded, list):  # binary: the text packet, then its attachments
            for part in encoded:
                await self._receive(part)
        else:
            await self._receive(encoded)

    async def settle(self, rounds: int = 3) -> None:
        """Let the server's handler tasks run, then collect what it sent."""
        for _ in range(rounds):
            await asyncio.sleep(0)
        self.collect()

    def collect(self) -> None:
        """Decode every Engine.IO packet waiting in the socket's queue into :attr:`received`."""
        from socketio import packet

        socket = self.socket
        if socket is None:
            return
        queue = socket.queue
        while True:
            try:
                eio_pkt = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            queue.task_done()
            if eio_pkt is None:
                continue
            data = eio_pkt.data
            if self._partial is not None:
                if self._partial.add_attachment(data):
                    self._deliver(self._partial)
                    self._partial = None
                continue
            if not isinstance(data, str):
                continue
            pkt = packet.Packet(encoded_packet=data)
            if pkt.attachment_count:
                self._partial = pkt
                continue
            self._deliver(pkt)

    def _deliver(self, pkt: Any) -> None:
        self.received.append(pkt)
        if self.on_event is not None and pkt.packet_type in (2, 5):  # EVENT, BINARY_EVENT
            self.on_event(self, pkt)

    def acks(self) -> dict[int, list[Any]]:
        """Every ACK received so far: ack id -> its arguments."""
        return {p.id: p.data for p in self.received if p.packet_type in (3, 6)}

    def events(self) -> list[tuple[str, Any]]:
        """Every event the server sent: ``(name, first argument)``."""
        return [
            (p.data[0], p.data[1] if len(p.data) > 1 else None)
            for p in self.received
            if p.packet_type in (2, 5)
        ]

    async def answer(self, ack_id: int, *args: Any) -> None:
        """Acknowledge the server's event ``ack_id`` (a Computer's reply) with ``args``."""
        from socketio import packet

        pkt = packet.Packet(packet.ACK, data=list(args), namespace=NAMESPACE, id=ack_id)
        encoded = pkt.encode()
        for part in encoded if isinstance(encoded, list) else [encoded]:
            await self._receive(part)

    async def close(self) -> None:
        """Drop the session as a transport failure (the server runs its disconnect handlers)."""
        socket = self.socket
        if socket is not None:
            await socket.close(wait=False, abort=True)
            self.server.sio.eio.sockets.pop(self.eio_sid, None)


class ErrorRecords(logging.Handler):
    """Keeps every record at ERROR or above (attach it to the root logger to see any logger's).

    Creating one collects garbage first: what earlier code in the process left unclosed (another
    test's aiohttp session, say) is finalized, and logged, before the recording starts.
    """

    def __init__(self) -> None:
        gc.collect()
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending on ``loop`` (python-engineio's ping and service tasks), then close it."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()

    async def drain() -> None:
        await asyncio.gather(*pending, return_exceptions=True)

    loop.run_until_complete(drain())
    loop.close()
