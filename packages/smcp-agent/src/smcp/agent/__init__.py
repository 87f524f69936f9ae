"""smcp-agent: the A2C-SMCP Agent (async :class:`AsyncAgent`, sync :class:`Agent`).

    async with AsyncAgent("http://127.0.0.1:8000", token="T", office="o1") as agent:
        for computer in agent.cache.computers():
            print(agent.cache.get(computer).tools)
        result = await agent.call_tool("comp1", "toolbox__echo", {"text": "hi"}, timeout=10)

Heavy dependencies (python-socketio, pydantic models, MCP types) load on first use, so
importing this package is cheap: every public name but ``__version__`` is listed once in
``_EXPORTS`` (and in ``__all__``) and imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smcp.agent._version import __version__
from smcp.core._compat import require_core_version

require_core_version("smcp-agent", __version__)

if TYPE_CHECKING:
    from smcp.agent._blob import BlobData, PutBlobResult
    from smcp.agent._cache import ComputerCache, ComputerView
    from smcp.agent._client import AsyncAgent
    from smcp.agent._handlers import AgentHandler, Notification
    from smcp.agent._options import AgentOptions
    from smcp.agent._skill import SkillFile
    from smcp.agent._sync import Agent
    from smcp.agent.errors import (
        AgentError,
        AuthenticationError,
        ConfigError,
        ConnectError,
        ConnectionLostError,
        IntegrityError,
        JoinRefusedError,
        LocalError,
        LocalTimeoutError,
        MalformedReplyError,
        NotConnectedError,
        ProtocolVersionError,
        ReplyError,
        SMCPError,
        SMCPException,
    )
    from smcp.agent.llm import Toolset

#: Public name -> the module that defines it (imported on first access).
_EXPORTS = {
    "Agent": "smcp.agent._sync",
    "AgentHandler": "smcp.agent._handlers",
    "AgentOptions": "smcp.agent._options",
    "AsyncAgent": "smcp.agent._client",
    "BlobData": "smcp.agent._blob",
    "ComputerCache": "smcp.agent._cache",
    "ComputerView": "smcp.agent._cache",
    "Notification": "smcp.agent._handlers",
    "PutBlobResult": "smcp.agent._blob",
    "SkillFile": "smcp.agent._skill",
    "Toolset": "smcp.agent.llm",
    "AgentError": "smcp.agent.errors",
    "AuthenticationError": "smcp.agent.errors",
    "ConfigError": "smcp.agent.errors",
    "ConnectError": "smcp.agent.errors",
    "ConnectionLostError": "smcp.agent.errors",
    "IntegrityError": "smcp.agent.errors",
    "JoinRefusedError": "smcp.agent.errors",
    "LocalError": "smcp.agent.errors",
    "LocalTimeoutError": "smcp.agent.errors",
    "MalformedReplyError": "smcp.agent.errors",
    "NotConnectedError": "smcp.agent.errors",
    "ProtocolVersionError": "smcp.agent.errors",
    "ReplyError": "smcp.agent.errors",
    "SMCPError": "smcp.agent.errors",
    "SMCPException": "smcp.agent.errors",
}

__all__ = [
    "Agent",
    "AgentError",
    "AgentHandler",
    "AgentOptions",
    "AsyncAgent",
    "AuthenticationError",
    "BlobData",
    "ComputerCache",
    "ComputerView",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "IntegrityError",
    "JoinRefusedError",
    "LocalError",
    "LocalTimeoutError",
    "MalformedReplyError",
    "NotConnectedError",
    "Notification",
    "ProtocolVersionError",
    "PutBlobResult",
    "ReplyError",
    "SMCPError",
    "SMCPException",
    "SkillFile",
    "Toolset",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smcp.agent' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
