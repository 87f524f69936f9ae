"""An SMCP office as a standard MCP server (extra ``smcp-agent[mcp]``).

    async with AsyncAgent(url, token=token, office="o1") as agent:
        await serve(agent)                                  # stdio
        await serve(agent, http=("127.0.0.1", 8765))        # streamable HTTP at /mcp

Every tool of the office's Computers (or of ``computers``) is an MCP tool named
``{computer}__{tool}`` (the :class:`~smcp.agent.llm.Toolset` rule); resources are
``smcp://<computer>/<uri>``. See the smcp-agent README, "MCP bridge".
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from smcp.core.errors import ConfigError

try:
    import mcp.server.lowlevel  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the base-install test
    raise ConfigError("smcp.agent.mcp needs the MCP server stack: pip install 'smcp-agent[mcp]'") from exc

from smcp.agent.mcp._private.bridge import Bridge, wait_ready
from smcp.agent.mcp._private.catalogue import Catalogue
from smcp.agent.mcp._private.resources import bridge_uri, split_uri

if TYPE_CHECKING:
    from smcp.agent._client import AsyncAgent

__all__ = ["Bridge", "Catalogue", "bridge_uri", "serve", "split_uri"]


async def serve(
    agent: AsyncAgent,
    *,
    computers: Collection[str] | None = None,
    call_timeout: float = 60.0,
    http: tuple[str, int] | None = None,
    bearer_token: str | None = None,
    name: str = "smcp-office",
    on_listening: Callable[[int], None] | None = None,
    elicit_confirmation: bool = True,
) -> None:
    """Serve ``agent``'s office as an MCP server until the client goes away (stdio) or the task
    is cancelled (HTTP).

    ``http=(host, port)`` serves streamable HTTP at ``/mcp`` instead of stdio; a host other than
    loopback needs ``bearer_token`` (clients send ``Authorization: Bearer <token>``).
    ``call_timeout`` is the deadline of each tool call in seconds; ``on_listening(port)`` runs
    once the HTTP server accepts connections. ``elicit_confirmation`` asks the MCP client's user
    (elicitation, when the client supports it) before calling a tool its Computer does not
    auto-apply.
    """
    bridge = Bridge(
        agent,
        computers=computers,
        call_timeout=call_timeout,
        name=name,
        elicit_confirmation=elicit_confirmation,
    )
    await wait_ready(agent)
    if http is None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await bridge.server.run(read, write, bridge.initialization_options())
        return
    from smcp.agent.mcp._private.http import serve_http

    await serve_http(bridge, http[0], http[1], bearer_token, on_listening=on_listening)
