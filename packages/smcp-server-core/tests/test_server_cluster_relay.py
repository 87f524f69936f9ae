"""Cluster mode with three in-process nodes on one Redis: the relay across nodes keeps single-server
semantics (results, deadline, 404 on disconnect or node death, cancel, nothing left pending),
notifications arrive exactly once, list_room sees every node. Needs Redis at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import socketio

from smcp.server.core import ServerSettings, SMCPServer, TokenAuth, VersionGate
from smcp.testing.processes import listening
from smcp.testing.server import TOKEN, Harness, serve

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"
TTL = 1.5


if not listening("127.0.0.1", 6379):
    pytest.skip("needs the Redis server at 127.0.0.1:6379 (not reachable)", allow_module_level=True)

from smcp.server.core import RedisCluster  # noqa: E402


@asynccontextmanager
async def node(prefix: str, index: int) -> AsyncIterator[Harness]:
    cluster = RedisCluster(REDIS_URL, prefix=prefix, node=f"node{index}", node_ttl=TTL, heartbeat=0.3)
    server = SMCPServer(ServerSettings(grace=0.5), TokenAuth(TOKEN), cluster=cluster)
    await server.start()
    app = VersionGate(socketio.ASGIApp(server.sio, socketio_path=None), "/socket.io")
    async with serve(app) as url:
        h = Harness(server, url)
        try:
            yield h
        finally:
            async with asyncio.timeout(20):
                for p in h.peers:
                    await p.close()
            async with asyncio.timeout(20):
                await server.shutdown()


@pytest.fixture
async def nodes() -> AsyncIterator[list[Harness]]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(node(prefix, i)) for i in range(3)]
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def tool(computer: str, timeout: int = 5, **params: Any) -> dict[str, Any]:
    return {
        "agent": "ag",
        "req_id": "r1",
        "computer": computer,
        "tool_name": "t",
        "params": params,
        "timeout": timeout,
    }


def nothing_pending(*harnesses: Harness) -> bool:
    for h in harnesses:
        relay = h.server._relay
        if relay.pending or relay.remote or relay.by_node or h.server.metrics.in_flight:
            return False
        if any(len(table) > 1 for table in h.server.sio.manager.callbacks.values()):
            return False
    return True


async def settled(*harnesses: Harness) -> None:
    """Every relay table is empty again (within 2 s: the other node's cleanup runs concurrently)."""
    async with asyncio.timeout(2):
        while not nothing_pending(*harnesses):
            await asyncio.sleep(0.05)


async def test_calls_in_every_direction(nodes: list[Harness]) -> None:
    agents = []
    for k, agent_node in enumerate(nodes):
        office = f"o{k}"
        for i, h in enumerate(nodes):
            await h.computer(f"c{i}", office)
        agents.append(await agent_node.agent("ag", office))
    for agent in agents:
        for i in range(3):
            (result,) = await agent.call("client:tool_call", tool(f"c{i}", x=i))
            assert result["isError"] is False and result["content"][0]["text"] == repr({"x": i})
    await settled(*nodes)
    assert all(h.server._relay.fast_path for h in nodes)


async def test_request_as_and_ask_computer_reach_a_computer_on_another_node(nodes: list[Harness]) -> None:
    from smcp.core.roles import Role
    from smcp.server.core import Principal, Session

    await nodes[1].computer("far", "o1")
    here = nodes[0].server
    target = await here.registry.lookup("o1", "far")
    assert target is not None and target.node == "node1"
    data = {"agent": "ops", "req_id": "q1", "computer": "far"}
    assert (await here.ask_computer(target, "client:get_tools", data, 5))["req_id"] == "q1"
    operator = Session("ops:1", None, Principal("operator", {}), Role.AGENT, "ops", "o1")
    result = await here.request_as(operator, "client:tool_call", tool("far", x=1))
    assert result["isError"] is False and result["content"][0]["text"] == repr({"x": 1})
    await settled(*nodes)


async def test_notifications_once_and_list_room_sees_every_node(nodes: list[Harness]) -> None:
    agent = await nodes[0].agent("ag", "o")
    computers = [await h.computer(f"c{i}", "o") for i, h in enumerate(nodes)]
    await computers[2].call("server:update_tool_list", {"computer": "c2"})
    await agent.wait_for("notify:update_tool_list")
    (room,) = await agent.call("server:list_room", {"agent": "ag", "office_id": "o", "req_id": "q"})
    assert [s["name"] for s in room["sessions"]] == ["ag", "c0", "c1", "c2"]
    await asyncio.sleep(0.3)  # a duplicate would arrive by now
    enters = [d["computer"] for e, d in agent.events() if e == "notify:enter_office"]
    assert enters == ["c0", "c1", "c2"]
    assert [e for e, _ in agent.events()].count("notify:update_tool_list") == 1
    assert [e for e, _ in computers[0].events()].count("notify:update_tool_list") == 1
    assert await agent.call("server:tool_call_cancel", {"agent": "ag", "req_id": "t1"}) == ()
    for comp in computers:
        assert await comp.wait_for("notify:tool_call_cancel") == {"agent": "ag", "req_id": "t1"}


async def test_deadline_across_nodes_leaves_nothing_pending(nodes: list[Harness]) -> None:
    async def silent(event: str, data: Any) -> Any:
        await asyncio.sleep(30)

    await nodes[1].computer("slow", "o", handler=silent)
    agent = await nodes[0].agent("ag", "o")
    started = time.monotonic()
    (answer,) = await agent.call("client:tool_call", tool("slow", timeout=1), timeout=10)
    took = time.monotonic() - started
    assert answer["code"] == 408 and "1.5 s" in answer["message"]
    assert 1.4 < took < 3.5
    await settled(*nodes)


async def test_disconnect_of_a_remote_computer_is_404_at_once(nodes: list[Harness]) -> None:
    called = asyncio.Event()

    async def hang(event: str, data: Any) -> Any:
        called.set()
        await asyncio.sleep(30)

    comp = await nodes[2].computer("c", "o", handler=hang)
    agent = await nodes[0].agent("ag", "o")
    call = asyncio.ensure_future(agent.call("client:tool_call", tool("c", timeout=20), timeout=10))
    await asyncio.wait_for(called.wait(), 5)
    started = time.monotonic()
    await comp.close()
    (answer,) = await call
    assert answer["code"] == 404 and time.monotonic() - started < 1.5
    await settled(*nodes)
    (again,) = await agent.call("client:tool_call", tool("c"))
    assert again["code"] == 404


async def test_binary_reply_crosses_nodes(nodes: list[Harness]) -> None:
    blob = bytes(range(256))
    await nodes[1].computer(
        "c", "o", handler=lambda e, d: {"content": [], "isError": False, "meta": {"b": blob}}
    )
    agent = await nodes[0].agent("ag", "o")
    (result,) = await agent.call("client:tool_call", tool("c"))
    assert result["meta"]["b"] == blob


async def test_node_death_fails_calls_within_ttl(nodes: list[Harness]) -> None:
    called = asyncio.Event()

    async def hang(event: str, data: Any) -> Any:
        called.set()
        await asyncio.sleep(30)

    await nodes[1].computer("c", "o", handler=hang)
    agent = await nodes[0].agent("ag", "o")
    call = asyncio.ensure_future(agent.call("client:tool_call", tool("c", timeout=20), timeout=15))
    await asyncio.wait_for(called.wait(), 5)
    started = time.monotonic()
    cluster = nodes[1].server.cluster
    assert cluster is not None
    for task in cluster._tasks:  # the node stops beating and listening, as if frozen or killed
        task.cancel()
    (answer,) = await call
    took = time.monotonic() - started
    assert answer["code"] == 404 and took < TTL + 2
    left = await agent.wait_for("notify:leave_office", timeout=5)
    assert left == {"office_id": "o", "computer": "c"}
    (room,) = await agent.call("server:list_room", {"agent": "ag", "office_id": "o", "req_id": "q"})
    assert [s["name"] for s in room["sessions"]] == ["ag"]


@pytest.mark.parametrize("role", ["agent", "computer"])
async def test_join_races_between_nodes_have_one_winner(nodes: list[Harness], role: str) -> None:
    one, two = await nodes[0].peer(), await nodes[1].peer()
    won = {0: 0, 1: 0}
    for i in range(100):
        names = ("x", "y") if role == "agent" else ("same", "same")
        acks = await asyncio.gather(one.join(role, names[0], f"r{i}"), two.join(role, names[1], f"r{i}"))
        winners = [k for k, ack in enumerate(acks) if ack == (True, None)]
        assert len(winners) == 1, acks
        won[winners[0]] += 1
        if role == "agent":
            winner = (one, two)[winners[0]]
            assert await winner.call("server:leave_office", {"office_id": f"r{i}"}) == (True, None)
    assert won[0] + won[1] == 100
