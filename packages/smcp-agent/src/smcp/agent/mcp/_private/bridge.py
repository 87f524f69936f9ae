"""The MCP server in front of one Agent: handlers for tools, resources and change notifications."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.lowlevel.server import NotificationOptions, Server

from smcp.agent._version import __version__
from smcp.agent.mcp._private import confirm
from smcp.agent.mcp._private.catalogue import Catalogue
from smcp.agent.mcp._private.resources import ResourceIndex
from smcp.core.errors import SMCPException

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.models import InitializationOptions
    from mcp.server.session import ServerSession

    from smcp.agent._cache import ComputerView
    from smcp.agent._client import AsyncAgent

logger = logging.getLogger("smcp.agent")

STDIO_SESSION = "stdio"


def error_result(text: str, **meta: Any) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], is_error=True, _meta={"smcp": meta} if meta else None
    )


def _progress_token(meta: Any) -> str | int | None:
    if not isinstance(meta, dict):
        return None
    token = meta.get("progress_token", meta.get("progressToken"))
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


class Bridge:
    """Serves the tools (and resources) of an Agent's office to MCP clients.

    One bridge may serve many MCP connections at once (streamable HTTP); every connection that
    made a request is told ``notifications/tools/list_changed`` when the tool list changes. A tool
    its Computer does not auto-apply is first confirmed through elicitation when the MCP client
    supports it (``elicit_confirmation``); the Computer's own policy applies after that as always.
    """

    def __init__(
        self,
        agent: AsyncAgent,
        *,
        computers: Collection[str] | None = None,
        call_timeout: float = 60.0,
        name: str = "smcp-office",
        elicit_confirmation: bool = True,
    ) -> None:
        if not call_timeout > 0:
            raise ValueError("call_timeout must be a positive number of seconds")
        self.agent = agent
        self.computers = frozenset(computers) if computers else None
        self.call_timeout = call_timeout
        self.elicit_confirmation = elicit_confirmation
        self._catalogue = Catalogue([])
        self._listed = ""
        self._sessions: dict[str, ServerSession] = {}
        self._resources = ResourceIndex(agent, self.computers)
        self.server: Server[Any] = Server(
            name,
            version=__version__,
            instructions=f"Tools of the Computers in SMCP office {agent.office!r}, named computer__tool.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
        )
        agent.on("cache_updated")(self._on_cache_updated)
        self._refresh()

    def initialization_options(self) -> InitializationOptions:
        return self.server.create_initialization_options(
            NotificationOptions(tools_changed=True, resources_changed=True)
        )

    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    def _refresh(self) -> bool:
        """Rebuild the catalogue from the Agent's cache; true when the tool list changed."""
        catalogue = Catalogue.from_cache(self.agent.cache, self.computers)
        changed = catalogue.signature() != self._catalogue.signature()
        self._catalogue = catalogue
        return changed

    def _remember(self, ctx: ServerRequestContext[Any, Any]) -> None:
        request = ctx.request
        headers = getattr(request, "headers", None)
        key = headers.get("mcp-session-id") if headers is not None else None
        self._sessions[key or STDIO_SESSION] = ctx.session

    async def _on_cache_updated(self, computer: str, view: ComputerView | None) -> None:
        if self.computers is not None and computer not in self.computers:
            return
        if self._refresh():
            await self.notify_tools_changed()

    async def notify_tools_changed(self) -> None:
        """Send ``notifications/tools/list_changed`` to every connected MCP client."""
        for key, session in list(self._sessions.items()):
            try:
                await session.send_tool_list_changed()
            except Exception as exc:  # a closed connection: forget it
                logger.info("dropping MCP session %s: %s", key, exc)
                self._sessions.pop(key, None)

    # -- tools ---------------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._remember(ctx)
        return types.ListToolsResult(tools=self._catalogue.tools())

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        self._remember(ctx)
        entry = self._catalogue.entries.get(params.name)
        if entry is None:
            return error_result(f"unknown tool {params.name!r}; list the tools again")
        if entry.computer not in self.agent.cache:
            return error_result(
                f"Computer {entry.computer!r} has left office {self.agent.office!r}; "
                f"tool {params.name!r} is not available",
                computer=entry.computer,
            )
        arguments = dict(params.arguments or {})
        if self.elicit_confirmation and confirm.needs_confirmation(entry) and confirm.can_elicit(ctx):
            refused = await confirm.ask(ctx, entry, arguments)
            if refused is not None:
                return error_result(f"{params.name}: {refused}", computer=entry.computer, declined=True)
        token = _progress_token(ctx.meta)
        if token is not None:
            await self._progress(ctx, token, 0.0)
        from smcp.core.naming import new_req_id

        req_id = new_req_id()
        logger.debug(
            "MCP request %s -> tool_call %s (%s on %s)", ctx.request_id, req_id, entry.exposed, entry.computer
        )
        try:
            result = await self.agent.call_tool(
                entry.computer, entry.exposed, arguments, self.call_timeout, req_id=req_id
            )
        except SMCPException as exc:
            return error_result(f"{entry.computer}: {exc}", computer=entry.computer, req_id=req_id)
        if token is not None:
            await self._progress(ctx, token, 1.0)
        return result

    async def _progress(self, ctx: ServerRequestContext[Any, Any], token: str | int, value: float) -> None:
        with contextlib.suppress(Exception):
            related = str(ctx.request_id) if ctx.request_id is not None else None
            await ctx.session.send_progress_notification(token, value, 1.0, related_request_id=related)

    # -- resources -------------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        self._remember(ctx)
        return types.ListResourcesResult(resources=await self._resources.list_all())

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        self._remember(ctx)
        return await self._resources.read(params.uri)


async def wait_ready(agent: AsyncAgent, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait for the Agent's first cache round, so the first ``tools/list`` is complete."""
    try:
        await agent.cache.wait_idle(timeout)
    except TimeoutError:
        logger.warning(
            "the office's tool lists were not all fetched within %.0f s; serving what there is", timeout
        )
