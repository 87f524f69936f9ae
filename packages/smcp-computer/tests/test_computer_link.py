"""The socket link and the ``smcp-computer`` command against our real ``smcp-server`` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from smcp.computer import Computer, ComputerLink, Supervision, parse_config

pytestmark = pytest.mark.anyio

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)
TOKEN = "link-secret"


def _start(argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen(argv, text=True, **kwargs)


@contextlib.contextmanager
def _child(argv: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    """A child process that is killed on the way out if the test did not stop it."""
    proc = _start(argv, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def _terminate(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, then the exit status (bounded)."""
    proc.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(proc.wait, 30)


def _spawn_server(port: int = 0) -> tuple[subprocess.Popen[str], int]:
    """Our ``smcp-server`` on 127.0.0.1; returns the process and the port it listens on."""
    pytest.importorskip("smcp.server.asgi.cli")
    argv = [sys.executable, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", str(port)]
    proc = _start([*argv, "--token", TOKEN])
    assert proc.stdout is not None
    for _ in range(20):
        match = re.match(r"LISTENING (\d+)", proc.stdout.readline())
        if match:
            return proc, int(match.group(1))
    _stop(proc)
    raise AssertionError("smcp-server did not print LISTENING")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc, port = _spawn_server()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def toolbox_config(**extra: Any) -> dict[str, Any]:
    return {
        "servers": {
            "tb": {
                "type": "stdio",
                "server_parameters": {"command": sys.executable, "args": [str(TOOLBOX), "stdio"]},
                "tool_meta": {"echo": {"alias": "say", "auto_apply": True}},
                "forbidden_tools": ["fail"],
                **extra,
            }
        },
        "inputs": [],
    }


async def approve(name: str, params: dict[str, Any]) -> bool:
    return True


class Agent:
    """A bare python-socketio agent in one office."""

    def __init__(self, url: str, office: str) -> None:
        self.url = url
        self.office = office
        self.sio = socketio.AsyncClient(reconnection=False)
        self.notes: list[tuple[str, Any]] = []
        for event in (
            "notify:update_tool_list",
            "notify:enter_office",
            "notify:leave_office",
            "notify:update_config",
        ):
            self.sio.on(event, self._note(event), namespace="/smcp")

    def _note(self, event: str) -> Any:
        async def handler(data: Any) -> None:
            self.notes.append((event, data))

        return handler

    async def __aenter__(self) -> Agent:
        await self.sio.connect(
            f"{self.url}?a2c_version=0.4.0",
            auth={"token": TOKEN},
            namespaces=["/smcp"],
            transports=["websocket"],
            wait_timeout=10,
        )
        ok = await self.sio.call(
            "server:join_office", {"role": "agent", "name": "a1", "office_id": self.office}, namespace="/smcp"
        )
        assert ok == (True, None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sio.disconnect()

    async def call(self, event: str, *, wait: float = 20, **fields: Any) -> Any:
        data = {"agent": "a1", "req_id": fields.pop("req_id", "rq"), "computer": "c1", **fields}
        return await self.sio.call(event, data, namespace="/smcp", timeout=wait)


@pytest.fixture
async def linked(
    server_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ComputerLink]:
    office = f"office-{request.node.name}"[:60]
    loaded = parse_config(toolbox_config())
    computer = Computer(
        "c1",
        loaded.servers,
        confirm=approve,
        supervision=Supervision(initial_delay=0.1, ping_interval=0),
        spool_dir=tmp_path / "spool",
        skill_home=tmp_path / "skills",
    )
    async with asyncio.timeout(60):
        await computer.start()
        link = ComputerLink(computer, server_url, token=TOKEN)
        await link.connect()
        await link.join(office)
    try:
        yield link
    finally:
        async with asyncio.timeout(30):
            await link.close()
            await computer.close()


@pytest.mark.parametrize(
    ("event", "fields", "keys"),
    [
        ("client:get_tools", {}, {"tools", "req_id"}),
        ("client:get_config", {}, {"servers", "inputs"}),
        ("client:get_desktop", {}, {"desktops", "req_id"}),
        ("client:get_resources", {"mcp_server": "tb"}, {"resources", "req_id"}),
        ("client:get_resources", {"mcp_server": "nope"}, {"code", "message", "mcp_server"}),
        ("client:get_skills", {}, {"skills", "req_id"}),
        ("client:get_skill", {"name": "no-such"}, {"code", "message", "details"}),
        ("client:get_blob", {"blob_handle": "garbage"}, {"code", "message", "details"}),
        ("client:put_blob", {"chunk_offset": 0, "eof": True, "blob": ""}, {"code", "message", "details"}),
    ],
)
async def test_every_client_event_is_answered(
    linked: ComputerLink, server_url: str, event: str, fields: dict[str, Any], keys: set[str]
) -> None:
    assert linked.office is not None
    async with asyncio.timeout(30), Agent(server_url, linked.office) as agent:
        reply = await agent.call(event, **fields)
        assert isinstance(reply, dict)
        assert keys <= set(reply)
        if "code" in reply:
            from smcp.core.errors import OFFICIAL_ERROR_CODES

            assert reply["code"] in OFFICIAL_ERROR_CODES
        if "req_id" in keys:
            assert reply["req_id"] == "rq"


async def test_tool_calls_through_the_server(linked: ComputerLink, server_url: str) -> None:
    assert linked.office is not None
    async with asyncio.timeout(40), Agent(server_url, linked.office) as agent:
        ok = await agent.call("client:tool_call", tool_name="tb__say", params={"text": "hi"}, timeout=5)
        assert ok["isError"] is False and ok["content"][0]["text"] == "hi"
        assert isinstance(ok["meta"]["a2c_tool_meta"], dict)
        forbidden = await agent.call("client:tool_call", tool_name="tb__fail", params={}, timeout=5)
        assert forbidden["isError"] is True and forbidden["structuredContent"]["error_type"] == "ValueError"
        slow = await agent.call(
            "client:tool_call", tool_name="tb__slow_echo", params={"text": "x", "seconds": 5}, timeout=1
        )
        assert slow["meta"] == {"a2c_timeout": True}


async def test_cancel_and_concurrency(linked: ComputerLink, server_url: str) -> None:
    assert linked.office is not None
    async with asyncio.timeout(40), Agent(server_url, linked.office) as agent:
        call = asyncio.create_task(
            agent.call(
                "client:tool_call",
                req_id="slow-1",
                tool_name="tb__slow_echo",
                params={"text": "x", "seconds": 10},
                timeout=20,
            )
        )
        await asyncio.sleep(0.5)
        start = asyncio.get_running_loop().time()
        tools = await agent.call("client:get_tools")  # not delayed by the slow call
        assert tools["tools"] and asyncio.get_running_loop().time() - start < 2
        await agent.sio.emit(
            "server:tool_call_cancel", {"agent": "a1", "req_id": "slow-1"}, namespace="/smcp"
        )
        result = await asyncio.wait_for(call, 10)
        assert result["meta"] == {"a2c_cancelled": True, "a2c_cancel_reason": "agent_requested"}


async def test_tool_list_change_reaches_the_office(linked: ComputerLink, server_url: str) -> None:
    assert linked.office is not None
    async with asyncio.timeout(40), Agent(server_url, linked.office) as agent:
        await agent.call("client:tool_call", tool_name="tb__grow", params={}, timeout=5)
        for _ in range(100):
            if any(event == "notify:update_tool_list" for event, _ in agent.notes):
                break
            await asyncio.sleep(0.05)
        assert ("notify:update_tool_list", {"computer": "c1"}) in agent.notes
        tools = await agent.call("client:get_tools")
        assert "tb__extra" in {t["name"] for t in tools["tools"]}


async def test_every_tools_list_changed_is_announced(linked: ComputerLink, server_url: str) -> None:
    """docs/protocol.md §6.2: each MCP ``tools/list_changed`` becomes a ``server:update_tool_list``, even
    when the re-read list is the same as before (the second ``grow`` adds nothing new). Dropping
    it left a second Agent in the e2e matrix, sharing the lab's Computer, without a notification."""
    assert linked.office is not None

    async def grow_and_wait() -> None:
        agent.notes.clear()
        await agent.call("client:tool_call", tool_name="tb__grow", params={}, timeout=5)
        for _ in range(100):
            if any(event == "notify:update_tool_list" for event, _ in agent.notes):
                break
            await asyncio.sleep(0.05)
        assert ("notify:update_tool_list", {"computer": "c1"}) in agent.notes, agent.notes

    async with asyncio.timeout(40), Agent(server_url, linked.office) as agent:
        await grow_and_wait()  # the list changes: tb__extra appears
        await grow_and_wait()  # announced again although tools/list is unchanged


async def test_wrong_computer_name_gets_404(linked: ComputerLink) -> None:
    reply = await linked.answer("client:get_tools", {"agent": "a", "req_id": "r", "computer": "other"})
    assert reply["code"] == 404


async def test_rejoins_after_the_server_restarts(tmp_path: Path) -> None:
    """A restarted server has an empty registry: the link must re-join and re-announce by itself."""
    proc, port = _spawn_server()
    url = f"http://127.0.0.1:{port}"
    computer = Computer("c1", parse_config(toolbox_config()).servers, confirm=approve, spool_dir=tmp_path)
    link = ComputerLink(computer, url, token=TOKEN)
    try:
        async with asyncio.timeout(60):
            await computer.start()
            await link.connect()
            await link.join("restart-office")
            _stop(proc)
            while link.connected:
                await asyncio.sleep(0.05)
            proc, _ = await asyncio.to_thread(_spawn_server, port)
            async with Agent(url, "restart-office") as agent:
                tools = await agent.call("client:get_tools")
                while "tools" not in tools:  # 404 until the Computer is back in the office
                    await asyncio.sleep(0.1)
                    tools = await agent.call("client:get_tools")
                assert link.office == "restart-office"
                assert "tb__say" in {tool["name"] for tool in tools["tools"]}
    finally:
        async with asyncio.timeout(30):
            await link.close()
            await computer.close()
        _stop(proc)


@pytest.mark.slow
async def test_cli_run_ready_serves_and_stops_on_sigterm(server_url: str, tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(toolbox_config()))
    env = {**os.environ, "SMCP_TOKEN": TOKEN, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    argv = [sys.executable, "-m", "smcp.computer.cli", "run", "--url", server_url, "--office", "cli-office"]
    argv += ["--name", "c1", "--config", str(config), "--no-repl", "--auto-apply"]
    with _child(argv, env=env) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.strip() == "READY 1/1 MCP server(s) running"
        async with asyncio.timeout(30), Agent(server_url, "cli-office") as agent:
            reply = await agent.call(
                "client:tool_call", tool_name="tb__add", params={"a": 1, "b": 2}, timeout=5
            )
            assert reply["content"][0]["text"] == "3"
        assert await _terminate(proc) == 0


@pytest.mark.parametrize(
    ("document", "code", "needle"),
    [
        (toolbox_config(), 0, '"ok": true'),
        ({"servers": {"x": {"type": "stdio", "server_parameters": {}}}}, 1, "server_parameters.command"),
        ({"servers": {}, "inputs": [{"id": "p", "type": "pickString", "options": ["a"]}]}, 1, "label"),
    ],
)
def test_validate_command(tmp_path: Path, document: Any, code: int, needle: str) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(document))
    out = subprocess.run(
        [sys.executable, "-m", "smcp.computer.cli", "validate", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == code
    assert needle in out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
async def test_cli_on_a_terminal_asks_before_a_call(server_url: str, tmp_path: Path) -> None:
    """With the REPL on a TTY, a call without auto_apply is put to the user; 'y' runs it, 'n' refuses."""
    import pty

    document = toolbox_config()
    document["servers"]["tb"]["tool_meta"] = {}
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(document))
    argv = [sys.executable, "-m", "smcp.computer.cli", "run", "--url", server_url, "--office", "tty-office"]
    argv += ["--name", "c1", "--config", str(config), "--token", TOKEN]
    leader, follower = pty.openpty()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    screen = bytearray()

    async def read_until(needle: bytes) -> None:
        while needle not in screen:
            chunk = await asyncio.to_thread(os.read, leader, 4096)
            if not chunk:
                raise AssertionError(f"terminal closed before {needle!r}: {screen[-2000:]!r}")
            screen.extend(chunk)

    tty = {"stdin": follower, "stdout": follower, "stderr": follower}
    with _child(argv, env={**env, "TERM": "dumb"}, **tty) as proc, contextlib.ExitStack() as cleanup:
        cleanup.callback(os.close, leader)
        os.close(follower)
        async with asyncio.timeout(60):
            await read_until(b"READY")
            async with Agent(server_url, "tty-office") as agent:
                for answer, expected in ((b"y", False), (b"n", True)):
                    del screen[:]
                    call = asyncio.create_task(
                        agent.call("client:tool_call", tool_name="tb__echo", params={"text": "t"}, timeout=30)
                    )
                    await read_until(b"Run tool tb__echo")
                    os.write(leader, answer + b"\r")
                    reply = await call
                    assert reply["isError"] is expected, reply
            os.write(leader, b"quit\r")
            assert await asyncio.to_thread(proc.wait, 30) == 0


@pytest.mark.slow
async def test_embedded_example_serves_and_its_callback_decides(server_url: str) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "computer_embedded.py"
    argv = [
        sys.executable,
        str(example),
        "--url",
        server_url,
        "--token",
        TOKEN,
        "--office",
        "embedded-office",
    ]
    with _child([*argv, "--name", "c1"]) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.startswith("SERVING embedded-office with 4 tools"), line
        async with asyncio.timeout(30), Agent(server_url, "embedded-office") as agent:
            allowed = await agent.call(
                "client:tool_call", tool_name="desk__calculate", params={"expression": "6 * 7"}, timeout=10
            )
            assert allowed["isError"] is False and allowed["content"][0]["text"] == "42"
            refused = await agent.call(
                "client:tool_call", tool_name="desk__list_files", params={"folder": "."}, timeout=10
            )
            assert refused["isError"] is True
        assert await _terminate(proc) == 0


async def test_malformed_requests_get_an_error_answer(linked: ComputerLink) -> None:
    """Garbage in any field of any ``client:*`` request is answered, never raised or left silent."""
    from smcp.core.errors import OFFICIAL_ERROR_CODES
    from smcp.core.events import ClientEvent

    garbage: list[Any] = [
        None,
        [],
        "text",
        42,
        {"computer": 5},
        {"computer": "c1", "req_id": 7, "agent": None},
        {"computer": "c1", "tool_name": 3, "params": "x", "timeout": "soon", "mcp_server": [], "name": {}},
        {"computer": "c1", "blob_handle": 1, "chunk_offset": "a", "max_chunk_bytes": -1, "cursor": 9},
        {"computer": "c1", "window": 5, "desktop_size": "big", "rel_path": "../../etc/passwd", "name": "x"},
    ]
    for event in ClientEvent:
        for data in garbage:
            async with asyncio.timeout(10):
                reply = await linked.answer(event, data)
            assert isinstance(reply, dict), (event, data)
            if "code" in reply:  # an ErrorPayload, e.g. 404 for a computer name that is not ours
                assert reply["code"] in OFFICIAL_ERROR_CODES, (event, data, reply)
            elif event is ClientEvent.TOOL_CALL:
                assert reply["isError"] is True, (data, reply)


class VersionGate:
    """A server that speaks protocol 0.5: every HTTP request (WebSocket upgrade or polling) gets
    the 400 gate body of a 4008, as an smcp server of another minor answers."""

    BODY = json.dumps(
        {
            "code": 4008,
            "message": "Protocol version mismatch",
            "server_version": "0.5.0",
            "client_version": "0.4.0",
            "min_supported": "0.5.0",
            "max_supported": "0.5.999",
        }
    ).encode()

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
                pass
            self.requests += 1
            head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(self.BODY)}"
            writer.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + self.BODY)
            await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_version_rejection_is_reported_and_never_retried(tmp_path: Path) -> None:
    """Issue 11: against a server of another protocol minor, ``smcp-computer run`` says which
    versions differ and "upgrade the older side" (as smcp-agent does), and exits without retrying."""
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(toolbox_config()))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    gate = VersionGate()
    async with gate as url:
        argv = [
            sys.executable,
            "-m",
            "smcp.computer.cli",
            "run",
            "--url",
            url,
            "--office",
            "o",
            "--name",
            "c1",
        ]
        argv += ["--config", str(config), "--no-repl", "--auto-apply", "--token", TOKEN]
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        await asyncio.sleep(1.0)  # a retry would arrive now
    text = err.decode()
    assert proc.returncode == 1, text
    assert "READY" not in out.decode()
    assert "error: [4008]" in text and "upgrade the older side" in text, text
    assert "client speaks 0.4.0, server 0.5.0 accepts 0.5.0..0.5.999" in text, text
    assert gate.requests <= 2, gate.requests  # the WebSocket attempt and one polling probe


async def test_wrong_token_shows_the_servers_reason(server_url: str, tmp_path: Path) -> None:
    """Issue 18 D6: a refused credential is an AuthenticationError with the server's reason,
    not python-socketio's "One or more namespaces failed to connect"."""
    from smcp.core.errors import AuthenticationError

    computer = Computer("c1", [], spool_dir=tmp_path)
    link = ComputerLink(computer, server_url, token="wrong")
    try:
        with pytest.raises(AuthenticationError) as err:
            await asyncio.wait_for(link.connect(), 30)
        assert "namespaces failed" not in str(err.value)
        assert "refused the connection:" in str(err.value)
    finally:
        await link.close()


async def test_token_may_be_a_callable_and_auth_provider_still_works(server_url: str, tmp_path: Path) -> None:
    async def token() -> str:
        return TOKEN

    computer = Computer("c1", [], spool_dir=tmp_path)
    with pytest.warns(DeprecationWarning, match="auth_provider"):
        old_style = ComputerLink(computer, server_url, auth_provider=lambda: {"token": TOKEN})
    for link in (ComputerLink(computer, server_url, token=token), old_style):
        try:
            await asyncio.wait_for(link.connect(), 30)
            await asyncio.wait_for(link.join("callable-office"), 30)
            assert link.office == "callable-office"
        finally:
            await link.close()


async def test_keeps_rejoining_until_the_name_is_free(
    server_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: after a reconnect the server may still hold our name (a stale session) for up to
    its ping timeout; the link keeps re-joining with backoff until it is back, instead of once.
    The lost connection is a WARNING, the re-join an INFO (issue 18 D25)."""
    import logging

    caplog.set_level(logging.INFO, logger="smcp.computer")
    computer = Computer("c1", parse_config(toolbox_config()).servers, confirm=approve, spool_dir=tmp_path)
    link = ComputerLink(computer, server_url, token=TOKEN)
    squatter = socketio.AsyncClient(reconnection=False)
    office = "squat-office"
    try:
        async with asyncio.timeout(90):
            await computer.start()
            await link.connect()
            await link.join(office)
            await squatter.connect(
                f"{server_url}?a2c_version=0.4.0", auth={"token": TOKEN}, namespaces=["/smcp"],
                transports=["websocket"], wait_timeout=10,
            )  # fmt: skip
            ws = link.sio.eio.ws
            assert ws is not None
            await ws.close()  # the transport drops; python-socketio reconnects on its own
            join = {"role": "computer", "name": "c1", "office_id": office}
            while (await squatter.call("server:join_office", join, namespace="/smcp")) != (True, None):
                await asyncio.sleep(0.01)  # take the name before the link is back
            while link.office is not None or not link.connected:
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # the link's re-joins are refused meanwhile
            assert link.office is None
            await squatter.call("server:leave_office", {"office_id": office}, namespace="/smcp")
            while link.office != office:
                await asyncio.sleep(0.05)
            async with Agent(server_url, office) as agent:
                assert "tb__say" in {tool["name"] for tool in (await agent.call("client:get_tools"))["tools"]}
    finally:
        async with asyncio.timeout(30):
            await squatter.disconnect()
            await link.close()
            await computer.close()
    levels = {(r.levelno, r.getMessage().split(" ")[0]) for r in caplog.records if r.name == "smcp.computer"}
    assert (logging.WARNING, "lost") in levels
    assert any(
        r.levelno == logging.INFO and r.getMessage().startswith("re-joined office") for r in caplog.records
    )


def test_every_client_event_has_a_route() -> None:
    """The link serves exactly the ``client:*`` events of core's table (a new one needs a route)."""
    from smcp.computer._link import _ROUTES
    from smcp.core.events import EVENTS, ClientEvent

    assert set(_ROUTES) == {ClientEvent(name) for name, spec in EVENTS.items() if spec.is_client_request}


@pytest.mark.parametrize(
    ("event", "fields", "code", "reason"),
    [
        # 400 is not an official code: official peers get it as the Computer's 404
        ("client:get_tools", {"req_id": 5}, 404, "computer_error"),
        ("client:get_resources", {}, 404, "computer_error"),
        ("client:get_skill", {"name": 3}, 4016, None),
        ("client:get_blob", {"blob_handle": 1}, 4018, "invalid_handle"),
        (
            "client:put_blob",
            {"chunk_offset": 0, "eof": True, "blob": "", "total_size": True},
            4019,
            "invalid_declaration",
        ),
        ("client:put_blob", {"chunk_offset": "0", "eof": True, "blob": ""}, 4019, "range"),
    ],
)
async def test_malformed_requests_get_the_tables_code(
    tmp_path: Path, event: str, fields: dict[str, Any], code: int, reason: str | None
) -> None:
    """A request that does not validate against core's model gets the event's malformed code
    (docs/protocol.md §8) and, where the code has one, the protocol's ``details.reason``."""
    link = ComputerLink(Computer("c1", [], spool_dir=tmp_path, landing_root=tmp_path), "http://127.0.0.1:1")
    try:
        reply = await link.answer(event, {"agent": "a", "req_id": "r", "computer": "c1", **fields})
        assert reply["code"] == code, reply
        if reason is not None:
            assert reply["details"]["reason"] == reason, reply
    finally:
        await link.close()
