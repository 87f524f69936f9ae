"""The test kit used the way its README tells a downstream project to use it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from smcp.core.roles import Role
from smcp.testing.mcp_servers import NAMES, module_name, script_path
from smcp.testing.processes import ProcessManager, ProcessStartError
from smcp.testing.server import Harness

pytestmark = pytest.mark.anyio


def test_every_mcp_server_is_a_file_and_a_module() -> None:
    for name in NAMES:
        assert script_path(name).is_file()
        assert module_name(name) == f"smcp.testing.mcp_servers.{name}"
    with pytest.raises(ValueError, match="unknown MCP test server"):
        script_path("nope")


def test_toolbox_v1_imports_nothing_of_ours() -> None:
    tree = ast.parse(script_path("toolbox_v1").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.startswith("smcp")}


@pytest.mark.parametrize("how", ["module", "file"])
async def test_toolbox_runs_as_module_and_by_path(smcp_processes: ProcessManager, how: str) -> None:
    target = ["-m", module_name("toolbox")] if how == "module" else [str(script_path("toolbox"))]
    proc = await smcp_processes.astart(f"toolbox-{how}", [sys.executable, *target, "http", "--port", "0"])
    assert proc.port is not None and proc.port > 0


async def test_a_process_that_exits_early_reports_its_log(smcp_processes: ProcessManager) -> None:
    code = "import sys; sys.stderr.write('boom\\n'); sys.exit(2)"
    with pytest.raises(ProcessStartError, match="boom"):
        await smcp_processes.astart("early-exit", [sys.executable, "-c", code], timeout=20)


async def test_in_process_server_fixture(smcp_harness: Harness) -> None:
    agent = await smcp_harness.agent("a1")
    await smcp_harness.computer("c1")
    ack = await agent.call("server:list_room", {"agent": "a1", "req_id": "1", "office_id": "o1"})
    names = {session["name"]: session["role"] for session in ack[0]["sessions"]}
    assert names == {"a1": Role.AGENT, "c1": Role.COMPUTER}


async def test_agent_calls_a_tool_through_server_and_computer_processes(
    smcp_agent: object, smcp_computer: object, tmp_path: Path
) -> None:
    from smcp.agent import AsyncAgent
    from smcp.testing.roles import ComputerProcess

    assert isinstance(smcp_agent, AsyncAgent) and isinstance(smcp_computer, ComputerProcess)
    result = await smcp_agent.call_tool(smcp_computer.name, "toolbox__echo", {"text": "hi"}, timeout=20)
    assert not result.is_error
    assert result.content[0].text == "hi"  # type: ignore[union-attr]
