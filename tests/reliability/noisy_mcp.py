"""A stdio MCP server (mcp 2.x) whose one tool, ``chatty``, emits notifications while it runs.

``chatty(call, rounds, pause)`` does ``rounds`` times: add the window ``window://noisy/c<call>-r<r>``
and send ``resources/list_changed``; send ``resources/updated`` for ``window://noisy/main``; add the
tool ``t_c<call>_r<r>`` and send ``tools/list_changed``; sleep ``pause`` seconds. It returns
``done <call>``. Run by file path: ``python noisy_mcp.py``.
"""

from __future__ import annotations

import asyncio

import mcp.types as mt
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resources import TextResource
from mcp.server.stdio import stdio_server

MAIN = "window://noisy/main"


def build() -> MCPServer:
    server: MCPServer = MCPServer("noisy", log_level="WARNING")

    @server.tool()
    async def chatty(call: int, rounds: int, pause: float, ctx: Context) -> str:
        """Emit resource and tool notifications while running; return ``done <call>``."""
        for r in range(rounds):
            uri = f"window://noisy/c{call}-r{r}"
            server.add_resource(TextResource(uri=uri, name=f"c{call}-r{r}", text=uri))
            await ctx.session.send_resource_list_changed()
            await ctx.session.send_resource_updated(MAIN)

            def extra() -> str:
                return "extra"

            server.add_tool(extra, name=f"t_c{call}_r{r}", description="added by chatty")
            await ctx.session.send_tool_list_changed()
            await asyncio.sleep(pause)
        return f"done {call}"

    server.add_resource(
        TextResource(uri=MAIN, name="main", text="main", annotations=mt.Annotations(priority=0.9))
    )
    return server


async def main() -> None:
    low = build()._lowlevel_server
    options = low.create_initialization_options(
        NotificationOptions(tools_changed=True, resources_changed=True)
    )
    async with stdio_server() as (read_stream, write_stream):
        await low.run(read_stream, write_stream, options)


if __name__ == "__main__":
    asyncio.run(main())
