"""The smcp-server command in a subprocess: start-up lines, token rules, clean stop with answers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import socketio

from smcp.testing.server import Harness, Peer

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "smcp.server.asgi.cli"]


@asynccontextmanager
async def cli(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[tuple[Any, str, list[str]]]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, f"smcp-server exited early: {lines}"
                lines.append(line.strip())
                if line.startswith("LISTENING "):
                    break
        port = int(lines[-1].split()[1])
        yield proc, f"http://127.0.0.1:{port}", lines
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)


async def test_refuses_to_start_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SMCP_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert b"--token" in err and b"SMCP_TOKEN" in err


async def test_token_from_env_url_line_and_json_logs() -> None:
    async with cli("--json-logs", "--log-level", "debug", env={"SMCP_TOKEN": "envtok"}) as (proc, url, lines):
        assert lines[-2].startswith("smcp-server listening on http://127.0.0.1:")
        peer = Peer(url)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect(token="wrong")
        await peer.connect(token="envtok")
        assert await peer.join("agent", "a", "o1") == (True, None)
        await peer.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode().splitlines()
        records = [json.loads(line) for line in err if line.startswith("{")]
        assert records, err
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        assert any(r["logger"] == "smcp.server" and r.get("sid") for r in records)
        started = next(r["message"] for r in records if r["message"].startswith("event loop:"))
        try:
            import orjson  # noqa: F401
        except ImportError:
            assert "json: stdlib" in started
        else:
            assert "json: orjson" in started


async def test_sigterm_answers_in_flight_calls_then_exits() -> None:
    arrived = asyncio.Event()

    async def hang(event: str, data: Any) -> Any:
        arrived.set()
        await asyncio.sleep(60)

    async with cli("--token", "T") as (proc, url, _):
        h = Harness(None, url)  # type: ignore[arg-type]
        try:
            agent = await h.peer(connect=False)
            await agent.connect(token="T")
            assert await agent.join("agent", "a", "o1") == (True, None)
            comp = await h.peer(connect=False)
            comp.serve_requests(hang)
            await comp.connect(token="T")
            assert await comp.join("computer", "c", "o1") == (True, None)
            call = asyncio.ensure_future(
                agent.call(
                    "client:tool_call",
                    {
                        "agent": "a",
                        "req_id": "r",
                        "computer": "c",
                        "tool_name": "t",
                        "params": {},
                        "timeout": 50,
                    },
                    timeout=15,
                )
            )
            await asyncio.wait_for(arrived.wait(), 10)
            proc.send_signal(signal.SIGTERM)
            ack = await call
            assert ack[0]["code"] == 503
            assert "shutting down" in ack[0]["message"]
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            for p in h.peers:
                if p.sio.connected:
                    await asyncio.wait_for(p.sio.eio.disconnect(abort=True), 5)


async def test_settings_flags_reach_the_server() -> None:
    async with cli("--token", "T", "--path", "/x/rt", "--max-message-size", "2000000") as (proc, url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            good = await http.get(f"{url}/x/rt/?EIO=4&transport=polling&a2c_version=0.4.0")
            assert good.status_code == 200
            assert json.loads(good.text[1:])["maxPayload"] == 4_000_000  # twice the message limit
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--port", "99999", "99999 is not a TCP port (0-65535)"),
        ("--port", "x", "'x' is not a port number"),
        ("--ping-timeout", "0", "0 must be > 0 seconds"),
    ],
)
async def test_a_bad_value_is_a_one_line_usage_error(flag: str, value: str, says: str) -> None:
    code, _, err = await _run("--token", "T", flag, value)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"smcp-server: error: argument {flag}: {says}")


async def test_version() -> None:
    from smcp.server.asgi import __version__

    code, out, _ = await _run("--version")
    assert code == 0
    assert out.strip() == f"smcp-server {__version__}"


async def test_help_defaults_come_from_server_settings() -> None:
    from smcp.server.asgi.cli import build_parser
    from smcp.server.core import ServerSettings

    d = ServerSettings()
    args = build_parser().parse_args([])
    assert (args.grace, args.request_timeout, args.max_message_size, args.max_agents_per_office) == (
        d.grace,
        d.default_timeout,
        d.max_message_size,
        d.max_agents_per_office,
    )
    assert (args.ping_interval, args.ping_timeout) == (d.ping_interval, d.ping_timeout)


async def test_ping_flags_reach_the_engineio_handshake() -> None:
    async with cli("--token", "T", "--ping-interval", "3", "--ping-timeout", "4.5") as (proc, url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            open_packet = await http.get(f"{url}/socket.io/?EIO=4&transport=polling&a2c_version=0.4.0")
            handshake = json.loads(open_packet.text[1:])
            assert (handshake["pingInterval"], handshake["pingTimeout"]) == (3000, 4500)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


@pytest.mark.parametrize("loop", ["asyncio", "auto"])
async def test_a_double_sigint_exits_without_a_traceback(loop: str) -> None:
    async with cli("--token", "T", "--loop", loop) as (proc, url, _):
        peer = Peer(url)
        await peer.connect(token="T")
        try:
            proc.send_signal(signal.SIGINT)
            await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if peer.sio.connected:
                await asyncio.wait_for(peer.sio.eio.disconnect(abort=True), 5)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "Traceback" not in err and "ERROR" not in err, err
