"""Hosting, registry and execution against the real toolbox MCP server on all three transports."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smcp.computer import Computer, ServerState, Supervision, parse_config

pytestmark = pytest.mark.anyio

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)
FAST = Supervision(initial_delay=0.1, max_attempts=3, ping_interval=0)


def stdio_decl(**extra: Any) -> dict[str, Any]:
    return {
        "type": "stdio",
        "server_parameters": {"command": sys.executable, "args": [str(TOOLBOX), "stdio"]},
        **extra,
    }


def make(servers: dict[str, Any], inputs: list[Any] | None = None, **kwargs: Any) -> Computer:
    loaded = parse_config({"servers": servers, "inputs": inputs or []})
    assert loaded.problems == []
    kwargs.setdefault("supervision", FAST)
    return Computer("c1", loaded.servers, loaded.inputs, **kwargs)


async def approve(name: str, params: dict[str, Any]) -> bool:
    return True


async def refuse(name: str, params: dict[str, Any]) -> bool:
    return False


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def toolbox(tmp_path: Path) -> AsyncIterator[Computer]:
    computer = make(
        {
            "tb": stdio_decl(
                forbidden_tools=["fail"],
                tool_meta={"echo": {"alias": "say", "auto_apply": True}, "tagged": {"auto_apply": True}},
                default_tool_meta={"tags": ["dflt"], "alias": "ignored"},
            )
        },
        confirm=approve,
        spool_dir=tmp_path / "spool",
        skill_home=tmp_path / "skills",
    )
    async with asyncio.timeout(60):
        async with computer:
            yield computer


def transport_decl(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The toolbox over ``kind`` (stdio, http = streamable, sse)."""
    if kind == "stdio":
        return stdio_decl()
    if kind == "http":
        return {"type": "streamable", "server_parameters": {"url": request.getfixturevalue("http_url")}}
    return {"type": "sse", "server_parameters": {"url": request.getfixturevalue("sse_url")}}


@pytest.mark.parametrize("kind", ["stdio", "http", "sse"])
async def test_each_transport_lists_and_calls(kind: str, request: pytest.FixtureRequest) -> None:
    computer = make({"box": transport_decl(kind, request)}, confirm=approve)
    async with asyncio.timeout(60), computer:
        assert computer.status()[0].state is ServerState.RUNNING
        names = [t.name for t in computer.tools()]
        assert "box__echo" in names and "box__add" in names
        result = await computer.call_tool("box__add", {"a": 2, "b": 3}, timeout=10)
        assert result["isError"] is False
        assert result["content"][0]["text"] == "5"
        assert list(result) == ["meta", "content", "structuredContent", "isError"]


@pytest.mark.parametrize("kind", ["stdio", "http", "sse"])
async def test_calls_to_one_server_run_in_parallel(kind: str, request: pytest.FixtureRequest) -> None:
    """Four 0.8 s calls on one MCP session finish together: nothing serialises them."""
    computer = make({"box": transport_decl(kind, request)}, confirm=approve)
    async with asyncio.timeout(60), computer:
        loop = asyncio.get_running_loop()
        started = loop.time()
        calls = [
            computer.call_tool("box__slow_echo", {"text": str(i), "seconds": 0.8}, timeout=10)
            for i in range(4)
        ]
        results = await asyncio.gather(*calls)
        elapsed = loop.time() - started
        assert [r["content"][0]["text"] for r in results] == ["0", "1", "2", "3"]
        assert elapsed < 2.4, f"4 calls of 0.8 s took {elapsed:.2f} s"


async def test_registry_names_meta_and_forbidden(toolbox: Computer) -> None:
    tools = {t["name"]: t for t in toolbox.tools_wire()}
    assert "tb__say" in tools and "tb__echo" not in tools  # alias replaces the tool part
    assert not any(name.endswith("__fail") for name in tools)  # forbidden is hidden
    say = tools["tb__say"]
    assert say["bundle_id"] == "tb"
    assert json.loads(say["meta"]["a2c_tool_meta"]) == {
        "auto_apply": True,
        "alias": "say",
        "tags": ["dflt"],
        "ret_object_mapper": None,
    }
    # default_tool_meta's alias is never inherited; the declared tags lose to configured ones
    add_meta = json.loads(tools["tb__add"]["meta"]["a2c_tool_meta"])
    assert add_meta["alias"] is None and add_meta["tags"] == ["dflt"]
    assert list(json.loads(say["meta"]["a2c_tool_meta"]))[:4] == [
        "auto_apply",
        "alias",
        "tags",
        "ret_object_mapper",
    ]
    assert "return_schema" in say  # key present even when null


@pytest.mark.parametrize(
    ("tool_meta", "default", "expected_tags"),
    [
        ({}, None, ["declared"]),  # only the server declaration
        ({"tagged": {"tags": []}}, None, []),  # an explicit [] blocks the fallback
        ({"tagged": {"auto_apply": True}}, None, ["declared"]),  # config without tags falls back
        ({}, {"tags": ["d"]}, ["d"]),  # default beats the declaration
    ],
)
async def test_tool_meta_three_layers(tool_meta: dict[str, Any], default: Any, expected_tags: Any) -> None:
    computer = make({"tb": stdio_decl(tool_meta=tool_meta, default_tool_meta=default)})
    async with asyncio.timeout(60), computer:
        tagged = computer.tool("tb__tagged")
        assert tagged is not None
        assert json.loads(tagged.wire["meta"]["a2c_tool_meta"])["tags"] == expected_tags


@pytest.mark.parametrize(
    ("name", "params", "structured_error"),
    [
        ("tb__nope", {}, "Tool 'tb__nope' not found in ExposedToolMapping"),
        ("tb__fail", {"message": "x"}, "Tool 'tb__fail' not found in ExposedToolMapping"),
        ("tb__echo", {"text": "x"}, "Tool 'tb__echo' not found in ExposedToolMapping"),  # aliased away
    ],
)
async def test_unknown_forbidden_aliased(
    toolbox: Computer, name: str, params: Any, structured_error: str
) -> None:
    result = await toolbox.call_tool(name, params, timeout=5)
    # structuredContent stays 0.4.2's; the text item is for people and names the available tools
    assert result["structuredContent"] == {"error": structured_error, "error_type": "ValueError"}
    assert result["isError"] is True and result["meta"] is None
    (item,) = result["content"]
    assert item["type"] == "text"
    assert item["text"].startswith(f"No tool named '{name}' on this Computer. Available tools: ")
    assert "tb__say" in item["text"] and "tb__add" in item["text"]
    assert "ExposedToolMapping" not in item["text"] and "ValueError" not in item["text"]


async def test_call_result_carries_tool_meta_object(toolbox: Computer) -> None:
    result = await toolbox.call_tool("tb__say", {"text": "hello"}, timeout=5, req_id="r1")
    assert result["isError"] is False
    assert result["content"][0]["text"] == "hello"
    assert result["meta"]["a2c_tool_meta"]["alias"] == "say"  # an object, not a string
    assert toolbox.history[-1].tool == "tb__say" and toolbox.history[-1].req_id == "r1"


async def test_timeout_and_cancel(toolbox: Computer) -> None:
    result = await toolbox.call_tool("tb__slow_echo", {"text": "x", "seconds": 5}, timeout=1, req_id="t1")
    assert result["isError"] is True and result["meta"] == {"a2c_timeout": True}
    call = asyncio.create_task(toolbox.call_tool("tb__slow_echo", {"text": "x", "seconds": 5}, 30, "c1"))
    await asyncio.sleep(0.3)
    assert toolbox.cancel("unknown") is False  # silently ignored
    assert toolbox.cancel("c1") is True
    result = await asyncio.wait_for(call, 5)
    assert result["meta"] == {"a2c_cancelled": True, "a2c_cancel_reason": "agent_requested"}
    # the session still works afterwards
    assert (await toolbox.call_tool("tb__add", {"a": 1, "b": 1}, 5))["content"][0]["text"] == "2"


async def test_cancelling_the_caller_is_not_taken_for_a_cancelled_call(toolbox: Computer) -> None:
    call = asyncio.create_task(toolbox.call_tool("tb__slow_echo", {"text": "x", "seconds": 5}, 30, "c2"))
    await asyncio.sleep(0.3)
    call.cancel()  # the caller itself goes away: that is not the Agent's cancel
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(call, 5)
    assert toolbox.cancel("c2") is False  # forgotten once it ended
    both = asyncio.create_task(toolbox.call_tool("tb__slow_echo", {"text": "x", "seconds": 5}, 30, "c3"))
    await asyncio.sleep(0.3)
    assert toolbox.cancel("c3") is True
    assert toolbox.cancel("c3") is False  # already being cancelled
    both.cancel()  # and the caller goes away too: the caller's cancellation wins
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(both, 5)
    assert (await toolbox.call_tool("tb__add", {"a": 1, "b": 2}, 5))["content"][0]["text"] == "3"


async def test_slow_call_does_not_block_listing(toolbox: Computer) -> None:
    call = asyncio.create_task(toolbox.call_tool("tb__slow_echo", {"text": "x", "seconds": 2}, 10))
    await asyncio.sleep(0.1)
    start = asyncio.get_running_loop().time()
    assert toolbox.tools()
    assert asyncio.get_running_loop().time() - start < 0.1
    assert not call.done()
    assert (await asyncio.wait_for(call, 10))["isError"] is False


@pytest.mark.parametrize(
    ("confirm", "text_part"),
    [(None, "auto_apply"), (refuse, "二次确认被拒绝"), (refuse, "refused to confirm")],
)
async def test_confirmation_gate(confirm: Any, text_part: str) -> None:
    computer = make({"tb": stdio_decl()}, confirm=confirm)
    async with asyncio.timeout(60), computer:
        result = await computer.call_tool("tb__add", {"a": 1, "b": 2}, 5)
        assert result["isError"] is True  # B11: a refusal is an error
        assert text_part in result["content"][0]["text"]


async def test_tool_list_change_is_announced(toolbox: Computer) -> None:
    events: list[str] = []
    toolbox.add_listener(events.append)
    await toolbox.call_tool("tb__grow", {}, 5)
    await wait_until(lambda: toolbox.tool("tb__extra") is not None)
    assert "tools" in events


async def test_crash_restarts_and_announces(toolbox: Computer) -> None:
    events: list[str] = []
    toolbox.add_listener(events.append)
    result = await toolbox.call_tool("tb__crash", {}, 5)
    assert result["isError"] is True
    await wait_until(
        lambda: toolbox.status()[0].restarts >= 1 and toolbox.status()[0].state is ServerState.RUNNING
    )
    assert events.count("tools") >= 2  # tools gone, tools back
    assert (await toolbox.call_tool("tb__add", {"a": 2, "b": 2}, 5))["content"][0]["text"] == "4"


async def test_bad_command_fails_with_error_and_bounded_retries() -> None:
    computer = make(
        {"bad": {"type": "stdio", "server_parameters": {"command": "/nonexistent/smcp-no-such-binary"}}},
        supervision=Supervision(initial_delay=0.05, max_attempts=2, ping_interval=0),
    )
    async with asyncio.timeout(30):
        await computer.start()
        host = computer.servers["bad"]
        await wait_until(lambda: host.state is ServerState.FAILED)
        assert host.last_error
        assert computer.tools() == []
        await computer.close()


async def test_inputs_rendered_at_start_and_raw_in_config() -> None:
    decl = stdio_decl()
    decl["server_parameters"]["env"] = {"SMCP_TOOLBOX_TAG": "${input:tag}"}
    decl["tool_meta"] = {"whoami": {"auto_apply": True}}
    inputs = [{"id": "tag", "type": "promptString", "description": "a tag", "default": "dflt"}]
    computer = make({"tb": decl}, inputs)
    computer.resolver.set_value("tag", "from-test")
    async with asyncio.timeout(60), computer:
        result = await computer.call_tool("tb__whoami", {}, 5)
        assert result["content"][0]["text"] == "from-test"
        config = computer.config_wire()
        assert config["servers"]["tb"]["server_parameters"]["env"] == {"SMCP_TOOLBOX_TAG": "${input:tag}"}
        assert set(config["servers"]["tb"]["server_parameters"]) == {
            "command",
            "args",
            "env",
            "cwd",
            "encoding",
            "encoding_error_handler",
        }
        assert config["inputs"][0]["id"] == "tag"


async def test_stop_start_restart_and_config_only_active(toolbox: Computer) -> None:
    await toolbox.stop(["tb"])
    assert toolbox.status()[0].state is ServerState.STOPPED
    assert toolbox.tools() == [] and toolbox.get_config().servers == {}
    await toolbox.start(["all"])
    assert toolbox.status()[0].state is ServerState.RUNNING
    await toolbox.restart(["tb"])
    assert toolbox.tools()
    with pytest.raises(KeyError):
        await toolbox.start(["missing"])


async def test_streamable_timeouts_in_config_are_iso(http_url: str) -> None:
    computer = make({"web": {"type": "streamable", "server_parameters": {"url": http_url}}}, confirm=approve)
    async with asyncio.timeout(60), computer:
        params = computer.config_wire()["servers"]["web"]["server_parameters"]
        assert params["timeout"] == "PT30S" and params["sse_read_timeout"] == "PT5M"
        assert params["headers"] is None and params["terminate_on_close"] is True


async def test_big_image_goes_to_the_blob_sideband(toolbox: Computer) -> None:
    result = await toolbox.call_tool("tb__image", {"n_bytes": 200_000}, 10)
    item = result["content"][0]
    assert item["type"] == "image"
    assert "a2c_blob_handle" in json.dumps(result)


async def test_public_methods_return_models(toolbox: Computer) -> None:
    """tools() and get_config() are typed; the wire forms stay available for the link."""
    from smcp.core.models import GetComputerConfigRet, SMCPTool

    tools = toolbox.tools()
    assert tools and all(isinstance(t, SMCPTool) for t in tools)
    assert [t.name for t in tools] == [w["name"] for w in toolbox.tools_wire()]
    config = toolbox.get_config()
    assert isinstance(config, GetComputerConfigRet) and set(config.servers) == {"tb"}
    assert config.servers["tb"].bundle_id == "tb"


@pytest.mark.parametrize(
    ("decl", "inputs", "needle"),
    [
        (
            {"type": "stdio", "server_parameters": {"command": "smcp-no-such-command-anywhere"}},
            [],
            "command 'smcp-no-such-command-anywhere' not found",
        ),
        (
            {
                "type": "stdio",
                "server_parameters": {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]},
            },
            [],
            "exited with status 3",
        ),
        (
            {"type": "stdio", "server_parameters": {"command": sys.executable, "env": {"K": "${input:key}"}}},
            [{"id": "key", "type": "promptString", "description": "the key"}],
            "input 'key' has no value",
        ),
    ],
)
async def test_permanent_failures_are_not_retried(
    decl: dict[str, Any], inputs: list[Any], needle: str
) -> None:
    """D7: what another attempt cannot cure fails at once, with a message that says why."""
    computer = make(
        {"bad": decl}, inputs, supervision=Supervision(initial_delay=2.0, max_attempts=5, ping_interval=0)
    )
    async with asyncio.timeout(30):
        started = asyncio.get_running_loop().time()
        (status,) = await computer.start()
        assert asyncio.get_running_loop().time() - started < 8  # no backoff (2 s, 4 s, ...) in between
        assert status.state is ServerState.FAILED and status.restarts == 0
        assert status.last_error is not None and needle in status.last_error
        assert "Connection closed" not in status.last_error
        await computer.close()


async def test_stdio_requests_are_written_by_the_host_even_past_a_full_pipe(
    toolbox: Computer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smcp.computer import _stdio

    written: list[str] = []
    send = _stdio.DirectStdin.send

    async def counting(self: Any, item: Any) -> None:
        written.append(getattr(item.message, "method", ""))
        await send(self, item)

    monkeypatch.setattr(_stdio.DirectStdin, "send", counting)
    text = "ü" * (400 * 1024)  # 800 KB of UTF-8: more than a pipe holds, so the write waits on drain
    results = await asyncio.gather(*(toolbox.call_tool("tb__say", {"text": text}, 20) for _ in range(3)))
    assert [r["content"][0]["text"] == text for r in results] == [True, True, True]
    assert written.count("tools/call") == 3


async def test_direct_stdin_reports_a_dead_child_as_a_broken_stream() -> None:
    import anyio
    import mcp_types
    from mcp.shared.message import SessionMessage

    from smcp.computer._stdio import DirectStdin

    echo_one_line = "import sys; print(sys.stdin.readline().strip())"
    process = await anyio.open_process([sys.executable, "-c", echo_one_line])
    inner_closed: list[bool] = []

    class Inner:
        async def aclose(self) -> None:
            inner_closed.append(True)

    stream = DirectStdin.wrap(Inner(), process)
    assert isinstance(stream, DirectStdin)
    ping = SessionMessage(message=mcp_types.JSONRPCRequest(jsonrpc="2.0", id=1, method="ping"))
    async with stream:
        await stream.send(ping)
        assert process.stdout is not None
        line = await process.stdout.receive()
        assert json.loads(line) == {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        await process.wait()
        with pytest.raises(anyio.BrokenResourceError):
            for _ in range(50):  # the first writes may still land in the pipe's buffer
                await stream.send(ping)
    assert inner_closed == [True]
    await process.aclose()


async def test_stdio_replies_are_read_by_the_session_while_mcps_reader_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smcp.computer import _stdio

    processes: list[Any] = []
    install = _stdio.ParkedStdout.install

    def recording(process: Any) -> bool:
        processes.append(process)
        return install(process)

    monkeypatch.setattr(_stdio.ParkedStdout, "install", staticmethod(recording))
    read: list[int] = []
    anext = _stdio.DirectStdout.__anext__

    async def counting(self: Any) -> Any:
        item = await anext(self)
        read.append(1)
        return item

    monkeypatch.setattr(_stdio.DirectStdout, "__anext__", counting)
    computer = make(
        {"tb": stdio_decl()}, confirm=approve, spool_dir=tmp_path / "spool", skill_home=tmp_path / "skills"
    )
    async with asyncio.timeout(60):
        async with computer:
            before = len(read)
            for i in range(5):
                result = await computer.call_tool("tb__add", {"a": i, "b": 1}, 10)
                assert result["content"][0]["text"] == str(i + 1)
            assert len(read) - before >= 5  # every reply came through the session's own reads
            (process,) = processes
            parked = _stdio.ParkedStdout.of(process)
            assert parked is not None and not parked.free.is_set()  # mcp's reader has read nothing
        assert parked.free.is_set()
        assert process.returncode is not None


async def test_direct_stdout_parses_lines_and_hands_the_rest_to_mcps_reader() -> None:
    import anyio

    from smcp.computer._stdio import DirectStdout, ParkedStdout

    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}})
    script = (
        "import sys, time\n"
        f"sys.stdout.write({ping!r}[:10]); sys.stdout.flush(); time.sleep(0.05)\n"
        f"sys.stdout.write({ping!r}[10:] + '\\n\\nnot json\\n' + {ping!r} + '\\n'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
        "sys.stdout.write('left over\\n')\n"
    )
    process = await anyio.open_process([sys.executable, "-c", script])
    assert ParkedStdout.install(process)
    parked = ParkedStdout.of(process)
    closed: list[bool] = []

    class Inner:
        async def aclose(self) -> None:
            closed.append(True)

    stream = DirectStdout.wrap(Inner(), process)
    assert isinstance(stream, DirectStdout)
    async with asyncio.timeout(20):
        async with stream:
            first = await stream.receive()  # one message written in two pieces
            assert first.message.id == 1
            bad = await stream.receive()  # the blank line is skipped, the next one does not parse
            assert isinstance(bad, ValueError)
            assert (await stream.receive()).message.id == 1
            assert not parked.free.is_set()
        assert closed == [True] and parked.free.is_set()
        assert process.stdin is not None and process.stdout is parked
        await process.stdin.send(b"\n")
        assert await parked.receive() == b"left over\n"  # mcp's reader drains what follows
        with pytest.raises(anyio.EndOfStream):
            await parked.receive()
        await process.wait()
    await process.aclose()


async def test_direct_stdout_ends_at_the_pipes_end() -> None:
    import anyio

    from smcp.computer._stdio import DirectStdout, ParkedStdout

    process = await anyio.open_process([sys.executable, "-c", "pass"])
    assert ParkedStdout.install(process)

    class Inner:
        async def aclose(self) -> None:
            pass

    stream = DirectStdout.wrap(Inner(), process)
    async with asyncio.timeout(20):
        assert [item async for item in stream] == []
        with pytest.raises(anyio.EndOfStream):
            await stream.receive()
        parked = ParkedStdout.of(process)
        assert parked is not None and parked.free.is_set()
        await process.wait()
    await process.aclose()


def test_direct_stdout_is_not_used_on_streams_it_does_not_know() -> None:
    from smcp.computer._stdio import DirectStdout, ParkedStdout

    class Process:
        stdout = _stdout = object()

    inner = object()
    assert ParkedStdout.install(Process()) is False
    assert ParkedStdout.of(Process()) is None
    assert DirectStdout.wrap(inner, Process()) is inner
