"""Pure parts of the Agent: the client rules it takes from core, its options, its export table,
the notification routing, the LLM toolset, and a cheap import."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import pytest

from smcp.agent.llm import Toolset
from smcp.core.handshake import (
    handshake_url,
    parse_join_ack,
    version_error_from_body,
    version_error_from_exception,
)
from smcp.core.models import SMCPTool


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1", "http://h:1?a2c_version=0.4.0"),
        ("http://h:1/base", "http://h:1/base?a2c_version=0.4.0"),
        ("http://h:1?x=1", "http://h:1?a2c_version=0.4.0&x=1"),
        ("http://h:1?a2c_version=9.9.9&x=1", "http://h:1?a2c_version=0.4.0&x=1"),
        ("https://h?x=a%20b", "https://h?a2c_version=0.4.0&x=a+b"),
    ],
)
def test_handshake_url_puts_our_version_first(url: str, expected: str) -> None:
    assert handshake_url(url) == expected


GATE_4008 = {
    "code": 4008,
    "message": "Protocol version mismatch",
    "server_version": "0.4.0",
    "client_version": "0.3.0",
    "min_supported": "0.4.0",
    "max_supported": "0.4.999",
}


@pytest.mark.parametrize(
    ("body", "is_4008"),
    [
        (GATE_4008, True),
        (json.dumps(GATE_4008), True),
        (json.dumps(GATE_4008).encode(), True),
        ({"code": 400, "message": "Missing a2c_version query parameter"}, False),
        ("Unexpected status code 400 in server response", False),
        (None, False),
    ],
)
def test_version_error_from_body(body: Any, is_4008: bool) -> None:
    err = version_error_from_body(body)
    assert (err is not None) == is_4008
    if err is not None:
        assert (err.server_version, err.client_version, err.min_supported, err.max_supported) == (
            "0.4.0",
            "0.3.0",
            "0.4.0",
            "0.4.999",
        )
        assert "0.3.0" in str(err) and err.error_code == 4008


def test_version_error_found_in_exception_chain() -> None:
    try:
        try:
            raise ConnectionError("Unexpected status code 400 in server response", GATE_4008)
        except ConnectionError as inner:
            raise RuntimeError("Connection error") from inner
    except RuntimeError as outer:
        err = version_error_from_exception(outer)
    assert err is not None and err.client_version == "0.3.0"
    assert version_error_from_exception(RuntimeError("plain")) is None


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        ((True, None), (True, None)),
        ([True, None], (True, None)),
        ([False, "Agent already in room"], (False, "Agent already in room")),
        (True, (True, None)),
        ({"code": 403, "message": "office not allowed"}, (False, "office not allowed")),
        (None, (False, "unexpected answer None")),
        ([], (False, None)),
    ],
)
def test_join_ack_forms(ack: Any, expected: tuple[bool, str | None]) -> None:
    assert parse_join_ack(ack) == expected


def tool(name: str, description: str = "d", schema: dict[str, Any] | None = None) -> SMCPTool:
    return SMCPTool(
        name=name,
        bundle_id=name.split("__", maxsplit=1)[0],
        description=description,
        params_schema=schema
        if schema is not None
        else {"type": "object", "properties": {"x": {"type": "string"}}},
        return_schema=None,
    )


def test_toolset_single_computer_keeps_wire_names() -> None:
    toolset = Toolset([("c1", tool("tb__echo")), ("c1", tool("tb__add", "None", {}))])
    assert [t["function"]["name"] for t in toolset.openai()] == ["tb__echo", "tb__add"]
    add = toolset.anthropic()[1]
    assert add == {"name": "tb__add", "description": "", "input_schema": {"type": "object", "properties": {}}}
    assert toolset.resolve("tb__echo").computer == "c1"


def test_toolset_many_computers_prefixes_and_stays_unique_and_valid() -> None:
    long = "b" * 40 + "__" + "t" * 40
    entries = [
        ("c1", tool("tb__echo")),
        ("c2", tool("tb__echo")),
        ("c.3 x", tool("tb__echo")),
        ("c1", tool(long)),
        ("c2", tool(long)),
    ]
    toolset = Toolset(entries)
    names = [t.name for t in toolset.tools]
    assert len(set(names)) == 5
    assert all(len(n) <= 64 and all(ch.isalnum() or ch in "_-" for ch in n) for n in names)
    assert names[:3] == ["c1__tb__echo", "c2__tb__echo", "c_3_x__tb__echo"]
    for entry, (computer, original) in zip(toolset.tools, entries, strict=True):
        assert toolset.resolve(entry.name).computer == computer
        assert toolset.resolve(entry.name).tool == original.name
    with pytest.raises(KeyError, match="unknown tool"):
        toolset.resolve("nope")


def test_import_is_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import smcp.agent; took = time.perf_counter() - t; "
        "heavy = [m for m in ('socketio', 'pydantic', 'mcp_types', 'aiohttp', 'typer') if m in sys.modules]; "
        "print(took, heavy)"
    )
    timings = []
    for _ in range(3):  # best of three: the budget is about our code, not a busy machine
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        took, heavy = out.stdout.split(" ", 1)
        assert heavy.strip() == "[]"
        timings.append(float(took))
    assert min(timings) < 0.15


def test_options_are_validated_and_overridden_by_keywords() -> None:
    import dataclasses

    from smcp.agent import AgentOptions, AsyncAgent, ConfigError
    from smcp.agent._options import AgentOverrides

    base = AgentOptions(request_timeout=5, name="n")
    agent = AsyncAgent("http://h:1", options=base, request_timeout=7)
    assert agent.options == dataclasses.replace(base, request_timeout=7) and agent.name == "n"
    assert agent.request_timeout == 7 and base.request_timeout == 5
    assert AsyncAgent("http://h:1").options == AgentOptions()
    assert set(AgentOverrides.__annotations__) == {f.name for f in dataclasses.fields(AgentOptions)}
    for bad in ({"transports": ()}, {"transports": ("carrier-pigeon",)}, {"request_timeout": 0},
                {"tool_call_grace": -1}, {"cache_kinds": ("tools", "desktop")}, {"name": ""}):  # fmt: skip
        with pytest.raises(ConfigError):
            AgentOptions(**bad)
        with pytest.raises(ValueError):  # ConfigError is also a ValueError, as before
            AsyncAgent("http://h:1", **bad)
    assert AgentOptions().rejoin_backoff.for_at_least == 60.0
    assert sum(AgentOptions().rejoin_backoff.delays()) >= 25 + 20  # python-socketio's ping defaults


def test_the_sync_agent_takes_the_same_options_without_restating_them() -> None:
    import inspect

    from smcp.agent import Agent, AgentOptions, AsyncAgent

    sync = inspect.signature(Agent.__init__).parameters
    assert set(sync) - {"operation_timeout"} == set(inspect.signature(AsyncAgent.__init__).parameters)
    with pytest.raises(ValueError):
        Agent("http://h:1", request_timeout=-1)  # raises before a loop thread is started
    agent = Agent("http://h:1", options=AgentOptions(name="s"), cache=False)
    try:
        assert agent.options.name == "s" and agent.async_agent.options.cache is False
    finally:
        agent.close()


def test_exports_table_all_and_type_checking_imports_agree() -> None:
    import ast
    import importlib
    from pathlib import Path

    import smcp.agent

    source = Path(smcp.agent.__file__).read_text()
    checked: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module is not None
                checked.update({alias.name: stmt.module for alias in stmt.names})
    table = smcp.agent._EXPORTS
    assert checked == table
    assert set(smcp.agent.__all__) == set(table) | {"__version__"}
    for name, module in table.items():
        assert getattr(smcp.agent, name) is getattr(importlib.import_module(module), name)


def test_errors_are_one_tree_with_the_old_names_kept() -> None:
    from smcp.agent import errors
    from smcp.core import errors as core

    assert errors.AgentError is core.LocalError and errors.ReplyError is core.MalformedReplyError
    names = "ConnectError AuthenticationError NotConnectedError ConnectionLostError LocalTimeoutError"
    for name in (*names.split(), "JoinRefusedError", "IntegrityError", "ProtocolVersionError"):
        assert getattr(errors, name) is getattr(core, name)
        assert issubclass(getattr(errors, name), core.SMCPException)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("event", "kinds"),
    [
        ("notify:enter_office", ["tools", "config", "skills"]),
        ("notify:update_config", ["config", "tools"]),
        ("notify:update_tool_list", ["tools"]),
        ("notify:update_skills", ["skills"]),
        ("notify:update_desktop", []),
    ],
)
async def test_notifications_route_to_cache_refreshes(event: str, kinds: list[str]) -> None:
    from smcp.agent._cache import ALL_KINDS, ComputerCache
    from smcp.core.events import NotifyEvent

    fetched: list[str] = []

    async def fetch(computer: str, kind: str) -> Any:
        fetched.append(kind)
        return []

    async def listener(computer: str, view: Any) -> None:
        return None

    cache = ComputerCache(fetch, listener, debounce=0)
    await cache.route(NotifyEvent(event), "c1", ALL_KINDS)
    await cache.wait_idle(5)
    assert sorted(fetched) == sorted(kinds)
    await cache.route(NotifyEvent.LEAVE_OFFICE, "c1", ALL_KINDS)
    assert "c1" not in cache


def test_notification_kinds_come_from_notify_event() -> None:
    from smcp.agent._handlers import EVENT_KINDS, NOTIFY_KINDS
    from smcp.core.events import NotifyEvent

    assert (
        tuple(e.value.removeprefix("notify:") for e in NotifyEvent if e is not NotifyEvent.TOOL_CALL_CANCEL)
        == NOTIFY_KINDS
    )
    assert set(NOTIFY_KINDS) < EVENT_KINDS and "reconnected" in EVENT_KINDS


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["127.0.0.1:8000", "localhost", "ftp://h:1", "http://", "http://[::1"])
async def test_a_url_without_scheme_or_host_is_a_config_error(url: str) -> None:
    from smcp.agent import AsyncAgent, ConfigError, SMCPException

    with pytest.raises(ConfigError) as info:
        await AsyncAgent(url).connect()
    assert isinstance(info.value, SMCPException)


def test_a_bad_url_leaves_no_unclosed_session() -> None:
    code = (
        "import asyncio, gc\n"
        "from smcp.agent import AsyncAgent, SMCPException\n"
        "async def main():\n"
        "    for url in ('127.0.0.1:1', 'http://127.0.0.1:1'):\n"
        "        for tr in (('websocket',), ('polling', 'websocket')):\n"
        "            try:\n"
        "                await AsyncAgent(url, transports=tr, connect_timeout=2).connect()\n"
        "            except SMCPException as exc:\n"
        "                print(type(exc).__name__)\n"
        "    gc.collect()\n"
        "asyncio.run(main())\n"
        "gc.collect()\n"
    )
    out = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["ConfigError", "ConfigError", "ConnectError", "ConnectError"]
    assert "Unclosed" not in out.stderr, out.stderr


@pytest.mark.anyio
async def test_an_unreachable_server_is_not_a_refusal() -> None:
    from smcp.agent import AsyncAgent, AuthenticationError, ConnectError

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError) as info:
        await AsyncAgent(f"http://127.0.0.1:{port}", connect_timeout=2).connect()
    assert not isinstance(info.value, AuthenticationError)
    assert "could not be reached" in str(info.value) and str(port) in str(info.value)
    assert info.value.__cause__ is not None
