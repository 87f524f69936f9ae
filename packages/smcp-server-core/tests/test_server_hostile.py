"""Client events that python-socketio would treat as its own (``connect``, ``disconnect``, ...)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from smcp.server.core._socketio_internals import RESERVED_EVENTS
from smcp.testing.server import NS

if TYPE_CHECKING:
    from smcp.testing.server import Harness, Peer

pytestmark = pytest.mark.anyio


def rooms(smcp: Harness, peer: Peer) -> set[str]:
    sid = peer.sio.get_sid(NS)
    return set(smcp.server.sio.manager.get_rooms(sid, NS)) - {sid}


async def test_disconnect_then_connect_events_do_not_leak_the_old_office(
    smcp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent_a = await smcp.agent("agentA", "A")
    agent_b = await smcp.agent("agentB", "B")
    comp = await smcp.computer("lap", "A")
    before = smcp.server.metrics.snapshot()["connections"]

    (answer,) = await comp.call("disconnect")
    assert answer["code"] == 400
    assert answer["details"] == {
        "event": "disconnect",
        "field": "<event>",
        "reason": "'disconnect' is reserved by Socket.IO; a client cannot send it as an event",
    }
    forged = {"QUERY_STRING": "a2c_version=0.4.0", "HTTP_X": "y"}
    (answer,) = await comp.call("connect", forged, {"token": "test-token"})
    assert answer["code"] == 400
    assert answer["details"]["event"] == "connect"
    # Nothing changed: still registered in A, one connection each.
    room = await agent_a.call("server:list_room", {"agent": "agentA", "req_id": "1", "office_id": "A"})
    assert [s["name"] for s in room[0]["sessions"]] == ["agentA", "lap"]
    assert smcp.server.metrics.connections == before
    assert rooms(smcp, comp) == {"A"}

    assert await comp.join("computer", "lap", "B") == (True, None)
    assert rooms(smcp, comp) == {"B"}
    assert await agent_b.wait_for("notify:enter_office") == {"office_id": "B", "computer": "lap"}

    # What happens in A from now on does not reach it.
    start = len(comp.received)
    other = await smcp.computer("other", "A")
    assert await other.call("server:update_tool_list", {"computer": "other"}) == ()
    assert await agent_a.wait_for("notify:update_tool_list") == {"computer": "other"}
    await asyncio.sleep(0.1)
    assert comp.received[start:] == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
async def test_every_reserved_name_is_refused_with_an_answer(
    smcp: Harness, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await smcp.agent()
    comp = await smcp.computer()
    for data in ((), ({"x": 1},), ("s", 2)):
        (answer,) = await comp.call(name, *data)
        assert answer["code"] == 400
        assert answer["details"]["event"] == name
    # Without an ack nothing comes back, and nothing changes either.
    await comp.sio.emit(name, {"x": 1}, namespace=NS)
    await asyncio.sleep(0.05)
    assert rooms(smcp, comp) == {"o1"}
    assert smcp.server.metrics.connections == 2
    assert smcp.server.metrics.rejections[name] == 4
    assert agent.events() == [("notify:enter_office", {"office_id": "o1", "computer": "comp1"})]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", [5, None, ["x"], {"e": 1}, 1.5, True])
async def test_event_names_that_are_not_strings_are_refused(
    smcp: Harness, name: Any, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await smcp.agent()
    (answer,) = await agent.call(name, {"x": 1})  # type: ignore[arg-type]
    assert answer["code"] == 400
    assert answer["details"] == {
        "event": "<event>",
        "field": "<event>",
        "reason": "the event name must be a string",
    }
    assert agent.sio.connected
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
