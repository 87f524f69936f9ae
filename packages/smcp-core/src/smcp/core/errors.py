"""Error codes, the flat ErrorPayload and one exception class per code.

On the wire an error is a flat JSON object: ``{"code": int, "message": str, ...}`` with
code-specific top-level fields and an optional ``details`` object (PROTOCOL §3.2, §8.9).
:func:`error_from_payload` turns such an object into the matching exception;
:meth:`SMCPError.to_payload` does the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any, ClassVar

__all__ = [
    "OFFICIAL_ERROR_CODES",
    "BadRequestError",
    "BlobNotAccessibleError",
    "BlobWriteFailedError",
    "CapabilityNotSupportedError",
    "ErrorCode",
    "ForbiddenError",
    "InternalError",
    "MCPServerNotFoundError",
    "NotFoundError",
    "ProtocolVersionError",
    "RequestTimeoutError",
    "SMCPError",
    "SkillNameInvalidError",
    "SkillResourceNotAccessibleError",
    "ToolAuthorizationFailedError",
    "ToolAuthorizationRequiredError",
    "UnauthorizedError",
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
OFFICIAL_ERROR_CODES: frozenset[int] = frozenset({404, 4006, 4007, 4008, 4014, 4015, 4016, 4017, 4018, 4019})

#: Top-level keys an ErrorPayload may carry besides ``code``/``message``/``details``.
_FIELD_KEYS = (
    "server_version",
    "client_version",
    "min_supported",
    "max_supported",
    "mcp_server",
    "capability",
)


class SMCPError(Exception):
    """Base class of every protocol error.

    ``str()`` is ``"[code] message"``; ``details`` is diagnostic data kept for logs and never
    shown in ``str()``.
    """

    code: ClassVar[int] = 500
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
        return getattr(self, "_code", type(self).code)

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

    code = 400
    default_message = "Bad request"


class UnauthorizedError(SMCPError):
    code = 401
    default_message = "Unauthorized"


class ForbiddenError(SMCPError):
    """403: the sender's role or office does not allow this event."""

    code = 403
    default_message = "Forbidden"


class NotFoundError(SMCPError):
    """404: the target Computer is not in the caller's office (or is gone)."""

    code = 404
    default_message = "Not found"


class RequestTimeoutError(SMCPError):
    """408: the relay deadline passed before the Computer answered."""

    code = 408
    default_message = "Request timed out"


class InternalError(SMCPError):
    code = 500
    default_message = "Internal server error"


class ToolAuthorizationRequiredError(SMCPError):
    code = 4006
    default_message = "Tool authorization required"


class ToolAuthorizationFailedError(SMCPError):
    code = 4007
    default_message = "Tool authorization failed"


class ProtocolVersionError(SMCPError):
    """4008: the server does not speak the client's protocol version. Never retried."""

    code = 4008
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
            f"[4008] {self.message}: client speaks {self.client_version}, server {self.server_version} "
            f"accepts {self.min_supported}..{self.max_supported}; upgrade the older side"
        )


class MCPServerNotFoundError(SMCPError):
    code = 4014
    default_message = "MCP Server not registered"


class CapabilityNotSupportedError(SMCPError):
    code = 4015
    default_message = "MCP Server does not support 'resources' capability"


class SkillNameInvalidError(SMCPError):
    code = 4016
    default_message = "Invalid skill name"


class SkillResourceNotAccessibleError(SMCPError):
    code = 4017
    default_message = "Skill resource not accessible"


class BlobNotAccessibleError(SMCPError):
    code = 4018
    default_message = "Blob not accessible"


class BlobWriteFailedError(SMCPError):
    code = 4019
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


def is_error_payload(obj: object) -> bool:
    """True for a flat ErrorPayload with any known code (ours or the official set)."""
    if not isinstance(obj, dict):
        return False
    code = obj.get("code")
    return type(code) is int and code in _BY_CODE and isinstance(obj.get("message", ""), str)


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
