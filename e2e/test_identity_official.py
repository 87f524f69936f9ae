"""The official 0.4.2 Agent and Computer against our server with signed tokens (JWT in auth.token):
they connect, join and call unchanged; the agent's tool allow-list refuses a call before the Computer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from .harness import OfficialAgent, ProcessManager, start_official_computer, toolbox_config

pytestmark = [pytest.mark.anyio]

SECRET = "e2e-jwt-secret-0123456789abcdef0123"
OFFICE = "jwt-office"


@pytest.mark.official
async def test_official_peers_with_jwts(procs: ProcessManager, official_py: Path, tmp_path: Path) -> None:
    pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")
    from smcp.server.core import issue_token

    secret = tmp_path / "jwt.secret"
    secret.write_text(SECRET)
    audit = tmp_path / "audit.jsonl"
    argv = [
        sys.executable, "-m", "smcp.server.asgi.cli", "--port", "0",
        "--jwt-secret-file", str(secret), "--audit-log", str(audit),
    ]  # fmt: skip
    proc = await procs.astart("smcp-server-jwt", argv, timeout=30)
    url = f"http://127.0.0.1:{proc.port}"
    agent_token = issue_token(
        SECRET, sub="alice", role="agent", offices=[OFFICE], name="jwt-agent", tools=["toolbox__echo"]
    )
    computer_token = issue_token(SECRET, sub="box-1", role="computer", offices=[OFFICE], name="jwt-computer")

    agent = await OfficialAgent.start(procs, url=url, office=OFFICE, name="jwt-agent", token=agent_token)
    assert (await agent.call("connect"))["connected"] is True
    assert (await agent.call("join"))["ack"] == [True, None]
    config = toolbox_config(tmp_path / "mcp.json")
    await start_official_computer(
        procs, url=url, office=OFFICE, name="jwt-computer", config=config, token=computer_token
    )
    await agent.await_notifications(2)
    tools = (await agent.call("get_tools", computer="jwt-computer"))["tools"]
    assert "toolbox__echo" in {t["name"] for t in tools}
    echo = await agent.call(
        "tool_call", computer="jwt-computer", tool_name="toolbox__echo", params={"text": "hi"}
    )
    assert echo["isError"] is False and echo["content"][0]["text"] == "hi"
    refused = await agent.call(
        "tool_call",
        computer="jwt-computer",
        tool_name="toolbox__slow_echo",
        params={"text": "x", "seconds": 0},
    )
    assert refused["isError"] is True
    await agent.quit()

    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(f"{url}/metrics")).text
    assert 'smcp_calls_total{event="client:tool_call",outcome="policy"} 1' in metrics
    with anyio.fail_after(10):
        while '"outcome":"policy"' not in audit.read_text():
            await anyio.sleep(0.1)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    calls = [(r["principal"], r["tool"], r["outcome"]) for r in records if r["kind"] == "call" and r["tool"]]
    assert calls == [("alice", "toolbox__echo", "ok"), ("alice", "toolbox__slow_echo", "policy")]
    assert agent_token not in audit.read_text() and computer_token not in audit.read_text()
