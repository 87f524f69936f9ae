"""Limits: each one reached, its error, its metric, and recovery once the load is gone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from smcp.server.core import ServerSettings
from smcp.testing.server import NS, TOKEN, running

pytestmark = pytest.mark.anyio


def tool(name: str = "t", req_id: str = "r1", agent: str = "agentA") -> dict[str, Any]:
    return {
        "agent": agent,
        "req_id": req_id,
        "computer": "comp1",
        "tool_name": name,
        "params": {},
        "timeout": 5,
    }


async def refused_connect(url: str) -> str:
    sio = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    sio.on("connect_error", got.append, namespace=NS)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            f"{url}?a2c_version=0.4.0",
            auth={"token": TOKEN},
            namespaces=[NS],
            transports=["websocket"],
            wait_timeout=5,
        )
    message: str = got[0]["message"]
    return message


async def test_connection_limits_per_server_and_per_principal() -> None:
    async with running(ServerSettings(max_connections=2)) as h:
        first = await h.peer()
        await h.peer()
        message = await refused_connect(h.url)
        assert "max_connections" in message and "retry later" in message
        assert h.server.metrics.quota_refusals == {"max_connections": 1}
        await first.close()
        async with asyncio.timeout(5):
            while h.server.metrics.connections != 1:
                await asyncio.sleep(0.02)
        assert (await h.peer()).sio.connected
    async with running(ServerSettings(max_connections_per_principal=1)) as h:
        await h.peer()
        message = await refused_connect(h.url)
        assert "'token' already has 1 connections" in message and "max_connections_per_principal" in message
        assert h.server.metrics.quota_refusals == {"max_connections_per_principal": 1}


async def test_pending_per_connection_and_in_flight_per_principal() -> None:
    release = asyncio.Event()

    async def slow(event: str, data: Any) -> Any:
        await release.wait()
        return {"content": [], "isError": False}

    settings = ServerSettings(
        max_pending_per_connection=1, max_calls_in_flight_per_principal=2, max_agents_per_office=3
    )
    async with running(settings) as h:
        await h.computer(handler=slow)
        a, b = await h.agent("agentA"), await h.agent("agentB")
        first = asyncio.ensure_future(a.call("client:tool_call", tool(req_id="1")))
        await asyncio.sleep(0.1)
        (reply,) = await a.call("client:tool_call", tool(req_id="2"))
        assert reply["code"] == 429 and "max_pending_per_connection" in reply["message"]
        second = asyncio.ensure_future(b.call("client:tool_call", tool(req_id="3", agent="agentB")))
        await asyncio.sleep(0.1)
        c = await h.agent("agentC")
        (reply,) = await c.call("client:tool_call", tool(req_id="4", agent="agentC"))
        assert reply["code"] == 429 and "max_calls_in_flight_per_principal" in reply["message"]
        assert reply["details"]["limit"] == "max_calls_in_flight_per_principal"
        release.set()
        assert (await first)[0]["isError"] is False and (await second)[0]["isError"] is False
        (after,) = await a.call("client:tool_call", tool(req_id="5"))
        assert after["isError"] is False
        m = h.server.metrics
        assert m.quota_refusals == {"max_pending_per_connection": 1, "max_calls_in_flight_per_principal": 1}
        assert m.calls[("client:tool_call", "quota")] == 2


async def test_calls_per_second_token_bucket_says_when_to_retry() -> None:
    async with running(ServerSettings(calls_per_second=4, call_burst=2)) as h:
        await h.computer()
        agent = await h.agent()
        assert "code" not in (await agent.call("client:tool_call", tool(req_id="1")))[0]
        assert "code" not in (await agent.call("client:tool_call", tool(req_id="2")))[0]
        (reply,) = await agent.call("client:tool_call", tool(req_id="3"))
        assert reply["code"] == 429 and "retry after" in reply["message"]
        retry = reply["details"]["retry_after"]
        assert 0 < retry <= 0.25
        await asyncio.sleep(retry + 0.1)
        assert "code" not in (await agent.call("client:tool_call", tool(req_id="4")))[0]
        assert h.server.metrics.quota_refusals == {"calls_per_second": 1}


def test_settings_validate_limits() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        ServerSettings(max_connections=0)
    with pytest.raises(ValueError, match="calls_per_second"):
        ServerSettings(calls_per_second=0)
    assert ServerSettings().cors_allowed_origins is None
