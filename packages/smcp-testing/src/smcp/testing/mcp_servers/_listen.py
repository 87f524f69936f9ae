"""Serve an ASGI app on a port chosen before start-up and announce it as ``LISTENING <port>``.

Shared by the test MCP servers in this folder: a sibling module when they run by file path, a
package module under ``python -m``. It needs only uvicorn, so it works under mcp 2.x and under the
official virtualenv's mcp 1.x alike.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any


async def serve_announced(app: Any, host: str, port: int, *, name: str) -> None:
    """Bind ``host:port`` (0 = any free port), run ``app`` under uvicorn, print the port once ready."""
    import uvicorn

    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)

    async def announce() -> None:
        for _ in range(1000):  # bounded: 10 s
            if server.started:
                sys.stdout.write(f"LISTENING {bound_port}\n")
                sys.stdout.flush()
                return
            await asyncio.sleep(0.01)
        sys.stderr.write(f"{name}: uvicorn did not start within 10 s\n")

    announcer = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()
