"""Cluster mode end to end: ``smcp-server --redis-url`` processes behind the shipped nginx config.

- kill -9 of a node with calls in flight to its Computer: the calls fail within the node TTL + 2 s,
  the Computer reconnects through nginx to another node and re-joins, the Agent sees leave then
  enter, calls work again;
- Redis restarted with clients connected, then stopped for 10 s: ``/readyz`` says so, joins are
  refused with a clear error, local calls still finish, and everything recovers without a restart;
- the official 0.4.2 Agent and Computer (polling first) on different nodes, through nginx.

Each test prints the figures it measured (``pytest -s``). Needs Redis at 127.0.0.1:6379 (and
``redis-server`` for the outage test) and nginx (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import socketio

from smcp.core.errors import NotFoundError, SMCPError
from smcp.testing import roles
from smcp.testing.mcp_config import toolbox_config

from .harness import ProcessManager, write_mcp_json
from .harness.cluster import (
    Node,
    SourceForwarder,
    node_behind,
    node_names,
    redis_up,
    start_nginx,
    start_nodes,
    start_private_redis,
)
from .harness.matrix import AgentUnderTest, matrix_servers, start_computer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

TTL = 2.0
FAST_PING = ("--ping-interval", "5", "--ping-timeout", "5")

needs_redis = pytest.mark.skipif(not redis_up(), reason="needs the Redis server at 127.0.0.1:6379")
needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="needs nginx (.ci/run installs it with apt-get)",
)
needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server binary to stop and restart"
)


def report(**figures: Any) -> None:
    print("CLUSTER FIGURES", " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


async def until(predicate: Any, timeout: float, what: str) -> float:
    """Poll ``predicate()`` (sync or async) until true; returns the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return time.monotonic() - started
            await asyncio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


@needs_redis
@needs_nginx
async def test_kill_a_node_with_calls_in_flight(procs: ProcessManager, tmp_path: Path) -> None:
    nodes = await start_nodes(procs, 3, node_ttl=TTL, extra_args=FAST_PING)
    nginx = await start_nginx(procs, nodes)
    names = await node_names(nodes)
    victim = nodes[names.index(await node_behind(nginx, "127.0.0.1"))]
    agent_node = next(n for n in nodes if n is not victim)
    await roles.start_computer(
        procs,
        url=f"http://127.0.0.1:{nginx}",
        office="o",
        name="c1",
        config=toolbox_config(tmp_path / "mcp.json"),
    )
    seen: list[tuple[str, float]] = []
    async with roles.agent(agent_node.url, office="o", name="ag") as agent:

        @agent.on("leave_office")
        async def on_leave(note: Any) -> None:
            seen.append(("leave", time.monotonic()))

        @agent.on("enter_office")
        async def on_enter(note: Any) -> None:
            seen.append(("enter", time.monotonic()))

        calls = [
            asyncio.ensure_future(
                agent.call_tool("c1", "toolbox__slow_echo", {"text": str(i), "seconds": 30}, timeout=40)
            )
            for i in range(3)
        ]

        async def in_flight() -> bool:
            return (await agent_node.metrics())["in_flight"] == 3

        await until(in_flight, 15, "the calls did not reach the relay")
        killed = time.monotonic()
        victim.proc.signal_group(signal.SIGKILL)
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), TTL + 10)
        to_error = time.monotonic() - killed
        assert all(isinstance(r, NotFoundError) for r in results), results
        assert to_error < TTL + 2, f"calls failed {to_error:.2f} s after the kill"
        await until(
            lambda: [k for k, _ in seen][-2:] == ["leave", "enter"], 30, f"no leave then enter: {seen}"
        )
        back = seen[-1][1] - killed
        echo = await agent.call_tool("c1", "toolbox__echo", {"text": "again"}, timeout=10)
        assert not echo.is_error and "again" in str(echo.content)
        survivors = [n for n in nodes if n is not victim]
        assert sum([(await n.metrics())["connections"] for n in survivors]) == 2  # type: ignore[misc]
    report(
        node_ttl_s=TTL, calls_error_after_kill_s=f"{to_error:.2f}", computer_back_after_kill_s=f"{back:.2f}"
    )


@needs_redis_server
async def test_redis_restart_and_outage(procs: ProcessManager, tmp_path: Path) -> None:
    redis_proc, port = await start_private_redis(procs)
    url = f"redis://127.0.0.1:{port}/0"
    nodes = await start_nodes(procs, 2, redis_url=url, node_ttl=TTL, extra_args=FAST_PING)
    config = toolbox_config(tmp_path / "mcp.json")
    await roles.start_computer(procs, url=nodes[0].url, office="o", name="remote", config=config)
    await roles.start_computer(
        procs, url=nodes[1].url, office="o", name="local", config=config, proc_name="computer-local"
    )
    async with roles.agent(nodes[1].url, office="o", name="ag") as agent:

        async def both_work() -> bool:
            try:
                for computer in ("remote", "local"):
                    result = await agent.call_tool(computer, "toolbox__echo", {"text": "x"}, timeout=5)
                    if result.is_error:
                        return False
            except Exception:
                return False
            return True

        assert await both_work()
        # 1. Restart: Redis comes back empty; the nodes write their sessions back.
        redis_proc.signal_group(signal.SIGKILL)
        await redis_proc.await_exit(5)
        redis_proc, _ = await start_private_redis(procs, port)
        restart_recovery = await until(both_work, 20, "calls did not work again after the Redis restart")

        async def all_listed() -> bool:  # a read on a connection Redis dropped may fall back once
            return sorted(s.name for s in await agent.sessions()) == ["ag", "local", "remote"]

        await until(all_listed, 10, "the office's sessions were not all listed after the Redis restart")

        # 2. Outage of 10 s.
        late = await _raw_peer(nodes[0])
        redis_proc.signal_group(signal.SIGKILL)
        await redis_proc.await_exit(5)
        stopped = time.monotonic()

        async def not_ready() -> bool:
            return [(await n.readyz())[0] for n in nodes] == [503, 503]

        readyz_503_after = await until(not_ready, 10, "/readyz did not report Redis down")
        ack = await asyncio.wait_for(
            late.call("server:join_office", {"role": "agent", "name": "late", "office_id": "o2"}), 10
        )
        assert ack[0] is False and "Redis" in ack[1] and "retry" in ack[1], ack
        local = await agent.call_tool(
            "local", "toolbox__slow_echo", {"text": "during", "seconds": 1}, timeout=10
        )
        assert not local.is_error and "during" in str(local.content)
        with pytest.raises(SMCPError) as refused:
            await agent.call_tool("remote", "toolbox__echo", {"text": "x"}, timeout=5)
        assert refused.value.error_code == 503 and "Redis" in str(refused.value)
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
        redis_proc, _ = await start_private_redis(procs, port)
        returned = time.monotonic()

        async def ready() -> bool:
            return [(await n.readyz())[0] for n in nodes] == [200, 200]

        await until(ready, 15, "/readyz did not recover")
        await until(both_work, 20, "calls did not work again after the outage")
        outage_recovery = time.monotonic() - returned
        ack = await asyncio.wait_for(
            late.call("server:join_office", {"role": "agent", "name": "late", "office_id": "o2"}), 10
        )
        assert ack[0] is True, ack
        await late.sio.disconnect()
    report(
        redis_restart_recovery_s=f"{restart_recovery:.2f}",
        redis_down_readyz_503_after_s=f"{readyz_503_after:.2f}",
        redis_outage_recovery_s=f"{outage_recovery:.2f}",
    )


class _Peer:
    def __init__(self, sio: socketio.AsyncClient) -> None:
        self.sio = sio

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, namespace="/smcp", timeout=10)


async def _raw_peer(node: Node) -> _Peer:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        f"{node.url}?a2c_version=0.4.0",
        auth={"token": roles.DEFAULT_TOKEN},
        namespaces=["/smcp"],
        transports=["websocket"],
        wait_timeout=5,
    )
    return _Peer(sio)


@needs_redis
@needs_nginx
@pytest.mark.official
async def test_official_peers_on_two_nodes_through_nginx(
    procs: ProcessManager, tmp_path: Path, official_py: Path
) -> None:
    nodes = await start_nodes(procs, 3, node_ttl=TTL)
    nginx = await start_nginx(procs, nodes)
    by_source: dict[str, str] = {}
    for last in range(2, 40):
        source = f"127.0.0.{last}"
        by_source[source] = await node_behind(nginx, source)
        if len(set(by_source.values())) >= 2:
            break
    first, second = next(iter(by_source)), source
    assert by_source[first] != by_source[second]
    config = write_mcp_json(tmp_path / "mcp.json", matrix_servers(tag="cluster"))
    async with SourceForwarder(first, nginx) as to_a, SourceForwarder(second, nginx) as to_b:
        await start_computer(procs, "official", url=to_a.url, office="o", name="oc", config=config)
        agent = await AgentUnderTest.launch(procs, "official", url=to_b.url, office="o", name="oa")
        assert (await agent.call("connect"))["connected"] is True
        joined = await agent.call("join")
        assert joined["ack"][0] is True, joined
        answer = await agent.tool_call("oc", "toolbox__echo", {"text": "through nginx"})
        assert "through nginx" in str(answer.get("result")), answer
        names = await node_names(nodes)
        counts = {name: (await n.metrics())["connections"] for name, n in zip(names, nodes, strict=True)}
        assert counts[by_source[first]] == 1 and counts[by_source[second]] == 1, counts
