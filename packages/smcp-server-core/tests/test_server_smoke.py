from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Harness

pytestmark = pytest.mark.anyio


async def test_join_list_relay(smcp: Harness) -> None:
    agent = await smcp.agent()
    comp = await smcp.computer()
    note = await agent.wait_for("notify:enter_office")
    assert note == {"office_id": "o1", "computer": "comp1"}
    rooms = await agent.call("server:list_room", {"agent": "agentA", "req_id": "r1", "office_id": "o1"})
    assert [s["name"] for s in rooms[0]["sessions"]] == ["agentA", "comp1"]
    reply = await agent.call(
        "client:tool_call",
        {
            "agent": "agentA",
            "req_id": "t1",
            "computer": "comp1",
            "tool_name": "x",
            "params": {"a": 1},
            "timeout": 2.0,
        },
    )
    assert reply[0]["meta"]["seen"]["timeout"] == 2
    assert type(reply[0]["meta"]["seen"]["timeout"]) is int
    assert comp.sio.connected
