"""The toolbox core tools written for mcp 1.x (``mcp.server.fastmcp.FastMCP``).

Proves that servers built on the old SDK line work with our Computer. Run it with a python that
has ``mcp<2`` installed, e.g. the official a2c-smcp virtualenv
(``smcp.testing.official_env.official_python()``)::

    python toolbox_v1.py stdio
    python toolbox_v1.py sse  --port 0      # prints ``LISTENING <port>``; GET /sse
    python toolbox_v1.py http --port 0      # prints ``LISTENING <port>``; /mcp

Tools: ``echo(text)``, ``slow_echo(text, seconds)``, ``add(a, b)``.
"""

from __future__ import annotations

import argparse
import asyncio

from mcp.server.fastmcp import FastMCP

if __package__:  # python -m smcp.testing.mcp_servers.<name>
    from ._listen import serve_announced
else:  # run by file path: this folder is sys.path[0]
    from _listen import serve_announced  # type: ignore[import-not-found,no-redef]


def build_server(name: str) -> FastMCP:
    server = FastMCP(name, log_level="WARNING")

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
    def add(a: int, b: int) -> int:
        """Return ``a + b``."""
        return a + b

    return server


async def run_http(server: FastMCP, kind: str, host: str, port: int) -> None:
    app = server.sse_app() if kind == "sse" else server.streamable_http_app()
    await serve_announced(app, host, port, name="toolbox_v1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("transport", choices=["stdio", "sse", "http"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="toolbox-v1")
    args = parser.parse_args(argv)
    server = build_server(args.name)
    if args.transport == "stdio":
        server.run("stdio")
        return
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("toolbox_v1: refusing to bind anything but loopback")
    asyncio.run(run_http(server, args.transport, args.host, args.port))


if __name__ == "__main__":
    main()
