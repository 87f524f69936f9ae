"""``smcp-agent mcp`` with the official a2c-smcp 0.4.2 peers behind it: the official server with our
Computer, our server with the official Computer, and both official (the ``mcp`` package's
``ClientSession`` over stdio drives the bridge). Ours with ours is ``test_mcp_bridge.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from .harness import write_mcp_json
from .harness.lab import Lab, open_lab, unique
from .harness.matrix import (
    ComputerUnderTest,
    Kind,
    ServerUnderTest,
    matrix_servers,
    start_computer,
    start_server,
)
from .test_mcp_bridge import stdio_session, text_of, tool_names

pytestmark = [pytest.mark.anyio, pytest.mark.official, pytest.mark.xdist_group("mcp-bridge-official")]

CELLS: list[tuple[Kind, Kind]] = [("official", "ours"), ("ours", "official"), ("official", "official")]


class OfficialLab(Lab):
    async def server(self, kind: Kind) -> ServerUnderTest:
        return await self.kept(
            ("server", kind), lambda: start_server(self.procs, kind, name=f"{kind}-server")
        )

    async def computer(self, server: ServerUnderTest, kind: Kind) -> ComputerUnderTest:
        config = write_mcp_json(self.root / f"mcp-{server.kind}-{kind}.json", matrix_servers())
        return await start_computer(
            self.procs, kind, url=server.url, office=unique("office"), name=f"comp-{server.kind}-{kind}",
            config=config, landing_root=self.root / f"landing-{server.kind}-{kind}",
        )  # fmt: skip


@pytest.fixture(scope="module")
def lab() -> Iterator[OfficialLab]:
    with open_lab(OfficialLab, __file__, group="mcp-bridge") as current:
        yield current


@pytest.mark.parametrize(("server_kind", "computer_kind"), CELLS, ids=lambda kind: kind)
async def test_bridge_lists_and_calls_with_official_peers(
    lab: OfficialLab, server_kind: Kind, computer_kind: Kind, procs: Any, official_py: Path
) -> None:
    server = await lab.server(server_kind)
    computer = await lab.computer(server, computer_kind)
    prefix = f"{computer.name}__toolbox__"
    log = procs.log_dir / "bridge.log"
    async with stdio_session(server.url, computer.office, "--call-timeout", "20", log=log) as session:
        names = await tool_names(session)
        assert {prefix + "echo", prefix + "plus", prefix + "fail"} <= names, sorted(names)
        assert not any("crash" in name for name in names)
        with anyio.fail_after(30):
            ok = await session.call_tool(prefix + "echo", {"text": f"via {server_kind}/{computer_kind}"})
        assert not ok.is_error and text_of(ok) == f"via {server_kind}/{computer_kind}"
        with anyio.fail_after(30):
            failed = await session.call_tool(prefix + "fail", {"message": "boom"})
        assert failed.is_error
