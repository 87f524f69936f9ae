"""pytest fixtures for testing tools and deployments against real SMCP processes.

Loaded by the ``pytest11`` entry point whenever ``smcp-testing`` is installed; the fixtures are
async (run the tests with anyio, e.g. ``pytestmark = pytest.mark.anyio``) and import a role only
when a test asks for it:

- ``smcp_processes``: a :class:`ProcessManager` logging to ``tmp_path``; everything it started is
  stopped at teardown, and a failed test's report gets the tail of every log;
- ``smcp_harness``: an in-process server with raw Socket.IO peers (``smcp-testing[server]``);
- ``smcp_server_process``: the ``smcp-server`` command (``[server-asgi]``);
- ``smcp_mcp_config``: an ``mcp.json`` hosting the toolbox MCP server; override it to host yours;
- ``smcp_computer``: ``smcp-computer run`` on that config, joined to ``smcp_office`` (``[computer]``);
- ``smcp_agent``: our ``AsyncAgent`` joined to ``smcp_office`` (``[agent]``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .processes import ProcessManager, tail

if TYPE_CHECKING:
    from smcp.agent import AsyncAgent

    from .roles import ComputerProcess, ServerProcess
    from .server import Harness

_PROCS = pytest.StashKey[ProcessManager]()
_ids = itertools.count(1)
LOG_TAIL_CHARS = 4000


@pytest.fixture
def smcp_processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessManager]:
    manager = ProcessManager(tmp_path / "processes")
    request.node.stash[_PROCS] = manager
    try:
        yield manager
    finally:
        manager.stop_all()


@pytest.fixture
async def smcp_harness() -> AsyncIterator[Harness]:
    from .server import running

    async with running() as harness:
        yield harness


@pytest.fixture
async def smcp_server_process(smcp_processes: ProcessManager) -> ServerProcess:
    from .roles import start_server

    return await start_server(smcp_processes)


@pytest.fixture
def smcp_office() -> str:
    return f"office-{os.getpid()}-{next(_ids)}"


@pytest.fixture
def smcp_mcp_config(tmp_path: Path) -> Path:
    from .mcp_config import toolbox_config

    return toolbox_config(tmp_path / "mcp.json")


@pytest.fixture
async def smcp_computer(
    smcp_processes: ProcessManager,
    smcp_server_process: ServerProcess,
    smcp_office: str,
    smcp_mcp_config: Path,
) -> ComputerProcess:
    from .roles import start_computer

    return await start_computer(
        smcp_processes,
        url=smcp_server_process.url,
        office=smcp_office,
        name="test-computer",
        config=smcp_mcp_config,
        token=smcp_server_process.token,
    )


@pytest.fixture
async def smcp_agent(smcp_server_process: ServerProcess, smcp_office: str) -> AsyncIterator[AsyncAgent]:
    from .roles import agent

    async with agent(smcp_server_process.url, office=smcp_office, token=smcp_server_process.token) as joined:
        yield joined


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    manager = item.stash.get(_PROCS, None)
    if report.failed and manager is not None:
        for log in manager.logs():
            report.sections.append((f"process log {log.name} (tail; full: {log})", tail(log, LOG_TAIL_CHARS)))
