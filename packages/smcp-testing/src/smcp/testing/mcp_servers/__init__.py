"""MCP servers for tests, each a script: ``python -m smcp.testing.mcp_servers.toolbox stdio`` or
``python <script_path("toolbox")> stdio``.

- ``toolbox``: mcp 2.x; tools, resources, windows, list-changed notifications, a crash.
- ``toolbox_v1``: the core tools on mcp 1.x (``FastMCP``); free of smcp imports, so any python
  with ``mcp<2`` and uvicorn runs it by file path (e.g. the official a2c-smcp virtualenv).
- ``auth_server``: streamable HTTP; ``tools/call`` is refused with 401/403.

With ``sse``/``http`` each binds ``--port 0`` first and prints ``LISTENING <port>`` once ready.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("toolbox", "toolbox_v1", "auth_server")


def script_path(name: str = "toolbox") -> Path:
    """The file of the MCP server ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown MCP test server {name!r}; choose from {', '.join(NAMES)}")
    return HERE / f"{name}.py"


def module_name(name: str = "toolbox") -> str:
    """The ``python -m`` name of the MCP server ``name``."""
    script_path(name)
    return f"{__name__}.{name}"


__all__ = ["NAMES", "module_name", "script_path"]
