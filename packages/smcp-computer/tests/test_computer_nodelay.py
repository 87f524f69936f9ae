"""Issue 12: the HTTP MCP transports send small writes at once (TCP_NODELAY on the client socket).

Nothing in the Computer sets it: the streamable/SSE clients are httpx2 over httpcore2's anyio
backend, whose ``anyio.connect_tcp`` uses asyncio's ``loop.create_connection``, and asyncio's
socket transport turns Nagle off for every TCP socket it wraps. This test pins that down on the
clients the Computer itself builds, so a change of backend cannot silently bring Nagle back.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from smcp.computer import parse_config
from smcp.computer._hosting import MCPServerHost

pytestmark = pytest.mark.anyio


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("factory", ["streamable", "sse"])
async def test_http_transport_sockets_have_tcp_nodelay(factory: str) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
    config = parse_config({"servers": {"web": {"type": "streamable", "server_parameters": {"url": url}}}})
    host = MCPServerHost(config.servers[0])
    client = host._http_client({}, 5.0, 5.0) if factory == "streamable" else host._http_factory({})
    try:
        async with asyncio.timeout(20), client, client.stream("GET", url) as response:
            sock = response.extensions["network_stream"].get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.close()
