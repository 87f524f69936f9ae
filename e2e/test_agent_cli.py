"""The ``smcp-agent`` command and the LLM-loop example, as subprocesses, against the official
Computer behind the official server and behind ours."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    ProcessManager,
    start_official_computer,
    start_official_server,
    toolbox_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

TOKEN = "e2e-secret"
REPO = Path(__file__).resolve().parent.parent


def cli() -> list[str]:
    found = shutil.which("smcp-agent", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "smcp.agent.cli"]


async def run(
    procs: ProcessManager, name: str, argv: list[str], *, stdin: str | None = None
) -> tuple[int, str, str]:
    env = dict(os.environ, SMCP_TOKEN=TOKEN)
    proc = await procs.astart(name, argv, ready=None, env=env, stdin=stdin is not None)
    if stdin is not None:
        for line in stdin.splitlines():
            proc.write_line(line)
        assert proc.popen.stdin is not None
        proc.popen.stdin.close()
    code = await proc.await_exit(60)
    return code, "\n".join(proc.lines()), proc.log_text()


@pytest.fixture(params=["official-server", "our-server"])
async def stack(
    request: pytest.FixtureRequest, procs: ProcessManager, official_py: str, tmp_path: Path
) -> str:
    if request.param == "official-server":
        server = await start_official_server(procs)
    else:
        script = shutil.which("smcp-server", path=str(Path(sys.executable).parent))
        if script is None:
            pytest.skip("smcp-server is not installed in this environment (packages/smcp-server-asgi)")
        argv = [script, "--host", "127.0.0.1", "--port", "0", "--token", TOKEN]
        server = await procs.astart("smcp-server", argv, ready=r"LISTENING (\d+)", timeout=60)
    url = f"http://127.0.0.1:{server.port}"
    config = toolbox_config(tmp_path / "mcp.json")
    await start_official_computer(procs, url=url, office="o1", name="c1", config=config)
    return url


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (["computers"], lambda doc: [c["name"] for c in doc] == ["c1"]),
        (["tools", "c1"], lambda doc: "toolbox__echo" in [t["name"] for t in doc]),
        (["call", "c1", "toolbox__echo", "--params", '{"text": "cli"}', "--timeout", "10"],
         lambda doc: doc["content"][0]["text"] == "cli" and doc["isError"] is False),
        (["config", "c1"], lambda doc: list(doc["servers"]) == ["toolbox"]),
        (["desktop", "c1", "--size", "1"], lambda doc: len(doc) == 1 and doc[0].startswith("window://toolbox/main")),
        (["desktop", "c1", "--window", "window://toolbox/side"], lambda doc: doc[0].startswith("window://toolbox/side")),
        (["resources", "c1", "toolbox"], lambda doc: len(doc) == 32),
        (["skills", "c1"], lambda doc: doc == []),
    ],
    ids=["computers", "tools", "call", "config", "desktop-size", "desktop-window", "resources", "skills"],
)  # fmt: skip
async def test_cli_commands_print_one_json_document(
    procs: ProcessManager, stack: str, args: list[str], check: Any
) -> None:
    code, out, log = await run(procs, "cli", [*cli(), "--url", stack, "--office", "o1", "--json", *args])
    assert code == 0, log
    assert check(json.loads(out)), out


@pytest.mark.parametrize(
    ("args", "expected_code", "fragment"),
    [
        (["tools", "nobody"], 1, "[404] Computer with name 'nobody' not found"),
        (["call", "c1", "toolbox__fail", "--params", '{"message": "boom"}'], 1, "boom"),
        (["call", "c1", "toolbox__echo", "--params", "not json"], 2, "--params is not valid JSON"),
    ],
    ids=["404", "tool-error", "bad-params"],
)
async def test_cli_failures_exit_non_zero_with_one_line(
    procs: ProcessManager, stack: str, args: list[str], expected_code: int, fragment: str
) -> None:
    code, _, log = await run(procs, "cli", [*cli(), "--url", stack, "--office", "o1", *args])
    assert code == expected_code
    assert fragment in log


async def test_cli_watch_prints_notifications(procs: ProcessManager, stack: str) -> None:
    argv = [
        *cli(),
        "--url",
        stack,
        "--office",
        "o1",
        "--name",
        "watcher",
        "--json",
        "watch",
        "--duration",
        "20",
    ]
    watcher = await procs.astart("watch", argv, ready=r"watching", env=dict(os.environ, SMCP_TOKEN=TOKEN))
    code, _, log = await run(
        procs, "caller", [*cli(), "--url", stack, "--office", "o2", "computers"]
    )  # another office: proves the watcher is not disturbed by strangers
    assert code == 0, log
    config = toolbox_config(procs.log_dir / "mcp2.json")
    await start_official_computer(procs, url=stack, office="o1", name="c2", config=config)
    await watcher.await_line(r'"notify:enter_office".*"c2"', 30)
    watcher.stop()


async def test_cli_repl_from_stdin(procs: ProcessManager, stack: str) -> None:
    script = 'computers\ntools c1\ncall c1 toolbox__echo \'{"text": "from repl"}\'\nbogus\nquit\n'
    code, out, log = await run(
        procs, "repl", [*cli(), "--url", stack, "--office", "o1", "repl"], stdin=script
    )
    assert code == 1, log  # the script's "bogus" line failed, so the REPL exits 1
    assert "c1" in out.splitlines() and "from repl" in out and "toolbox__echo" in out
    assert "unknown command" in log


async def test_llm_loop_example_calls_a_real_tool(procs: ProcessManager, stack: str) -> None:
    example = REPO / "examples" / "agent_llm_loop.py"
    argv = [
        sys.executable,
        str(example),
        "--url",
        stack,
        "--token",
        TOKEN,
        "--office",
        "o1",
        "--question",
        "ping",
    ]
    code, out, log = await run(procs, "example", argv)
    assert code == 0, log
    assert out.strip().splitlines()[-1] == "The tool said: ping"
