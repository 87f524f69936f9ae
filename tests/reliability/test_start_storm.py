"""Start storm: a Computer with many configured MCP servers starts them at most
``start_concurrency`` at a time and reports each one's state; one that hangs at start does not
hold up the rest (``start_timeout``). Real stdio MCP servers (the toolbox), in this process.

CI starts 12 (three rounds of the cap of 4, one of them hanging): enough to prove the cap and the
timeout, at a quarter of the cost of 30 interpreters importing ``mcp`` on a 2-core machine.
``SMCP_STORM_SERVERS=30`` runs the issue's size (64 s here under a load average of 9).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from smcp.computer import Computer
from smcp.computer._hosting import ServerState
from smcp.core.models import StdioServerConfig, ToolMeta
from smcp.core.models.config import StdioServerParameters
from smcp.testing.mcp_servers import script_path

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

SERVERS = int(os.environ.get("SMCP_STORM_SERVERS", "12"))
CAP = 4
START_TIMEOUT = 30.0


def _stdio(name: str, args: list[str]) -> StdioServerConfig:
    return StdioServerConfig(
        name=name,
        server_parameters=StdioServerParameters(command=sys.executable, args=args),
        default_tool_meta=ToolMeta(auto_apply=True),
    )


async def test_start_storm_capped_and_not_blocked(figure) -> None:
    hang = _stdio("hangs", ["-c", "import time; time.sleep(600)"])  # never answers initialize
    toolboxes = [_stdio(f"tb{i}", [str(script_path("toolbox")), "stdio"]) for i in range(SERVERS - 1)]
    computer = Computer(
        "storm", [hang, *toolboxes], connect_timeout=60, start_concurrency=CAP, start_timeout=START_TIMEOUT
    )
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            starting = sum(
                h.state is ServerState.STARTING for b, h in computer.servers.items() if b != "hangs"
            )
            peak = max(peak, starting)
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch())
    started = time.monotonic()
    try:
        statuses = await asyncio.wait_for(computer.start(), 150)
        took = time.monotonic() - started
        done.set()
        await watcher
        by_name = {s.name: s for s in statuses}
        running = [s for s in statuses if s.state is ServerState.RUNNING]
        figure(f"start storm: {SERVERS - 1} toolboxes + 1 hanging server started", took, "s")
        figure("start storm: most servers starting at once (cap)", peak, "", limit=CAP)
        figure("start storm: running", len(running), f"of {SERVERS}")
        assert len(statuses) == SERVERS
        assert len(running) == SERVERS - 1, [(s.name, s.state, s.last_error) for s in statuses]
        assert by_name["hangs"].state is ServerState.STARTING
        assert f"not running after {START_TIMEOUT:.0f} s" in (by_name["hangs"].last_error or "")
        assert 1 <= peak <= CAP
        assert computer.tools()
    finally:
        done.set()
        await asyncio.wait_for(computer.close(), 60)
