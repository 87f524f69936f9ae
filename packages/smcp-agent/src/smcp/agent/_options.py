"""The options of an Agent: one frozen, validated object shared by :class:`AsyncAgent` and ``Agent``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from smcp.agent._cache import ALL_KINDS, CacheKind
from smcp.core.errors import ConfigError
from smcp.core.events import NAMESPACE
from smcp.core.handshake import JoinBackoff

__all__ = ["AgentOptions", "AgentOverrides"]

_TRANSPORTS = frozenset({"websocket", "polling"})


#: :attr:`AgentOptions.request_timeout` when not given (also the ``smcp-agent --request-timeout`` default).
DEFAULT_REQUEST_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """How an Agent connects, waits and caches. Every field has a default; invalid values raise
    :class:`~smcp.core.errors.ConfigError` (a ``ValueError``) when the object is built.

    ``AsyncAgent(url, options=AgentOptions(request_timeout=5))`` and
    ``AsyncAgent(url, request_timeout=5)`` are the same: keyword arguments override fields of
    ``options`` (or of the defaults). :meth:`replace` derives a changed copy.
    """

    #: This Agent's name in the office.
    name: str = "smcp-agent"
    #: Further fields of the Socket.IO ``auth`` object (the token goes in ``auth["token"]``).
    auth: Mapping[str, Any] = field(default_factory=dict)
    #: Extra HTTP headers of the handshake (routing, proxies).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: ``("websocket",)``: WebSocket only (fast close, no sticky sessions);
    #: ``("polling", "websocket")``: HTTP long-polling first, then upgrade.
    transports: Sequence[str] = ("websocket",)
    #: The server's Socket.IO path (``socket.io``; a reverse proxy may mount it elsewhere).
    socketio_path: str = "socket.io"
    #: The Socket.IO namespace of SMCP.
    namespace: str = NAMESPACE
    #: Seconds to establish the connection.
    connect_timeout: float = 10.0
    #: Local deadline of every request except tool calls and blob transfers.
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    #: Local deadline of one blob chunk (``get_blob``, ``put_blob``) and of ``get_skill``.
    blob_timeout: float = 30.0
    #: Extra wait after a tool call's own timeout, so that the Computer's timeout result can
    #: still arrive before the Agent gives up.
    tool_call_grace: float = 5.0
    #: Reconnect automatically after the connection drops.
    reconnect: bool = True
    #: After a reconnect, keep re-joining the office for at least this many seconds. A server
    #: holds the old session of a half-open socket until its ping interval + ping timeout pass
    #: (45 s with python-socketio's defaults) and refuses the name meanwhile.
    rejoin_for: float = 60.0
    #: Largest WebSocket message the Agent accepts, in bytes (aiohttp's own default, 4 MiB, would
    #: drop the connection on a larger tool result). Our server's default ceiling is 32 MiB.
    max_message_size: int = 32 * 1024 * 1024
    #: Keep ``agent.cache`` up to date from the server's notifications.
    cache: bool = True
    #: What the cache holds per Computer.
    cache_kinds: Sequence[CacheKind] = ALL_KINDS

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "auth", MappingProxyType(dict(self.auth)))
        set_(self, "headers", MappingProxyType(dict(self.headers)))
        set_(self, "transports", tuple(self.transports))
        set_(self, "cache_kinds", tuple(self.cache_kinds))
        if not self.name:
            raise ConfigError("name must not be empty")
        if not self.transports or not set(self.transports) <= _TRANSPORTS:
            raise ConfigError(
                f"transports must name at least one of 'websocket', 'polling', got {self.transports!r}"
            )
        for key in ("connect_timeout", "request_timeout", "blob_timeout"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be positive (seconds), got {getattr(self, key)!r}")
        for key in ("tool_call_grace", "rejoin_for"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"{key} must be zero or positive (seconds), got {getattr(self, key)!r}")
        if not self.max_message_size > 0:
            raise ConfigError(
                f"max_message_size must be a positive number of bytes, got {self.max_message_size!r}"
            )
        unknown = set(self.cache_kinds) - set(ALL_KINDS)
        if unknown:
            raise ConfigError(f"unknown cache_kinds {sorted(unknown)}; use any of {list(ALL_KINDS)}")
        if not self.namespace.startswith("/"):
            raise ConfigError(f"namespace must start with '/', got {self.namespace!r}")

    def replace(self, **changes: Any) -> AgentOptions:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def rejoin_backoff(self) -> JoinBackoff:
        """The delays between re-join attempts after a reconnect."""
        return JoinBackoff(for_at_least=self.rejoin_for)


class AgentOverrides(TypedDict, total=False):
    """The fields of :class:`AgentOptions`, as keyword arguments of the Agent constructors."""

    name: str
    auth: Mapping[str, Any]
    headers: Mapping[str, str]
    transports: Sequence[str]
    socketio_path: str
    namespace: str
    connect_timeout: float
    request_timeout: float
    blob_timeout: float
    tool_call_grace: float
    reconnect: bool
    rejoin_for: float
    max_message_size: int
    cache: bool
    cache_kinds: Sequence[CacheKind]
