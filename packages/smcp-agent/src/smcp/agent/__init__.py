"""smcp-agent: the A2C-SMCP Agent (async :class:`AsyncAgent`, sync :class:`Agent`).

    async with AsyncAgent("http://127.0.0.1:8000", token="T", office="o1") as agent:
        for computer in agent.cache.computers():
            print(agent.cache.get(computer).tools)
        result = await agent.call_tool("comp1", "toolbox__echo", {"text": "hi"}, timeout=10)

Heavy dependencies (python-socketio, pydantic models, MCP types) load on first use, so
importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smcp.agent._version import __version__
from smcp.core._compat import require_core_version

require_core_version("smcp-agent", __version__)

if TYPE_CHECKING:
    from smcp.agent._blob import BlobData, PutBlobResult
    from smcp.agent._cache import ComputerCache, ComputerView
    from smcp.agent._client import AsyncAgent, SkillFile
    from smcp.agent._handlers import AgentHandler, Notification
    from smcp.agent._sync import Agent
    from smcp.agent.errors import (
        AgentError,
        AuthenticationError,
        ConnectError,
        ConnectionLostError,
        IntegrityError,
        JoinRefusedError,
        LocalTimeoutError,
        NotConnectedError,
        ProtocolVersionError,
        ReplyError,
        SMCPError,
    )
    from smcp.agent.llm import Toolset

_EXPORTS = {
    "Agent": "smcp.agent._sync",
    "AsyncAgent": "smcp.agent._client",
    "SkillFile": "smcp.agent._client",
    "BlobData": "smcp.agent._blob",
    "PutBlobResult": "smcp.agent._blob",
    "ComputerCache": "smcp.agent._cache",
    "ComputerView": "smcp.agent._cache",
    "AgentHandler": "smcp.agent._handlers",
    "Notification": "smcp.agent._handlers",
    "Toolset": "smcp.agent.llm",
    **{
        name: "smcp.agent.errors"
        for name in (
            "AgentError",
            "AuthenticationError",
            "ConnectError",
            "ConnectionLostError",
            "IntegrityError",
            "JoinRefusedError",
            "LocalTimeoutError",
            "NotConnectedError",
            "ProtocolVersionError",
            "ReplyError",
            "SMCPError",
        )
    },
}

__all__ = [
    "Agent",
    "AgentError",
    "AgentHandler",
    "AsyncAgent",
    "AuthenticationError",
    "BlobData",
    "ComputerCache",
    "ComputerView",
    "ConnectError",
    "ConnectionLostError",
    "IntegrityError",
    "JoinRefusedError",
    "LocalTimeoutError",
    "NotConnectedError",
    "Notification",
    "ProtocolVersionError",
    "PutBlobResult",
    "ReplyError",
    "SMCPError",
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
