"""The sync Agent, used from a plain thread that has no event loop of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from smcp.agent import Agent, JoinRefusedError
from smcp.core.errors import NotFoundError

pytestmark = pytest.mark.anyio


def _in_thread(fn: Any) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the sync Agent hung"
    return outcome


async def test_sync_agent_happy_path_in_a_plain_thread(fake_server: Any) -> None:
    def work() -> dict[str, Any]:
        assert threading.current_thread() is not threading.main_thread()
        with Agent(fake_server.url, token="T", office="o1", name="sync") as agent:
            agent.wait_cache_idle(10)
            result = {
                "cached": [t.name for _, t in agent.cache.tools()],
                "computers": [c.name for c in agent.computers()],
                "tools": [t.name for t in agent.get_tools("c1")],
                "echo": agent.call_tool("c1", "tb__echo", {"text": "sync"}, timeout=5).content[0].text,  # type: ignore[union-attr]
                "office": agent.office,
            }
        result["after"] = agent.connected
        return result

    outcome = await asyncio.to_thread(_in_thread, work)
    assert "error" not in outcome, outcome.get("error")
    value = outcome["value"]
    assert value == {
        "cached": ["tb__echo"],
        "computers": ["c1"],
        "tools": ["tb__echo"],
        "echo": "sync",
        "office": "o1",
        "after": False,
    }


async def test_sync_agent_raises_the_same_errors(fake_server: Any) -> None:
    fake_server.replies["client:get_desktop"] = lambda data: {
        "code": 404,
        "message": "Computer with name 'zz' not found",
    }

    def work() -> Any:
        with Agent(fake_server.url, token="T", office="o1", cache=False) as agent:
            agent.get_desktop("zz")

    outcome = await asyncio.to_thread(_in_thread, work)
    assert isinstance(outcome["error"], NotFoundError)

    fake_server.replies["server:join_office"] = lambda data: (False, "Agent already in room")
    refused = await asyncio.to_thread(
        _in_thread, lambda: Agent(fake_server.url, token="T", office="o1").__enter__()
    )
    assert isinstance(refused["error"], JoinRefusedError)
    for _ in range(100):  # every private loop thread has been stopped, also after the failed join
        if not any(t.name == "smcp-agent-loop" for t in threading.enumerate()):
            break
        await asyncio.sleep(0.05)
    assert not any(t.name == "smcp-agent-loop" for t in threading.enumerate())
