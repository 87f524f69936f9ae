"""A loopback TCP proxy for network-fault tests: put it between a client and a server, then break
the path on demand.

::

    async with TcpProxy(server_port) as proxy:       # listens on 127.0.0.1, port 0
        url = proxy.url                              # give this URL to the client
        await proxy.reset_clients()                  # the client sees RST; the server side stays open
        proxy.blackhole()                            # nothing passes either way, no FIN/RST
        proxy.restore()                              # new connections pass again
        proxy.stall_downstream()                     # the client stops reading

Faults:

- :meth:`TcpProxy.reset_clients`: a network change seen from the client: its connections are
  reset (RST), while the server's side of each stays open and silent (a half-open socket the
  server only finds by its heartbeat);
- :meth:`TcpProxy.blackhole`: a silent drop: existing connections stop forwarding in both
  directions and nothing is closed; new connections are accepted and stay silent too;
- :meth:`TcpProxy.stall_downstream`: a client that stops reading (its receive window fills);
- :meth:`TcpProxy.restore`: the network is back: connections made from now on are forwarded (the
  silenced ones stay silent, as their peers have given them up).

Every wait is bounded; :meth:`TcpProxy.close` closes every socket it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Self

__all__ = ["TcpProxy"]

_CHUNK = 64 * 1024


class _Pipe:
    """One proxied connection: the client's socket and the upstream one, with two pumps."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.silent = False
        self.downstream = asyncio.Event()  # set: server -> client bytes flow
        self.downstream.set()
        self.tasks: list[asyncio.Task[None]] = []

    def dark(self) -> bool:
        return self.silent

    def close(self, *, reset_client: bool = False) -> None:
        for task in self.tasks:
            task.cancel()
        if reset_client:
            with contextlib.suppress(OSError):
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """Forwards connections from ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.pipes: list[_Pipe] = []
        self.accepted = 0
        self._dark = False
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def live(self) -> list[_Pipe]:
        """The connections that currently forward."""
        return [p for p in self.pipes if not p.silent]

    async def start(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        sock.setblocking(False)
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._accept_task = asyncio.create_task(self._accept(), name=f"tcpproxy-{self.port}")
        return self.port

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            client, _ = await loop.sock_accept(self._listener)
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                await asyncio.wait_for(loop.sock_connect(upstream, self.target), 5.0)
            except (OSError, TimeoutError):
                _Pipe(client, upstream).close(reset_client=True)
                continue
            pipe = _Pipe(client, upstream)
            pipe.silent = self._dark
            self.pipes.append(pipe)
            pipe.tasks = [
                asyncio.create_task(self._pump(pipe, client, upstream)),
                asyncio.create_task(self._pump(pipe, upstream, client, pipe.downstream)),
            ]

    async def _pump(
        self, pipe: _Pipe, src: socket.socket, dst: socket.socket, gate: asyncio.Event | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        while not pipe.silent:
            if gate is not None:
                await gate.wait()
            try:
                data = await loop.sock_recv(src, _CHUNK)
            except OSError:
                data = b""
            if pipe.dark():  # the fault came while this read was pending: the bytes are lost
                return
            if not data:
                # an orderly end (or a reset) on one side: pass it on by closing both
                pipe.close()
                return
            try:
                await loop.sock_sendall(dst, data)
            except OSError:
                pipe.close()
                return

    def _silence(self, pipe: _Pipe) -> None:
        pipe.silent = True
        for task in pipe.tasks:
            task.cancel()

    async def reset_clients(self) -> int:
        """Reset the client side of every live connection (RST); keep its upstream side open and
        silent. Returns how many connections were reset."""
        count = 0
        for pipe in self.live:
            self._silence(pipe)
            with contextlib.suppress(OSError):
                pipe.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                pipe.client.close()
            count += 1
        await asyncio.sleep(0)
        return count

    def blackhole(self) -> int:
        """Silence every connection in both directions without closing anything; connections made
        until :meth:`restore` are silent too. Returns how many live connections were silenced."""
        self._dark = True
        live = self.live
        for pipe in live:
            self._silence(pipe)
        return len(live)

    def stall_downstream(self) -> int:
        """A client that stops reading: bytes from the server to the live connections are no longer
        read (the server's send buffers fill up), while the clients' bytes still reach the server.
        Returns how many connections were stalled."""
        live = self.live
        for pipe in live:
            pipe.downstream.clear()
        return len(live)

    def resume_downstream(self) -> None:
        for pipe in self.pipes:
            pipe.downstream.set()

    def restore(self) -> None:
        """Forward the connections made from now on."""
        self._dark = False

    async def close(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._accept_task, 2.0)
        if self._listener is not None:
            self._listener.close()
        for pipe in self.pipes:
            pipe.close()
        self.pipes.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
