"""A made-up ``client:*`` event, added to a copy of core's event table, crosses all three roles.

The server relays it, the Agent sends and parses it with ``_request`` and the Computer link
validates it, with no edit beyond the table line and the one row of the Computer's route table
that names the method serving it (CONTRIBUTING.md, "Adding an event").
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import Any

import pytest

from smcp.agent import AsyncAgent
from smcp.agent import _client as agent_client
from smcp.computer import Computer, ComputerLink
from smcp.computer import _link as computer_link
from smcp.core import events, wire
from smcp.core.errors import SMCPError
from smcp.core.events import EventSpec
from smcp.core.models import GetToolsRet
from smcp.core.roles import Role
from smcp.server.core import _relay as server_relay
from smcp.testing.server import TOKEN, running

pytestmark = pytest.mark.anyio

GADGETS = "client:get_gadgets"


@pytest.fixture
def made_up_table(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = EventSpec(
        GADGETS, "GetToolsReq", "GetToolsRet", frozenset({Role.AGENT}), "object", timeout="default"
    )
    table = MappingProxyType({**events.EVENTS, GADGETS: spec})
    # every module that reads the table, and nothing else
    for module in (events, wire, server_relay, agent_client):
        monkeypatch.setattr(module, "EVENTS", table)
    routes = dict(computer_link._ROUTES)
    routes[GADGETS] = routes[events.ClientEvent.GET_TOOLS]  # type: ignore[index]
    monkeypatch.setattr(computer_link, "_ROUTES", routes)


async def test_a_made_up_event_is_relayed_sent_and_served(made_up_table: None) -> None:
    async with running() as smcp:
        computer = Computer("c1")
        link = ComputerLink(computer, smcp.url, token=TOKEN)
        agent = AsyncAgent(smcp.url, token=TOKEN, office="o1", name="a1")
        try:
            async with asyncio.timeout(8):
                await link.connect()
                await link.join("o1")
                await agent.connect()
                await agent.join("o1")
                ret = await agent._request(GADGETS, computer="c1")  # type: ignore[arg-type]
                assert isinstance(ret, GetToolsRet)
                assert ret.tools == []
                # the Computer validated the request with the table's model (answered with an
                # official code, as every refusal a Computer sends)
                bad = await agent._call(GADGETS, {"agent": "a1", "computer": "c1", "req_id": 5}, timeout=10)
                with pytest.raises(SMCPError, match="req_id"):
                    wire.parse_reply(GADGETS, bad)
        finally:
            await agent.close()
            await link.close()
            await computer.close()


async def test_without_the_table_line_the_server_refuses_the_event() -> None:
    async with running() as smcp:
        peer = await smcp.agent("a1")
        answer: Any = await peer.call(GADGETS, {"agent": "a1", "computer": "c1", "req_id": "r"})
        assert answer[0]["code"] == 400
