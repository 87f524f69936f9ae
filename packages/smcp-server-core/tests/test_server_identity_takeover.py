"""Same-principal takeover: a new connection of the same ``sub`` evicts its own half-open session."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from smcp.server.core import JWTAuth, ServerSettings, issue_token
from smcp.testing.server import Peer, running

pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests-only-0123456789abcdef"


class Blackhole:
    """A loopback TCP proxy that can stop delivering bytes while keeping both sockets open."""

    def __init__(self) -> None:
        self.frozen = False
        self.url = ""

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if not self.frozen:
                    writer.write(data)
                    await writer.drain()

    @contextlib.asynccontextmanager
    async def run(self, target: str) -> AsyncIterator[Blackhole]:
        parts = urlsplit(target)
        tasks: set[asyncio.Task[Any]] = set()
        writers: list[asyncio.StreamWriter] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
            writers.extend((writer, up_writer))
            for pair in ((reader, up_writer), (up_reader, writer)):
                task = asyncio.ensure_future(self._pipe(*pair))
                tasks.add(task)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for writer in writers:
                writer.close()
            server.close()


def token(sub: str, role: str) -> str:
    return issue_token(SECRET, sub=sub, role=role, offices=["o1"])


async def test_same_principal_takes_its_name_back_at_once() -> None:
    # a long ping timeout: without takeover the name would stay held for a minute
    settings = ServerSettings(ping_interval=30, ping_timeout=30)
    async with running(settings, auth=JWTAuth(secret=SECRET)) as h:
        observer = await h.peer(token=token("alice", "agent"))
        assert await observer.join("agent", "alice", "o1") == (True, None)
        proxy = Blackhole()
        async with proxy.run(h.url):
            old = Peer(proxy.url)
            await old.connect(token=token("laptop", "computer"))
            assert await old.join("computer", "comp1", "o1") == (True, None)
            await observer.wait_for("notify:enter_office")
            mark = len(observer.received)
            proxy.frozen = True  # the laptop changed networks: its old socket is half-open
            started = time.monotonic()
            new = await h.peer(token=token("laptop", "computer"))
            assert await new.join("computer", "comp1", "o1") == (True, None)
            assert time.monotonic() - started < 2.0
            left = await observer.wait_for("notify:leave_office", start=mark)
            entered = await observer.wait_for("notify:enter_office", start=mark)
            assert left == {"office_id": "o1", "computer": "comp1"}
            assert entered == {"office_id": "o1", "computer": "comp1"}
            members = await h.server.registry.members("o1")
            assert sorted((m.name, m.sid) for m in members) == sorted(
                [("alice", observer.sio.get_sid("/smcp")), ("comp1", new.sio.get_sid("/smcp"))]
            )
            assert h.server.metrics.connections == 2
            # another principal still cannot take the name
            thief = await h.peer(token=token("mallory", "computer"))
            ok, reason = await thief.join("computer", "comp1", "o1")
            assert not ok and "already exists" in reason
        # the proxy is gone: the old client sees its connection end
        async with asyncio.timeout(10):
            while old.sio.connected:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        # the evicted socket's own disconnect counts nothing twice
        assert h.server.metrics.connections == h.server.quotas.connections == 3
