"""``smcp-computer`` command-line behaviour a new user meets first (issue 18: D9, D17, D19, D20, D27)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _link_tests() -> Any:
    """The server/child helpers of ``test_computer_link.py`` (import mode importlib has no sibling import)."""
    spec = importlib.util.spec_from_file_location(
        "_link_tests", Path(__file__).with_name("test_computer_link.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_L = _link_tests()
TOKEN: str = _L.TOKEN
_child, _spawn_server, _stop, _terminate, toolbox_config = (
    _L._child,
    _L._spawn_server,
    _L._stop,
    _L._terminate,
    _L.toolbox_config,
)

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "smcp.computer.cli"]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc, port = _spawn_server()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.update(extra)
    return env


def test_version() -> None:
    from smcp.computer._version import __version__

    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0
    assert out.stdout.strip() == f"smcp-computer {__version__}"


async def _run_until_ready(argv: list[str], env: dict[str, str], tmp_path: Path) -> str:
    """Run the CLI until READY, stop it with SIGTERM, and return what it wrote on stderr."""
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err, _child(argv, env=env, stderr=err) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.startswith("READY"), errors.read_text()
        assert await _terminate(proc) == 0
    return errors.read_text()


@pytest.mark.slow
async def test_run_from_env_warns_about_unknown_inputs_without_wrapping(
    server_url: str, tmp_path: Path
) -> None:
    document: dict[str, Any] = toolbox_config(default_tool_meta={"auto_apply": True})
    document["inputs"] = [
        {"id": "api_key", "type": "promptString", "description": "key", "default": "x"},
        {
            "id": "a_rather_long_input_identifier_that_pushes_the_line_past_eighty_columns",
            "type": "promptString",
            "description": "long",
            "default": "y",
        },
    ]
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(document))
    env = _env(tmp_path, SMCP_URL=server_url, SMCP_OFFICE="cli-env", SMCP_NAME="c-env", SMCP_TOKEN=TOKEN)
    argv = [*CLI, "run", "--config", str(config), "--no-repl", "--input", "apikey=abc"]
    stderr = await _run_until_ready(argv, env, tmp_path)
    (warning,) = [line for line in stderr.splitlines() if "--input apikey" in line]
    assert "no input has this id" in warning and "api_key" in warning
    assert "a_rather_long_input_identifier_that_pushes_the_line_past_eighty_columns" in warning  # D19
    assert len(warning) > 80
    assert "not on a terminal and no --auto-apply" not in stderr  # D20: every server auto-applies


@pytest.mark.slow
async def test_run_without_config_warns_and_notes_confirmation(server_url: str, tmp_path: Path) -> None:
    env = _env(tmp_path, SMCP_TOKEN=TOKEN)
    argv = [*CLI, "run", "--url", server_url, "--office", "cli-noconf", "--name", "c-noconf", "--no-repl"]
    stderr = await _run_until_ready(argv, env, tmp_path)
    assert "no --config given" in stderr
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(toolbox_config()))  # tool_meta without auto_apply for every tool
    argv = [*CLI, "run", "--url", server_url, "--office", "cli-note", "--name", "c-note", "--no-repl"]
    stderr = await _run_until_ready([*argv, "--config", str(config)], env, tmp_path)
    assert "not on a terminal and no --auto-apply" in stderr


async def test_url_path_is_not_dropped(server_url: str, tmp_path: Path) -> None:
    """D9: a URL path names where the server is mounted; against a root-mounted server it fails."""
    from smcp.computer import Computer, ComputerLink
    from smcp.core.errors import ConnectError
    from smcp.core.handshake import engineio_path

    assert engineio_path("http://h:1") == "socket.io"
    assert engineio_path("http://h:1/", "/socket.io/") == "socket.io"
    assert engineio_path("http://h:1/apps/smcp/") == "apps/smcp/socket.io"
    assert engineio_path("http://h:1/sub", "eio") == "sub/eio"
    computer = Computer("c-path", [], spool_dir=tmp_path)
    link = ComputerLink(computer, server_url + "/not-mounted-here", token=TOKEN, connect_timeout=5)
    try:
        with pytest.raises(ConnectError):
            await asyncio.wait_for(link.connect(), 30)
    finally:
        await link.close()
        await computer.close()
    link = ComputerLink(computer, server_url + "/", token=TOKEN, connect_timeout=5)
    try:
        await asyncio.wait_for(link.connect(), 30)
        assert link.connected
    finally:
        await link.close()


def _validate(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, "validate", str(config), "--json"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)


def test_validate_checks_commands_on_path_and_the_interpreter(tmp_path: Path) -> None:
    """D7/D24: a command not on PATH is a problem; a ``python`` that is not ours is a warning."""
    config = tmp_path / "mcp.json"
    missing = {"type": "stdio", "server_parameters": {"command": "smcp-no-such-command-anywhere"}}
    config.write_text(json.dumps({"servers": {"x": missing}, "inputs": []}))
    out = _validate(config)
    assert out.returncode == 1
    assert (
        "servers.x: command 'smcp-no-such-command-anywhere' not found on PATH"
        in json.loads(out.stdout)["problems"]
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    other = bin_dir / "python3"
    other.write_text("#!/bin/sh\nexit 0\n")
    other.chmod(0o755)
    config.write_text(
        json.dumps({"servers": {"y": {"type": "stdio", "server_parameters": {"command": "python3"}}}})
    )
    out = _validate(config, {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})
    report = json.loads(out.stdout)
    assert out.returncode == 0, report
    (warning,) = [w for w in report["warnings"] if "servers.y" in w]
    assert str(other) in warning and sys.executable in warning


@pytest.mark.slow
async def test_ready_names_failed_servers_and_require_all(server_url: str, tmp_path: Path) -> None:
    """D7: READY says how many servers run and which failed; --require-all exits 1 instead."""
    document = toolbox_config(default_tool_meta={"auto_apply": True})
    document["servers"]["gone"] = {
        "type": "stdio",
        "server_parameters": {"command": "smcp-no-such-command-anywhere"},
    }
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(document))
    env = _env(tmp_path, SMCP_TOKEN=TOKEN)
    argv = [*CLI, "run", "--url", server_url, "--office", "cli-ready", "--name", "c-ready", "--no-repl"]
    argv += ["--config", str(config)]
    started = asyncio.get_running_loop().time()
    errors = tmp_path / "err.txt"
    with errors.open("w") as err, _child(argv, env=env, stderr=err) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.strip() == "READY 1/2 MCP server(s) running; failed: gone", errors.read_text()
        assert asyncio.get_running_loop().time() - started < 30  # the missing command is not retried
        assert await _terminate(proc) == 0
    out = await asyncio.to_thread(
        subprocess.run,
        [*argv, "--require-all"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert out.returncode == 1 and "READY" not in out.stdout
    assert "error: 1 MCP server(s) did not start (gone) and --require-all is set" in out.stderr


async def test_oversized_result_is_refused_with_the_limit(tmp_path: Path) -> None:
    """D4: a result over the server's maxPayload is not sent (that would cost the connection); the
    Agent gets an error result naming the limit and how to raise it, and the Computer stays."""
    from smcp.computer import Computer, ComputerLink, Supervision, parse_config

    argv = [sys.executable, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--token", TOKEN, "--max-message-size", "4096"]
    proc = subprocess.Popen(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        port = 0
        for _ in range(20):
            found = re.match(r"LISTENING (\d+)", proc.stdout.readline())
            if found:
                port = int(found.group(1))
                break
        assert port, "smcp-server did not print LISTENING"
        url = f"http://127.0.0.1:{port}"
        loaded = parse_config(toolbox_config(default_tool_meta={"auto_apply": True}))
        computer = Computer(
            "c-big", loaded.servers, supervision=Supervision(ping_interval=0), spool_dir=tmp_path / "spool"
        )
        link = ComputerLink(computer, url, token=TOKEN)
        async with asyncio.timeout(60), computer:
            try:
                await link.connect()
                await link.join("office-big")
                assert link.max_payload < 2 * 1024 * 1024  # learned from the handshake, not the default
                async with _L.Agent(url, "office-big") as agent:
                    big = await agent.call(
                        "client:tool_call",
                        computer="c-big",
                        tool_name="tb__big_text",
                        params={"n_bytes": 1_500_000},
                        timeout=20,
                    )
                    assert big["isError"] is True
                    text = big["content"][0]["text"]
                    assert f"{link.max_payload}-byte message limit" in text and "--max-message-size" in text
                    small = await agent.call(
                        "client:tool_call",
                        computer="c-big",
                        tool_name="tb__add",
                        params={"a": 1, "b": 2},
                        timeout=5,
                    )
                    assert small["content"][0]["text"] == "3"  # still connected and in the office
            finally:
                await link.close()
    finally:
        _stop(proc)


def test_loop_option_picks_the_runner() -> None:
    import typer

    from smcp.computer.cli import _loop_runner

    assert _loop_runner("asyncio") is asyncio.run
    assert _loop_runner("auto", terminal=True) is asyncio.run  # the REPL's terminal stays on asyncio
    try:
        import uvloop
    except ImportError:
        assert _loop_runner("auto") is asyncio.run
        with pytest.raises(typer.BadParameter, match="uvloop is not installed"):
            _loop_runner("uvloop")
    else:
        assert _loop_runner("auto") is uvloop.run
        assert _loop_runner("uvloop") is uvloop.run
    with pytest.raises(typer.BadParameter, match="expects asyncio, uvloop or auto"):
        _loop_runner("trio")


def test_an_unknown_loop_is_refused_before_anything_starts(tmp_path: Path) -> None:
    argv = [*CLI, "run", "--url", "http://127.0.0.1:9", "--office", "o", "--name", "c", "--loop", "trio"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=_env(tmp_path))
    assert out.returncode == 2
    assert "expects asyncio, uvloop or auto" in out.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_run_serves_on_either_loop(server_url: str, tmp_path: Path, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed (smcp-computer[fast] brings it)")
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(toolbox_config()))
    env = _env(tmp_path, SMCP_TOKEN=TOKEN)
    argv = [*CLI, "run", "--url", server_url, "--office", f"cli-{loop}", "--name", f"c-{loop}", "--no-repl"]
    stderr = await _run_until_ready([*argv, "--config", str(config), "--loop", loop], env, tmp_path)
    assert "Traceback" not in stderr
