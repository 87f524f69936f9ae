"""The bench's node-relay (bench/node_relay/server.js) does the relay's wire work for python clients.

It needs Node.js and ``npm ci`` in bench/node_relay (``.ci/run`` runs it when npm is there).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

NODE_RELAY = Path(__file__).resolve().parents[1] / "node_relay"
NS = "/smcp"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (Node.js runs the bench's reference relay)"),
    pytest.mark.skipif(
        not (NODE_RELAY / "node_modules" / "socket.io").is_dir(),
        reason="bench/node_relay/node_modules is missing: run `npm ci` there (.ci/run does)",
    ),
]


@pytest.fixture
def relay_url() -> Iterator[str]:
    assert NODE is not None
    proc = subprocess.Popen(
        [NODE, str(NODE_RELAY / "server.js"), "--port", "0", "--token", "T"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # node prints LISTENING right after listen(); exits on failure
        assert line.startswith("LISTENING "), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
async def clients() -> AsyncIterator[list[socketio.AsyncClient]]:
    made: list[socketio.AsyncClient] = []
    yield made
    for c in made:
        await c.disconnect()


async def _connect(made: list[socketio.AsyncClient], url: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    made.append(client)
    await client.connect(f"{url}?a2c_version=0.4.0", namespaces=[NS], auth={"token": token}, wait_timeout=10)
    return client


async def test_join_notify_and_forwarded_call(relay_url: str, clients: list[socketio.AsyncClient]) -> None:
    computer = await _connect(clients, relay_url, "T")
    seen: asyncio.Queue[Any] = asyncio.Queue()
    computer.on("notify:enter_office", seen.put_nowait, namespace=NS)

    async def tool_call(data: dict[str, Any]) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": data["params"]["text"]}], "isError": False}

    computer.on("client:tool_call", tool_call, namespace=NS)
    join = {"office_id": "o1", "role": "computer", "name": "c1"}
    assert await computer.call("server:join_office", join, namespace=NS, timeout=10) == (True, None)

    agent = await _connect(clients, relay_url, "T")
    joined = await agent.call(
        "server:join_office", {"office_id": "o1", "role": "agent", "name": "a1"}, namespace=NS, timeout=10
    )
    assert joined == (True, None)
    assert await asyncio.wait_for(seen.get(), 10) == {"office_id": "o1", "agent": "a1"}

    call = {"computer": "c1", "tool_name": "echo", "params": {"text": "hi"}, "timeout": 10}
    reply = await agent.call("client:tool_call", call, namespace=NS, timeout=10)
    assert reply == {"content": [{"type": "text", "text": "hi"}], "isError": False}
    missing = await agent.call("client:tool_call", {**call, "computer": "nobody"}, namespace=NS, timeout=10)
    assert missing["code"] == 404


async def test_wrong_token_is_refused(relay_url: str, clients: list[socketio.AsyncClient]) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _connect(clients, relay_url, "wrong")
