"""An A2C-SMCP Computer: hosts MCP servers and serves their tools to an office.

Heavy modules (mcp, socketio, pydantic models) load on first use of a name below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from smcp.computer._version import __version__
from smcp.core._compat import require_core_version

require_core_version("smcp-computer", __version__)

if TYPE_CHECKING:
    from smcp.computer._computer import CallRecord, Computer, ConfirmCallback, ToolResult
    from smcp.computer._config import ConfigProblem, LoadedConfig, load_config, merge_configs, parse_config
    from smcp.computer._errors import (
        ComputerError,
        ConfigError,
        EnvFileError,
        InputError,
        JoinError,
        VrlUnavailableError,
    )
    from smcp.computer._hosting import MCPServerHost, ServerState, ServerStatus, Supervision
    from smcp.computer._inputs import InputResolver
    from smcp.computer._link import ComputerLink
    from smcp.computer._tools import Change, ExposedTool

__all__ = [
    "CallRecord",
    "Change",
    "Computer",
    "ComputerError",
    "ComputerLink",
    "ConfigError",
    "ConfigProblem",
    "ConfirmCallback",
    "EnvFileError",
    "ExposedTool",
    "InputError",
    "InputResolver",
    "JoinError",
    "LoadedConfig",
    "MCPServerHost",
    "ServerState",
    "ServerStatus",
    "Supervision",
    "ToolResult",
    "VrlUnavailableError",
    "__version__",
    "load_config",
    "merge_configs",
    "parse_config",
]

_WHERE = {
    "CallRecord": "_computer",
    "Computer": "_computer",
    "ConfirmCallback": "_computer",
    "ToolResult": "_computer",
    "Change": "_tools",
    "ExposedTool": "_tools",
    "ComputerError": "_errors",
    "ConfigError": "_errors",
    "EnvFileError": "_errors",
    "InputError": "_errors",
    "JoinError": "_errors",
    "VrlUnavailableError": "_errors",
    "ConfigProblem": "_config",
    "LoadedConfig": "_config",
    "load_config": "_config",
    "merge_configs": "_config",
    "parse_config": "_config",
    "MCPServerHost": "_hosting",
    "ServerState": "_hosting",
    "ServerStatus": "_hosting",
    "Supervision": "_hosting",
    "InputResolver": "_inputs",
    "ComputerLink": "_link",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'smcp.computer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"smcp.computer.{module}"), name)
    globals()[name] = value
    return value
