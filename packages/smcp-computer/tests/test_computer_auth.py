"""Upstream authorization failures surface as 4006/4007 results, never as a hang.

The cases are written here by hand after the streamable-HTTP vectors of the conformance file that
smcp-core keeps in ``packages/smcp-core/tests/golden/vectors/auth_error_conformance_vectors.json``
(the handwritten-SSE vector applies to the Rust SDK only). The upstream is a real MCP server,
smcp-testing's ``mcp_servers/auth_server.py``: the handshake and ``tools/list`` succeed,
``tools/call`` is refused at the HTTP layer with the vector's status.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp.computer import Computer, ServerState, Supervision, parse_config

pytestmark = pytest.mark.anyio

AUTH_SERVER = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/auth_server.py"
)
TOKEN = "tok-0123456789-never-on-the-wire"


@pytest.fixture
def upstream(request: pytest.FixtureRequest) -> Iterator[str]:
    status, www_authenticate = request.param
    argv = [sys.executable, str(AUTH_SERVER), "--port", "0", "--status", str(status)]
    if www_authenticate:
        argv += ["--www-authenticate", www_authenticate]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        match = re.match(r"LISTENING (\d+)", proc.stdout.readline())
        assert match, "auth_server.py did not start"
        yield f"http://127.0.0.1:{match.group(1)}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def approve(name: str, params: object) -> bool:
    return True


@pytest.mark.parametrize(
    ("upstream", "code", "action"),
    [
        ((403, None), 4007, "token_refresh_required"),
        ((401, None), 4006, "user_authorization_required"),
        ((401, 'Bearer realm="mcp"'), 4006, "user_authorization_required"),
    ],
    indirect=["upstream"],
    ids=["403", "401", "401-www-authenticate"],
)
async def test_refused_tool_call_is_classified(upstream: str, code: int, action: str) -> None:
    declaration = {
        "type": "streamable",
        "server_parameters": {"url": upstream, "headers": {"Authorization": f"Bearer {TOKEN}"}},
    }
    loaded = parse_config({"servers": {"guarded": declaration}, "inputs": []})
    computer = Computer("c1", loaded.servers, confirm=approve, supervision=Supervision(ping_interval=0))
    async with asyncio.timeout(60), computer:
        (status,) = computer.status()
        assert status.state is ServerState.RUNNING, status.last_error
        async with asyncio.timeout(10):  # the vectors' "hangs: false"
            result = await computer.call_tool("guarded__secret", {}, 30)
        assert result["isError"] is True
        meta = result["meta"]
        assert meta["error_code"] == code
        assert meta["mcp_server"] == "guarded"
        assert meta["auth_hint"]["action"] == action
        assert result["content"][0]["text"] == meta["auth_hint"]["message"]
        assert TOKEN not in repr(result)
        # the session survives: the server is still running and listed
        assert computer.status()[0].state is ServerState.RUNNING
        assert "guarded__secret" in {tool.name for tool in computer.tools()}
