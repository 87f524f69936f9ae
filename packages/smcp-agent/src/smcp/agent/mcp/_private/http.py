"""Streamable HTTP for the bridge: the MCP SDK's app at ``/mcp``, behind a bearer-token check."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from smcp.core.errors import ConfigError

if TYPE_CHECKING:
    from smcp.agent.mcp._private.bridge import Bridge

logger = logging.getLogger("smcp.agent")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_bearer(app: ASGIApp, token: str) -> ASGIApp:
    """Answer 401 to every HTTP request without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def guarded(
        scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b"missing or wrong bearer token\n"})
                return
        await app(scope, receive, send)

    return guarded


def build_app(bridge: Bridge, host: str, token: str | None) -> ASGIApp:
    if token is None and not is_loopback(host):
        raise ConfigError(f"serving MCP on {host} (beyond loopback) needs a bearer token")
    app: ASGIApp = bridge.server.streamable_http_app(host=host)
    return require_bearer(app, token) if token else app


async def serve_http(
    bridge: Bridge,
    host: str,
    port: int,
    token: str | None,
    *,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until cancelled; ``on_listening(port)`` runs once connections are accepted."""
    import uvicorn

    app = build_app(bridge, host, token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise ConfigError(f"the MCP HTTP server on {host}:{port} did not start")
            await asyncio.sleep(0.02)
        if on_listening is not None:
            on_listening(sock.getsockname()[1])
        await task
    finally:
        server.should_exit = True
        if not task.done():
            task.cancel()
        sock.close()
