"""Cross-process test harness of this repository's e2e suite, on top of ``smcp.testing``.

Typical use inside an ``e2e/test_*.py`` (fixtures ``procs`` and ``official_py`` come from
``e2e/conftest.py``)::

    from .harness import OfficialAgent, start_official_server, toolbox_path

    async def test_x(procs, official_py):
        server = await start_official_server(procs)
        ...

See ``e2e/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from smcp.testing.mcp_config import stdio_server_entry, toolbox_config, write_mcp_json
from smcp.testing.mcp_servers import script_path as toolbox_path
from smcp.testing.official import (
    DEFAULT_TOKEN,
    AgentCommandError,
    OfficialAgent,
    start_official_computer,
    start_official_server,
)
from smcp.testing.official_env import (
    OFFICIAL_VERSION,
    OfficialEnvError,
    official_env,
    official_python,
    official_venv_dir,
    skip_official_requested,
)
from smcp.testing.processes import (
    ManagedProcess,
    ProcessManager,
    ProcessStartError,
    ProcessTimeout,
    sanitize,
    tail,
)


def repo_root() -> Path:
    """The repository root (the folder that holds ``e2e/``)."""
    return Path(__file__).resolve().parents[2]


__all__ = [
    "DEFAULT_TOKEN",
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
