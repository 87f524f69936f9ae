"""All-official control: official server + official Computer + official Agent.

Proves the harness itself (processes, logs, official venv, peers, test MCP servers) before anyone
uses it to compare our implementation with the official one. Nothing of ours runs here except
``smcp.testing.mcp_servers``' ``toolbox.py`` (mcp 2.x, run by this environment's python).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from .harness import (
    OfficialAgent,
    ProcessManager,
    start_official_computer,
    start_official_server,
    stdio_server_entry,
    toolbox_config,
    toolbox_path,
    write_mcp_json,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

OFFICE = "control-office"
COMPUTER = "control-computer"
AGENT = "control-agent"


@pytest.fixture
async def official_server(procs: ProcessManager, official_py: Path) -> str:
    server = await start_official_server(procs)
    assert server.port is not None and server.port > 0
    return f"http://127.0.0.1:{server.port}"


async def test_version_gate_answers_like_0_4_2(official_server: str) -> None:
    base = f"{official_server}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.get(base)
        old = await http.get(base + "&a2c_version=0.3.9")
        good = await http.get(base + "&a2c_version=0.4.0")

    assert missing.status_code == 400
    assert missing.json() == {"code": 400, "message": "Missing a2c_version query parameter"}
    assert "x-a2c-error-code" not in missing.headers

    assert old.status_code == 400
    assert old.headers["x-a2c-error-code"] == "4008"
    assert old.headers["content-type"].startswith("application/json")
    assert old.json() == {
        "code": 4008,
        "message": "Protocol version mismatch",
        "server_version": "0.4.0",
        "client_version": "0.3.9",
        "min_supported": "0.4.0",
        "max_supported": "0.4.999",
    }

    assert good.status_code == 200
    assert good.text.startswith("0{")
    handshake = json.loads(good.text[1:])
    assert handshake["maxPayload"] == 1000000
    assert handshake["upgrades"] == ["websocket"]


async def test_official_stack_with_mcp2_toolbox(
    procs: ProcessManager, official_server: str, tmp_path: Path
) -> None:
    agent = await OfficialAgent.start(procs, url=official_server, office=OFFICE, name=AGENT)
    connected = await agent.call("connect")
    assert connected["connected"] is True
    assert (await agent.call("join"))["ack"] == [True, None]

    config = toolbox_config(tmp_path / "mcp.json", env={"SMCP_TOOLBOX_TAG": "tag-from-env"})
    await start_official_computer(procs, url=official_server, office=OFFICE, name=COMPUTER, config=config)

    # the agent saw the Computer enter, and the SDK re-fetched its tools on its own
    notes = await agent.await_notifications(2)
    assert {"event": "notify:enter_office", "data": {"office_id": OFFICE, "computer": COMPUTER}} in notes
    received = [n for n in notes if n["event"] == "tools_received"]
    assert received and received[0]["computer"] == COMPUTER
    assert "toolbox__echo" in received[0]["tools"]

    room = await agent.call("list_room")
    sessions = {(s["name"], s["role"], s["office_id"], s["a2c_version"]) for s in room["sessions"]}
    assert sessions == {(AGENT, "agent", OFFICE, "0.4.0"), (COMPUTER, "computer", OFFICE, "0.4.0")}

    tools = (await agent.call("get_tools", computer=COMPUTER))["tools"]
    by_name = {t["name"]: t for t in tools}
    expected = {
        "toolbox__echo", "toolbox__slow_echo", "toolbox__fail", "toolbox__big_text", "toolbox__image",
        "toolbox__add", "toolbox__grow", "toolbox__open_window", "toolbox__crash", "toolbox__whoami",
        "toolbox__tagged",
    }  # fmt: skip
    assert set(by_name) == expected
    assert {t["bundle_id"] for t in tools} == {"toolbox"}
    assert by_name["toolbox__echo"]["params_schema"]["required"] == ["text"]
    # three-layer ToolMeta merge: config gives auto_apply, the server declaration gives the tags
    tagged_meta = json.loads(by_name["toolbox__tagged"]["meta"]["a2c_tool_meta"])
    assert tagged_meta == {"auto_apply": True, "alias": None, "tags": ["declared"], "ret_object_mapper": None}
    echo_meta = json.loads(by_name["toolbox__echo"]["meta"]["a2c_tool_meta"])
    assert echo_meta["tags"] is None

    echo = await agent.call(
        "tool_call", computer=COMPUTER, tool_name="toolbox__echo", params={"text": "hello"}
    )
    assert echo["isError"] is False
    assert [c["text"] for c in echo["content"]] == ["hello"]
    assert echo["structuredContent"] == {"result": "hello"}

    added = await agent.call(
        "tool_call", computer=COMPUTER, tool_name="toolbox__add", params={"a": 2, "b": 40}
    )
    assert added["isError"] is False
    assert added["content"][0]["text"] == "42"

    whoami = await agent.call("tool_call", computer=COMPUTER, tool_name="toolbox__whoami", params={})
    assert whoami["content"][0]["text"] == "tag-from-env"

    failed = await agent.call(
        "tool_call", computer=COMPUTER, tool_name="toolbox__fail", params={"message": "boom"}
    )
    assert failed["isError"] is True
    assert "boom" in failed["content"][0]["text"]

    unknown = await agent.call("tool_call", computer=COMPUTER, tool_name="toolbox__nope", params={})
    assert unknown["isError"] is True
    assert unknown["content"] == []
    assert unknown["structuredContent"] == {
        "error": "Tool 'toolbox__nope' not found in ExposedToolMapping",
        "error_type": "ValueError",
    }

    # a Computer name nobody registered: the official server answers with a flat 404
    missing = await agent.call("tool_call", computer="no-such-computer", tool_name="x__y", params={})
    assert missing["isError"] is True
    assert "404" in missing["content"][0]["text"]

    config_ret = await agent.call("get_config", computer=COMPUTER)
    assert list(config_ret["servers"]) == ["toolbox"]
    assert config_ret["servers"]["toolbox"]["server_parameters"]["env"] == {
        "SMCP_TOOLBOX_TAG": "tag-from-env"
    }

    await agent.quit()
    assert agent.proc.returncode == 0


async def test_official_computer_hosts_mcp1_server(
    procs: ProcessManager, official_server: str, official_py: Path, tmp_path: Path
) -> None:
    config = write_mcp_json(
        tmp_path / "mcp.json",
        {"v1": stdio_server_entry(official_py, [str(toolbox_path("toolbox_v1")), "stdio"])},
    )
    await start_official_computer(procs, url=official_server, office=OFFICE, name=COMPUTER, config=config)
    agent = await OfficialAgent.start(procs, url=official_server, office=OFFICE, name=AGENT)
    await agent.call("connect")
    assert (await agent.call("join"))["ack"] == [True, None]

    computers = await agent.call("list_computers")
    assert [(c["name"], c["role"]) for c in computers] == [(COMPUTER, "computer")]

    tools = (await agent.call("get_tools", computer=COMPUTER))["tools"]
    assert sorted(t["name"] for t in tools) == ["v1__add", "v1__echo", "v1__slow_echo"]

    added = await agent.call("tool_call", computer=COMPUTER, tool_name="v1__add", params={"a": 3, "b": 4})
    assert added["isError"] is False
    assert added["content"][0]["text"] == "7"

    echo = await agent.call(
        "tool_call", computer=COMPUTER, tool_name="v1__echo", params={"text": "old server"}
    )
    assert echo["content"][0]["text"] == "old server"


async def test_second_agent_is_refused(procs: ProcessManager, official_server: str) -> None:
    first = await OfficialAgent.start(procs, url=official_server, office=OFFICE, name="agent-one")
    second = await OfficialAgent.start(procs, url=official_server, office=OFFICE, name="agent-two")
    await first.call("connect")
    await second.call("connect")
    assert (await first.call("join"))["ack"] == [True, None]
    assert (await second.call("join"))["ack"] == [False, "Internal server error: Agent already in room"]
