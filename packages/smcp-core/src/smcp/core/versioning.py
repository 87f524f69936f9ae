"""Protocol version: the compatibility rule and the HTTP version gate (docs/protocol.md §2.2).

The gate's rejection bodies are data here so that the server sends them byte for byte as
0.4.2 does and clients parse them with the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROTOCOL_VERSION",
    "VERSION_QUERY_PARAM",
    "WS_VERSION_CLOSE_CODE",
    "GateRejection",
    "check_version",
    "is_compatible",
    "parse_version",
    "supported_range",
]

PROTOCOL_VERSION = "0.4.0"
VERSION_QUERY_PARAM = "a2c_version"
#: WebSocket close code used when a websocket-first handshake is refused and no HTTP body can be sent.
WS_VERSION_CLOSE_CODE = 4900


def parse_version(raw: str) -> tuple[int, int, int]:
    """Parse ``MAJOR.MINOR.PATCH``; raise ``ValueError`` with the official wording otherwise."""
    parts = raw.split(".")
    if len(parts) != 3:
        raise ValueError(f"Invalid version: {raw}")
    try:
        major, minor, patch = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"Invalid version: {raw}") from None
    return major, minor, patch


def is_compatible(client: str, server: str = PROTOCOL_VERSION) -> bool:
    """Same MAJOR; under 0.x also the same MINOR; from 1.0 on the client's MINOR may be older."""
    c_major, c_minor, _ = parse_version(client)
    s_major, s_minor, _ = parse_version(server)
    if c_major != s_major:
        return False
    if s_major == 0:
        return c_minor == s_minor
    return c_minor <= s_minor


def supported_range(server: str = PROTOCOL_VERSION) -> tuple[str, str]:
    """``(min_supported, max_supported)`` as the official server reports them."""
    major, minor, _ = parse_version(server)
    return f"{major}.{minor}.0", f"{major}.{minor}.999"


@dataclass(frozen=True, slots=True)
class GateRejection:
    """An HTTP 400 answer of the version gate."""

    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...]

    status: int = 400

    def body_bytes(self) -> bytes:
        # json.dumps with default separators: byte-identical to the official gate.
        return json.dumps(self.body).encode()

    def http_headers(self) -> list[tuple[bytes, bytes]]:
        body = self.body_bytes()
        out = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        out.extend((k.encode(), v.encode()) for k, v in self.headers)
        return out


def check_version(raw: str | None, server: str = PROTOCOL_VERSION) -> GateRejection | None:
    """Apply the gate to the first ``a2c_version`` query value; ``None`` means accepted."""
    if not raw:
        return GateRejection({"code": 400, "message": "Missing a2c_version query parameter"}, ())
    try:
        compatible = is_compatible(raw, server)
    except ValueError as exc:
        return GateRejection({"code": 400, "message": f"Invalid a2c_version: {exc}"}, ())
    if compatible:
        return None
    low, high = supported_range(server)
    body = {
        "code": 4008,
        "message": "Protocol version mismatch",
        "server_version": server,
        "client_version": raw,
        "min_supported": low,
        "max_supported": high,
    }
    return GateRejection(body, (("x-a2c-error-code", "4008"),))
