"""``mcp.json`` files for a Computer: the official shape (``{"servers": ..., "inputs": ...}``),
which both our ``smcp-computer`` and the official 0.4.2 Computer read."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_mcp_json(
    path: Path, servers: dict[str, dict[str, Any]], inputs: list[dict[str, Any]] | None = None
) -> Path:
    """Write an official-shaped ``mcp.json`` (``{"servers": ..., "inputs": ...}``) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"servers": servers, "inputs": inputs or []}, indent=2), encoding="utf-8")
    return path


def stdio_server_entry(
    command: str | Path,
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    tool_meta: dict[str, Any] | None = None,
    default_tool_meta: dict[str, Any] | None = None,
    forbidden_tools: list[str] | None = None,
) -> dict[str, Any]:
    """One stdio server entry of an official ``mcp.json`` (every field the 0.4.2 model requires)."""
    entry: dict[str, Any] = {
        "type": "stdio",
        "disabled": False,
        "forbidden_tools": forbidden_tools or [],
        "tool_meta": tool_meta or {},
        "server_parameters": {"command": str(command), "args": list(args), "env": env},
    }
    if default_tool_meta is not None:
        entry["default_tool_meta"] = default_tool_meta
    return entry


def toolbox_entry(*toolbox_args: str, env: dict[str, str] | None = None, **entry: Any) -> dict[str, Any]:
    """A stdio entry that runs the toolbox MCP server (mcp 2.x) on this interpreter; ``entry``
    takes the other :func:`stdio_server_entry` keywords (``tool_meta``, ``forbidden_tools``, ...)."""
    from .mcp_servers import script_path

    return stdio_server_entry(
        sys.executable, [str(script_path("toolbox")), "stdio", *toolbox_args], env=env, **entry
    )


def toolbox_config(path: Path, *toolbox_args: str, env: dict[str, str] | None = None) -> Path:
    """Write an ``mcp.json`` with one server, ``toolbox`` (see :func:`toolbox_entry`); return ``path``."""
    return write_mcp_json(path, {"toolbox": toolbox_entry(*toolbox_args, env=env)})


__all__ = ["stdio_server_entry", "toolbox_config", "toolbox_entry", "write_mcp_json"]
