"""Re-joining after a reconnect while our real server still holds the Agent's old session.

A TCP proxy between the Agent and the server cuts the Agent's side of a connection and freezes
the server's side (a half-open socket): the server keeps the old session, and refuses the name
and the office's one agent seat, until its ping interval + ping timeout have passed. The Agent
must keep re-joining until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from smcp.agent import AsyncAgent

pytestmark = pytest.mark.anyio

TOKEN = "rejoin-secret"


class FreezingProxy:
    """Forwards TCP connections; :meth:`cut` closes the client sides and freezes the server sides."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[asyncio.Task[None]]]] = []
        self._frozen: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        tasks = [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer)),
        ]
        self._pairs.append((writer, up_writer, tasks))

    async def cut(self) -> None:
        pairs, self._pairs = self._pairs, []
        for client, upstream, tasks in pairs:
            for task in tasks:
                task.cancel()
            self._frozen.append(upstream)  # never read, never closed: the server sees silence
            client.transport.abort()

    async def close(self) -> None:
        await self.cut()
        for upstream in self._frozen:
            upstream.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


@contextlib.asynccontextmanager
async def our_server(**settings: Any) -> AsyncIterator[int]:
    """Our server core in this event loop behind its version gate; yields the port."""
    core = pytest.importorskip("smcp.server.core")
    socketio = pytest.importorskip("socketio")
    uvicorn = pytest.importorskip("uvicorn")
    server = core.SMCPServer(core.ServerSettings(**settings), core.TokenAuth(TOKEN))
    app = core.VersionGate(socketio.ASGIApp(server.sio))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        for _ in range(250):
            if uv.started:
                break
            await asyncio.sleep(0.02)
        assert uv.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        uv.should_exit = True
        uv.force_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


async def _rejoin_while_the_old_session_is_held(
    caplog: pytest.LogCaptureFixture, ping_interval: float, ping_timeout: float, **options: Any
) -> tuple[float, int]:
    """Cut the Agent's connection; return how long it took to be back and the refused re-joins."""
    caplog.set_level(logging.WARNING, logger="smcp.agent")
    async with our_server(ping_interval=ping_interval, ping_timeout=ping_timeout) as port:
        proxy = FreezingProxy(port)
        await proxy.start()
        try:
            url = f"http://127.0.0.1:{proxy.port}"
            async with AsyncAgent(url, token=TOKEN, office="o1", name="a1", cache=False, **options) as agent:
                back = asyncio.Event()
                agent.on("reconnected")(back.set)
                start = time.monotonic()
                await proxy.cut()
                await asyncio.wait_for(back.wait(), ping_interval + ping_timeout + 30)
                took = time.monotonic() - start
                assert agent.office == "o1"
                assert [s.name for s in await agent.sessions()] == ["a1"]  # the old session is gone
        finally:
            await proxy.close()
    refused = [r for r in caplog.records if "re-joining office 'o1' failed" in r.getMessage()]
    return took, len(refused)


async def test_rejoin_waits_for_the_server_to_reap_the_old_session(caplog: pytest.LogCaptureFixture) -> None:
    took, refused = await _rejoin_while_the_old_session_is_held(caplog, ping_interval=1.0, ping_timeout=2.0)
    assert refused >= 1  # the server really held the old session and refused the name
    assert took < 15


@pytest.mark.slow
async def test_rejoin_outlasts_a_server_that_holds_the_session_longer_than_21_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the defect: the Agent gave up after ten attempts (about 21 s); python-socketio's defaults
    # (25 s + 20 s) hold a half-open session for up to 45 s
    took, refused = await _rejoin_while_the_old_session_is_held(caplog, ping_interval=14.0, ping_timeout=12.0)
    assert took > 22 and refused > 10


async def test_rejoin_gives_up_after_rejoin_for(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="smcp.agent")
    async with our_server(ping_interval=20.0, ping_timeout=20.0) as port:
        proxy = FreezingProxy(port)
        await proxy.start()
        try:
            url = f"http://127.0.0.1:{proxy.port}"
            async with AsyncAgent(
                url, token=TOKEN, office="o1", name="a1", cache=False, rejoin_for=1.0
            ) as agent:
                await proxy.cut()
                deadline = time.monotonic() + 15
                while not any("could not re-join" in r.getMessage() for r in caplog.records):
                    assert time.monotonic() < deadline, "the Agent never gave up"
                    await asyncio.sleep(0.1)
                assert agent.connected and agent.office is None
        finally:
            await proxy.close()
