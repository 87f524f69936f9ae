"""Our ``smcp-server`` command in a subprocess, driven by the official 0.4.2 Agent and Computer.

Covers join, list_room, get_tools, get_config, tool_call, cancel, the 404 for unknown Computers,
notifications, the improved answers of docs/protocol.md, differences B1/B2, seen by an official
Agent, and the raw HTTP bodies of the version gate.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from .harness import (
    DEFAULT_TOKEN,
    OfficialAgent,
    ProcessManager,
    start_official_computer,
    toolbox_config,
)

pytestmark = [pytest.mark.anyio]

OFFICE = "srv-office"
COMPUTER = "srv-computer"
AGENT = "srv-agent"


async def start_our_server(procs: ProcessManager, *extra: str, name: str = "smcp-server") -> str:
    argv = [sys.executable, "-m", "smcp.server.asgi.cli", "--port", "0", "--token", DEFAULT_TOKEN, *extra]
    proc = await procs.astart(name, argv, timeout=30)
    assert proc.port
    return f"http://127.0.0.1:{proc.port}"


async def test_version_gate_bodies(procs: ProcessManager) -> None:
    url = await start_our_server(procs)
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.get(base)
        blank = await http.get(base + "&a2c_version=")
        invalid = await http.get(base + "&a2c_version=0.4")
        old = await http.get(base + "&a2c_version=0.3.9")
        good = await http.get(base + "&a2c_version=0.4.99")
        health = await http.get(f"{url}/healthz")
    assert missing.status_code == 400
    assert missing.content == b'{"code": 400, "message": "Missing a2c_version query parameter"}'
    assert blank.json() == missing.json()
    assert invalid.content == b'{"code": 400, "message": "Invalid a2c_version: Invalid version: 0.4"}'
    assert "x-a2c-error-code" not in invalid.headers
    assert old.status_code == 400
    assert old.headers["x-a2c-error-code"] == "4008"
    assert old.headers["content-type"] == "application/json"
    assert int(old.headers["content-length"]) == len(old.content)
    assert old.content == (
        b'{"code": 4008, "message": "Protocol version mismatch", "server_version": "0.4.0", '
        b'"client_version": "0.3.9", "min_supported": "0.4.0", "max_supported": "0.4.999"}'
    )
    assert good.status_code == 200
    handshake = json.loads(good.text[1:])
    assert handshake["maxPayload"] == 32 * 1024 * 1024  # transport ceiling: twice the 16 MiB message limit
    assert health.json() == {"status": "ok"}


@pytest.mark.official
async def test_official_agent_and_computer_through_our_server(
    procs: ProcessManager, official_py: Path, tmp_path: Path
) -> None:
    url = await start_our_server(procs, "--grace", "2")
    agent = await OfficialAgent.start(procs, url=url, office=OFFICE, name=AGENT, token=DEFAULT_TOKEN)
    assert (await agent.call("connect"))["connected"] is True
    assert (await agent.call("join"))["ack"] == [True, None]
    config = toolbox_config(tmp_path / "mcp.json")
    await start_official_computer(procs, url=url, office=OFFICE, name=COMPUTER, config=config)

    notes = await agent.await_notifications(2)
    assert {"event": "notify:enter_office", "data": {"office_id": OFFICE, "computer": COMPUTER}} in notes
    received = [n for n in notes if n["event"] == "tools_received"]
    assert received and "toolbox__echo" in received[0]["tools"]

    room = await agent.call("list_room")
    sessions = {(s["name"], s["role"], s["office_id"], s["a2c_version"]) for s in room["sessions"]}
    assert sessions == {(AGENT, "agent", OFFICE, "0.4.0"), (COMPUTER, "computer", OFFICE, "0.4.0")}
    computers = await agent.call("list_computers")
    assert COMPUTER in json.dumps(computers)

    tools = (await agent.call("get_tools", computer=COMPUTER))["tools"]
    assert "toolbox__slow_echo" in {t["name"] for t in tools}
    config_ret = await agent.call("get_config", computer=COMPUTER)
    assert list(config_ret["servers"]) == ["toolbox"]

    echo = await agent.call("tool_call", computer=COMPUTER, tool_name="toolbox__echo", params={"text": "hi"})
    assert echo["isError"] is False
    assert echo["content"][0]["text"] == "hi"

    # unknown Computer: the flat 404 the official Agent understands
    missing = await agent.call("tool_call", computer="nobody", tool_name="x__y", params={})
    assert missing["isError"] is True
    assert "404" in missing["content"][0]["text"]

    # cancel: the official Computer gets notify:tool_call_cancel and answers a cancelled result
    cid = agent.send(
        "tool_call", computer=COMPUTER, tool_name="toolbox__slow_echo",
        params={"text": "late", "seconds": 20}, timeout=30,
    )  # fmt: skip
    req_id = None
    with anyio.fail_after(10):
        while req_id is None:
            answer = await agent.try_call("req_id", of=cid)
            req_id = answer.get("result", {}).get("req_id") if "result" in answer else None
            if req_id is None:
                await anyio.sleep(0.1)
    await anyio.sleep(0.5)
    await agent.call("cancel", req_id=req_id)
    cancelled = await agent.wait(cid, timeout=25)
    result = cancelled["result"]
    assert result["isError"] is True
    assert result["meta"]["a2c_cancelled"] is True

    # B1: a bad list_room is answered (0.4.2 would stay silent)
    wrong_office = await agent.call(
        "call", event="server:list_room", data={"agent": AGENT, "req_id": "x", "office_id": "elsewhere"}
    )
    assert wrong_office["code"] == 403
    # B1: a malformed tool call gets a 400 naming the field
    bad = await agent.call("call", event="client:tool_call", data={"agent": AGENT, "req_id": "r"})
    assert bad["code"] == 400
    assert bad["details"]["field"]

    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(f"{url}/metrics")).text
    assert 'smcp_calls_total{event="client:tool_call",outcome="ok"}' in metrics
    await agent.quit()


@pytest.mark.official
async def test_grace_lets_the_official_computer_timeout_result_through_and_disconnect_is_404(
    procs: ProcessManager, official_py: Path, tmp_path: Path
) -> None:
    """B2 with official peers: the Computer's own timeout result wins the race thanks to the grace,
    and a call whose Computer dies is answered at once with 404 (0.4.2 waits out the timeout)."""
    url = await start_our_server(procs, "--grace", "3")
    agent = await OfficialAgent.start(procs, url=url, office=OFFICE, name=AGENT, token=DEFAULT_TOKEN)
    await agent.call("connect")
    assert (await agent.call("join"))["ack"] == [True, None]
    second = await OfficialAgent.start(procs, url=url, office=OFFICE, name="second", token=DEFAULT_TOKEN)
    await second.call("connect")
    ack = (await second.call("join"))["ack"]
    assert ack[0] is False
    assert "already has an agent" in ack[1]
    config = toolbox_config(tmp_path / "mcp.json")
    computer = await start_official_computer(procs, url=url, office=OFFICE, name=COMPUTER, config=config)

    # The official Agent's own wait is exactly `timeout`, so use a raw call that waits longer: the
    # Computer's timeout result (sent at ~1 s) reaches it because our relay waits 1 s + grace.
    slow = await agent.call(
        "call", event="client:tool_call", timeout=15,
        data={"agent": AGENT, "req_id": "slow1", "computer": COMPUTER, "tool_name": "toolbox__slow_echo",
              "params": {"text": "x", "seconds": 10}, "timeout": 1},
    )  # fmt: skip
    assert slow["isError"] is True
    assert "code" not in slow

    cid = agent.send(
        "tool_call", computer=COMPUTER, tool_name="toolbox__slow_echo",
        params={"text": "x", "seconds": 20}, timeout=25,
    )  # fmt: skip
    await anyio.sleep(1.0)
    started = time.monotonic()
    computer.signal_group(signal.SIGKILL)  # a crash: no leave_office, the socket just drops
    answer = await agent.wait(cid, timeout=20)
    assert time.monotonic() - started < 10
    assert "404" in json.dumps(answer)
    await second.quit()
    await agent.quit()
