"""One ASGI app: the Socket.IO endpoint behind the version gate, health and metrics endpoints."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from smcp.server.asgi._prometheus import render_prometheus
from smcp.server.core import VersionGate

# The ASGI aliases are server-core's (defined once, next to the version gate that uses them).
from smcp.server.core._gate import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    import asyncio

    from smcp.server.asgi._console import Console
    from smcp.server.core import AuthProvider, OfficeAuthorizer, ServerSettings, SMCPServer

__all__ = ["SMCPApp", "create_app", "mount"]


class SMCPApp:
    """The ASGI application returned by :func:`create_app`.

    Routes (relative to where it is mounted): ``<path>/...`` → Engine.IO behind the version
    gate; ``/healthz``, ``/readyz``, ``/metrics`` when ``http_endpoints`` is true; everything
    else → ``other_asgi_app`` or 404. Works at the top level and inside a Starlette ``Mount``.
    With ``console`` (see ``admin_token`` of :func:`create_app`): ``/console`` and ``/api/v1/...``.
    """

    def __init__(
        self,
        server: SMCPServer,
        *,
        path: str = "/socket.io",
        other_asgi_app: ASGIApp | None = None,
        http_endpoints: bool = True,
        console: Console | None = None,
    ) -> None:
        import socketio

        self.server = server
        self.path = "/" + path.strip("/")
        self.other_asgi_app = other_asgi_app
        self.http_endpoints = http_endpoints
        #: The operator console (``None``: off).
        self.console = console
        engineio_app = socketio.ASGIApp(server.sio, socketio_path=None)
        self._gate = VersionGate(engineio_app, self.path, on_reject=self._count_rejection)
        self._started = False
        self._open_websockets = 0
        self._websockets_gone: asyncio.Event | None = None

    def _count_rejection(self) -> None:
        self.server.metrics.version_rejections_total += 1

    async def startup(self) -> None:
        """Run at ASGI lifespan startup (call it yourself when the host has no lifespan)."""
        self._started = True

    async def shutdown(self) -> None:
        """Answer in-flight requests with an error and drop every connection (clients reconnect).

        Then waits (at most 1 s) for the WebSocket connections to finish their close handshake,
        so that the host's own shutdown does not close them a second time: uvicorn's
        ``websockets`` implementation raises when asked to close a connection the client is
        already closing.
        """
        if self.console is not None:
            self.console.close()
        await self.server.shutdown()
        if self._open_websockets:
            import asyncio
            import contextlib

            self._websockets_gone = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._websockets_gone.wait(), 1.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path: str = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if self._gate.applies_to(path):
            if path != scope.get("path"):
                scope = dict(scope)
                scope["path"] = path
            if kind != "websocket":
                await self._gate(scope, receive, send)
                return
            self._open_websockets += 1
            try:
                await self._gate(scope, receive, send)
            finally:
                self._open_websockets -= 1
                if not self._open_websockets and self._websockets_gone is not None:
                    self._websockets_gone.set()
        elif kind == "http" and self.http_endpoints and path in _ENDPOINTS:
            await _ENDPOINTS[path](self, scope, receive, send)
        elif kind == "http" and self.console is not None and self.console.handles(path):
            await self.console(scope, receive, send, path)
        elif self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "http":
            await _respond(send, 404, b"Not Found", b"text/plain")
        else:
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.other_asgi_app is not None:

            async def wrapped_receive() -> Message:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                return message

            await self.other_asgi_app(scope, wrapped_receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _respond(send, 200, b'{"status":"ok"}', b"application/json")

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.server.closing:
            await _respond(send, 503, b'{"status":"shutting down"}', b"application/json")
        else:
            await _respond(send, 200, b'{"status":"ready"}', b"application/json")

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"")
        if b"format=json" in query:
            body = json.dumps(_json_safe(self.server.metrics.snapshot())).encode()
            await _respond(send, 200, body, b"application/json")
        else:
            body = render_prometheus(self.server.metrics).encode()
            await _respond(send, 200, body, b"text/plain; version=0.0.4; charset=utf-8")


_ENDPOINTS: dict[str, Callable[[SMCPApp, Scope, Receive, Send], Awaitable[None]]] = {
    "/healthz": SMCPApp._healthz,
    "/readyz": SMCPApp._readyz,
    "/metrics": SMCPApp._metrics,
}


def _json_safe(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with the +Inf bucket bound as the string "+Inf" (JSON has no infinity)."""
    latency = snapshot.get("relay_latency")
    if isinstance(latency, dict):
        latency["buckets"] = [
            ["+Inf" if bound == float("inf") else bound, count] for bound, count in latency["buckets"]
        ]
    return snapshot


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def create_app(
    server: SMCPServer | None = None,
    *,
    path: str = "/socket.io",
    other_asgi_app: ASGIApp | None = None,
    settings: ServerSettings | None = None,
    auth: AuthProvider | None = None,
    authorize_office: OfficeAuthorizer | None = None,
    http_endpoints: bool = True,
    admin_token: str | None = None,
    admin_actions: bool = False,
) -> SMCPApp:
    """Build the ASGI app. Pass a ready ``server``, or ``settings``/``auth`` to make one.

    ``other_asgi_app`` (a Starlette/FastAPI app, ...) receives every request the SMCP app does
    not handle, and its lifespan runs too. ``admin_token`` turns on the operator console
    (``/console``, ``/api/v1/...``), read-only unless ``admin_actions``.
    """
    if server is None:
        from smcp.server.core import SMCPServer

        server = SMCPServer(settings, auth, authorize_office=authorize_office)
    elif settings is not None or auth is not None or authorize_office is not None:
        raise TypeError("pass either server or settings/auth/authorize_office, not both")
    console = None
    if admin_token:
        from smcp.server.asgi._console import Console

        console = Console(server, admin_token, actions=admin_actions)
    elif admin_actions:
        raise ValueError("admin_actions needs admin_token (the console is off without it)")
    return SMCPApp(
        server, path=path, other_asgi_app=other_asgi_app, http_endpoints=http_endpoints, console=console
    )


def mount(parent: Any, prefix: str, server: SMCPServer | None = None, **kwargs: Any) -> SMCPApp:
    """Mount an SMCP app at ``prefix`` in a Starlette/FastAPI ``parent`` (``parent.mount``).

    Clients then connect with ``socketio_path=<prefix>/socket.io``. A mounted app gets no
    lifespan events: call ``await app.shutdown()`` from the parent's lifespan.
    """
    app = create_app(server, **kwargs)
    parent.mount("/" + prefix.strip("/"), app)
    return app
