"""``client:get_resources`` (docs/protocol.md §11) and the view of an MCP server that the desktop
and skills code uses."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from smcp.core.errors import CapabilityNotSupportedError, MCPServerNotFoundError

if TYPE_CHECKING:
    import mcp_types

__all__ = ["ResourceSource", "get_resources_page", "list_all_resources", "resource_to_wire"]

logger = logging.getLogger("smcp.computer")

#: Upper bound on ``resources/list`` pages read when a caller needs the whole list (desktop, skills).
MAX_PAGES = 1000


class ResourceSource(Protocol):
    """One running MCP server as desktop/resources/skills code sees it (the MCP client wrapper)."""

    @property
    def bundle_id(self) -> str: ...

    @property
    def supports_resources(self) -> bool:
        """True when the server declared the ``resources`` capability."""
        ...

    async def list_resources(self, cursor: str | None) -> tuple[list[mcp_types.Resource], str | None]:
        """One page of ``resources/list`` and the next cursor (``None`` on the last page)."""
        ...

    async def read_resource(
        self, uri: str
    ) -> list[mcp_types.TextResourceContents | mcp_types.BlobResourceContents]:
        """The contents of ``resources/read``."""
        ...


def resource_to_wire(resource: mcp_types.Resource) -> dict[str, Any]:
    """An MCP ``Resource`` as an A2CResource wire dict (§8.6): snake_case, absent keys omitted.

    ``title`` and ``icons`` are not forwarded; ``_meta`` is copied verbatim.
    """
    out: dict[str, Any] = {"uri": str(resource.uri), "name": resource.name}
    if resource.description is not None:
        out["description"] = resource.description
    if resource.mime_type is not None:
        out["mime_type"] = resource.mime_type
    if resource.size is not None:
        out["size"] = resource.size
    ann = resource.annotations
    if ann is not None:
        annotations: dict[str, Any] = {}
        if ann.audience is not None:
            annotations["audience"] = list(ann.audience)
        if ann.priority is not None:
            annotations["priority"] = ann.priority
        if ann.last_modified is not None:
            annotations["last_modified"] = ann.last_modified
        out["annotations"] = annotations
    if resource.meta is not None:
        out["_meta"] = resource.meta
    return out


async def get_resources_page(
    source: ResourceSource | None, mcp_server: str, cursor: str | None, req_id: str
) -> dict[str, Any]:
    """The GetResourcesRet wire dict for one page of ``mcp_server``'s resources.

    Raises :class:`MCPServerNotFoundError` (4014) when ``source`` is ``None`` (unknown or inactive
    bundle id) and :class:`CapabilityNotSupportedError` (4015) when the server has no ``resources``
    capability. MCP errors propagate unchanged (the caller turns them into an answer).
    """
    if source is None:
        raise MCPServerNotFoundError(fields={"mcp_server": mcp_server})
    if not source.supports_resources:
        raise CapabilityNotSupportedError(fields={"mcp_server": mcp_server, "capability": "resources"})
    resources, next_cursor = await source.list_resources(cursor or None)

    from smcp.core import models, wire

    ret = models.GetResourcesRet(
        resources=[models.A2CResource.model_validate(resource_to_wire(r)) for r in resources],
        next_cursor=next_cursor or None,
        req_id=req_id,
    )
    return wire.to_wire(ret)


async def list_all_resources(
    source: ResourceSource, *, request_timeout: float = 30.0
) -> list[mcp_types.Resource]:
    """Every resource of ``source`` (all pages), each page bounded by ``request_timeout`` seconds.

    Stops with a warning when a cursor repeats or after :data:`MAX_PAGES` pages, so a buggy server
    cannot keep the caller looping.
    """
    out: list[mcp_types.Resource] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page, cursor = await asyncio.wait_for(source.list_resources(cursor), request_timeout)
        out.extend(page)
        if not cursor:
            return out
        if cursor in seen:
            logger.warning(
                "MCP server %s repeated resources/list cursor %r; stopping", source.bundle_id, cursor
            )
            return out
        seen.add(cursor)
    logger.warning(
        "MCP server %s: resources/list exceeded %d pages; list truncated", source.bundle_id, MAX_PAGES
    )
    return out
