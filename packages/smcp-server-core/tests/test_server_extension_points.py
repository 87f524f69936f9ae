"""What server-side features build on: ``wrap_handlers``, ``request_as`` and ``ask_computer``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from smcp.core.roles import Role
from smcp.server.core import FinishedCall, Principal, ServerSettings, Session
from smcp.testing.server import running

if TYPE_CHECKING:
    from smcp.server.core import SMCPServer
    from smcp.testing.server import Harness

pytestmark = pytest.mark.anyio

OPERATOR = Principal("operator", {})


def tool(name: str = "t", computer: str = "comp1", timeout: int = 5) -> dict[str, Any]:
    return {
        "agent": "ops",
        "req_id": "r1",
        "computer": computer,
        "tool_name": name,
        "params": {},
        "timeout": timeout,
    }


def operator(office: str = "o1") -> Session:
    return Session("ops:1", None, OPERATOR, Role.AGENT, "ops", office)


def recording(log: list[str]) -> Any:
    def wrapper(event: str, handler: Any) -> Any:
        async def wrapped(sid: str, *args: Any) -> Any:
            log.append(f"{event} in")
            try:
                return await handler(sid, *args)
            finally:
                log.append(f"{event} out")

        return wrapped

    return wrapper


async def test_wrappers_see_every_client_request_and_only_the_events_asked_for(smcp: Harness) -> None:
    seen: list[str] = []
    updates: list[str] = []
    smcp.server.wrap_handlers(recording(seen))
    smcp.server.wrap_handlers(recording(updates), ["server:update_tool_list"])
    agent = await smcp.agent()
    computer = await smcp.computer()
    ack = await agent.call("client:tool_call", {**tool(), "agent": "agentA"})
    assert "code" not in ack[0]
    await agent.call("client:get_tools", {"agent": "agentA", "req_id": "r2", "computer": "comp1"})
    await computer.call("server:update_tool_list", {"computer": "comp1"})
    assert seen == [
        "client:tool_call in",
        "client:tool_call out",
        "client:get_tools in",
        "client:get_tools out",
    ]
    assert updates == ["server:update_tool_list in", "server:update_tool_list out"]


async def test_wrapping_an_event_the_server_does_not_serve_is_refused(smcp: Harness) -> None:
    with pytest.raises(ValueError, match="no handler for client:nothing"):
        smcp.server.wrap_handlers(recording([]), ["client:nothing"])


async def test_request_as_takes_a_connected_agents_path() -> None:
    calls: list[Any] = []

    async def handler(event: str, data: Any) -> Any:
        calls.append((event, data))
        return {"content": [], "isError": False}

    finished: list[FinishedCall] = []
    wrapped: list[str] = []
    async with running(ServerSettings(grace=0.2)) as h:
        server: SMCPServer = h.server
        server.add_call_listener(finished.append)
        server.wrap_handlers(recording(wrapped))
        agent = await h.agent()
        await h.computer(handler=handler)
        reply = await server.request_as(operator(), "client:tool_call", tool())
        missing = await server.request_as(operator(), "client:tool_call", tool(computer="nobody"))
        elsewhere = await server.request_as(operator("o2"), "client:tool_call", tool())
        bad = await server.request_as(operator(), "client:tool_call", {"agent": "ops"})
        await asyncio.sleep(0.1)
        assert not [e for e in agent.events() if "ops" in repr(e)]  # the office is not told
        with pytest.raises(ValueError, match="not a client"):
            await server.request_as(operator(), "server:join_office", {})
    assert reply == {"content": [], "isError": False}
    assert calls == [("client:tool_call", {**tool(), "timeout": 5})]
    assert missing["code"] == 404 and elsewhere["code"] == 404
    assert bad["code"] == 400
    assert [c.outcome for c in finished] == ["ok", "not_found", "not_found", "bad_request"]
    assert finished[0].principal is OPERATOR and finished[0].office == "o1"
    assert wrapped[:2] == ["client:tool_call in", "client:tool_call out"]
    assert len(wrapped) == 8


async def test_ask_computer_returns_the_answer_or_the_agents_error() -> None:
    async def handler(event: str, data: Any) -> Any:
        if event == "client:get_config":
            await asyncio.sleep(30)
        return {"tools": [], "req_id": data["req_id"]}

    finished: list[FinishedCall] = []
    async with running() as h:
        server: SMCPServer = h.server
        server.add_call_listener(finished.append)
        await h.computer(handler=handler)
        target = await server.registry.lookup("o1", "comp1")
        assert target is not None
        data = {"agent": "ops", "req_id": "q1", "computer": "comp1"}
        assert await server.ask_computer(target, "client:get_tools", data, 5) == {"tools": [], "req_id": "q1"}
        late = await server.ask_computer(target, "client:get_config", data, 0.2)
        gone = Session("nobody-sid", None, None, Role.COMPUTER, "gone", "o1")
        left = await server.ask_computer(gone, "client:get_tools", data, 5)
    assert late["code"] == 408
    assert left["code"] == 404
    assert finished == []  # not calls: no listener sees them
