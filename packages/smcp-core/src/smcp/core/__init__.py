"""smcp-core: the A2C-SMCP wire layer (protocol 0.4.0).

Modules: :mod:`~smcp.core.events` (event names and the event table), :mod:`~smcp.core.models`
(payloads), :mod:`~smcp.core.errors` (codes and exceptions), :mod:`~smcp.core.wire`
(serialisation and validation), :mod:`~smcp.core.results` (``CallToolResult`` on the wire),
:mod:`~smcp.core.versioning`, :mod:`~smcp.core.handshake` (the client rules of connecting and
joining), :mod:`~smcp.core.naming` and :mod:`~smcp.core.window`.
"""

from smcp.core._version import __version__
from smcp.core.errors import (
    ErrorCode,
    LocalError,
    SMCPError,
    SMCPException,
    VersionSkewError,
    error_from_payload,
)
from smcp.core.events import EVENTS, NAMESPACE, ClientEvent, EventSpec, NotifyEvent, ServerEvent
from smcp.core.roles import Role
from smcp.core.versioning import PROTOCOL_VERSION

__all__ = [
    "EVENTS",
    "NAMESPACE",
    "PROTOCOL_VERSION",
    "ClientEvent",
    "ErrorCode",
    "EventSpec",
    "LocalError",
    "NotifyEvent",
    "Role",
    "SMCPError",
    "SMCPException",
    "ServerEvent",
    "VersionSkewError",
    "__version__",
    "error_from_payload",
]
