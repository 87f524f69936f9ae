"""Cross-process test harness: managed subprocesses, the official a2c-smcp venv and its peers.

Typical use inside an ``e2e/test_*.py`` (fixtures ``procs`` and ``official_py`` come from
``e2e/conftest.py``)::

    from e2e.harness import OfficialAgent, start_official_server, toolbox_path

    async def test_x(procs, official_py):
        server = await start_official_server(procs)
        ...

See ``e2e/README.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .official import (
    DEFAULT_TOKEN,
    AgentCommandError,
    OfficialAgent,
    start_official_computer,
    start_official_server,
    stdio_server_entry,
    write_mcp_json,
)
from .official_env import (
    OFFICIAL_VERSION,
    OfficialEnvError,
    official_env,
    official_python,
    official_venv_dir,
    repo_root,
    skip_official_requested,
)
from .processes import ManagedProcess, ProcessManager, ProcessStartError, ProcessTimeout, sanitize, tail

MCP_SERVERS_DIR = repo_root() / "testing" / "mcp_servers"


def toolbox_path(name: str = "toolbox") -> Path:
    """Path of a script in ``testing/mcp_servers`` (``toolbox``, ``toolbox_v1``, ``auth_server``)."""
    return MCP_SERVERS_DIR / f"{name}.py"


def toolbox_config(path: Path, *toolbox_args: str, env: dict[str, str] | None = None) -> Path:
    """Write an ``mcp.json`` with one server, ``toolbox``: ``toolbox.py stdio *toolbox_args`` run
    by this interpreter (``env``: its environment); return the path."""
    entry = stdio_server_entry(sys.executable, [str(toolbox_path()), "stdio", *toolbox_args], env=env)
    return write_mcp_json(path, {"toolbox": entry})


__all__ = [
    "DEFAULT_TOKEN",
    "MCP_SERVERS_DIR",
    "OFFICIAL_VERSION",
    "AgentCommandError",
    "ManagedProcess",
    "OfficialAgent",
    "OfficialEnvError",
    "ProcessManager",
    "ProcessStartError",
    "ProcessTimeout",
    "official_env",
    "official_python",
    "official_venv_dir",
    "repo_root",
    "sanitize",
    "skip_official_requested",
    "start_official_computer",
    "start_official_server",
    "stdio_server_entry",
    "tail",
    "toolbox_config",
    "toolbox_path",
    "write_mcp_json",
]
