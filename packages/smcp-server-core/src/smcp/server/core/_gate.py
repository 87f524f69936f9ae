"""The protocol-version gate as plain ASGI middleware (docs/protocol.md §2.2)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from smcp.core.versioning import VERSION_QUERY_PARAM, WS_VERSION_CLOSE_CODE, GateRejection, check_version
from smcp.server.core._types import ASGIApp, Message, Receive, Scope, Send

# The ASGI aliases are re-exported for importers of this module; they live in ``_types``.
__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "VersionGate", "first_query_value"]


def first_query_value(query: str | bytes, key: str = VERSION_QUERY_PARAM) -> str | None:
    """The first value of ``key`` in a raw query string, or ``None``."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name == key:
            return value
    return None


class VersionGate:
    """Refuses Engine.IO requests under ``path`` whose ``a2c_version`` is missing or incompatible.

    HTTP requests get the 400 JSON bodies of 0.4.2 byte for byte. A WebSocket-first handshake
    gets the same body when the ASGI server supports ``websocket.http.response``, otherwise it
    is closed with code 4900. Other paths pass through untouched.
    """

    def __init__(
        self, app: ASGIApp, path: str = "/socket.io", *, on_reject: Callable[[], None] | None = None
    ):
        self.app = app
        self.path = "/" + path.strip("/")
        self._prefix = self.path + "/"
        self._on_reject = on_reject

    def applies_to(self, path: str) -> bool:
        return path == self.path or path.startswith(self._prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or not self.applies_to(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        rejection = check_version(first_query_value(scope.get("query_string", b"")))
        if rejection is None:
            await self.app(scope, receive, send)
            return
        if self._on_reject is not None:
            self._on_reject()
        if kind == "http":
            await _send_http(rejection, send, "http.response")
        else:
            await _reject_websocket(scope, receive, send, rejection)


async def _send_http(rejection: GateRejection, send: Send, prefix: str) -> None:
    await send({"type": f"{prefix}.start", "status": rejection.status, "headers": rejection.http_headers()})
    await send({"type": f"{prefix}.body", "body": rejection.body_bytes(), "more_body": False})


async def _reject_websocket(scope: Scope, receive: Receive, send: Send, rejection: GateRejection) -> None:
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await _send_http(rejection, send, "websocket.http.response")
    else:
        await send({"type": "websocket.close", "code": WS_VERSION_CLOSE_CODE})
