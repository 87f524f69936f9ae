"""The REPL commands of ``smcp-computer run``, executed against a real stdio toolbox."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from smcp.computer import Computer, Supervision, parse_config
from smcp.computer._repl import COMMANDS, execute

pytestmark = pytest.mark.anyio

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)


def document(*names: str) -> dict[str, Any]:
    server = {
        "type": "stdio",
        "server_parameters": {
            "command": sys.executable,
            "args": [str(TOOLBOX), "stdio"],
            "env": {"SMCP_TOOLBOX_TAG": "${input:tag}"},
        },
        "tool_meta": {"whoami": {"auto_apply": True}, "add": {"auto_apply": True}},
    }
    inputs = [{"id": "tag", "type": "promptString", "description": "tag", "default": "from-default"}]
    return {"servers": {name: server for name in names}, "inputs": inputs}


class Repl:
    def __init__(self, computer: Computer, config: Path) -> None:
        self.computer = computer
        self.config = config
        self.out = io.StringIO()
        self.console = Console(file=self.out, width=200, color_system=None)

    async def __call__(self, line: str) -> str:
        self.out.seek(0)
        self.out.truncate()
        async with asyncio.timeout(30):
            assert await execute(line, self.computer, None, [self.config], self.console)
        return self.out.getvalue()


@pytest.fixture
async def repl(tmp_path: Path) -> AsyncIterator[Repl]:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(document("tb")))
    loaded = parse_config(document("tb"))
    computer = Computer(
        "c1", loaded.servers, loaded.inputs, supervision=Supervision(ping_interval=0), spool_dir=tmp_path
    )
    async with asyncio.timeout(60), computer:
        yield Repl(computer, config)


async def test_inspection_commands(repl: Repl) -> None:
    helped = await repl("help")
    assert all(name in helped for name in COMMANDS)
    assert "running" in await repl("servers")
    assert "tb__echo" in await repl("tools")
    assert "unknown command 'frobnicate'" in await repl("frobnicate")
    assert "usage: start NAME|all" in await repl("start")
    assert "no MCP server named 'nope'" in await repl("stop nope")


async def test_calls_inputs_and_history(repl: Repl) -> None:
    assert '"text": "from-default"' in await repl("call tb__whoami {}")
    assert "invalid JSON" in await repl("call tb__whoami {oops")
    await repl("inputs set tag changed")
    await repl("restart tb")  # placeholders are rendered again at every real start
    assert '"text": "changed"' in await repl("call tb__whoami")
    history = (await repl("history")).splitlines()
    assert len(history) == 2
    assert all("whoami ok" in line for line in history)
    first, second = repl.computer.history
    assert first.started + first.duration <= second.started <= time.time() - second.duration


async def test_call_takes_the_rest_of_the_line_as_json(repl: Repl) -> None:
    out = await repl('call tb__add {"a": 1, "b": 2}')  # unquoted, with spaces: not split like shell words
    assert '"text": "3"' in out
    assert "must be a JSON object" in await repl("call tb__add [1, 2]")
    assert "usage: call TOOL" in await repl("call")


async def test_help_is_a_table(repl: Repl) -> None:
    lines = [line for line in (await repl("help")).splitlines() if line.strip()]
    columns = {
        line.index(text) for line in lines for name, text in COMMANDS.items() if line.startswith(name + " ")
    }
    assert len(columns) == 1 and "call TOOL [JSON]" in "\n".join(
        lines
    )  # every description starts in the same column


async def test_stop_start_and_reload(repl: Repl) -> None:
    await repl("stop all")
    assert "stopped" in await repl("status")
    assert repl.computer.tools() == []
    await repl("start tb")
    assert "running" in await repl("servers")
    repl.config.write_text(json.dumps(document("tb", "tb2")))
    assert "reloaded: 2 server(s)" in await repl("config reload")
    assert "tb2__echo" in await repl("tools")


async def test_quit_ends_the_loop(repl: Repl) -> None:
    assert await execute("quit", repl.computer, None, [repl.config], repl.console) is False
    assert await execute("   ", repl.computer, None, [repl.config], repl.console) is True
