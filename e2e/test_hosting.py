"""Hosting swaps: our server app under uvicorn, under Hypercorn, under Granian (one combo), and
mounted in a FastAPI app at a sub-path, each running a subset of the matrix scenarios (version gate,
join rules, list_room, get_tools, tool_call) with both Agents and both Computers.

The app is built and served by ``harness/our_peers/host_server.py``; for the mounted case every
client uses the Engine.IO path ``/smcp-app/socket.io`` and the FastAPI app's own routes keep working.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import ProcessManager
from .harness.lab import open_lab
from .harness.matrix import (
    COMBOS,
    Combo,
    Kind,
    ServerUnderTest,
    start_hosted_server,
)
from .test_matrix import (
    MatrixLab,
    Stack,
    Stacks,
    scenario_get_tools,
    scenario_join_rules,
    scenario_list_room,
    scenario_tool_call,
    scenario_version_gate,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

HOSTINGS = ("uvicorn", "hypercorn", "fastapi-mount")
HAS_GRANIAN = importlib.util.find_spec("granian") is not None
OUR_SERVER_COMBOS = [c for c in COMBOS if c.server == "ours"]


class HostingLab(MatrixLab):
    """One hosted server per hosting (the ``where`` of :class:`MatrixLab`) and one Computer per
    (hosting, Computer kind)."""

    async def start_server(self, where: Any, name: str) -> ServerUnderTest:
        return await start_hosted_server(self.procs, where, name=name)

    def landing_root(self, where: str, kind: Kind) -> Path | None:
        return None


@pytest.fixture(scope="module")
def hosting_lab() -> Iterator[HostingLab]:
    with open_lab(HostingLab, __file__) as current:
        yield current


@pytest.fixture
async def hosted_stack(
    hosting_lab: HostingLab, procs: ProcessManager, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    stacks = Stacks(hosting_lab, procs, tmp_path)

    async def make(hosting: str, combo: Combo, *, computer: bool = True) -> Stack:
        return await stacks.make(hosting, combo, computer=computer)

    try:
        yield make
    finally:
        await stacks.close()


hostings = pytest.mark.parametrize("hosting", HOSTINGS)
# the fast subset runs each hosting with our Agent and the official Computer; the rest is slow
combos = pytest.mark.parametrize(
    "combo",
    [
        pytest.param(c, marks=() if (c.agent, c.computer) == ("ours", "official") else pytest.mark.slow)
        for c in OUR_SERVER_COMBOS
    ],
    ids=str,
)


@hostings
@combos
async def test_hosting_version_gate(hosted_stack: Any, hosting: str, combo: Combo) -> None:
    await scenario_version_gate(await hosted_stack(hosting, combo, computer=False))


@hostings
@combos
async def test_hosting_join_rules(hosted_stack: Any, hosting: str, combo: Combo) -> None:
    await scenario_join_rules(await hosted_stack(hosting, combo, computer=False))


@hostings
@combos
async def test_hosting_list_room(hosted_stack: Any, hosting: str, combo: Combo) -> None:
    await scenario_list_room(await hosted_stack(hosting, combo))


@hostings
@combos
async def test_hosting_get_tools(hosted_stack: Any, hosting: str, combo: Combo) -> None:
    await scenario_get_tools(await hosted_stack(hosting, combo))


@hostings
@combos
async def test_hosting_tool_call(hosted_stack: Any, hosting: str, combo: Combo) -> None:
    await scenario_tool_call(await hosted_stack(hosting, combo))


async def test_hosting_mount_keeps_the_host_routes(hosted_stack: Any) -> None:
    stack = await hosted_stack("fastapi-mount", Combo("ours", "ours", "official"), computer=False)
    assert stack.server.socketio_path == "smcp-app/socket.io"
    async with httpx.AsyncClient(timeout=10) as http:
        health = await http.get(f"{stack.server.url}/health")
        outside = await http.get(f"{stack.server.url}/socket.io/?EIO=4&transport=polling&a2c_version=0.4.0")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert outside.status_code == 404  # Engine.IO lives only under the mount


GRANIAN_SCENARIOS = {
    "version_gate": (scenario_version_gate, False),
    "join_rules": (scenario_join_rules, False),
    "list_room": (scenario_list_room, True),
    "get_tools": (scenario_get_tools, True),
    "tool_call": (scenario_tool_call, True),
}


@pytest.mark.skipif(not HAS_GRANIAN, reason="granian is not installed (smcp-server-asgi[granian])")
@pytest.mark.parametrize("scenario", list(GRANIAN_SCENARIOS))
async def test_hosting_granian(hosted_stack: Any, scenario: str) -> None:
    """Granian with the fast subset's combo only: the other combos add nothing Granian-specific."""
    run, computer = GRANIAN_SCENARIOS[scenario]
    await run(await hosted_stack("granian", Combo("ours", "ours", "official"), computer=computer))
