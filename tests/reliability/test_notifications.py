"""MCP notifications during calls: an MCP server emits resource ``list_changed`` / ``updated`` and
tool ``list_changed`` while 8 calls are in flight on the same session. No deadlock (every call
returns), every notification reaches the Computer, and the Agent is told (bursts are coalesced by
design: 50 ms for tools, 300 ms for resources) and ends up with the final tool list."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from smcp.agent import AsyncAgent
from smcp.computer import Computer, ComputerLink
from smcp.computer._hosting import MCPServerHost
from smcp.core.models import StdioServerConfig, ToolMeta
from smcp.core.models.config import StdioServerParameters
from smcp.testing.server import TOKEN, running

from ._faults import text_of, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

CALLS = 8
ROUNDS = 5
NOISY = Path(__file__).with_name("noisy_mcp.py")


async def test_notifications_during_8_calls(monkeypatch, figure) -> None:
    import mcp_types

    seen: dict[str, int] = {"tools": 0, "resources": 0, "updated": 0}
    original = MCPServerHost._on_message

    async def counting(self: MCPServerHost, message: object) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            seen["tools"] += 1
        elif isinstance(message, mcp_types.ResourceListChangedNotification):
            seen["resources"] += 1
        elif isinstance(message, mcp_types.ResourceUpdatedNotification):
            seen["updated"] += 1
        await original(self, message)

    monkeypatch.setattr(MCPServerHost, "_on_message", counting)
    config = StdioServerConfig(
        name="noisy",
        server_parameters=StdioServerParameters(command=sys.executable, args=[str(NOISY)]),
        default_tool_meta=ToolMeta(auto_apply=True),
    )
    async with running() as harness:
        computer = Computer("chatty-pc", [config])
        async with computer:
            link = ComputerLink(computer, harness.url, token=TOKEN)
            async with link:
                await link.join("o1")
                async with AsyncAgent(harness.url, token=TOKEN, office="o1", name="a") as a:
                    told: dict[str, list[float]] = {"update_tool_list": [], "update_desktop": []}
                    for kind, stamps in told.items():
                        a.on(kind)(lambda note, stamps=stamps: stamps.append(time.monotonic()))
                    started = time.monotonic()
                    calls = [
                        a.call_tool(
                            "chatty-pc",
                            "noisy__chatty",
                            {"call": i, "rounds": ROUNDS, "pause": 0.02},
                            timeout=30,
                        )
                        for i in range(CALLS)
                    ]
                    results = await asyncio.wait_for(asyncio.gather(*calls), 40)
                    took = time.monotonic() - started
                    assert [text_of(r) for r in results] == [f"done {i}" for i in range(CALLS)]
                    emitted = CALLS * ROUNDS
                    await wait_until(lambda: min(seen.values()) >= emitted, 10)
                    wanted = {f"noisy__t_c{i}_r{r}" for i in range(CALLS) for r in range(ROUNDS)}

                    async def final_tools() -> bool:
                        return wanted <= {t.name for t in await a.get_tools("chatty-pc")}

                    await wait_until(final_tools, 10, every=0.2)
                    await wait_until(lambda: all(told.values()), 10)
                    figure(f"notifications: {CALLS} calls with {emitted}x3 notifications returned", took, "s")
                    figure("notifications: received by the Computer", sum(seen.values()), f"of {3 * emitted}")
                    figure("notifications: update_tool_list to the Agent", len(told["update_tool_list"]), "")
                    figure("notifications: update_desktop to the Agent", len(told["update_desktop"]), "")
                    assert seen == {"tools": emitted, "resources": emitted, "updated": emitted}
