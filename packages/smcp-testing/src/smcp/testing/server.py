"""An in-process SMCP server on uvicorn (127.0.0.1, port 0) and raw python-socketio peers.

Needs ``smcp-testing[server]``::

    async with running() as smcp:            # SMCPServer(ServerSettings(), TokenAuth(TOKEN))
        agent = await smcp.agent("a1")       # joined to office "o1"
        comp = await smcp.computer("c1", handler=lambda event, data: {...})
        await agent.call("client:get_tools", {"computer": "c1", ...})

:func:`serve` runs any ASGI app the same way (e.g. ``smcp.server.asgi.create_app(...)``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import socketio
import uvicorn

from smcp.core.events import ClientEvent
from smcp.core.roles import Role
from smcp.server.core import ServerSettings, SMCPServer, TokenAuth, VersionGate

TOKEN = "test-token"
NS = "/smcp"


@asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[str]:
    """Run ``app`` on uvicorn on a pre-bound loopback socket; yield its base URL.

    ``options`` go to ``uvicorn.Config`` over this function's own (lifespan on, no log config,
    32 MiB WebSocket messages).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # -> TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, **{"lifespan": "on", "log_config": None, "ws_max_size": 32 * 1024 * 1024, **options}
    )
    server = uvicorn.Server(config)
    server.capture_signals = _no_signals  # type: ignore[method-assign,assignment]
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task
        sock.close()


class _NoSignals:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _no_signals() -> _NoSignals:
    return _NoSignals()


class Peer:
    """A python-socketio client on ``/smcp`` that records every event the server sends it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        self.sio.on("*", self._record, namespace=NS)

    async def _record(self, event: str, *args: Any) -> None:
        self.received.append((event, args[0] if args else None))
        self._changed.set()

    async def connect(self, *, token: str | None = TOKEN, version: str | None = "0.4.0") -> None:
        url = self.url if version is None else f"{self.url}?a2c_version={version}"
        auth = None if token is None else {"token": token}
        await self.sio.connect(url, auth=auth, namespaces=[NS], transports=["websocket"], wait_timeout=5)

    async def call(self, event: str, *data: Any, timeout: float = 5) -> Any:
        fut: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

        def ack(*args: Any) -> None:
            if not fut.done():
                fut.set_result(args)

        payload: Any = data[0] if len(data) == 1 else (data if data else None)
        if len(data) == 0:
            await self.sio.emit(event, namespace=NS, callback=ack)
        else:
            await self.sio.emit(event, payload, namespace=NS, callback=ack)
        return await asyncio.wait_for(fut, timeout)

    async def join(self, role: str, name: str, office: str = "o1") -> tuple[Any, ...]:
        """``server:join_office``; returns the ack's arguments (``(True, None)`` on success)."""
        ack: tuple[Any, ...] = await self.call(
            "server:join_office", {"role": role, "name": name, "office_id": office}
        )
        return ack

    def serve_requests(self, handler: Callable[[str, Any], Awaitable[Any] | Any]) -> None:
        """Answer every ``client:*`` event with ``handler(event, data)``."""
        for event in ClientEvent:

            async def on(data: Any = None, _event: str = event.value) -> Any:
                result = handler(_event, data)
                if asyncio.iscoroutine(result):
                    result = await result
                return result

            self.sio.on(event.value, on, namespace=NS)

    async def wait_for(self, event: str, timeout: float = 5, start: int = 0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for name, data in self.received[start:]:
                    if name == event:
                        return data
                self._changed.clear()
                await self._changed.wait()

    def events(self, prefix: str = "notify:") -> list[tuple[str, Any]]:
        return [(e, d) for e, d in self.received if e.startswith(prefix)]

    async def close(self) -> None:
        if self.sio.connected:
            await asyncio.wait_for(self.sio.disconnect(), 5)


class Harness:
    """A running server and the peers a test made on it (closed when :func:`running` exits)."""

    def __init__(self, server: SMCPServer, url: str) -> None:
        self.server = server
        self.url = url
        self.peers: list[Peer] = []

    async def peer(self, *, connect: bool = True, **kwargs: Any) -> Peer:
        p = Peer(self.url)
        self.peers.append(p)
        if connect:
            await p.connect(**kwargs)
        return p

    async def agent(self, name: str = "agentA", office: str = "o1") -> Peer:
        p = await self.peer()
        assert await p.join(Role.AGENT, name, office) == (True, None)
        return p

    async def computer(self, name: str = "comp1", office: str = "o1", handler: Any = None) -> Peer:
        p = await self.peer(connect=False)
        p.serve_requests(handler or _echo_handler)
        await p.connect()
        assert await p.join(Role.COMPUTER, name, office) == (True, None)
        return p


def _echo_handler(event: str, data: Any) -> Any:
    if event == "client:tool_call":
        return {
            "content": [{"type": "text", "text": repr(data.get("params"))}],
            "isError": False,
            "meta": {"seen": data},
        }
    return {"req_id": data.get("req_id"), "tools": [], "echo": data}


@asynccontextmanager
async def running(settings: ServerSettings | None = None, **kwargs: Any) -> AsyncIterator[Harness]:
    """An ``SMCPServer`` (``kwargs`` go to it; ``auth`` defaults to ``TokenAuth(TOKEN)``) behind the
    version gate on uvicorn."""
    server = SMCPServer(settings or ServerSettings(), kwargs.pop("auth", TokenAuth(TOKEN)), **kwargs)
    app = VersionGate(socketio.ASGIApp(server.sio, socketio_path=None), "/socket.io")
    async with serve(app) as url:
        h = Harness(server, url)
        try:
            yield h
        finally:
            for p in h.peers:
                await p.close()


__all__ = ["NS", "TOKEN", "Harness", "Peer", "running", "serve"]
