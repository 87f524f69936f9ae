"""The Redis registry of cluster mode: the single-server join rules, atomic under races between nodes,
and the purge of a dead node. Needs the Redis server at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from smcp.server.core import JoinRejected, MemoryRegistry, Registry, Session
from smcp.testing.processes import listening

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"


if not listening("127.0.0.1", 6379):
    pytest.skip("needs the Redis server at 127.0.0.1:6379 (not reachable)", allow_module_level=True)

from smcp.server.core import RedisCluster  # noqa: E402


@pytest.fixture
async def nodes() -> AsyncIterator[list[RedisCluster]]:
    """Two cluster nodes (no Socket.IO server) on one fresh key prefix."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    made = [RedisCluster(REDIS_URL, prefix=prefix, node=f"n{i}", node_ttl=1.0, heartbeat=0.3) for i in (1, 2)]
    for node in made:
        await node.start()
    try:
        yield made
    finally:
        for node in made:
            await node.stop()
        client = made[0].redis.__class__.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _outcome(coro: Any) -> Any:
    try:
        return ("ok", tuple(await coro))
    except JoinRejected as exc:
        return ("rejected", str(exc))


async def _script(registry: Registry) -> list[Any]:
    """One sequence covering every join rule; the results must match between registries."""
    for sid in ("a1", "a2", "c1", "c2"):
        await registry.add(Session(sid, "0.4.0"))
    steps = [
        registry.join("a1", "agent", "A", "o1", max_agents=1),
        registry.join("a2", "agent", "B", "o1", max_agents=1),  # seat taken
        registry.join("c1", "computer", "A", "o1", max_agents=1),  # name taken by the agent
        registry.join("c1", "computer", "C", "o1", max_agents=1),
        registry.join("c2", "computer", "C", "o1", max_agents=1),  # computer name taken
        registry.join("c1", "agent", "X", "o2", max_agents=1),  # role mismatch
        registry.join("a1", "agent", "A", "o2", max_agents=1),  # agent must leave first
        registry.join("c1", "computer", "C", "o1", max_agents=1),  # no change
        registry.join("c1", "computer", "D", "o1", max_agents=1),  # rename
        registry.join("c1", "computer", "D", "o2", max_agents=1),  # move
        registry.join("zz", "agent", "Z", "o1", max_agents=1),  # unregistered
    ]
    out = [await _outcome(step) for step in steps]
    out.append([(m.sid, m.role, m.name, m.office) for m in await registry.members("o1")])
    out.append(await registry.office_count())
    out.append(sorted(await registry.offices()))
    found = await registry.lookup("o2", "D")
    out.append(None if found is None else found.sid)
    left = await registry.leave("a1", "o1")
    out.append((left.sid, left.office))
    out.append(await _outcome(registry.leave("a1", "o1")))
    removed = await registry.remove("c1")
    out.append(None if removed is None else (removed.sid, removed.office))
    out.append(await registry.office_count())
    out.append(await _outcome(registry.join("a2", "agent", "B", "o1", max_agents=1)))
    return out


async def test_same_rules_and_texts_as_the_memory_registry(nodes: list[RedisCluster]) -> None:
    expected = await _script(MemoryRegistry())
    assert await _script(nodes[0].registry) == expected
    assert expected[1][0] == "rejected" and "already has an agent" in expected[1][1]


async def test_sessions_of_another_node_are_visible(nodes: list[RedisCluster]) -> None:
    one, two = nodes[0].registry, nodes[1].registry
    await one.add(Session("s1", "0.4.0"))
    await one.join("s1", "computer", "c", "o", max_agents=1)
    seen = await two.lookup("o", "c")
    assert seen is not None and (seen.sid, seen.node, seen.role, seen.a2c_version) == (
        "s1",
        "n1",
        "computer",
        "0.4.0",
    )
    got = await two.get("s1")
    assert got is not None and got.office == "o"
    assert [m.sid for m in await two.members("o")] == ["s1"]


@pytest.mark.parametrize("role", ["agent", "computer"])
async def test_race_between_two_nodes_has_exactly_one_winner(nodes: list[RedisCluster], role: str) -> None:
    one, two = nodes[0].registry, nodes[1].registry
    wins = 0
    for i in range(100):
        office, a, b = f"race{i}", f"a{i}", f"b{i}"
        await one.add(Session(a))
        await two.add(Session(b))
        # Agents race for the one seat (different names), Computers for one name.
        name_a, name_b = (f"x{i}", f"y{i}") if role == "agent" else ("same", "same")
        results = await asyncio.gather(
            _outcome(one.join(a, role, name_a, office, max_agents=1)),
            _outcome(two.join(b, role, name_b, office, max_agents=1)),
        )
        kinds = sorted(r[0] for r in results)
        assert kinds == ["ok", "rejected"], results
        wins += 1
        assert len(await one.members(office)) == 1
    assert wins == 100


async def test_a_dead_node_is_purged_and_its_members_announced(nodes: list[RedisCluster]) -> None:
    one, two = nodes
    announced: list[tuple[str, str | None]] = []

    async def purged(sessions: list[Session]) -> None:
        announced.extend((s.sid, s.name) for s in sessions)

    one.registry.on_purged = purged
    dead: list[str] = []
    one.on_node_dead = dead.append
    await two.registry.add(Session("s2"))
    await two.registry.join("s2", "computer", "c", "o", max_agents=1)
    # Node 2 stops beating (as if killed): cancel its tasks without the clean goodbye.
    for task in two._tasks:
        task.cancel()
    async with asyncio.timeout(5):
        while not announced:
            await asyncio.sleep(0.05)
    assert announced == [("s2", "c")] and set(dead) == {"n2"}
    assert await one.registry.lookup("o", "c") is None
    assert await one.registry.office_count() == 0


async def test_a_name_held_by_a_dead_node_is_free_at_once(nodes: list[RedisCluster]) -> None:
    one, two = nodes
    for task in two._tasks:
        task.cancel()
    announced: list[str] = []

    async def purged(sessions: list[Session]) -> None:
        announced.extend(s.sid for s in sessions)

    one.registry.on_purged = purged
    await two.registry.add(Session("old"))
    await two.registry.join("old", "computer", "c", "o", max_agents=1)
    await one.registry.redis.delete(f"{one.prefix}:alive:n2")
    await one.registry.add(Session("new"))
    outcome = await one.registry.join("new", "computer", "c", "o", max_agents=1)
    assert outcome.entered and announced == ["old"]
    found = await one.registry.lookup("o", "c")
    assert found is not None and found.sid == "new"


async def test_nodes_lists_the_live_nodes(nodes: list[RedisCluster]) -> None:
    assert await nodes[0].nodes() == await nodes[1].nodes() == ["n1", "n2"]
