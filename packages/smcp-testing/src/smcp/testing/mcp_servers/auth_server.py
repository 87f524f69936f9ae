"""A streamable-HTTP MCP server that refuses ``tools/call`` with a configurable HTTP status.

It plays the protected upstream of the auth-error conformance vectors (docs/protocol.md §9.4):
``initialize``, ``notifications/initialized``, ``tools/list`` (and everything else) succeed; every
JSON-RPC POST that contains a ``tools/call`` request is answered with ``--status`` and, when given,
a ``WWW-Authenticate`` header. Usage::

    python auth_server.py --port 0 --status 403
    python auth_server.py --port 0 --status 401
    python auth_server.py --port 0 --status 401 --www-authenticate 'Bearer realm="mcp"'

The endpoint is ``/mcp``. Once uvicorn accepts connections the server prints exactly one line
``LISTENING <port>`` to stdout. Each refused call is logged to stderr as ``REFUSED tools/call <status>``.
The only tool is ``secret()`` (it would return ``"secret"`` if the call were allowed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcp.server.mcpserver import MCPServer

if __package__:  # python -m smcp.testing.mcp_servers.<name>
    from ._listen import serve_announced
else:  # run by file path: this folder is sys.path[0]
    from _listen import serve_announced  # type: ignore[import-not-found,no-redef]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REASONS = {401: "unauthorized", 403: "forbidden"}


def contains_tools_call(body: bytes) -> bool:
    """True if the JSON-RPC payload (one message or a batch) has a ``tools/call`` request."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    messages = payload if isinstance(payload, list) else [payload]
    return any(isinstance(m, dict) and m.get("method") == "tools/call" for m in messages)


class RefuseToolCalls:
    """ASGI middleware: answer POSTs carrying ``tools/call`` with ``status``; pass everything else on."""

    def __init__(self, app: ASGIApp, status: int, www_authenticate: str | None) -> None:
        self.app = app
        self.status = status
        self.www_authenticate = www_authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if contains_tools_call(body):
            await self.refuse(send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def refuse(self, send: Send) -> None:
        body = json.dumps({"error": REASONS.get(self.status, "refused")}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if self.www_authenticate:
            headers.append((b"www-authenticate", self.www_authenticate.encode()))
        sys.stderr.write(f"REFUSED tools/call {self.status}\n")
        sys.stderr.flush()
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def build_app(status: int, www_authenticate: str | None, host: str) -> ASGIApp:
    server: MCPServer = MCPServer("auth-guarded", log_level="WARNING")

    @server.tool()
    def secret() -> str:
        """Return a secret (never reached: tools/call is refused at the HTTP layer)."""
        return "secret"

    inner: ASGIApp = server.streamable_http_app(host=host)
    middleware = RefuseToolCalls(inner, status, www_authenticate)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the streamable app runs its session manager in its lifespan
            await inner(scope, receive, send)
        else:
            await middleware(scope, receive, send)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--status", type=int, default=401, help="HTTP status for tools/call (401, 403, ...)")
    parser.add_argument("--www-authenticate", default=None, help="value of the WWW-Authenticate header")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("auth_server: refusing to bind anything but loopback")
    asyncio.run(
        serve_announced(
            build_app(args.status, args.www_authenticate, args.host), args.host, args.port, name="auth_server"
        )
    )


if __name__ == "__main__":
    main()
