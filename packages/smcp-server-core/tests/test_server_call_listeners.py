"""``SMCPServer.add_call_listener``: one FinishedCall per answered client:* request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from smcp.server.core import FinishedCall, ServerSettings
from smcp.testing.server import running

if TYPE_CHECKING:
    from smcp.testing.server import Harness

pytestmark = pytest.mark.anyio


def tool(computer: str = "comp1", name: str = "t", timeout: int = 5) -> dict[str, Any]:
    base = {"agent": "agentA", "req_id": "r1", "computer": computer}
    return {**base, "tool_name": name, "params": {}, "timeout": timeout}


def _failing(call: FinishedCall) -> None:
    raise RuntimeError("listener bug")


async def test_listener_sees_ok_refusal_and_timeout() -> None:
    async def handler(event: str, data: Any) -> Any:
        if data.get("tool_name") == "slow":
            await asyncio.sleep(30)
        return {"content": [], "isError": False}

    seen: list[FinishedCall] = []
    async with running(ServerSettings(grace=0.2)) as h:
        h.server.add_call_listener(seen.append)
        h.server.add_call_listener(_failing)  # a failing listener does not stop the others
        agent = await h.agent()
        await h.computer(handler=handler)
        await agent.call("client:tool_call", tool())
        await agent.call("client:tool_call", tool("nobody"))
        await agent.call("client:tool_call", tool(name="slow", timeout=1), timeout=10)
        lonely = await h.peer()
        await lonely.call("client:get_tools", {"agent": "x", "req_id": "r2", "computer": "comp1"})
    ok, missing, late, refused = seen
    assert (ok.outcome, ok.office, ok.agent, ok.computer, ok.tool, ok.req_id, ok.code) == (
        "ok",
        "o1",
        "agentA",
        "comp1",
        "t",
        "r1",
        None,
    )
    assert ok.principal is not None and ok.duration >= 0 and ok.started > 0
    assert (missing.outcome, missing.code) == ("not_found", 404)
    assert (late.outcome, late.code) == ("timeout", 408)
    assert late.duration >= 1.0
    assert (refused.outcome, refused.code, refused.office) == ("forbidden", 403, None)
    assert refused.event == "client:get_tools" and refused.tool is None


async def test_no_listener_builds_nothing(smcp: Harness) -> None:
    assert smcp.server.call_listeners == []
    agent = await smcp.agent()
    await smcp.computer()
    ack = await agent.call("client:tool_call", tool())
    assert "code" not in ack[0]
