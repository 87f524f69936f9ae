"""The ``smcp-agent`` command as a subprocess, against an in-process server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

import pytest

from smcp.agent.cli import app
from smcp.testing.server import TOKEN, running

pytestmark = pytest.mark.anyio

SUBCOMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_") and k != "COLUMNS"}
    env.update(extra)
    return env


async def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 30
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smcp.agent.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or _env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def connect_args(url: str, *more: str) -> list[str]:
    return ["--url", url, "--token", TOKEN, "--office", "o1", *more]


@pytest.mark.parametrize("command", SUBCOMMANDS)
async def test_every_help_works_without_connection_options(command: str) -> None:
    code, out, err = await cli(command, "--help")
    assert code == 0, err
    assert "Usage:" in out
    assert "<bool>" not in out


async def test_top_help_has_no_type_labels_and_names_the_environment() -> None:
    code, out, _ = await cli("--help")
    assert code == 0
    for label in ("<bool>", "<str>", "<float>"):
        assert label not in out
    for var in ("SMCP_URL", "SMCP_OFFICE", "SMCP_TOKEN", "SMCP_NAME"):
        assert var in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", "http://127.0.0.1:9", "--office", "o1", "call", "c1", "t", "--timeout", "0"], "--timeout"),
        (["--url", "http://127.0.0.1:9", "--office", "o1", "call", "c1", "t", "--timeout", "x"], "--timeout"),
        (
            ["--url", "http://127.0.0.1:9", "--office", "o1", "--request-timeout", "-1", "computers"],
            "timeout",
        ),
        (["--url", "http://127.0.0.1:9", "--office", "o1", "watch", "--duration", "0"], "--duration"),
        (["--office", "o1", "computers"], "--url"),
        (["--url", "http://127.0.0.1:9", "computers"], "--office"),
        (["--no-such-option", "computers"], "--no-such-option"),
    ],
)
async def test_usage_errors_exit_2_with_one_line(args: list[str], needle: str) -> None:
    code, _, err = await cli(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and needle in err


async def test_version() -> None:
    from smcp.agent import __version__

    code, out, _ = await cli("--version")
    assert (code, out.strip()) == (0, f"smcp-agent {__version__}")


async def test_environment_variables_stand_for_the_options() -> None:
    async with running() as smcp:
        await smcp.computer("c1")
        env = _env(SMCP_URL=smcp.url, SMCP_OFFICE="o1", SMCP_TOKEN=TOKEN, SMCP_NAME="from-env")
        code, out, err = await cli("--json", "computers", env=env)
        assert code == 0, err
        assert '"c1"' in out


async def test_parallel_commands_share_an_office_with_unique_default_names() -> None:
    from smcp.server.core import ServerSettings

    async with running(ServerSettings(max_agents_per_office=4)) as smcp:
        await smcp.computer("c1")
        args = connect_args(smcp.url, "call", "c1", "echo", "--params", '{"n": 1}')
        results = await asyncio.gather(*(cli(*args) for _ in range(3)))
        assert [code for code, _, _ in results] == [0, 0, 0], results


async def test_a_refused_join_says_what_to_do() -> None:
    from smcp.server.core import ServerSettings

    async with running() as smcp:
        await smcp.agent("holder")
        code, _, err = await cli(*connect_args(smcp.url, "computers"))
        assert code == 1
        assert len(err.strip().splitlines()) == 1
        assert "--max-agents-per-office" in err and "leave" in err
    async with running(ServerSettings(max_agents_per_office=2)) as smcp:
        await smcp.agent("taken")
        code, _, err = await cli(*connect_args(smcp.url, "--name", "taken", "computers"))
        assert code == 1
        assert "--name" in err and "leave" in err


async def test_a_server_under_a_sub_path() -> None:
    from smcp.server.asgi import create_app
    from smcp.server.core import ServerSettings, TokenAuth
    from smcp.testing.server import serve

    app = create_app(settings=ServerSettings(), auth=TokenAuth(TOKEN), path="/sub/socket.io")
    async with serve(app) as url:
        code, out, err = await cli(*connect_args(url + "/sub", "--json", "computers"))
        assert (code, out.strip()) == (0, "[]"), err
        code, out, err = await cli(
            *connect_args(url, "--socketio-path", "sub/socket.io", "--json", "computers")
        )
        assert (code, out.strip()) == (0, "[]"), err
        # the path is never dropped: the root path does not reach the sub-path server
        code, _, err = await cli(*connect_args(url, "--request-timeout", "3", "computers"))
        assert code == 1
        code, _, err = await cli(*connect_args(url + "/sub", "--socketio-path", "x", "computers"))
        assert code == 2 and "--socketio-path" in err


def test_server_location() -> None:
    from smcp.agent.cli import server_location

    assert server_location("http://h:1", None) == ("http://h:1", "socket.io")
    assert server_location("http://h:1/", None) == ("http://h:1", "socket.io")
    assert server_location("https://h/a/b/", None) == ("https://h", "a/b/socket.io")
    assert server_location("http://h:1", "/x/socket.io") == ("http://h:1", "x/socket.io")


def test_repl_takes_the_rest_of_a_call_line_as_json() -> None:
    from smcp.agent.cli import split_repl_line

    assert split_repl_line('call c1 t {"seconds": 0.2, "a b": "x y"}') == (
        ["call", "c1", "t"],
        '{"seconds": 0.2, "a b": "x y"}',
    )
    assert split_repl_line("call c1 t '{\"a\": 1}'") == (["call", "c1", "t"], '{"a": 1}')
    assert split_repl_line("call c1 t") == (["call", "c1", "t"], None)
    assert split_repl_line("tools 'my computer'") == (["tools", "my computer"], None)


async def test_repl_script_calls_with_unquoted_json_and_exit_status() -> None:
    async with running() as smcp:
        await smcp.computer("c1")
        script = 'call c1 echo {"seconds": 0.2, "a b": "x y"}\ncomputers\n'
        code, out, err = await cli(*connect_args(smcp.url, "repl"), stdin=script)
        assert code == 0, err
        assert "'seconds': 0.2" in out and "'a b': 'x y'" in out
        assert "c1" in out.splitlines()
        code, out, err = await cli(*connect_args(smcp.url, "repl"), stdin="tools nobody\ncomputers\n")
        assert code == 1
        assert "c1" in out.splitlines() and "nobody" in err
        code, _, err = await cli(*connect_args(smcp.url, "repl"), stdin="call c1 echo {not json\n")
        assert code == 1 and "bad arguments" in err


async def test_output_off_a_terminal_is_not_wrapped() -> None:
    async with running() as smcp:
        await smcp.computer("c1")
        long = "word " * 60
        code, out, err = await cli(
            *connect_args(smcp.url, "call", "c1", "echo", "--params", f'{{"t": "{long}"}}')
        )
        assert code == 0, err
        assert long.strip() in out
        code, out, err = await cli(*connect_args(smcp.url, "computers"))
        assert code == 0, err
        assert "c1" in out and max(len(line) for line in out.splitlines()) < 80


async def test_readme_result_pattern_survives_an_empty_content_list() -> None:
    from pathlib import Path

    from smcp.agent import AsyncAgent
    from smcp.agent.llm import result_text

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "content[0]" not in readme.replace("`result.content[0]` would raise", "")

    def empty(event: str, data: Any) -> Any:
        return {"content": [], "structuredContent": {"error": "no such tool"}, "isError": True}

    async with running() as smcp:
        await smcp.computer("c1", handler=empty)
        async with AsyncAgent(smcp.url, token=TOKEN, office="o1") as agent:
            result = await agent.call_tool("c1", "nope", {}, timeout=5)
    assert result.is_error and "no such tool" in result_text(result)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
async def test_repl_on_a_terminal_ctrl_c_cancels_the_call_and_clears_the_line() -> None:
    import pty
    import signal
    import threading

    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def slow(event: str, data: Any) -> Any:
        if event == "client:tool_call":
            loop.call_soon_threadsafe(started.set)
            await asyncio.sleep(30)
        return {"req_id": data.get("req_id"), "tools": []}

    master, slave = pty.openpty()
    seen = bytearray()

    def reader() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 4096):
                seen.extend(chunk)

    async def wait_for(text: str, after: int = 0) -> int:
        try:
            async with asyncio.timeout(20):
                while (at := seen.find(text.encode(), after)) < 0:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"{text!r} not seen after {after}: {bytes(seen)!r}") from None
        return at + len(text)

    async with running() as smcp:
        await smcp.computer("c1", handler=slow)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smcp.agent.cli",
            *connect_args(smcp.url, "repl"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_env(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm"),
        )
        os.close(slave)
        threading.Thread(target=reader, daemon=True).start()
        try:
            at = await wait_for("smcp>")
            os.write(master, b"call c1 slow {}\r")
            async with asyncio.timeout(20):
                await started.wait()
            proc.send_signal(signal.SIGINT)
            at = await wait_for("cancelled", at)
            at = await wait_for("smcp>", at)
            os.write(master, b"half a line\x03")  # Ctrl-C at the prompt: clear the line, stay
            at = await wait_for("smcp>", at)
            os.write(master, b"computers\r")
            at = await wait_for("c1", at)
            await wait_for("smcp>", at)
            os.write(master, b"\x04")  # Ctrl-D ends the REPL
            async with asyncio.timeout(20):
                assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            os.close(master)
