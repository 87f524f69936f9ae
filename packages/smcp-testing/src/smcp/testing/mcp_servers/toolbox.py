"""A real MCP server (mcp 2.x, ``MCPServer``) for cross-process tests.

Usage::

    python toolbox.py stdio [options]
    python toolbox.py sse  --port 0 [options]     # GET /sse, POST /messages/
    python toolbox.py http --port 0 [options]     # streamable HTTP at /mcp

For ``sse`` and ``http`` the server binds ``--host`` (default 127.0.0.1) before it starts, so
``--port 0`` picks a free port; once uvicorn accepts connections it prints exactly one line
``LISTENING <port>`` to stdout. Logs go to stderr.

Options:

``--page-size N``
    serve ``resources/list`` in pages of N entries (cursor = decimal offset). 0 (default): one page.
``--mem-count N``
    number of plain ``mem://toolbox/item/<i>`` resources (default 30).
``--fullscreen``
    mark the window ``window://toolbox/main`` with ``_meta.fullscreen = true``.
``--name NAME``
    MCP server name reported in ``initialize`` (default ``toolbox``).

Tools: echo, slow_echo, fail, big_text, image, add, grow (adds ``extra`` and announces
``tools/list_changed``), open_window (adds a window and announces ``resources/list_changed``),
crash (exits the process with status 3), whoami (returns ``$SMCP_TOOLBOX_TAG``), tagged (declares
``_meta.a2c_tool_meta.tags = ["declared"]``).

Resources: ``window://toolbox/main`` (priority 0.9), ``window://toolbox/side`` (priority 0.3), plus
``--mem-count`` plain ``mem://`` text resources.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
from typing import Any

import mcp.types as mt
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import TextResource
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

if __package__:  # python -m smcp.testing.mcp_servers.<name>
    from ._listen import serve_announced
else:  # run by file path: this folder is sys.path[0]
    from _listen import serve_announced  # type: ignore[import-not-found,no-redef]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WINDOW_MAIN = "window://toolbox/main"
WINDOW_SIDE = "window://toolbox/side"
DECLARED_TOOL_META: dict[str, Any] = {"a2c_tool_meta": {"tags": ["declared"]}}
NOTIFY = NotificationOptions(tools_changed=True, resources_changed=True)


def png_bytes(n_bytes: int) -> bytes:
    """Deterministic PNG-looking bytes of exactly ``n_bytes`` (the PNG signature, then a byte ramp)."""
    if n_bytes <= 0:
        return b""
    body = bytes(i % 251 for i in range(max(0, n_bytes - len(PNG_SIGNATURE))))
    return (PNG_SIGNATURE + body)[:n_bytes]


def window_text(uri: str) -> str:
    return f"content of {uri}"


def build_server(args: argparse.Namespace) -> MCPServer:
    server: MCPServer = MCPServer(args.name, log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return ``text`` unchanged."""
        return text

    @server.tool()
    async def slow_echo(text: str, seconds: float) -> str:
        """Sleep ``seconds`` and then return ``text``."""
        await asyncio.sleep(seconds)
        return text

    @server.tool()
    def fail(message: str) -> str:
        """Always fail with ``message`` (an MCP tool error, ``isError: true``)."""
        raise ToolError(message)

    @server.tool()
    def big_text(n_bytes: int) -> str:
        """Return ``n_bytes`` ASCII characters (a repeating alphabet)."""
        alphabet = "abcdefghijklmnopqrstuvwxyz"
        return (alphabet * (n_bytes // len(alphabet) + 1))[:n_bytes]

    @server.tool()
    def image(n_bytes: int) -> mt.ImageContent:
        """Return a deterministic ``image/png`` content item whose decoded size is ``n_bytes``."""
        data = base64.b64encode(png_bytes(n_bytes)).decode("ascii")
        return mt.ImageContent(type="image", data=data, mime_type="image/png")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Return ``a + b``."""
        return a + b

    def extra() -> str:
        """A tool that appears only after ``grow`` was called."""
        return "extra"

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Add the tool ``extra`` (once) and announce ``tools/list_changed`` on both MCP eras."""
        if not any(t.name == "extra" for t in await server.list_tools()):
            server.add_tool(extra)
        await ctx.notify_tools_changed()  # 2026 sessions: subscriptions/listen streams
        await ctx.session.send_tool_list_changed()  # 2025 sessions: a plain notification
        return "grown"

    @server.tool()
    async def open_window(name: str, ctx: Context) -> str:
        """Add ``window://toolbox/<name>`` and announce ``resources/list_changed``."""
        uri = f"window://toolbox/{name}"
        if not any(str(r.uri) == uri for r in await server.list_resources()):
            server.add_resource(
                TextResource(
                    uri=uri,
                    name=name,
                    text=window_text(uri),
                    annotations=mt.Annotations(priority=0.5, audience=["assistant"]),
                )
            )
        await ctx.notify_resources_changed()
        await ctx.session.send_resource_list_changed()
        return uri

    @server.tool()
    def crash() -> str:
        """Exit the server process at once with status 3 (simulates a crashing MCP server)."""
        sys.stderr.flush()
        os._exit(3)

    @server.tool()
    def whoami() -> str:
        """Return the environment variable ``SMCP_TOOLBOX_TAG`` (empty when unset)."""
        return os.environ.get("SMCP_TOOLBOX_TAG", "")

    @server.tool(meta=DECLARED_TOOL_META)
    def tagged() -> str:
        """A tool whose MCP ``_meta`` declares ``a2c_tool_meta.tags``."""
        return "tagged"

    server.add_resource(
        TextResource(
            uri=WINDOW_MAIN,
            name="main",
            description="main toolbox window",
            text=window_text(WINDOW_MAIN),
            annotations=mt.Annotations(priority=0.9, audience=["assistant"]),
            meta={"fullscreen": True} if args.fullscreen else None,
        )
    )
    server.add_resource(
        TextResource(
            uri=WINDOW_SIDE,
            name="side",
            description="side toolbox window",
            text=window_text(WINDOW_SIDE),
            annotations=mt.Annotations(priority=0.3, audience=["assistant"]),
        )
    )
    for i in range(args.mem_count):
        uri = f"mem://toolbox/item/{i}"
        server.add_resource(TextResource(uri=uri, name=f"item-{i}", text=f"item {i}"))

    if args.page_size > 0:
        install_resource_paging(server, args.page_size)
    advertise_list_changed(server)
    return server


def advertise_list_changed(server: MCPServer) -> None:
    """Make every transport advertise ``tools.listChanged`` and ``resources.listChanged``.

    The SSE and streamable-HTTP apps build their initialization options without notification
    options, so the default is swapped on the low-level server instance.
    """
    low = server._lowlevel_server
    build_options = low.create_initialization_options

    def with_notify(
        notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return build_options(notification_options or NOTIFY, *args, **kwargs)

    low.create_initialization_options = with_notify  # type: ignore[method-assign]


def install_resource_paging(server: MCPServer, page_size: int) -> None:
    """Replace the one-page ``resources/list`` handler with a cursor-paged one.

    ``MCPServer`` itself always answers in one page, so this registers a handler on the low-level
    server (``add_request_handler`` replaces the existing entry). The cursor is the decimal offset
    of the next entry; a malformed cursor is an ``INVALID_PARAMS`` error.
    """

    async def list_page(ctx: Any, params: mt.PaginatedRequestParams) -> mt.ListResourcesResult:
        everything = await server.list_resources()
        cursor = params.cursor
        try:
            start = int(cursor) if cursor else 0
        except ValueError:
            raise MCPError(mt.INVALID_PARAMS, f"invalid cursor {cursor!r}") from None
        if start < 0 or start > len(everything):
            raise MCPError(mt.INVALID_PARAMS, f"invalid cursor {cursor!r}")
        end = start + page_size
        next_cursor = str(end) if end < len(everything) else None
        return mt.ListResourcesResult(resources=everything[start:end], next_cursor=next_cursor)

    server._lowlevel_server.add_request_handler("resources/list", mt.PaginatedRequestParams, list_page)


async def run_stdio(server: MCPServer) -> None:
    low = server._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        await low.run(read_stream, write_stream, low.create_initialization_options())


async def run_http(server: MCPServer, kind: str, host: str, port: int) -> None:
    app = server.sse_app(host=host) if kind == "sse" else server.streamable_http_app(host=host)
    await serve_announced(app, host, port, name="toolbox")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("transport", choices=["stdio", "sse", "http"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--mem-count", type=int, default=30)
    parser.add_argument("--fullscreen", action="store_true")
    parser.add_argument("--name", default="toolbox")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    server = build_server(args)
    if args.transport == "stdio":
        asyncio.run(run_stdio(server))
    else:
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("toolbox: refusing to bind anything but loopback")
        asyncio.run(run_http(server, args.transport, args.host, args.port))


if __name__ == "__main__":
    main()
