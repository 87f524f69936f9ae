"""client:* relay, deadlines, disconnects, update_* and cancel.

See docs/protocol.md, differences B1, B2, B4, B6, B10.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import socketio

from smcp.core.events import ClientEvent
from smcp.server.core import ServerSettings
from smcp.testing.server import running

if TYPE_CHECKING:
    from smcp.testing.server import Harness

pytestmark = pytest.mark.anyio


class OwnManager(socketio.AsyncManager):  # type: ignore[misc]
    """Not python-socketio's default manager: the relay must use the public ``emit(callback=)``."""


@pytest.fixture(params=["fast", "public"])
def path(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``SMCPServer`` arguments for each relay path; every relay test runs on both."""
    return {} if request.param == "fast" else {"client_manager": OwnManager()}


@pytest.fixture
async def smcp(path: dict[str, Any]) -> AsyncIterator[Harness]:
    async with running(**path) as h:
        assert h.server._relay.fast_path is (not path)
        yield h


OTHER_EVENTS = [e.value for e in ClientEvent if e is not ClientEvent.TOOL_CALL]


def req(computer: str = "comp1", **extra: Any) -> dict[str, Any]:
    return {"agent": "agentA", "req_id": "r1", "computer": computer, **extra}


def tool(computer: str = "comp1", **extra: Any) -> dict[str, Any]:
    base = {"tool_name": "t", "params": {}, "timeout": 5}
    base.update(extra)
    return req(computer, **base)


@pytest.mark.parametrize("event", OTHER_EVENTS)
async def test_every_client_event_is_relayed_unchanged(smcp: Harness, event: str) -> None:
    seen: list[tuple[str, Any]] = []
    reply = {"req_id": "r1", "anything": [1, None, {"x": "y"}], "next_cursor": None}

    def handler(ev: str, data: Any) -> Any:
        seen.append((ev, data))
        return reply

    agent = await smcp.agent()
    await smcp.computer(handler=handler)
    data = req(
        extra_key={"kept": True}, mcp_server="s", name="n", blob_handle="h", chunk_offset=0, eof=True, blob=""
    )
    ack = await agent.call(event, data)
    assert ack == (reply,)
    assert seen == [(event, data)]


@pytest.mark.parametrize(("timeout", "forwarded"), [(2, 2), (2.0, 2), ("3", 3), (0, 0)])
async def test_tool_call_timeout_forwarded_as_int(smcp: Harness, timeout: Any, forwarded: int) -> None:
    agent = await smcp.agent()
    await smcp.computer()
    ack = await agent.call("client:tool_call", tool(timeout=timeout, extra="kept"))
    seen = ack[0]["meta"]["seen"]
    assert seen["timeout"] == forwarded
    assert type(seen["timeout"]) is int
    assert seen["extra"] == "kept"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (None, "<payload>"),
        ([1], "<payload>"),
        ("x", "<payload>"),
        ({"agent": "agentA", "req_id": "r", "computer": "comp1", "params": {}, "timeout": 5}, "tool_name"),
        (tool(timeout=1.5), "timeout"),
        (tool(timeout=-1), "timeout"),
        (tool(params=None), "params"),
        (tool(computer="c" * 10_000), "computer"),
        (tool(tool_name="t" * 5000), "tool_name"),
        ({"agent": "agentA", "computer": "comp1", "tool_name": "t", "params": {}, "timeout": 1}, "req_id"),
    ],
)
async def test_malformed_tool_call_gets_400(smcp: Harness, data: Any, field: str) -> None:
    agent = await smcp.agent()
    await smcp.computer()
    ack = (
        await agent.call("client:tool_call", data)
        if data is not None
        else await agent.call("client:tool_call")
    )
    payload = ack[0]
    assert payload["code"] == 400
    assert payload["details"]["event"] == "client:tool_call"
    assert payload["details"]["field"] == field
    assert payload["details"]["reason"]


@pytest.mark.parametrize("event", [e.value for e in ClientEvent])
async def test_missing_agent_is_filled_from_the_session(smcp: Harness, event: str) -> None:
    """0.4.2's sync client sends ``robot_id`` instead of ``agent``: the relay knows the sender."""
    seen: list[Any] = []

    def handler(ev: str, data: Any) -> Any:
        seen.append(data)
        return {"content": [], "isError": False} if ev == "client:tool_call" else {"req_id": "r1"}

    agent = await smcp.agent("agentA")
    await smcp.computer(handler=handler)
    data = {k: v for k, v in tool().items() if k != "agent"} | {"robot_id": "agentA"}
    if event != "client:tool_call":
        data = {
            **{k: v for k, v in req().items() if k != "agent"},
            "robot_id": "agentA",
            **{
                "mcp_server": "s",
                "name": "n",
                "blob_handle": "h",
                "chunk_offset": 0,
                "eof": True,
                "blob": "",
            },
        }
    ack = await agent.call(event, data)
    assert "code" not in ack[0]
    assert seen == [{**data, "agent": "agentA"}]
    # A present but malformed one is still refused.
    bad = await agent.call(event, {**data, "agent": None})
    assert bad[0]["code"] == 400
    assert bad[0]["details"]["field"] == "agent"


async def test_not_found_is_identical_for_unknown_other_office_and_agent_names(smcp: Harness) -> None:
    agent = await smcp.agent("agentA", "o1")
    await smcp.computer("elsewhere", "o2")
    await smcp.agent("agentB", "o2")
    for name in ("nobody", "elsewhere", "agentB", "agentA"):
        ack = await agent.call("client:get_tools", req(name))
        assert ack[0] == {
            "code": 404,
            "message": f"Computer with name '{name}' not found",
            "details": {"computer_name": name},
        }


async def test_role_and_office_rules(smcp: Harness) -> None:
    comp = await smcp.computer("comp1")
    await smcp.computer("comp2")
    # B6: a computer may not send client:*
    ack = await comp.call("client:get_tools", req("comp2"))
    assert ack[0]["code"] == 403
    # an agent outside any office
    lonely = await smcp.peer()
    ack = await lonely.call("client:tool_call", tool())
    assert ack[0]["code"] == 403
    assert smcp.server.metrics.calls[("client:tool_call", "forbidden")] == 1


async def test_tool_call_deadline_is_timeout_plus_grace(path: dict[str, Any]) -> None:
    async def never(event: str, data: Any) -> Any:
        await asyncio.sleep(30)

    async with running(ServerSettings(grace=0.3, default_timeout=0.4), **path) as h:
        agent = await h.agent()
        comp = await h.computer(handler=never)
        started = time.monotonic()
        ack = await agent.call("client:tool_call", tool(timeout=1))
        elapsed = time.monotonic() - started
        assert 1.2 <= elapsed < 3
        assert ack[0]["code"] == 408
        assert ack[0]["details"]["computer_name"] == "comp1"
        started = time.monotonic()
        ack = await agent.call("client:get_config", req())
        assert ack[0]["code"] == 408
        assert time.monotonic() - started < 2
        # the expired ack entries are gone from python-socketio's table
        callbacks = h.server.sio.manager.callbacks.get(comp.sio.get_sid("/smcp"), {})
        assert [k for k in callbacks if k != 0] == []
        assert h.server.metrics.calls[("client:tool_call", "timeout")] == 1


async def test_computer_disconnect_answers_pending_calls_at_once(smcp: Harness) -> None:
    arrived = asyncio.Event()

    async def hang(event: str, data: Any) -> Any:
        arrived.set()
        await asyncio.sleep(30)

    agent = await smcp.agent()
    comp = await smcp.computer(handler=hang)
    calls = [
        asyncio.ensure_future(agent.call("client:tool_call", tool(timeout=60), timeout=10)) for _ in range(3)
    ]
    await asyncio.wait_for(arrived.wait(), 5)
    started = time.monotonic()
    await comp.close()
    acks = await asyncio.wait_for(asyncio.gather(*calls), 10)
    assert time.monotonic() - started < 3
    for ack in acks:
        assert ack[0]["code"] == 404
    assert smcp.server.metrics.calls[("client:tool_call", "disconnected")] == 3
    assert smcp.server._relay.pending == {}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"code": 4014, "message": "MCP Server not registered", "mcp_server": "x", "extra": 1}, None),
        ({"isError": True, "content": [], "meta": None, "weird": {"k": [1, 2]}}, None),
        ([1, 2], "got list"),
        ("text", "got str"),
        (None, "got nothing"),
        ((1, 2), "got 2 values"),
    ],
)
async def test_replies_pass_through_or_become_clear_errors(
    smcp: Harness, reply: Any, expected: str | None
) -> None:
    agent = await smcp.agent()
    await smcp.computer(handler=lambda event, data: reply)
    ack = await agent.call("client:tool_call", tool())
    if expected is None:
        assert ack == (reply,)
    else:
        assert ack[0]["code"] == 500
        assert expected in ack[0]["message"]
        assert "comp1" in ack[0]["message"]


async def test_many_concurrent_calls_are_matched(smcp: Harness) -> None:
    async def handler(event: str, data: Any) -> Any:
        await asyncio.sleep(0.001 * (hash(data["req_id"]) % 20))
        return {"content": [], "isError": False, "req": data["req_id"]}

    agent = await smcp.agent()
    await smcp.computer(handler=handler)
    ids = [f"r{i}" for i in range(100)]
    acks = await asyncio.gather(
        *(agent.call("client:tool_call", {**tool(), "req_id": i}, timeout=20) for i in ids)
    )
    assert [a[0]["req"] for a in acks] == ids
    assert smcp.server.metrics.latency_count == 100


UPDATES = ["server:update_config", "server:update_tool_list", "server:update_desktop", "server:update_skills"]


@pytest.mark.parametrize("event", UPDATES)
async def test_updates_rebroadcast_with_registered_name(smcp: Harness, event: str) -> None:
    agent = await smcp.agent()
    comp = await smcp.computer("comp1")
    other = await smcp.computer("comp2")
    start = len(agent.received)
    ack = await comp.call(event, {"computer": "someone-else"})
    assert ack == ()
    notify = event.replace("server:", "notify:")
    assert await agent.wait_for(notify, start=start) == {"computer": "comp1"}
    assert await other.wait_for(notify) == {"computer": "comp1"}
    assert not [e for e, _ in comp.events() if e == notify]


@pytest.mark.parametrize("event", UPDATES)
async def test_updates_refused_for_agents_strangers_and_bad_payloads(smcp: Harness, event: str) -> None:
    agent = await smcp.agent()
    watcher = await smcp.computer("watch")
    assert (await agent.call(event, {"computer": "agentA"}))[0]["code"] == 403
    loose = await smcp.peer()
    assert (await loose.call(event, {"computer": "x"}))[0]["code"] == 403  # no role, no office (B4)
    outside = await smcp.computer("c", "o2")
    await outside.call("server:leave_office", {"office_id": "o2"})
    assert (await outside.call(event, {"computer": "c"}))[0]["details"]["reason"] == "no_office"
    assert (await watcher.call(event, {"computer": 3}))[0]["code"] == 400
    assert (await watcher.call(event))[0]["code"] == 400
    await asyncio.sleep(0.1)
    notify = event.replace("server:", "notify:")
    assert [e for e, _ in agent.events() if e == notify] == []


async def test_cancel_relayed_only_for_own_name(smcp: Harness) -> None:
    agent = await smcp.agent("agentA")
    comp = await smcp.computer("c1")
    comp2 = await smcp.computer("c2")
    other_office = await smcp.computer("c3", "o2")
    assert await agent.call("server:tool_call_cancel", {"agent": "agentA", "req_id": "t1"}) == ()
    assert await comp.wait_for("notify:tool_call_cancel") == {"agent": "agentA", "req_id": "t1"}
    assert await comp2.wait_for("notify:tool_call_cancel") == {"agent": "agentA", "req_id": "t1"}
    spoof = await agent.call("server:tool_call_cancel", {"agent": "someoneElse", "req_id": "t2"})
    assert spoof[0]["code"] == 403
    assert spoof[0]["details"]["field"] == "agent"
    from_computer = await comp.call("server:tool_call_cancel", {"agent": "c1", "req_id": "t3"})
    assert from_computer[0]["code"] == 403
    assert (await agent.call("server:tool_call_cancel", {"agent": "agentA"}))[0]["code"] == 400
    await asyncio.sleep(0.1)
    assert len([e for e, _ in comp.events() if e == "notify:tool_call_cancel"]) == 1
    assert other_office.events("notify:tool_call_cancel") == []


@pytest.mark.parametrize("event", ["foo", "client:nope", "notify:enter_office", "server:join"])
async def test_unknown_events_get_400_naming_them(smcp: Harness, event: str) -> None:
    peer = await smcp.agent()
    ack = await peer.call(event, {"x": 1})
    assert ack[0]["code"] == 400
    assert ack[0]["details"]["event"] == event


async def test_no_handler_error_reaches_the_log(smcp: Harness, caplog: pytest.LogCaptureFixture) -> None:
    agent = await smcp.agent()
    await smcp.computer()
    for data in (None, 1, "s", [], {"computer": {"x": 1}}, {"agent": None}):
        for event in [
            "client:tool_call",
            "server:list_room",
            "server:join_office",
            "server:tool_call_cancel",
        ]:
            ack = await agent.call(event, data)
            assert ack
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


LIMIT = 64 * 1024


async def test_oversized_messages_fail_alone_and_connections_stay_up(path: dict[str, Any]) -> None:
    big = "x" * (LIMIT + 10)

    def handler(event: str, data: Any) -> Any:
        if data.get("params", {}).get("big"):
            return {"content": [{"type": "text", "text": big}], "isError": False}
        return {"content": [], "isError": False, "ok": True}

    async with running(ServerSettings(max_message_size=LIMIT), **path) as h:
        assert h.server.settings.effective_transport_limit == LIMIT + 1024 * 1024
        agent = await h.agent()
        comp = await h.computer(handler=handler)
        # an oversized request: a 400 for that message only
        ack = await agent.call("client:tool_call", tool(params={"blob": big}))
        assert ack[0]["code"] == 400
        assert ack[0]["details"]["reason"] == "too_large"
        assert ack[0]["details"]["event"] == "client:tool_call"
        # an oversized reply: an error result for the caller; the Computer stays connected
        ack = await agent.call("client:tool_call", tool(params={"big": True}))
        assert ack[0]["isError"] is True
        assert "over the server's limit" in ack[0]["content"][0]["text"]
        ack = await agent.call("client:get_tools", req())
        assert "code" not in ack[0]
        assert agent.sio.connected and comp.sio.connected
        ok = await agent.call("client:tool_call", tool())
        assert ok[0]["ok"] is True
        assert h.server.metrics.calls[("client:tool_call", "too_large")] == 1


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_shutdown_answers_in_flight_calls_and_clients_come_back(
    transport: str, path: dict[str, Any]
) -> None:
    """A server going down for a restart: callers get an answer, clients reconnect instead of giving up."""
    import socketio

    from smcp.testing.server import NS, TOKEN

    async def never_answers(event: str, data: Any) -> Any:
        await asyncio.sleep(60)

    async with running(**path) as smcp:
        await smcp.computer(handler=never_answers)
        agent = await smcp.agent()
        client = socketio.AsyncClient(reconnection=True, reconnection_delay=30)
        reasons: list[Any] = []
        client.on("disconnect", lambda reason=None: reasons.append(reason), namespace=NS)
        await client.connect(
            f"{smcp.url}?a2c_version=0.4.0", auth={"token": TOKEN}, namespaces=[NS], transports=[transport]
        )
        try:
            call = asyncio.create_task(agent.call("client:tool_call", tool(), timeout=10))
            await asyncio.sleep(0.3)
            async with asyncio.timeout(10):
                await smcp.server.shutdown()
                (answer,) = await call
                while not reasons:
                    await asyncio.sleep(0.02)
            assert answer["code"] == 503  # "shutting down; reconnect and retry"
            assert reasons[0] != client.reason.SERVER_DISCONNECT  # a transport failure: the client retries
        finally:
            await client.shutdown()
