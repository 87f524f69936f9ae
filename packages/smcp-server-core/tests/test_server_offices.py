"""Connection, join, leave and list_room against a real server.

See docs/protocol.md, differences B1, B3, B5, B6, B13.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest
import socketio

from smcp.server.core import Principal, ServerSettings, TokenAuth
from smcp.testing.server import TOKEN, running

if TYPE_CHECKING:
    from smcp.testing.server import Harness

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("token", "version", "accepted"),
    [
        (TOKEN, "0.4.0", True),
        (TOKEN, "0.4.17", True),
        (None, "0.4.0", False),
        ("wrong", "0.4.0", False),
        ("", "0.4.0", False),
        (TOKEN, "0.3.9", False),
        (TOKEN, None, False),
    ],
)
async def test_connect_auth_and_version(
    smcp: Harness, token: str | None, version: str | None, accepted: bool
) -> None:
    peer = await smcp.peer(connect=False)
    if accepted:
        await peer.connect(token=token, version=version)
        assert peer.sio.connected
        assert smcp.server.metrics.connections == 1
    else:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect(token=token, version=version)
        assert smcp.server.metrics.connections == 0


async def test_a_refused_login_is_logged_at_info_with_the_remote_address(
    smcp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await smcp.peer(connect=False)
    with caplog.at_level("INFO", logger="smcp.server"), pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect(token="wrong")
    (line,) = [r for r in caplog.records if "refused a connection" in r.getMessage()]
    assert line.levelname == "INFO" and "127.0.0.1:" in line.getMessage()
    assert "invalid_credential" in line.getMessage() and "wrong" not in line.getMessage()


async def test_version_checked_in_connect_handler_without_gate() -> None:
    # Hosting sio without the HTTP gate (e.g. aiohttp) still refuses other minors.
    from smcp.server.core import SMCPServer
    from smcp.testing.server import Peer, serve

    server = SMCPServer(ServerSettings(), TokenAuth(TOKEN))
    async with serve(socketio.ASGIApp(server.sio, socketio_path=None)) as url:
        peer = Peer(url)
        errors: list[Any] = []
        peer.sio.on("connect_error", errors.append, namespace="/smcp")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect(version="0.3.0")
        assert errors[0]["message"] == "Protocol version mismatch"
        assert errors[0]["data"]["code"] == 4008
        ok = Peer(url)
        await ok.connect()
        assert ok.sio.connected
        await ok.close()


class HeaderAuth:
    """A provider that reads an api key header instead of the auth object."""

    async def authenticate(self, auth: Any, headers: Mapping[str, str]) -> Principal | None:
        if headers.get("x-api-key") == "k1":
            return Principal("k1", {"offices": ["o1"]})
        return None


async def test_custom_provider_gets_headers_and_office_hook_limits_joins() -> None:
    def allowed(principal: Principal, office: str) -> bool:
        return office in principal.claims["offices"]

    async with running(auth=HeaderAuth(), authorize_office=allowed) as h:
        peer = await h.peer(connect=False)
        url = f"{h.url}?a2c_version=0.4.0"
        await peer.sio.connect(
            url, headers={"x-api-key": "k1"}, namespaces=["/smcp"], transports=["websocket"]
        )
        assert await peer.join("agent", "a", "o1") == (True, None)
        assert await peer.call("server:leave_office", {"office_id": "o1"}) == (True, None)
        ok, reason = await peer.join("agent", "a", "o2")
        assert ok is False
        assert "Not allowed to join office 'o2'" in reason
        bad = await h.peer(connect=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.sio.connect(
                url, headers={"x-api-key": "nope"}, namespaces=["/smcp"], transports=["websocket"]
            )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (None, "<payload>"),
        ("o1", "<payload>"),
        ([1, 2], "<payload>"),
        ({"role": "robot", "name": "x", "office_id": "o1"}, "role"),
        ({"role": "agent", "office_id": "o1"}, "name"),
        ({"role": "agent", "name": "x"}, "office_id"),
        ({"role": "agent", "name": 5, "office_id": "o1"}, "name"),
        ({"role": "agent", "name": "n" * 100_000, "office_id": "o1"}, "name"),
        ({"role": "agent", "name": "x", "office_id": "o" * 300}, "office_id"),
    ],
)
async def test_malformed_join_is_answered(smcp: Harness, data: Any, field: str) -> None:
    peer = await smcp.peer()
    ack = (
        await peer.call("server:join_office", data)
        if data is not None
        else await peer.call("server:join_office")
    )
    assert ack[0] is False
    assert f"field '{field}'" in ack[1]


async def test_join_rules(smcp: Harness) -> None:
    agent = await smcp.agent("agentA", "o1")
    comp = await smcp.computer("comp1", "o1")
    sids = {agent.sio.get_sid("/smcp"), comp.sio.get_sid("/smcp")}
    reasons: list[str] = []

    async def refused(peer: Any, role: str, name: str, office: str, expected: str) -> None:
        ok, reason = await peer.join(role, name, office)
        assert ok is False
        assert expected in reason
        reasons.append(reason)

    second = await smcp.peer()
    await refused(second, "agent", "agentB", "o1", "already has an agent")
    await refused(agent, "agent", "agentA", "o2", "Agent is already in office 'o1'")
    await refused(agent, "computer", "x", "o1", "Role mismatch")
    dup = await smcp.peer()
    await refused(dup, "computer", "comp1", "o1", "Computer with name 'comp1' already exists in room 'o1'")
    await refused(dup, "computer", "agentA", "o1", "already taken")  # unique across roles in the office
    await refused(dup, "computer", "x", "", "office_id must not be empty")
    # B3: the same name in another office is fine
    assert await dup.join("computer", "comp1", "o2") == (True, None)
    # re-joining the same office with the same name: success, no notification
    before = len(agent.events())
    assert await comp.join("computer", "comp1", "o1") == (True, None)
    assert len(agent.events()) == before
    for reason in reasons:
        assert not any(sid in reason for sid in sids if sid)


async def test_max_agents_per_office_setting() -> None:
    async with running(ServerSettings(max_agents_per_office=2)) as h:
        await h.agent("a1")
        await h.agent("a2")
        third = await h.peer()
        ok, reason = await third.join("agent", "a3", "o1")
        assert ok is False
        assert "only 2 allowed" in reason


async def test_computer_moves_offices_with_notifications(smcp: Harness) -> None:
    a1 = await smcp.agent("a1", "o1")
    a2 = await smcp.agent("a2", "o2")
    comp = await smcp.computer("c", "o1")
    await a1.wait_for("notify:enter_office")
    assert await comp.join("computer", "c", "o2") == (True, None)
    assert await a1.wait_for("notify:leave_office") == {"office_id": "o1", "computer": "c"}
    assert await a2.wait_for("notify:enter_office") == {"office_id": "o2", "computer": "c"}
    room1 = await a1.call("server:list_room", {"agent": "a1", "req_id": "1", "office_id": "o1"})
    assert [s["name"] for s in room1[0]["sessions"]] == ["a1"]
    room2 = await a2.call("server:list_room", {"agent": "a2", "req_id": "2", "office_id": "o2"})
    assert [s["name"] for s in room2[0]["sessions"]] == ["a2", "c"]
    # the old office no longer routes to it
    gone = await a1.call("client:get_tools", {"agent": "a1", "req_id": "3", "computer": "c"})
    assert gone[0]["code"] == 404


async def test_rename_in_same_office_keeps_registry_consistent(smcp: Harness) -> None:
    agent = await smcp.agent()
    comp = await smcp.computer("old")
    await agent.wait_for("notify:enter_office")
    start = len(agent.received)
    assert await comp.join("computer", "new", "o1") == (True, None)
    assert await agent.wait_for("notify:leave_office", start=start) == {"office_id": "o1", "computer": "old"}
    assert await agent.wait_for("notify:enter_office", start=start) == {"office_id": "o1", "computer": "new"}
    ok = await agent.call("client:get_tools", {"agent": "agentA", "req_id": "1", "computer": "new"})
    assert "code" not in ok[0]
    old = await agent.call("client:get_tools", {"agent": "agentA", "req_id": "2", "computer": "old"})
    assert old[0]["code"] == 404


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, "field '<payload>'"),
        ({}, "field 'office_id'"),
        ({"office_id": "o2"}, "Not a member of office 'o2'"),
    ],
)
async def test_leave_only_what_you_are_in(smcp: Harness, data: Any, expected: str) -> None:
    agent = await smcp.agent()
    ack = (
        await agent.call("server:leave_office", data)
        if data is not None
        else await agent.call("server:leave_office")
    )
    assert ack[0] is False
    assert expected in ack[1]
    # still in o1
    room = await agent.call("server:list_room", {"agent": "agentA", "req_id": "1", "office_id": "o1"})
    assert [s["name"] for s in room[0]["sessions"]] == ["agentA"]


async def test_leave_and_disconnect_notify_and_unroute(smcp: Harness) -> None:
    agent = await smcp.agent()
    comp = await smcp.computer("c1")
    comp2 = await smcp.computer("c2")
    assert await comp.call("server:leave_office", {"office_id": "o1"}) == (True, None)
    assert await agent.wait_for("notify:leave_office") == {"office_id": "o1", "computer": "c1"}
    gone = await agent.call("client:get_tools", {"agent": "agentA", "req_id": "1", "computer": "c1"})
    assert gone[0] == {
        "code": 404,
        "message": "Computer with name 'c1' not found",
        "details": {"computer_name": "c1"},
    }
    start = len(agent.received)
    await comp2.close()
    assert await agent.wait_for("notify:leave_office", start=start) == {"office_id": "o1", "computer": "c2"}
    # an agent may leave and join another office; role sticks
    assert await agent.call("server:leave_office", {"office_id": "o1"}) == (True, None)
    assert await agent.join("agent", "agentA", "o9") == (True, None)
    assert smcp.server.metrics.offices == 1


async def test_list_room(smcp: Harness) -> None:
    agent = await smcp.agent()
    await smcp.computer("c1")
    outsider = await smcp.agent("x", "o2")
    room = await agent.call("server:list_room", {"agent": "agentA", "req_id": "r1", "office_id": "o1"})
    ret = room[0]
    assert ret["req_id"] == "r1"
    assert [(s["name"], s["role"], s["office_id"], s["a2c_version"]) for s in ret["sessions"]] == [
        ("agentA", "agent", "o1", "0.4.0"),
        ("c1", "computer", "o1", "0.4.0"),
    ]
    denied = await outsider.call("server:list_room", {"agent": "x", "req_id": "r2", "office_id": "o1"})
    assert denied[0]["code"] == 403
    malformed = await outsider.call("server:list_room", {"agent": "x", "office_id": "o1"})
    assert malformed[0]["code"] == 400
    assert malformed[0]["details"] == {
        "event": "server:list_room",
        "field": "req_id",
        "reason": "Field required",
    }
    lonely = await smcp.peer()
    assert (await lonely.call("server:list_room", {"agent": "y", "req_id": "r", "office_id": "o1"}))[0][
        "code"
    ] == 403


async def test_concurrent_joins_are_atomic_and_counters_settle(smcp: Harness) -> None:
    import asyncio

    peers = [await smcp.peer() for _ in range(10)]
    acks = await asyncio.gather(*(p.join("agent", f"a{i}", "busy") for i, p in enumerate(peers)))
    assert sum(1 for ok, _ in acks if ok) == 1
    comps = [await smcp.peer() for _ in range(10)]
    acks = await asyncio.gather(*(p.join("computer", "same", "busy") for p in comps))
    assert sum(1 for ok, _ in acks if ok) == 1
    refused = await smcp.peer(connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(token="bad")
    assert smcp.server.metrics.connections == 20
    for p in peers + comps:
        await p.close()
    async with asyncio.timeout(5):
        while smcp.server.metrics.connections or smcp.server.metrics.offices:
            await asyncio.sleep(0.02)
    assert smcp.server.metrics.auth_failures_total == 1
