"""Error codes, the flat ErrorPayload and the one exception tree of every smcp package.

On the wire an error is a flat JSON object: ``{"code": int, "message": str, ...}`` with
code-specific top-level fields and an optional ``details`` object (docs/protocol.md §3.2, §8.9).
:func:`error_from_payload` turns such an object into the matching exception;
:meth:`SMCPError.to_payload` does the reverse.

Everything an smcp package raises derives from :class:`SMCPException`::

    SMCPException
    ├── SMCPError                  remote: a peer answered with a coded ErrorPayload
    │   ├── BadRequestError (400), ForbiddenError (403), NotFoundError (404), ...
    │   └── ProtocolVersionError (4008), ..., BlobWriteFailedError (4019)
    └── LocalError                 raised on this side of the wire
        ├── ConnectError           the server could not be reached
        │   └── AuthenticationError    it refused the connection (credential)
        ├── NotConnectedError      a request before connect()
        ├── ConnectionLostError    the connection dropped with the request in flight
        ├── LocalTimeoutError      no answer within the local deadline (also a TimeoutError)
        ├── JoinRefusedError       server:join_office was refused
        ├── MalformedReplyError    an answer that is neither a valid reply nor an ErrorPayload
        ├── IntegrityError         bytes that do not match their size or SHA-256
        ├── ConfigError            invalid configuration (also a ValueError)
        └── VersionSkewError       smcp packages of different versions (also an ImportError)

A program catches ``SMCPException`` for everything, ``SMCPError`` for what a peer refused and
``LocalError`` for what went wrong here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any, ClassVar

__all__ = [
    "OFFICIAL_ERROR_CODES",
    "AuthenticationError",
    "BadRequestError",
    "BlobNotAccessibleError",
    "BlobWriteFailedError",
    "CapabilityNotSupportedError",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "ErrorCode",
    "ForbiddenError",
    "IntegrityError",
    "InternalError",
    "JoinRefusedError",
    "LocalError",
    "LocalTimeoutError",
    "MCPServerNotFoundError",
    "MalformedReplyError",
    "NotConnectedError",
    "NotFoundError",
    "ProtocolVersionError",
    "RequestTimeoutError",
    "SMCPError",
    "SMCPException",
    "SkillNameInvalidError",
    "SkillResourceNotAccessibleError",
    "ToolAuthorizationFailedError",
    "ToolAuthorizationRequiredError",
    "UnauthorizedError",
    "VersionSkewError",
    "error_class",
    "error_from_payload",
    "is_error_payload",
    "is_official_error_payload",
]


class ErrorCode(IntEnum):
    """Every code that can appear in an ErrorPayload."""

    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    REQUEST_TIMEOUT = 408
    INTERNAL_ERROR = 500
    TOOL_AUTHORIZATION_REQUIRED = 4006
    TOOL_AUTHORIZATION_FAILED = 4007
    PROTOCOL_VERSION_MISMATCH = 4008
    MCP_SERVER_NOT_FOUND = 4014
    MCP_CAPABILITY_NOT_SUPPORTED = 4015
    SKILL_NAME_INVALID = 4016
    SKILL_RESOURCE_NOT_ACCESSIBLE = 4017
    BLOB_NOT_ACCESSIBLE = 4018
    BLOB_WRITE_FAILED = 4019


#: Codes the official 0.4.2 server and agent recognise as errors. A Computer must use only these.
OFFICIAL_ERROR_CODES: frozenset[int] = frozenset(
    {
        ErrorCode.NOT_FOUND,
        ErrorCode.TOOL_AUTHORIZATION_REQUIRED,
        ErrorCode.TOOL_AUTHORIZATION_FAILED,
        ErrorCode.PROTOCOL_VERSION_MISMATCH,
        ErrorCode.MCP_SERVER_NOT_FOUND,
        ErrorCode.MCP_CAPABILITY_NOT_SUPPORTED,
        ErrorCode.SKILL_NAME_INVALID,
        ErrorCode.SKILL_RESOURCE_NOT_ACCESSIBLE,
        ErrorCode.BLOB_NOT_ACCESSIBLE,
        ErrorCode.BLOB_WRITE_FAILED,
    }
)

#: Top-level keys an ErrorPayload may carry besides ``code``/``message``/``details``.
_FIELD_KEYS = (
    "server_version",
    "client_version",
    "min_supported",
    "max_supported",
    "mcp_server",
    "capability",
)


class SMCPException(Exception):
    """Root of every exception an smcp package raises."""


class SMCPError(SMCPException):
    """A coded protocol error: what a peer answered with a flat ErrorPayload (or what we send).

    ``str()`` is ``"[code] message"``; ``details`` is diagnostic data kept for logs and never
    shown in ``str()``.
    """

    code: ClassVar[int] = ErrorCode.INTERNAL_ERROR
    default_message: ClassVar[str] = "SMCP error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        code: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = dict(details) if details else {}
        self.fields: dict[str, Any] = dict(fields) if fields else {}
        if code is not None:
            self._code = code
        super().__init__(self.message)

    @property
    def error_code(self) -> int:
        """The numeric code (an instance can override its class's code)."""
        return int(getattr(self, "_code", type(self).code))

    @property
    def reason(self) -> str | None:
        """``details["reason"]`` when the peer gave one (open enum: tolerate unknown values)."""
        value = self.details.get("reason")
        return value if isinstance(value, str) else None

    @property
    def mcp_server(self) -> str | None:
        value = self.fields.get("mcp_server")
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        return f"[{self.error_code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.error_code}, message={self.message!r})"

    def to_payload(self) -> dict[str, Any]:
        """The flat ErrorPayload for this error, ready to send as an ack."""
        payload: dict[str, Any] = {"code": self.error_code, "message": self.message}
        payload.update(self.fields)
        if self.details:
            payload["details"] = self.details
        return payload


class BadRequestError(SMCPError):
    """400: the request is malformed; ``details`` names the event, field and reason."""

    code = ErrorCode.BAD_REQUEST
    default_message = "Bad request"


class UnauthorizedError(SMCPError):
    code = ErrorCode.UNAUTHORIZED
    default_message = "Unauthorized"


class ForbiddenError(SMCPError):
    """403: the sender's role or office does not allow this event."""

    code = ErrorCode.FORBIDDEN
    default_message = "Forbidden"


class NotFoundError(SMCPError):
    """404: the target Computer is not in the caller's office (or is gone)."""

    code = ErrorCode.NOT_FOUND
    default_message = "Not found"


class RequestTimeoutError(SMCPError):
    """408: the relay deadline passed before the Computer answered."""

    code = ErrorCode.REQUEST_TIMEOUT
    default_message = "Request timed out"


class InternalError(SMCPError):
    code = ErrorCode.INTERNAL_ERROR
    default_message = "Internal server error"


class ToolAuthorizationRequiredError(SMCPError):
    code = ErrorCode.TOOL_AUTHORIZATION_REQUIRED
    default_message = "Tool authorization required"


class ToolAuthorizationFailedError(SMCPError):
    code = ErrorCode.TOOL_AUTHORIZATION_FAILED
    default_message = "Tool authorization failed"


class ProtocolVersionError(SMCPError):
    """4008: the server does not speak the client's protocol version. Never retried."""

    code = ErrorCode.PROTOCOL_VERSION_MISMATCH
    default_message = "Protocol version mismatch"

    @property
    def server_version(self) -> str | None:
        return self.fields.get("server_version")

    @property
    def client_version(self) -> str | None:
        return self.fields.get("client_version")

    @property
    def min_supported(self) -> str | None:
        return self.fields.get("min_supported")

    @property
    def max_supported(self) -> str | None:
        return self.fields.get("max_supported")

    def __str__(self) -> str:
        return (
            f"[{ErrorCode.PROTOCOL_VERSION_MISMATCH}] {self.message}: client speaks {self.client_version}, "
            f"server {self.server_version} "
            f"accepts {self.min_supported}..{self.max_supported}; upgrade the older side"
        )


class MCPServerNotFoundError(SMCPError):
    code = ErrorCode.MCP_SERVER_NOT_FOUND
    default_message = "MCP Server not registered"


class CapabilityNotSupportedError(SMCPError):
    code = ErrorCode.MCP_CAPABILITY_NOT_SUPPORTED
    default_message = "MCP Server does not support 'resources' capability"


class SkillNameInvalidError(SMCPError):
    code = ErrorCode.SKILL_NAME_INVALID
    default_message = "Invalid skill name"


class SkillResourceNotAccessibleError(SMCPError):
    code = ErrorCode.SKILL_RESOURCE_NOT_ACCESSIBLE
    default_message = "Skill resource not accessible"


class BlobNotAccessibleError(SMCPError):
    code = ErrorCode.BLOB_NOT_ACCESSIBLE
    default_message = "Blob not accessible"


class BlobWriteFailedError(SMCPError):
    code = ErrorCode.BLOB_WRITE_FAILED
    default_message = "Blob write failed"


_BY_CODE: dict[int, type[SMCPError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        RequestTimeoutError,
        InternalError,
        ToolAuthorizationRequiredError,
        ToolAuthorizationFailedError,
        ProtocolVersionError,
        MCPServerNotFoundError,
        CapabilityNotSupportedError,
        SkillNameInvalidError,
        SkillResourceNotAccessibleError,
        BlobNotAccessibleError,
        BlobWriteFailedError,
    )
}


def error_class(code: int) -> type[SMCPError]:
    """The exception class of ``code`` (the base :class:`SMCPError` for an unknown code)."""
    return _BY_CODE.get(code, SMCPError)


def is_error_payload(obj: object) -> bool:
    """True for a flat ErrorPayload: an object with an integer ``code`` and a text ``message``.

    Any code counts, known or not: no SMCP reply has a top-level ``code``, so a peer that answers
    a request with ``{"code": 503, "message": ...}`` has refused it.
    """
    if not isinstance(obj, dict):
        return False
    return type(obj.get("code")) is int and isinstance(obj.get("message"), str)


def is_official_error_payload(obj: object) -> bool:
    """True when the official 0.4.2 peers would recognise ``obj`` as an error."""
    return isinstance(obj, dict) and type(obj.get("code")) is int and obj["code"] in OFFICIAL_ERROR_CODES


def error_from_payload(payload: Mapping[str, Any]) -> SMCPError:
    """Build the exception matching a flat ErrorPayload (unknown codes give a base SMCPError)."""
    code = payload.get("code")
    message = payload.get("message")
    details = payload.get("details")
    fields = {k: payload[k] for k in _FIELD_KEYS if k in payload}
    cls = _BY_CODE.get(code) if type(code) is int else None
    text = message if isinstance(message, str) else None
    det = details if isinstance(details, dict) else None
    if cls is None:
        return SMCPError(text, details=det, fields=fields, code=code if type(code) is int else 500)
    return cls(text, details=det, fields=fields)


# -- local errors: raised on this side of the wire, never sent -----------------------------------


class LocalError(SMCPException):
    """Base class of the errors raised on this side of the wire (not an answer from a peer)."""


class ConnectError(LocalError):
    """The connection to the server could not be established."""


class AuthenticationError(ConnectError):
    """The server refused the connection (usually a wrong, missing or expired credential)."""


class NotConnectedError(LocalError):
    """A request was made while not connected; call ``connect()`` first."""


class ConnectionLostError(LocalError):
    """The connection dropped while the request was in flight; the outcome is unknown.

    The client reconnects on its own (if enabled); retry the request once it is back.
    """


class LocalTimeoutError(LocalError, TimeoutError):
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


class JoinRefusedError(LocalError):
    """``server:join_office`` was refused; ``reason`` is the server's message."""

    def __init__(self, office: str, reason: str, *, name: str | None = None) -> None:
        self.office = office
        self.reason = reason
        self.name = name
        super().__init__(f"joining office {office!r} was refused: {reason}")


class MalformedReplyError(LocalError):
    """A peer answered with something that is neither a valid reply nor an ErrorPayload.

    ``details`` names the event, the field and the reason, as a 400 would.
    """

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        self.details: dict[str, Any] = dict(details) if details else {}
        super().__init__(message)


class IntegrityError(LocalError):
    """Downloaded or uploaded bytes do not match the declared size or SHA-256 digest."""


class ConfigError(LocalError, ValueError):
    """A configuration (file, option or setting) is invalid; the message says where and why."""


class VersionSkewError(LocalError, ImportError):
    """An smcp package was installed next to an smcp-core of another version."""
