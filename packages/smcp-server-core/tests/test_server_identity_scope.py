"""A token's claims scope what its connection may do: role, offices, name, tools; then the Policy hook."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from smcp.server.core import JWTAuth, Principal, issue_token
from smcp.testing.server import Peer, running

if TYPE_CHECKING:
    from smcp.testing.server import Harness

pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def token(sub: str, role: str, offices: list[str], **kw: Any) -> str:
    return issue_token(SECRET, sub=sub, role=role, offices=offices, **kw)


def tool_call(tool: str, computer: str = "comp1", params: Any = None) -> dict[str, Any]:
    return {
        "agent": "alice",
        "req_id": f"r-{tool}",
        "computer": computer,
        "tool_name": tool,
        "params": params or {},
        "timeout": 5,
    }


async def computer(h: Harness, name: str, office: str, seen: list[Any]) -> Peer:
    def handler(event: str, data: Any) -> Any:
        seen.append((event, data.get("tool_name")))
        if event == "client:tool_call":
            return {"content": [{"type": "text", "text": "done"}], "isError": False}
        return {"req_id": data.get("req_id"), "tools": []}

    p = await h.peer(connect=False)
    p.serve_requests(handler)
    await p.connect(token=token(f"sub-{name}", "computer", [office], name=name))
    assert await p.join("computer", name, office) == (True, None)
    return p


async def test_role_office_and_name_claims_are_enforced_at_join() -> None:
    async with running(auth=JWTAuth(secret=SECRET)) as h:
        comp = await h.peer(token=token("c1", "computer", ["o1"], name="comp1"))
        refused, reason = await comp.join("agent", "comp1", "o1")
        assert not refused and "only join as computer" in reason and "smcp_role" in reason
        refused, reason = await comp.join("computer", "comp2", "o1")
        assert not refused and "only join as 'comp1'" in reason and "smcp_name" in reason
        refused, reason = await comp.join("computer", "comp1", "o2")
        assert not refused and "office 'o2'" in reason and "smcp_offices" in reason
        assert await comp.join("computer", "comp1", "o1") == (True, None)

        star = await h.peer(token=token("a1", "agent", ["*"]))
        assert await star.join("agent", "anyone", "o7") == (True, None)
        assert h.server.metrics.join_failures_total == 3


async def test_an_office_scoped_agent_cannot_reach_another_office() -> None:
    seen: list[Any] = []
    async with running(auth=JWTAuth(secret=SECRET)) as h:
        await computer(h, "comp1", "o1", seen)
        await computer(h, "comp2", "o2", seen)
        agent = await h.peer(token=token("alice", "agent", ["o1"]))
        assert await agent.join("agent", "alice", "o1") == (True, None)
        (reply,) = await agent.call("client:tool_call", tool_call("t", computer="comp2"))
        assert reply["code"] == 404
        (reply,) = await agent.call("client:tool_call", tool_call("t", computer="comp1"))
        assert reply["isError"] is False
        assert seen == [("client:tool_call", "t")]


async def test_tool_allow_list_refuses_before_the_computer() -> None:
    seen: list[Any] = []
    async with running(auth=JWTAuth(secret=SECRET)) as h:
        await computer(h, "comp1", "o1", seen)
        agent = await h.peer(token=token("alice", "agent", ["o1"], tools=["get_*", "search"]))
        assert await agent.join("agent", "alice", "o1") == (True, None)
        (reply,) = await agent.call("client:tool_call", tool_call("delete_all"))
        assert reply["code"] == 403
        assert "delete_all" in reply["message"] and "smcp_tools" in reply["message"]
        assert set(reply) <= {"code", "message", "details"}
        (ok,) = await agent.call("client:tool_call", tool_call("get_weather"))
        (ok2,) = await agent.call("client:tool_call", tool_call("search"))
        assert ok["isError"] is False and ok2["isError"] is False
        # get_tools is not a tool call: the allow-list does not apply
        (tools,) = await agent.call(
            "client:get_tools", {"agent": "alice", "req_id": "g", "computer": "comp1"}
        )
        assert "tools" in tools
        assert seen == [
            ("client:tool_call", "get_weather"),
            ("client:tool_call", "search"),
            ("client:get_tools", None),
        ]
        assert h.server.metrics.calls[("client:tool_call", "policy")] == 1


async def test_policy_hook_sync_async_and_failing() -> None:
    seen: list[Any] = []
    asked: list[tuple[str, str, str]] = []

    async def read_only(principal: Principal, office: str, event: str, request: dict[str, Any]) -> bool | str:
        asked.append((principal.id, office, event))
        await asyncio.sleep(0)
        if event == "client:tool_call" and not request["tool_name"].startswith("get_"):
            return "read-only agents may only call get_* tools"
        if request.get("req_id") == "boom":
            raise RuntimeError("policy bug")
        return request.get("req_id") != "deny"

    async with running(auth=JWTAuth(secret=SECRET), policy=read_only) as h:
        await computer(h, "comp1", "o1", seen)
        agent = await h.peer(token=token("alice", "agent", ["o1"]))
        assert await agent.join("agent", "alice", "o1") == (True, None)
        (reply,) = await agent.call("client:tool_call", tool_call("set_x"))
        assert reply["code"] == 403 and "set_x" in reply["message"] and "read-only" in reply["message"]
        (ok,) = await agent.call("client:tool_call", tool_call("get_x"))
        assert ok["isError"] is False
        (denied,) = await agent.call(
            "client:get_tools", {"agent": "alice", "req_id": "deny", "computer": "comp1"}
        )
        assert denied["code"] == 403 and "policy" in denied["message"]
        (failed,) = await agent.call(
            "client:get_tools", {"agent": "alice", "req_id": "boom", "computer": "comp1"}
        )
        assert failed["code"] == 403
        assert seen == [("client:tool_call", "get_x")]
        assert asked[0] == ("alice", "o1", "client:tool_call")


async def test_shared_token_cannot_take_a_name_over(smcp: Harness) -> None:
    await smcp.computer("comp1")
    other = await smcp.peer()
    ok, reason = await other.join("computer", "comp1", "o1")
    assert not ok and "already exists" in reason
