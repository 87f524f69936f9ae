"""The exceptions the Agent raises: smcp-core's one tree, re-exported under the Agent's names.

Everything derives from :class:`smcp.core.errors.SMCPException`::

    SMCPException
    ├── SMCPError                 a peer answered with a coded ErrorPayload (NotFoundError 404,
    │                             ProtocolVersionError 4008, BlobNotAccessibleError 4018, ...)
    └── LocalError                raised on the Agent's side of the wire
        ├── ConnectError          the server could not be reached
        │   └── AuthenticationError   it refused the connection (the server's reason)
        ├── NotConnectedError, ConnectionLostError, LocalTimeoutError (also a TimeoutError)
        ├── JoinRefusedError, MalformedReplyError, IntegrityError
        └── ConfigError           an invalid option or argument (also a ValueError)

``AgentError`` and ``ReplyError`` are the names of an earlier release, kept importable:
``AgentError`` is :class:`LocalError` (deprecated: catch ``LocalError``, or ``SMCPException``
for everything) and ``ReplyError`` is :class:`MalformedReplyError`.
"""

from __future__ import annotations

from smcp.core.errors import (
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
    SMCPError,
    SMCPException,
)

#: Deprecated alias of :class:`LocalError` (the base of the Agent's own errors before the one tree).
AgentError = LocalError
#: Alias of :class:`MalformedReplyError`.
ReplyError = MalformedReplyError

__all__ = [
    "AgentError",
    "AuthenticationError",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "IntegrityError",
    "JoinRefusedError",
    "LocalError",
    "LocalTimeoutError",
    "MalformedReplyError",
    "NotConnectedError",
    "ProtocolVersionError",
    "ReplyError",
    "SMCPError",
    "SMCPException",
]
