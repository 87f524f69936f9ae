"""smcp-server with signed tokens: ``token issue``, --jwt-secret-file beside --token, CORS origins,
the audit log reopened on SIGHUP, refusals in /metrics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import socketio

from smcp.testing.server import Peer

jwt = pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "smcp.server.asgi.cli"]
SECRET = "cli-test-secret-0123456789abcdef0123"


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_issue(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    args = ["token", "issue", "--sub", "alice", "--role", "agent", "--office", "o1", "--office", "o2"]
    code, out, err = await run(
        *args, "--secret-file", str(secret), "--tools", "get_*", "--name", "al", "--ttl", "15m"
    )
    assert code == 0, err
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"])
    assert (
        claims["sub"] == "alice"
        and claims["smcp_offices"] == ["o1", "o2"]
        and claims["smcp_tools"] == ["get_*"]
    )
    assert claims["smcp_name"] == "al" and 890 <= claims["exp"] - claims["iat"] <= 900
    code, out, _ = await run(*args, env={"SMCP_JWT_SECRET": SECRET})
    assert code == 0 and jwt.decode(out.strip(), SECRET, algorithms=["HS256"])["smcp_role"] == "agent"
    code, _, err = await run(*args, env={"SMCP_JWT_SECRET": ""})
    assert code == 2 and "--secret-file" in err


async def test_jwt_server_with_shared_token_cors_and_rotated_audit(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    audit = tmp_path / "audit.jsonl"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--port", "0", "--jwt-secret-file", str(secret), "--token", "shared-tok",
        "--audit-log", str(audit), "--cors-origin", "https://app.example", "--calls-per-second", "50",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while not (line := (await proc.stdout.readline()).decode()).startswith("LISTENING "):
                assert line, "smcp-server exited early"
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        issue = ["token", "issue", "--secret-file", str(secret), "--sub", "alice", "--role", "agent"]
        code, token, _ = await run(*issue, "--office", "o1")
        assert code == 0
        agent = Peer(url)
        await agent.connect(token=token.strip())
        assert await agent.join("agent", "alice", "o1") == (True, None)
        shared = Peer(url)
        await shared.connect(token="shared-tok")  # the shared token still works beside JWTs
        await shared.close()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await Peer(url).connect(token=jwt.encode({"sub": "x", "exp": 1}, SECRET, algorithm="HS256"))
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            query = "/socket.io/?EIO=4&transport=polling&a2c_version=0.4.0"
            allowed = await http.get(query, headers={"Origin": "https://app.example"})
            assert allowed.status_code == 200
            assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
            evil = await http.get(query, headers={"Origin": "https://evil.example"})
            assert evil.status_code == 400
            metrics = (await http.get("/metrics")).text
        assert 'smcp_auth_refusals_total{reason="expired"} 1' in metrics
        await agent.call("server:leave_office", {"office_id": "o1"})
        async with asyncio.timeout(5):  # the audit thread creates the file with its first batch
            while not audit.exists() or len(audit.read_text().splitlines()) < 3:
                await asyncio.sleep(0.05)
        before = [json.loads(line)["kind"] for line in audit.read_text().splitlines()]
        assert before == ["join", "connect_refused", "leave"]
        audit.rename(tmp_path / "audit.jsonl.1")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.2)
        assert await agent.join("agent", "alice", "o1") == (True, None)
        await agent.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        after = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [r["kind"] for r in after] == ["join", "leave"]
        assert token.strip() not in audit.read_text() + (tmp_path / "audit.jsonl.1").read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
