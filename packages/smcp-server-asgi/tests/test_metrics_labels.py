"""/metrics: calls by office/Computer/tool/outcome with bounded labels, latency by event, clients by role."""

from __future__ import annotations

from typing import Any

import pytest

from smcp.core.events import ClientEvent
from smcp.server.asgi._prometheus import render_prometheus
from smcp.server.core import ServerSettings
from smcp.server.core._metrics import OTHER, BoundedLabels
from smcp.testing.server import running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_bounded_labels_keep_the_first_values_and_count_the_rest_as_other() -> None:
    labels = BoundedLabels(2)
    assert [labels(v) for v in ("a", "b", "c", "a", None)] == ["a", "b", OTHER, "a", ""]
    assert labels.values == {"a", "b"}


async def test_labelled_calls_latency_by_event_and_clients_by_role() -> None:
    async with running(ServerSettings()) as h:
        metrics = h.server.metrics
        assert metrics._tools is not None
        metrics._tools.limit = 2
        await h.computer("comp1", "o1")
        agent = await h.agent("agentA", "o1")
        await h.peer()  # connected, in no office
        for i, tool in enumerate(("t1", "t2", "t3", "t4", "t1")):
            request: dict[str, Any] = {
                "agent": "agentA", "req_id": f"r{i}", "computer": "comp1", "tool_name": tool,
                "params": {}, "timeout": 5,
            }  # fmt: skip
            await agent.call(ClientEvent.TOOL_CALL.value, request)
        await agent.call(ClientEvent.GET_TOOLS.value, {"agent": "agentA", "req_id": "g", "computer": "comp1"})
        await agent.call(
            ClientEvent.GET_TOOLS.value, {"agent": "agentA", "req_id": "n", "computer": "nobody"}
        )
        text = render_prometheus(metrics)
        call = 'smcp_office_calls_total{event="client:tool_call",office="o1",computer="comp1"'
        assert f'{call},tool="t1",outcome="ok"}} 2' in text
        assert f'{call},tool="t2",outcome="ok"}} 1' in text
        assert f'{call},tool="other",outcome="ok"}} 2' in text
        assert 'event="client:get_tools",office="o1",computer="nobody",tool="",outcome="not_found"} 1' in text
        assert 'smcp_relay_event_latency_seconds_count{event="client:tool_call"} 5' in text
        assert 'smcp_relay_event_latency_seconds_count{event="client:get_tools"} 1' in text
        assert 'smcp_relay_event_latency_seconds_bucket{event="client:get_tools",le="+Inf"} 1' in text
        assert 'smcp_clients{role="agent"} 1' in text
        assert 'smcp_clients{role="computer"} 1' in text
        assert 'smcp_clients{role="none"} 1' in text
        await agent.call("server:leave_office", {"office_id": "o1"})
        assert 'smcp_clients{role="agent"} 0' in render_prometheus(metrics)
