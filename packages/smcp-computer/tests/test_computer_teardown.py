"""Child processes of stdio MCP servers: none left behind, none left as zombies."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from smcp.computer import Computer, ServerState, Supervision, parse_config

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)


def pids_running(marker: str) -> set[int]:
    """Live processes whose command line holds ``marker`` (a zombie's command line is empty)."""
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def state_of(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``Z`` for a zombie), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


async def eventually(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_close_and_crash_leave_no_process_behind(tmp_path: Path) -> None:
    marker = f"tb-{uuid.uuid4().hex[:12]}"
    server = {
        "type": "stdio",
        "server_parameters": {"command": sys.executable, "args": [str(TOOLBOX), "stdio", "--name", marker]},
        "tool_meta": {"crash": {"auto_apply": True}},
    }
    loaded = parse_config({"servers": {"a": server, "b": server}, "inputs": []})
    computer = Computer(
        "c1",
        loaded.servers,
        supervision=Supervision(initial_delay=0.1, ping_interval=0),
        spool_dir=tmp_path,
    )
    async with asyncio.timeout(90):
        await computer.start()
        first = pids_running(marker)
        assert len(first) == 2

        await computer.call_tool("a__crash", {}, 10)
        await eventually(lambda: computer.status()[0].restarts >= 1)
        await eventually(lambda: computer.status()[0].state is ServerState.RUNNING)
        after_crash = pids_running(marker)
        assert len(after_crash) == 2 and len(after_crash & first) == 1
        (crashed,) = first - after_crash
        await eventually(lambda: state_of(crashed) is None, timeout=5)  # reaped, not a zombie

        await computer.close()
        await eventually(lambda: not pids_running(marker), timeout=10)
        assert all(state_of(pid) is None for pid in first | after_crash)
