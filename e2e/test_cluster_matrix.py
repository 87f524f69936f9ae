"""The interop matrix's core scenarios against a two-node cluster, as one more hosting cell.

Agents connect through the shipped nginx configuration (which sends every client of 127.0.0.1 to
one node); the lab's Computers connect straight to the *other* node, so every call, notification
and list_room of these scenarios crosses nodes. Needs Redis at 127.0.0.1:6379, nginx and the
official 0.4.2 virtualenv.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import ProcessManager
from .harness.cluster import Node, node_behind, node_names, redis_up, start_nginx, start_nodes
from .harness.lab import open_lab
from .harness.matrix import COMBOS, Combo, ComputerUnderTest, Kind, ServerUnderTest, start_computer
from .test_matrix import (
    MatrixLab,
    Stacks,
    make_skill_home,
    scenario_get_tools,
    scenario_join_rules,
    scenario_list_room,
    scenario_tool_call,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.official,
    pytest.mark.redis,
    pytest.mark.skipif(not redis_up(), reason="needs the Redis server at 127.0.0.1:6379"),
    pytest.mark.skipif(
        shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
        reason="needs nginx (.ci/run installs it with apt-get)",
    ),
]

# Our server hosts the cell; one combo with each of our roles facing an official one.
CELL_COMBOS = [c for c in COMBOS if c.server == "ours" and c.agent != c.computer]


class ClusterLab(MatrixLab):
    """The ``where`` server is two cluster nodes behind nginx; Computers sit on the other node."""

    computer_node: Node | None = None

    async def start_server(self, where: Any, name: str) -> ServerUnderTest:
        nodes = await start_nodes(self.procs, 2, node_ttl=3.0)
        port = await start_nginx(self.procs, nodes)
        nginx = self.procs.get("nginx")
        nginx.port = port
        names = await node_names(nodes)
        self.computer_node = nodes[1 - names.index(await node_behind(port, "127.0.0.1"))]
        return ServerUnderTest(nginx, nodes[0].server.token)

    async def computer(self, where: Any, kind: Kind) -> ComputerUnderTest:
        async def start() -> ComputerUnderTest:
            await self.server(where)
            assert self.computer_node is not None
            name = f"comp-cluster-{kind}-{self.next_id()}"
            return await start_computer(
                self.procs, kind, url=self.computer_node.url, office=f"office-cluster-{kind}", name=name,
                config=self.config, landing_root=self.landing_root(where, kind),
                skill_home=make_skill_home(self.root / f"skills-{name}"), proc_name=f"{kind}-computer-{name}",
            )  # fmt: skip

        return await self.kept(("computer", where, kind), start)


@pytest.fixture(scope="module")
def cluster_lab() -> Iterator[ClusterLab]:
    with open_lab(ClusterLab, __file__, group="cluster-lab") as current:
        yield current


@pytest.fixture
async def cluster_stack(
    cluster_lab: ClusterLab, procs: ProcessManager, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    stacks = Stacks(cluster_lab, procs, tmp_path)

    async def make(combo: Combo, *, computer: bool = True) -> Any:
        return await stacks.make("ours", combo, computer=computer)

    try:
        yield make
    finally:
        await stacks.close()


combos = pytest.mark.parametrize("combo", CELL_COMBOS, ids=str)


@combos
async def test_cluster_join_rules(cluster_stack: Any, combo: Combo) -> None:
    await scenario_join_rules(await cluster_stack(combo, computer=False))


@combos
async def test_cluster_list_room(cluster_stack: Any, combo: Combo) -> None:
    await scenario_list_room(await cluster_stack(combo))


@combos
async def test_cluster_get_tools(cluster_stack: Any, combo: Combo) -> None:
    await scenario_get_tools(await cluster_stack(combo))


@combos
async def test_cluster_tool_call(cluster_stack: Any, combo: Combo) -> None:
    await scenario_tool_call(await cluster_stack(combo))
