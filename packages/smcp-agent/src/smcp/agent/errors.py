"""Exceptions raised by the Agent.

Protocol errors (a flat ErrorPayload in an ack) are the typed :class:`smcp.core.errors.SMCPError`
subclasses from smcp-core (``NotFoundError`` for 404, ``BlobNotAccessibleError`` for 4018, ...);
they carry ``error_code``, ``message``, the code-specific ``fields`` and ``details`` (for logs only,
never part of ``str()``). The classes below cover what happens on the Agent's side of the wire.
"""

from __future__ import annotations

from smcp.core.errors import ProtocolVersionError, SMCPError

__all__ = [
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
]


class AgentError(Exception):
    """Base class of the errors raised by the Agent itself (not sent by a peer)."""


class ConnectError(AgentError):
    """The connection to the server could not be established."""


class AuthenticationError(ConnectError):
    """The server refused the Socket.IO connection (usually a wrong or missing token)."""


class NotConnectedError(AgentError):
    """A request was made while the Agent is not connected; call ``connect()`` first."""


class ConnectionLostError(AgentError):
    """The connection dropped while the request was in flight; the outcome is unknown.

    The Agent reconnects on its own (if enabled); retry the request once it is back.
    """


class LocalTimeoutError(AgentError, TimeoutError):
    """No answer arrived within the local deadline.

    The official server answers many rejections with silence, so this may also mean the
    request was refused (wrong office, unknown event, malformed payload).
    """

    def __init__(self, event: str, timeout: float) -> None:
        self.event = event
        self.timeout = timeout
        super().__init__(
            f"no answer to {event} within {timeout:g} s; check that the Computer is in your office "
            "and online, or raise the timeout"
        )


class JoinRefusedError(AgentError):
    """``server:join_office`` was refused; ``reason`` is the server's message."""

    def __init__(self, office: str, reason: str) -> None:
        self.office = office
        self.reason = reason
        super().__init__(f"joining office {office!r} was refused: {reason}")


class ReplyError(AgentError):
    """A peer answered with something that is neither a valid reply nor an ErrorPayload."""


class IntegrityError(AgentError):
    """Downloaded or uploaded bytes do not match the declared size or SHA-256 digest."""
